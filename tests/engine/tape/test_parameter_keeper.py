"""A live run that no tape records keeps parameter snapshots for a tape saved from it later (ParameterKeeper): taken
as a recording takes them, in bounded memory, thinned evenly over the run; the run's end with its raw values."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as F
import engine.tape
from engine.debug import Debugger
from engine.tape.snapshots import ParameterKeeper
from tests.engine.tape.helpers import MLP


def train(steps: int, max_bytes: int, capture: str = "summary") -> tuple[ParameterKeeper, list[dict], MLP]:
    """`steps` SGD steps of an MLP under a live-style debugger with a keeper; the model's own arrays after each
    step (copied by the loop, not by the keeper)."""
    engine.manual_seed(0)
    model = MLP()
    opt = engine.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    x, y = engine.randn(4, 6), engine.tensor([0, 1, 2, 1])
    dbg = Debugger(capture, interactive=False, cache_bytes=0, discover=True)
    keeper = ParameterKeeper(dbg, capture, max_bytes)
    dbg.on_record.append(keeper.on_record)
    after = []
    with dbg:
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            after.append({name: p.array.copy() for name, p in model.named_parameters()})
    return keeper, after, model


def test_it_keeps_every_tenth_step_and_the_end_with_its_values():
    keeper, after, model = train(25, 1 << 20)
    snaps = keeper.finish()
    steps = [(s.iteration, s.after_step) for s in snaps]
    assert steps == [(0, False), (0, True), (10, True), (20, True), (24, True)]
    for snap in snaps[1:]:
        for p in snap.params:
            np.testing.assert_array_equal(p.copy, after[snap.iteration][p.name])
    end = {p.name: p.value for p in snaps[-1].params}
    assert end.keys() == dict(model.named_parameters()).keys()
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(end[name], p.array)  # the run's end: the raw values too
    assert all(p.value is None for snap in snaps[:-1] for p in snap.params)  # a summary recording keeps none


def test_past_its_budget_it_thins_the_snapshots_evenly_and_stays_within_it():
    one = sum(p.array.nbytes for p in MLP().parameters())
    budget = 8 * one  # room for 8 snapshots: a run of 200 iterations makes 21 of them
    keeper, after, _ = train(200, budget)
    assert keeper.nbytes <= budget and keeper.every > 10
    steps = [s.iteration for s in keeper.snapshots if s.after_step]
    assert steps == list(range(0, 200, keeper.every))  # evenly apart, from the start to near the end
    assert steps[-1] >= 200 - keeper.every
    for snap in keeper.snapshots[1:]:
        for p in snap.params:
            np.testing.assert_array_equal(p.copy, after[snap.iteration][p.name])


def test_a_saved_tape_holds_the_kept_snapshots_and_info_lists_them(tmp_path):
    keeper, after, model = train(12, 1 << 20)
    path = str(tmp_path / "saved.tape")
    with engine.tape.record(path, debugger=Debugger("summary", interactive=False, cache_bytes=0), max_bytes=None,
                            parameter_every=keeper.every) as recorder:
        for snap in keeper.finish():
            recorder.keep_snapshot(snap)
    with engine.tape.open(path) as tape:
        assert tape.parameter_counts() == {"snapshots": 4 * 4, "parameters": 4}
        for name, p in model.named_parameters():
            last = tape.parameter(name)
            assert last.iteration == 11 and last.after_step
            np.testing.assert_array_equal(last.value, p.array)
            assert last.summary.mean == pytest.approx(float(p.array.astype(np.float64).mean()), rel=1e-6, abs=1e-9)
            tenth = next(s for s in tape.parameter_history(name) if s.iteration == 10)
            assert tenth.summary.max == pytest.approx(float(after[10][name].max()), rel=1e-6)


def test_a_structure_capture_keeps_none():
    keeper, _, _ = train(3, 1 << 20, capture="structure")
    assert keeper.finish() == [] and not keeper.held().keeping
