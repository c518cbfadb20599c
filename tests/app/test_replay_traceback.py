"""The replay of `tapescope record`'s tape of a script that raised shows the script's traceback as the live run did:
its own frames, not the engine's; the tape keeps the whole of it, which Output's context menu copies."""

from PySide6.QtGui import QGuiApplication

from app.cli import main
from tests.app.test_window import TIMEOUT, script

FAILS = """
    import engine, engine.nn as nn

    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(6, 2))


    def train():
        print("training")
        return model(engine.randn(16, 4))


    train()
"""


def traceback_of(text: str) -> str:
    """The traceback in Output's text, from its header to the error's line."""
    start = text.index("Traceback (most recent call last):")
    return text[start:text.index("ShapeError", start)]


def test_a_replay_shows_the_scripts_own_frames_as_the_live_run_did(qtbot, make_window, tmp_path):
    path = script(tmp_path, "fails.py", FAILS)
    live = make_window()
    live.run_script(path, run=True)
    qtbot.waitUntil(lambda: live.session.ended is not None, timeout=TIMEOUT)
    shown_live = traceback_of(live.output.text())
    assert shown_live.count('  File "') == 2 and "engine/nn/module.py" not in shown_live  # train(), model(...)
    tape = str(tmp_path / "fails.tape")
    assert main(["record", path, "-o", tape]) == 1
    window = make_window()
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    text = window.output.text()
    assert "training" in text
    assert traceback_of(text) == shown_live  # not engine/nn/module.py, engine/ops/nn.py, ... beneath them
    assert "frames of the engine and Python left out" in text
    menu = {a.text(): a for a in window.output.context_menu().actions() if a.text()}
    menu["Copy Whole Traceback (with the engine's frames)"].trigger()
    whole = QGuiApplication.clipboard().text()
    assert whole.startswith("Traceback (most recent call last):") and "/engine/ops/nn.py" in whole
    assert window.output.whole_traceback == whole
