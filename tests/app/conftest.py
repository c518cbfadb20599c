"""Fixtures the app tests share."""

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from app.window import MainWindow


@pytest.fixture
def sessions():
    """Sessions a test starts; each is stopped and joined afterwards."""
    made = []
    yield made
    for s in made:
        s.close()


@pytest.fixture
def make_window(qtbot, tmp_path):
    """Makes main windows shown offscreen, `size` (None: the window's own first size) on the test's one settings
    file, so a second window starts from what the first kept; each is closed after the test."""
    def make(size: tuple[int, int] | None = (1200, 800)) -> MainWindow:
        window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
        window.recordings_dir = str(tmp_path / "recordings")
        qtbot.addWidget(window)  # closing stops the engine thread and waits for it
        if size is not None:
            window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        # offscreen the window becomes active a turn of the event loop after it is exposed (a window manager would
        # activate it at once): until then no shortcut matches a key, and a Ctrl+Shift+B pressed at once was lost
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
        return window
    return make


@pytest.fixture
def window(make_window) -> MainWindow:
    """A main window of 1200x800, shown offscreen, closed after the test."""
    return make_window()
