"""The inspector shows a node as it was at the event the view is at: scrubbed back to fc2's backward, fc1 has no
gradient yet (its backward computes it two events later), and each value shown names the event it is from."""

import textwrap

import pytest

from app.cli import main
from engine.debug import BackwardRecord, OpRecord
from widgets.tensor_inspector import GRAD, VALUE

TIMEOUT = 60_000  # ms

SCRIPT = """
import engine
import engine.nn as nn
import engine.nn.functional as F

engine.manual_seed(0)
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 5)
        self.fc2 = nn.Linear(5, 3)
    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))
m = M()
opt = engine.optim.SGD(m.parameters(), lr=0.1)
x, y = engine.randn(2, 4), engine.tensor([2, 0])
opt.zero_grad()
loss = F.cross_entropy(m(x), y)
loss.backward()
"""
FC1, FC1_WEIGHT, FC2 = "M.fc1/linear:0", "M.fc1/linear:0/in1", "M.fc2/linear:0"


def inspect(qtbot, window, key):
    window.canvas.select(key)
    window.panels.worker.wait(10_000)  # the values the selection asked for have landed
    qtbot.wait(50)  # their queued result, delivered to the GUI thread
    return window.inspector


def backward_of(records, key):
    return next(r for r in records if r.__class__ is BackwardRecord and r.event.key == key)


@pytest.fixture
def finished(qtbot, window, tmp_path):
    path = tmp_path / "mlp.py"
    path.write_text(textwrap.dedent(SCRIPT))
    assert window.run_script(str(path), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.canvas.view is not None and FC1_WEIGHT in window.canvas.view.node_of)
    return window.session


def test_a_live_run_scrubbed_back_shows_no_gradient_its_backward_had_not_computed_yet(qtbot, window, finished):
    # at fc2's backward, fc1/linear showed the gradient of event 14 under a plain "gradient" heading
    records = list(finished.by_seq.values())
    fc2_back, fc1_back = backward_of(records, FC2), backward_of(records, FC1)
    assert fc2_back.seq < fc1_back.seq
    number = window.timeline.event_number
    assert window.timeline.view.move_to_seq(fc2_back.seq + 1)  # a click on the timeline, then Step Back
    window.step_back()
    assert window.timeline.cursor_seq() == fc2_back.seq
    inspector = inspect(qtbot, window, FC1)
    assert inspector.columns() == [VALUE]
    fc1_op = next(r for r in records if r.__class__ is OpRecord and r.event.key == FC1)
    meta = inspector.meta.text()
    assert f"as recorded at event {number(fc2_back.seq)}" in meta and f"value: event {number(fc1_op.seq)}" in meta
    assert f"no gradient yet (computed at event {number(fc1_back.seq)})" in meta
    assert set(inspector.arrays()) <= {VALUE}
    # its weight: the gradient the same backward gives it had not reached it either
    inspector = inspect(qtbot, window, FC1_WEIGHT)
    assert GRAD not in inspector.columns()
    assert (f"gradient: none yet at event {number(fc2_back.seq)} (computed at event {number(fc1_back.seq)})"
            in inspector.meta.text())
    assert "no optimizer step since" in inspector.meta.text()
    assert set(inspector.arrays()) <= {VALUE}
    # fc2 itself had its gradient then: shown, with the event it came from
    inspector = inspect(qtbot, window, FC2)
    assert inspector.columns() == [VALUE, GRAD] and f"gradient: event {number(fc2_back.seq)}" in inspector.meta.text()
    # back at the end: the gradients as they are now, each with its event
    assert window.timeline.view.move_to_seq(int(window.timeline.view.seqs()[-1]))
    inspector = inspect(qtbot, window, FC1)
    assert inspector.columns() == [VALUE, GRAD]
    assert f"value: event {number(fc1_op.seq)} \u00b7 gradient: event {number(fc1_back.seq)}" in inspector.meta.text()
    inspector = inspect(qtbot, window, FC1_WEIGHT)
    assert inspector.columns() == [VALUE, GRAD]
    assert f"at event {number(fc1_back.seq)}" in inspector.meta.text()


def test_the_timeline_at_an_ops_forward_shows_its_output_without_the_gradient_to_come(qtbot, window, finished):
    records = list(finished.by_seq.values())
    fc1_op = next(r for r in records if r.__class__ is OpRecord and r.event.key == FC1)
    assert window.timeline.view.move_to_seq(fc1_op.seq)
    qtbot.waitUntil(lambda: window.canvas.selected_key == FC1)
    inspector = window.inspector
    assert inspector.columns() == [VALUE]
    number = window.timeline.event_number(backward_of(records, FC1).seq)
    assert f"no gradient yet (computed at event {number})" in inspector.meta.text()
    inspector = inspect(qtbot, window, FC2)  # at fc1's forward, fc2 had not run: nothing of it is shown
    assert f"not run yet at event {window.timeline.event_number(fc1_op.seq)}" in inspector.meta.text()
    assert inspector.stat_text("max") == "" and set(inspector.arrays()) == set()


def test_a_replay_before_a_backward_says_where_the_gradient_comes(qtbot, window, tmp_path):
    script, tape = tmp_path / "mlp.py", tmp_path / "mlp.tape"
    script.write_text(textwrap.dedent(SCRIPT))
    assert main(["record", str(script), "-o", str(tape)]) == 0
    assert window.open_tape(str(tape))
    session = window.session
    qtbot.waitUntil(lambda: session.status == "finished", timeout=TIMEOUT)
    records = list(session.tape.records())
    fc2_back, fc1_back = backward_of(records, FC2), backward_of(records, FC1)
    window.timeline.view.cursorMoved.emit(fc2_back.seq)
    qtbot.waitUntil(lambda: session.status == "paused" and session.cursor == fc2_back.seq, timeout=TIMEOUT)
    number = window.timeline.event_number(fc1_back.seq)
    for key in (FC1, FC1_WEIGHT):
        inspector = inspect(qtbot, window, key)
        assert GRAD not in inspector.columns()
        assert f"no gradient yet in iteration 0 (computed at event {number})" in inspector.meta.text()


def test_an_op_run_without_gradients_says_why_it_has_none(qtbot, window, tmp_path):
    # a weight copied in under no_grad showed as an "expand" node with a value column alone, nothing said
    path = tmp_path / "no_grad.py"
    path.write_text(textwrap.dedent("""
        import engine
        x = engine.randn(3, 4, requires_grad=True)
        with engine.no_grad():
            scaled = x * 2
        (x * scaled).sum().backward()
    """))
    assert window.run_script(str(path), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.canvas.view is not None and "mul:0" in window.canvas.view.node_of)
    inspector = inspect(qtbot, window, "mul:0")
    assert inspector.columns() == [VALUE] and "no gradient: it ran with gradients off" in inspector.meta.text()
    inspector = inspect(qtbot, window, "mul:1")
    assert inspector.columns() == [VALUE, GRAD] and "gradients off" not in inspector.meta.text()
