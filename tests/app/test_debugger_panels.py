"""The debugging panels of the main window: inspector, runtime edits, timeline scrubbing, alerts, names."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

import engine
import engine.nn as nn
import engine.tape
from engine.events import EditEvent
from widgets.gradient_flow import GRAD

TIMEOUT = 15_000  # ms


@pytest.fixture
def window(make_window):
    return make_window(size=None)  # at its own first size


def paused(window) -> bool:
    return window.session is not None and window.session.status == "paused"


class DropNet(nn.Module):
    """A tiny model with Dropout, so an edit of p shows in the very next forward."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.drop = nn.Dropout(0.0)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc2(self.drop(self.fc1(x).relu()))


def train(steps: int = 4):
    engine.manual_seed(0)
    model = DropNet()
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x = engine.randn(32, 8)
    for _ in range(steps):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()


def step_to_op(qtbot, window, op: str, steps: int = 200) -> str:
    """Step into until the current node is an `op` node; returns its key."""
    for _ in range(steps):
        key = window.session.model.current
        if key and key.rsplit("/", 1)[-1].startswith(op + ":"):
            return key
        window.command("step_into")
        qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    raise AssertionError(f"never reached {op}")


def test_selecting_a_node_shows_the_engines_statistics(qtbot, window):
    window.run_function(train, "dropnet")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    key = step_to_op(qtbot, window, "relu")
    window.canvas.select(key)
    summary = window.session.summaries[key]
    for stat, value in (("mean", summary.mean), ("max", summary.max), ("min", summary.min)):
        assert float(window.inspector.stat_text(stat)) == pytest.approx(value, rel=1e-3, abs=1e-6)
    # the full values come from the debugger's cache on a worker thread and match the summary
    qtbot.waitUntil(lambda: "value" in window.inspector.arrays(), timeout=TIMEOUT)
    values = window.inspector.arrays()["value"]
    assert values.shape == (32, 16) and float(values.mean()) == pytest.approx(summary.mean, rel=1e-5)


def gradient_header(window) -> str:
    stats = window.inspector.stats
    return next(stats.horizontalHeaderItem(c).text() for c in range(stats.columnCount())
                if stats.horizontalHeaderItem(c).text().startswith("gradient"))


def test_a_gradient_from_the_iteration_before_says_so(qtbot, window):
    window.run_function(train, "dropnet")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")  # iteration 1: its forward, with iteration 0's gradients
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    key = step_to_op(qtbot, window, "relu")
    window.canvas.select(key)
    assert window.session.phase == "forward"
    assert gradient_header(window) == "gradient (it. 0)"
    window.command("run_to_phase")  # into iteration 1's backward: relu's gradient is this iteration's
    qtbot.waitUntil(lambda: paused(window) and window.session.phase == "backward", timeout=TIMEOUT)
    for _ in range(20):
        if window.session.made_in[key][1] == 1:
            break
        window.command("step_into")
        qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.canvas.select(key)
    assert gradient_header(window) == "gradient"


def has_module(editor, path: str) -> bool:
    try:
        editor.row(path)
    except (KeyError, AttributeError):
        return False
    return True


def test_an_edit_of_dropout_applies_in_the_next_forward_and_is_on_the_tape(qtbot, window, tmp_path):
    tape = str(tmp_path / "run.tape")
    window.run_function(train, "dropnet")
    window.session.start_recording(tape)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("step_into")  # the first op: the model is found on its first call
    qtbot.waitUntil(lambda: has_module(window.module_editor, "DropNet.drop"), timeout=TIMEOUT)
    editor = window.module_editor
    editor.select("DropNet.drop")
    field = editor.editor("p")
    # out of range: refused inline, nothing is sent, the model keeps p = 0
    field.setText("1.5")
    field.editingFinished.emit()
    assert editor.error_text("p")
    assert window.session.edits == [] and not window.actions["undo"].isEnabled()
    field.setText("0.5")
    field.editingFinished.emit()
    assert editor.error_text("p") == ""
    window.command("resume")
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    edit = window.session.edits[0]
    assert edit.applied and edit.target == "DropNet.drop" and ("value", 0.5) in edit.args
    assert edit.seq in np.asarray(window.timeline.view.markers("edit")).ravel().tolist()
    assert window.actions["undo"].isEnabled()
    # every forward after the edit: dropout zeroes about half of what relu let through
    zeros = {}
    for rec in window.session.by_seq.values():
        if getattr(rec, "summary", None) is not None and rec.event.op in ("relu", "dropout"):
            zeros[(rec.iteration, rec.event.op)] = (rec.seq, rec.summary.zero_count / rec.summary.numel)
    dropouts = [(it, seq, z) for (it, op), (seq, z) in zeros.items() if op == "dropout"]
    assert dropouts and all(seq > edit.seq for _, seq, _ in dropouts)
    for it, _seq, z in dropouts:
        relu = zeros[(it, "relu")][1]
        assert z > relu + 0.25 * (1 - relu)
    with engine.tape.open(tape) as t:
        recorded = [e for e in t.events() if isinstance(e, EditEvent)]
    assert [(e.seq, e.applied) for e in recorded] == [(edit.seq, True)]


def test_scrubbing_a_replay_shows_that_iterations_values(qtbot, window, tmp_path):
    tape = str(tmp_path / "run.tape")
    with engine.record(tape, capture="summary"):
        train(3)
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    with engine.tape.open(tape) as t:
        relu = [r for r in t.records() if getattr(r.event, "op", "") == "relu" and hasattr(r, "summary")]
    assert len(relu) == 3
    for k in (2, 0, 1):  # both ways
        window.timeline.cursorMoved.emit(relu[k].seq)
        seq = relu[k].seq
        qtbot.waitUntil(lambda s=seq: paused(window) and window.session.cursor == s, timeout=TIMEOUT)
        key = relu[k].event.key
        window.canvas.select(key)
        assert window.session.iteration == relu[k].iteration
        assert float(window.inspector.stat_text("mean")) == pytest.approx(relu[k].summary.mean, rel=1e-3)
    # arrow keys step one event on the timeline, and the replay follows
    window.timeline.view.setFocus()
    before = window.session.cursor
    qtbot.keyClick(window.timeline.view, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: paused(window) and window.session.cursor > before, timeout=TIMEOUT)
    assert window.timeline.cursor_seq() == window.session.cursor


def nan_script():
    engine.manual_seed(0)
    x = engine.tensor([[1.0, 0.0], [2.0, 3.0]], requires_grad=True)
    y = x.log()  # log(0) = -inf: the origin
    (y * 0).sum().backward()  # 0 * -inf = NaN further on


def test_a_nan_alert_selects_its_origin_and_source_line(qtbot, window):
    window.run_function(nan_script, "nan", __file__)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("resume")
    qtbot.waitUntil(lambda: window.alerts_panel.topLevelItemCount() > 0, timeout=TIMEOUT)
    alert = window.session.alerts[0]
    assert alert.op == "log"
    window.canvas.select("")
    item = window.alerts_panel.topLevelItem(0)
    window.alerts_panel.itemClicked.emit(item, 0)
    assert window.graph.selected == alert.key
    assert window.timeline.cursor_seq() == alert.forward_seq or window.timeline.view.count == 0
    assert "x.log()" in window.source_view.current_line_text()


def test_parameter_names_label_the_graph_live_and_in_replay(qtbot, window, tmp_path):
    tape = str(tmp_path / "run.tape")
    window.run_function(train, "dropnet")
    window.session.start_recording(tape)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("resume")
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    expected = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    qtbot.waitUntil(lambda: expected <= set(window.canvas.view.label), timeout=TIMEOUT)
    assert "param" not in set(window.canvas.view.label)
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    qtbot.waitUntil(lambda: expected <= set(window.canvas.view.label), timeout=TIMEOUT)
    assert np.all([lbl != "param" for lbl in window.canvas.view.label])


def test_gradient_flow_names_parameters_as_the_model_does(qtbot, window):
    window.run_function(train, "dropnet")  # its optimizer is given plain parameters
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("resume")
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    names = [name for name, _ in DropNet().named_parameters()]
    labels, _ = window.gradient_flow.bars()
    assert labels == names  # not "group0.0", "group0.1", ...
    window.gradient_flow.set_metric(GRAD)  # the gradients the last step used
    labels, values = window.gradient_flow.bars()
    assert labels == names and all(v > 0 for v in values)


def test_the_nan_stop_message_goes_once_the_run_steps_on(qtbot, window):
    # it stayed up, saying the run stood at the op that made the NaN, while the status named the next op
    window.run_function(nan_script, "nan", __file__)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("resume")  # stops at log: a NaN/Inf stop
    qtbot.waitUntil(lambda: paused(window) and window.session.stop_alert is not None, timeout=TIMEOUT)
    bar = window.message_bar
    assert bar.isVisible() and bar.text().startswith("Stopped where NaN/Inf first appeared")
    window.command("step_into")
    qtbot.waitUntil(lambda: paused(window) and window.session.stop_alert is None, timeout=TIMEOUT)
    assert not bar.isVisible()
