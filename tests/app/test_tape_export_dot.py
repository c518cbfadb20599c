"""File > Export Tape… as Graphviz DOT shows how far it is and can be cancelled, like the other formats."""

import io
import os
import threading

import pytest
from PySide6.QtCore import Qt

import app.tape_export
import engine.tape
from engine.tape.export import export
from tests.app.test_window import TIMEOUT, make_window
from tests.engine.tape.test_export_dot_progress import record_long_iteration
from tests.shots import shoot


@pytest.fixture(scope="module")
def long_tape(tmp_path_factory):
    """A training step of 3,000 ops: drawing it reads 9,000 events and writes 3,000 ops."""
    path = tmp_path_factory.mktemp("dot") / "long.tape"
    record_long_iteration(path)
    return str(path)


@pytest.fixture
def held_export(monkeypatch):
    """The export worker waits at its second progress report until the event returned is set."""
    go_on = threading.Event()
    progress = app.tape_export.ExportJob._progress

    def held(job, n):
        if job._done:
            assert go_on.wait(TIMEOUT / 1000)
        progress(job, n)

    monkeypatch.setattr(app.tape_export.ExportJob, "_progress", held)
    yield go_on
    go_on.set()


def test_a_dot_export_shows_progress_and_cancel_writes_nothing(qtbot, tmp_path, long_tape, held_export):
    window = make_window(qtbot, tmp_path)
    window.resize(1280, 720)
    assert window.open_tape(long_tape)
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
    held_export.set()
    qtbot.waitUntil(lambda: not window.exporter.busy, timeout=TIMEOUT)
    assert target.read_text() == "what was there before"
    assert sorted(os.listdir(tmp_path)) == ["long.dot", "settings.ini"]  # no part file left
    assert window.status_panel.note.text() == "Export cancelled: nothing was written"
    # not cancelled, the same export completes with what the command line writes
    assert window.exporter.start(str(target), "dot")
    qtbot.waitUntil(lambda: not window.exporter.busy, timeout=TIMEOUT)
    expected = io.StringIO()
    with engine.tape.open(long_tape) as tape:
        export(tape, "dot", expected)
    assert target.read_text() == expected.getvalue()
