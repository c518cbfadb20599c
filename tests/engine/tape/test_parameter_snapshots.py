"""Tapes keep the values of parameters: snapshots after optimizer steps (every step at "values", every 10th
iteration's and the last at "summary") and one before the first forward, summarised, with the raw value of
small ones at "values", none at "structure"."""

from __future__ import annotations

import io
import json
import sqlite3
import zlib

import numpy as np
import pytest

import engine
import engine.nn.functional as F
import engine.tape
from engine.debug import Debugger
from engine.tape import TapeError, codec
from engine.tape.info import describe, tape_info
from tests.engine.tape.helpers import MLP
from tests.engine.test_devices import NO_GPU

NAMES = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")


def record(path, capture: str = "summary", steps: int = 3, values_limit: int = 4096, **options) -> list[dict]:
    """Record `steps` SGD steps of a fresh MLP; the model's own arrays copied before the first forward and
    after each step: [before, after step 0, after step 1, ...], each name -> array."""
    model = MLP()
    opt = engine.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    rng = np.random.default_rng(0)
    x = engine.tensor(rng.standard_normal((4, 6)).astype(np.float32))
    y = engine.tensor(rng.integers(0, 3, 4))

    def copies() -> dict:
        return {name: p.array.copy() for name, p in model.named_parameters()}

    seen = [copies()]
    dbg = Debugger(capture, model=model, interactive=False, cache_bytes=0, values_limit=values_limit)
    with dbg, engine.record(path, debugger=dbg, max_bytes=None, **options):
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            seen.append(copies())
    return seen


def assert_matches(snap, array: np.ndarray) -> None:
    s = snap.summary
    assert s.shape == array.shape and s.dtype == array.dtype.name and s.numel == array.size
    a = array.astype(np.float64)
    for got, expected in ((s.min, a.min()), (s.max, a.max()), (s.mean, a.mean()), (s.norm, np.linalg.norm(a))):
        assert got == pytest.approx(float(expected), rel=1e-6, abs=1e-9)


def test_summaries_match_the_parameters_after_each_step(tmp_path):
    path = tmp_path / "run.tape"
    seen = record(path, "summary", steps=3, parameter_every=1)
    with engine.tape.open(path) as tape:
        assert tape.meta["parameter_every"] == "1"
        assert tape.parameter_names() == sorted(NAMES)
        assert tape.parameter_counts() == {"snapshots": 4 * 4, "parameters": 4}
        steps = [seq for seq, *_ in sqlite3.connect(path).execute("SELECT seq FROM optimizer_steps ORDER BY seq")]
        for it in range(3):
            snaps = tape.parameters(it)
            assert sorted(snaps) == sorted(NAMES)
            for name, snap in snaps.items():
                assert snap.after_step and snap.iteration == it and snap.seq == steps[it]
                assert snap.value is None  # "summary": no raw values
                assert_matches(snap, seen[it + 1][name])
                # the values changed step after step: the snapshot is not of another step
                assert not np.allclose(snap.summary.norm, np.linalg.norm(seen[it][name].astype(np.float64)),
                                       rtol=1e-9, atol=0)
        assert tape.parameter("fc2.bias", 1).seq == steps[1]
        assert tape.parameter("fc2.bias").seq == steps[2]  # no iteration: the last


def test_summary_tapes_snapshot_every_tenth_iteration_and_the_last_step(tmp_path):
    path = tmp_path / "run.tape"
    seen = record(path, "summary", steps=12)
    with engine.tape.open(path) as tape:
        assert tape.meta["parameter_every"] == "10"
        rows = sqlite3.connect(path).execute("SELECT DISTINCT iteration, after_step FROM parameters").fetchall()
        assert sorted(rows) == [(0, 0), (0, 1), (10, 1), (11, 1)]
        for it in (0, 10, 11):
            for name, snap in tape.parameters(it).items():
                assert_matches(snap, seen[it + 1][name])
        snap = tape.parameter("fc1.weight", 7)  # between snapshots: the latest one before
        assert snap.iteration == 0 and snap.after_step
    values = tmp_path / "values.tape"
    record(values, "values", steps=3)
    with engine.tape.open(values) as tape:
        assert tape.meta["parameter_every"] == "1" and tape.parameter_counts()["snapshots"] == 4 * 4
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match="parameter_every must be a whole number >= 1"):
            engine.record(tmp_path / "bad.tape", "summary", parameter_every=bad)
    assert not (tmp_path / "bad.tape").exists()  # refused before the file is made


def test_the_first_snapshot_is_of_the_values_the_first_forward_used(tmp_path):
    path = tmp_path / "run.tape"
    seen = record(path, "summary", steps=2)
    with engine.tape.open(path) as tape:
        first_op = next(ev for ev in tape.events(iteration=0) if ev.__class__.__name__ == "OpEvent")
        before = tape.parameters(seq=first_op.seq)
        assert sorted(before) == sorted(NAMES)
        for name, snap in before.items():
            assert not snap.after_step and snap.iteration == 0 and snap.seq < first_op.seq
            assert_matches(snap, seen[0][name])
        # a step's snapshot takes over from the event of the step on
        step = tape.parameter("fc1.weight", 0)
        assert step.after_step and tape.parameter("fc1.weight", seq=step.seq - 1).seq == before["fc1.weight"].seq
        assert tape.parameter("fc1.weight", seq=before["fc1.weight"].seq - 1) is None  # before it: none yet


def test_values_are_kept_exactly_up_to_the_values_limit(tmp_path):
    path = tmp_path / "run.tape"
    seen = record(path, "values", steps=2, values_limit=10)  # biases (5 and 3) fit, weights (30, 15) do not
    with engine.tape.open(path) as tape:
        for it in range(2):
            snaps = tape.parameters(it)
            for name in ("fc1.bias", "fc2.bias"):
                np.testing.assert_array_equal(snaps[name].value, seen[it + 1][name])
                assert snaps[name].value.dtype == seen[it + 1][name].dtype
            for name in ("fc1.weight", "fc2.weight"):
                assert snaps[name].value is None
                assert_matches(snaps[name], seen[it + 1][name])
        assert tape.parameter("fc1.bias", 0, value=False).value is None  # asked not to read it
        blob = sqlite3.connect(path).execute("SELECT npy FROM parameters WHERE npy IS NOT NULL").fetchone()[0]
        assert zlib.decompress(blob).startswith(b"\x93NUMPY")  # .npy, never a pickle


def test_values_at_the_default_limit(tmp_path):
    path = tmp_path / "run.tape"
    seen = record(path, "values", steps=1)
    with engine.tape.open(path) as tape:
        for name, snap in tape.parameters(0).items():
            np.testing.assert_array_equal(snap.value, seen[1][name])


def test_a_structure_tape_holds_no_snapshots(tmp_path):
    path = tmp_path / "run.tape"
    record(path, "structure", steps=2)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM parameters").fetchone()[0] == 0
    with engine.tape.open(path) as tape:
        assert tape.parameter_names() == [] and tape.parameters(1) == {}
        assert tape.parameter_counts() == {"snapshots": 0, "parameters": 0}
        with pytest.raises(ValueError, match=r"no snapshots of 'fc1.weight' \(a structure tape holds no parameter"):
            tape.parameter("fc1.weight", 1)


def test_a_tape_from_before_snapshots_still_opens_without_them(tmp_path):
    path = tmp_path / "run.tape"
    record(path, "summary", steps=2)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE parameters")  # as tapes were written before snapshots were kept
    conn.commit()
    conn.close()
    with engine.tape.open(path) as tape:
        assert not tape.keeps_parameters
        assert tape.parameter_names() == [] and tape.parameters(0) == {} and tape.parameters() == {}
        with pytest.raises(ValueError, match="recorded before tapes kept parameter values"):
            tape.parameter("fc1.weight", 0)
        info = tape_info(tape)
    assert info["parameter_snapshots"] == 0 and "parameters: no snapshots" in describe(info)


def test_bad_names_and_iterations_are_one_clear_line(tmp_path):
    path = tmp_path / "run.tape"
    record(path, "summary", steps=2)
    with engine.tape.open(path) as tape:
        cases = [(("fc9.weight", 0), "no snapshots of 'fc9.weight' .it holds fc1.bias, fc1.weight"),
                 (("fc1.weight", 7), r"iteration 7 is not on this tape \(it holds iterations 0..1\)"),
                 (("fc1.weight", -1), "iteration -1 is not on this tape"),
                 (("fc1.weight", "1"), "iteration must be an int, got str"),
                 ((3, 0), "a name is text")]
        for args, message in cases:
            with pytest.raises(ValueError, match=message) as err:
                tape.parameter(*args)
            assert "\n" not in str(err.value)
        with pytest.raises(ValueError, match="not both"):
            tape.parameters(0, seq=3)
        with pytest.raises(ValueError, match="seq must be"):
            tape.parameters(seq=-2)


def test_info_counts_the_snapshots(tmp_path):
    path = tmp_path / "run.tape"
    record(path, "summary", steps=3)
    with engine.tape.open(path) as tape:
        info = tape_info(tape)
    # before the first forward, after iteration 0's step, and after the last step (2) when recording ended
    assert info["parameter_snapshots"] == 12 and info["snapshotted_parameters"] == 4
    assert "  parameters: 12 snapshots of 4 parameters" in describe(info).splitlines()
    json.dumps(info)  # --json prints it


def test_values_that_do_not_fit_the_queue_are_dropped_and_counted(tmp_path):
    path = tmp_path / "run.tape"
    seen = record(path, "values", steps=2, value_bytes=1)  # no room for any raw value, nor a copy
    with engine.tape.open(path) as tape:
        for name, snap in tape.parameters(1).items():
            assert snap.value is None
            assert_matches(snap, seen[2][name])  # summarised at once instead
        dropped = {d.what: 0 for d in tape.drops()}
        for d in tape.drops():
            dropped[d.what] += d.count
    assert dropped.get("parameter values", 0) >= 4 * 3  # every parameter's, at every snapshot


@pytest.mark.parametrize("level, what", [(1, "parameter values"), (2, "parameter summaries")])
def test_under_pressure_values_go_first_then_summaries(tmp_path, level, what):
    path = tmp_path / "run.tape"
    model = MLP()
    opt = engine.optim.SGD(model.parameters(), lr=0.5)
    x = engine.tensor(np.ones((4, 6), dtype=np.float32))
    with engine.record(path, capture="values", model=model, optimizer=opt, max_bytes=None) as rec:
        F.cross_entropy(model(x), engine.tensor(np.zeros(4, dtype=np.int64))).backward()
        rec._level = level  # what the writer sets when the queue or the tape's size presses (1: values, 2: summaries)
        opt.step()
    with engine.tape.open(path) as tape:
        snaps = tape.parameters(0)
        if level == 1:
            assert sorted(snaps) == sorted(NAMES) and all(s.value is None for s in snaps.values())
        else:
            assert all(not s.after_step for s in snaps.values())  # only the snapshot from before the step
        assert sum(d.count for d in tape.drops() if d.what == what) >= 4


# ---- bad input: one TapeError line naming what is wrong -------------------------------------------------
@pytest.fixture
def values_tape(tmp_path):
    path = tmp_path / "values.tape"
    record(path, "values", steps=2)
    return path


def _edit(path, sql, *params):
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, params)
    conn.close()


@pytest.mark.parametrize("sql, params, message", [
    ("UPDATE parameters SET npy = ? WHERE name = 'fc1.bias'", (b"not zlib at all",), "parameter 'fc1.bias'"),
    ("UPDATE parameters SET npy = ? WHERE name = 'fc1.bias'", (zlib.compress(b"\x93NUMPY\x01\x00garbage"),),
     "parameter 'fc1.bias'"),
    ("UPDATE parameters SET npy = ? WHERE name = 'fc1.bias'",
     (codec.npy_bytes(np.zeros((2, 2), np.float32)),), "its value is float32 .2, 2., its summary says"),
    ("UPDATE parameters SET npy = ? WHERE name = 'fc1.bias'", (zlib.compress(b"\x00" * 10)[:-3],),
     "parameter 'fc1.bias'"),
    ("UPDATE parameters SET npy = 42 WHERE name = 'fc1.bias' AND ?", (1,), "not a blob"),
    ("UPDATE layouts SET shape = ? WHERE shape = '[5]'", ("[1000000000000,1000000000000]",),
     "does not hold its 5 elements"),
    ("UPDATE layouts SET shape = ? WHERE shape = '[5]'", ("[-5]",), "not a shape"),
    ("UPDATE parameters SET counts = ? WHERE name = 'fc1.bias'", (b"\x07",), "bad size"),
    ("UPDATE parameters SET after_step = 7 WHERE name = 'fc1.bias' AND ?", (1,), "after_step is 7"),
    ("UPDATE parameters SET tensor = 'x' WHERE name = 'fc1.bias' AND ?", (1,), "expected an integer"),
])
def test_a_damaged_snapshot_is_one_clear_error(values_tape, sql, params, message):
    _edit(values_tape, sql, *params)
    with engine.tape.open(values_tape) as tape, pytest.raises(TapeError, match=message) as err:
        tape.parameters(1)
    text = str(err.value)
    assert "damaged tape" in text and "\n" not in text


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle ran')",))


def test_a_pickled_snapshot_value_is_never_loaded(values_tape):
    buf = io.BytesIO()
    np.save(buf, np.array([_Boom()], dtype=object), allow_pickle=True)  # a pickle inside a .npy
    _edit(values_tape, "UPDATE parameters SET npy = ? WHERE name = 'fc2.bias'", zlib.compress(buf.getvalue()))
    with engine.tape.open(values_tape) as tape, pytest.raises(TapeError, match=r"parameter 'fc2\.bias'"):
        tape.parameter("fc2.bias", 1)


def test_a_name_that_is_not_text_is_one_clear_error(values_tape):
    _edit(values_tape, "UPDATE parameters SET name = x'6663' WHERE name = 'fc2.bias'")
    with engine.tape.open(values_tape) as tape, pytest.raises(TapeError, match="expected text"):
        tape.parameter_names()


# ---- on a GPU: summarised on the device, small values copied to the host ------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU is not None, reason=NO_GPU or "")
def test_snapshots_of_parameters_on_a_gpu(tmp_path):
    path = tmp_path / "gpu.tape"
    model = MLP().cuda()
    opt = engine.optim.Adam(model.parameters(), lr=0.01)
    x = engine.tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32), device="cuda")
    y = engine.tensor(np.array([0, 1, 2, 0]), device="cuda")
    seen = []
    dbg = Debugger("values", model=model, interactive=False, cache_bytes=0, values_limit=10)
    with dbg, engine.record(path, debugger=dbg, max_bytes=None):
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            seen.append({name: p.array.get() for name, p in model.named_parameters()})
    with engine.tape.open(path) as tape:
        for it in range(2):
            snaps = tape.parameters(it)
            assert sorted(snaps) == sorted(NAMES)
            for name, snap in snaps.items():
                assert snap.summary.device.startswith("cuda")
                assert_matches(snap, seen[it][name])
                if name.endswith("bias"):
                    np.testing.assert_array_equal(snap.value, seen[it][name])
                else:
                    assert snap.value is None
