"""Quitting or opening something else over a live run that no tape holds offers to save it as a tape, from what the
window kept of it: the whole run where it kept every record, else its latest records (the question says so)."""

import pytest
from PySide6.QtCore import Qt

import app.session
import app.unsaved
import engine.tape
from app.unsaved import DropQuestion
from tests.app.test_quit_question import CTRL, question
from tests.app.test_script_dialog import focus
from tests.app.test_window import TIMEOUT, press, script

TRAIN = """
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(16, 4), engine.randint(0, 3, (16,))
    for step in range(STEPS):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step} loss {loss.item():.4f}")
    with engine.no_grad():
        model[0].bias.fill_(float("nan"))
    model(x)
"""


@pytest.fixture
def window(qtbot, make_window, monkeypatch, tmp_path):
    window = make_window()
    focus(qtbot, window)
    chosen = str(tmp_path / "kept")  # what the person types in the save dialog (".tape" is added)
    monkeypatch.setattr(app.unsaved.QFileDialog, "getSaveFileName", lambda *args: (chosen, "Tapes (*.tape)"))
    return window


def ran(qtbot, window, tmp_path, steps: int):
    """A script trained live, unrecorded, to its end."""
    window.set_stop_on_alerts("none")
    window.run_script(script(tmp_path, "train.py", TRAIN.replace("STEPS", str(steps))), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    return window.session


def save(qtbot, shown: DropQuestion) -> None:
    qtbot.mouseClick(shown.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not shown.isVisible(), timeout=TIMEOUT)


def test_quit_offers_to_save_the_whole_run_and_the_tape_replays_it_as_it_ran(qtbot, window, tmp_path):
    session = ran(qtbot, window, tmp_path, 6)
    live = {"iterations": session.iteration, "steps": [(it, ev.seq) for it, ev in session.steps],
            "alerts": [(a.kind, a.key, a.iteration) for a in session.alerts], "losses": session.loss_curves()}
    press(qtbot, window, Qt.Key.Key_Q, CTRL)
    shown = question(qtbot, window)
    assert shown.save_button.text() == "Save as .tape\u2026" and shown.defaultButton() is not shown.save_button
    assert "saves the whole run" in shown.informativeText() and "only part" not in shown.informativeText()
    save(qtbot, shown)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT)  # saved, then quit
    tape = str(tmp_path / "kept.tape")
    with engine.tape.open(tape) as saved:
        assert saved.meta["status"] == "complete"
        assert [(it, ev.seq) for it, ev in saved.optimizer_steps()] == live["steps"]
        assert [(a.kind, a.key, a.iteration) for a in saved.alerts()] == live["alerts"] and live["alerts"]
        assert {label: dict(zip(*curve)) for label, curve in live["losses"].items()} == saved.loss_curves()
        assert "step 5 loss" in "".join(row.text for row in saved.output())
    assert window.recent_files()[0] == tape  # File > Open Recent has it


def test_a_long_run_saves_what_the_window_kept_and_the_question_says_so(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr(app.session, "KEPT", 60)  # the records a window keeps: the run makes more
    session = ran(qtbot, window, tmp_path, 8)
    kept, records, first = session.kept
    assert kept == 60 and records > 60 and first > 0
    steps = [(it, ev.seq) for it, ev in session.steps]
    window.actions["open_demo"].trigger()
    shown = question(qtbot, window)
    text = shown.informativeText()
    assert f"saves only part of the run: the window kept its last 60 of {records:,} events (from iteration " \
           f"{first} on)" in text
    save(qtbot, shown)
    qtbot.waitUntil(lambda: window.session is not session, timeout=TIMEOUT)  # saved, then the demo opened
    with engine.tape.open(str(tmp_path / "kept.tape")) as saved:
        assert [(it, ev.seq) for it, ev in saved.optimizer_steps()] == steps  # every step, for the plots
        with_ops = {i.iteration for i in saved.iterations() if i.ops}  # the graph: only the iterations kept
        assert session.iteration in with_ops and with_ops <= set(range(first, session.iteration + 1))


def test_a_running_run_is_stopped_then_saved_and_cancelling_the_dialog_keeps_it_running(qtbot, window, tmp_path,
                                                                                        monkeypatch):
    window.run_script(script(tmp_path, "long.py", TRAIN.replace("STEPS", "100_000")), run=True)
    qtbot.waitUntil(lambda: window.session.iteration >= 3, timeout=TIMEOUT)
    session = window.session
    monkeypatch.setattr(app.unsaved.QFileDialog, "getSaveFileName", lambda *args: ("", ""))  # the dialog cancelled
    press(qtbot, window, Qt.Key.Key_Q, CTRL)
    shown = question(qtbot, window)
    assert "Save as .tape\u2026 stops it first, then saves" in shown.informativeText()
    save(qtbot, shown)
    assert window.isVisible() and window.session is session and session.alive  # nothing saved, nothing stopped
    chosen = str(tmp_path / "stopped.tape")
    monkeypatch.setattr(app.unsaved.QFileDialog, "getSaveFileName", lambda *args: (chosen, "Tapes (*.tape)"))
    focus(qtbot, window)
    press(qtbot, window, Qt.Key.Key_Q, CTRL)
    save(qtbot, question(qtbot, window))
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT)
    assert session.join(5)
    with engine.tape.open(chosen) as saved:
        assert saved.meta["status"] == "stopped from the app" and len(saved.optimizer_steps()) >= 3
