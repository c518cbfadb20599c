"""What a live run shows stays complete and correct while the GUI batches its work (see benchmarks/gui_live.py)."""

import numpy as np
import pytest

import engine
import engine.debug
import engine.nn as nn
from app.graph_model import ACTIVATION, GRAD_NORM, GraphModel
from engine.debug import BackwardRecord, OpRecord
from tests.app.graphs import sgd_steps

TIMEOUT = 15_000  # ms


def train(steps: int = 3) -> None:
    engine.manual_seed(0)
    sgd_steps(nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2)), engine.randn(32, 8), steps)


def test_colour_by_metrics_equal_the_tensors_own_statistics():
    outputs, grads = {}, {}
    records = []

    def keep(rec) -> None:
        records.append(rec)
        if rec.__class__ is OpRecord and rec.summary is not None:
            outputs[rec.event.seq] = rec
        elif rec.__class__ is BackwardRecord and rec.grad_output is not None:
            grads[rec.event.seq] = rec

    with engine.debug.Debugger("values", on_record=keep) as dbg:
        train(1)
        cache = {seq: dbg.fetch(rec.event.output) for seq, rec in outputs.items()}
    model = GraphModel()
    for rec in records:
        model.apply(rec)
    view = model.view()
    activation, grad_norm = model.metric_array(view, ACTIVATION), model.metric_array(view, GRAD_NORM)
    checked = 0
    for seq, rec in outputs.items():
        i = view.node_of.get(rec.event.key)
        if i is None or cache[seq] is None:
            continue
        assert activation[i] == pytest.approx(float(np.abs(cache[seq]).max()), rel=1e-6)
        checked += 1
    assert checked >= 5
    tanh = view.keys.index(next(k for k in view.keys if "tanh" in k))
    assert grad_norm[tanh] > 0 and np.isfinite(grad_norm[tanh])


@pytest.fixture
def window(make_window):
    return make_window(size=None)  # at its own first size


def test_the_timeline_holds_every_event_at_a_stop_after_running_freely(qtbot, window):
    window.run_function(lambda: train(6), "mlp")
    qtbot.waitUntil(lambda: window.session is not None and window.session.status == "paused", timeout=TIMEOUT)
    session = window.session
    session.debugger.add_breakpoint(engine.debug.Breakpoint.iteration(4))
    window.command("resume")
    qtbot.waitUntil(lambda: session.status == "paused" and session.iteration == 4, timeout=TIMEOUT)
    # what a person sees: one mark per op, backward node and optimizer step, the cursor on the newest
    assert window.timeline.view.count == len(session.by_seq) + len(session.steps)
    assert window.timeline.cursor_seq() == max(session.by_seq)
