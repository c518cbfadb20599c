"""File > Export Tape… as Graphviz DOT shows how far it is and can be cancelled, like the other formats."""

import os

from PySide6.QtCore import Qt

from tests.app.test_export_and_record_summary import _exported, slow_export  # noqa: F401  (the fixture)
from tests.app.test_window import TIMEOUT
from tests.engine.tape.test_export_dot_progress import long_tape  # noqa: F401  (the fixture)
from tests.shots import shoot


# long_tape: a training step of 3,000 ops, so drawing it reads 9,000 events and writes 3,000 ops
def test_a_dot_export_shows_progress_and_cancel_writes_nothing(qtbot, make_window, tmp_path,
                                                              long_tape, slow_export):  # noqa: F811
    window = make_window()
    window.resize(1280, 720)
    assert window.open_tape(str(long_tape))
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    target = tmp_path / "long.dot"
    target.write_text("what was there before")
    assert window.exporter.start(str(target), "dot")
    progress = window.exporter.progress
    assert progress.isVisible() and "Exporting long.tape as Graphviz DOT" in progress.label.text()
    qtbot.waitUntil(lambda: progress.percent() > 0, timeout=TIMEOUT)  # a bar that moves, not a busy one
    assert 0 < progress.percent() < 100 and window.exporter.busy
    shoot(window, "export-dot-progress.png")
    qtbot.mouseClick(progress.cancel_button, Qt.MouseButton.LeftButton)
    slow_export.set()
    qtbot.waitUntil(lambda: not window.exporter.busy, timeout=TIMEOUT)
    assert target.read_text() == "what was there before"
    assert sorted(os.listdir(tmp_path)) == ["long.dot", "settings.ini"]  # no part file left
    assert window.status_panel.note.text() == "Export cancelled: nothing was written"
    # not cancelled, the same export completes with what the command line writes
    assert window.exporter.start(str(target), "dot")
    qtbot.waitUntil(lambda: not window.exporter.busy, timeout=TIMEOUT)
    assert target.read_text() == _exported(str(long_tape), "dot")
