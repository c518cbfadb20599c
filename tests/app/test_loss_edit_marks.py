"""An edit made while training runs is marked on both loss plots at the iteration it took effect, live and in the
replay of its recording: a loss curve that bends says why."""


from engine.debug.edits import Freeze, SetOptimizer
from tests.app.test_window import TIMEOUT, paused, script, training_loop
from tests.shots import shoot

TRAINING = """
    import engine
    import engine.nn as nn
    import engine.nn.functional as F


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(8, 16)
            self.fc2 = nn.Linear(16, 3)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))


    engine.manual_seed(0)
    model = Net()
    opt = engine.optim.SGD(model.parameters(), lr=0.5)
    x, y = engine.randn(64, 8), engine.randint(0, 3, (64,))
""" + training_loop(40)


def _to_iteration(qtbot, window, iteration: int) -> None:
    while window.session.iteration < iteration:
        window.command("run_to_next_iteration")
        qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)


def _edit(qtbot, window, edit, inverse) -> None:
    edits = len(window.session.debugger.edits)
    window.panels.request_edit(edit, inverse, "")
    window.command("step_into")  # the edit is applied at the next safe point
    qtbot.waitUntil(lambda: paused(window) and len(window.session.debugger.edits) > edits, timeout=TIMEOUT)


def _raise(window, plots) -> None:
    """Show the tab that holds `plots` (the Loss or the Training tab of one dock)."""
    widget = plots
    while widget is not None and not any(dock.widget() is widget for dock in window.docks.values()):
        widget = widget.parentWidget()
    for dock in window.docks.values():
        if dock.widget() is widget:
            dock.show()
            dock.raise_()


def _marks(plots) -> list[tuple[float, str]]:
    """(iteration of the line, label) of each edit drawn."""
    marks = plots.edits
    return [(line.value(), label.toPlainText()) for line, label in zip(marks.lines, marks.labels)
            if line.isVisible() and label.isVisible()]


def _overlapping(plots, others) -> bool:
    """Whether a label of an edit on `plots` overlaps another, or one of the plot's own labels `others`."""
    rects = [rect for _, rect in plots.edits.placed()]
    others = [o.sceneBoundingRect() for o in others if o.isVisible()]
    return any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:] + others)


def test_an_lr_edit_and_a_freeze_are_marked_on_the_loss_plots_live_and_in_the_replay(qtbot, window, tmp_path):
    # the loss bent at the edit with nothing on the plot saying why
    tape = tmp_path / "run.tape"
    window.run_script(script(tmp_path, "train.py", TRAINING), record=str(tape))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    _to_iteration(qtbot, window, 10)
    _edit(qtbot, window, SetOptimizer("lr", 0.05), SetOptimizer("lr", 0.5))
    _edit(qtbot, window, SetOptimizer("no_such_setting", 1.0), SetOptimizer("no_such_setting", 1.0))  # refused
    _to_iteration(qtbot, window, 11)
    _edit(qtbot, window, Freeze("Net.fc1"), Freeze("Net.fc1", frozen=False))
    window.command("resume")
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    expected = [(10, "lr 0.5 \u2192 0.05"), (11, "fc1 frozen")]  # the refused edit is not drawn
    for plots in (window.loss_plot, window.training_plots):
        _raise(window, plots)
        qtbot.waitUntil(lambda plots=plots: _marks(plots) == expected, timeout=TIMEOUT)
    tip = window.loss_plot.edits.lines[0].toolTip()
    assert "SGD lr = 0.05" in tip and "iteration 10" in tip
    # two edits one iteration apart: their labels do not run into each other, nor into the chance level's
    chance = [line.label for line in window.loss_plot.chances.lines]
    own = [window.loss_plot.nonfinite_label, *chance]
    qtbot.waitUntil(lambda: not _overlapping(window.loss_plot, own), timeout=TIMEOUT)
    shoot(window, "loss_edit_marks_live.png")
    # the recording replays with the same marks
    window.open_tape(str(tape))
    qtbot.waitUntil(lambda: window.session is not None and window.session.tape is not None, timeout=TIMEOUT)
    for plots in (window.training_plots, window.loss_plot):
        _raise(window, plots)
        qtbot.waitUntil(lambda plots=plots: _marks(plots) == expected, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not _overlapping(window.loss_plot, own), timeout=TIMEOUT)
    shoot(window, "loss_edit_marks_replay.png")

