"""Where and how large the window opens: the screen's room on a first start, where it was on the next."""

import pytest
from PySide6.QtCore import QRect, QSettings

from app.window import MainWindow, first_size, saved_place


def opened(qtbot, path) -> MainWindow:
    window = MainWindow(QSettings(str(path), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.mark.parametrize("place", [None, (2, 2, 700, 700), (120, 40, 650, 500)],
                         ids=["as-first-opened", "at-the-top", "moved"])
def test_the_window_comes_back_where_it_was(qtbot, tmp_path, place):
    # on its second start the window was 25 pixels lower (and 27 shorter): Qt made room for a title bar above a
    # window that touched the screen's top, where no window manager drew one
    settings = tmp_path / "settings.ini"
    window = opened(qtbot, settings)
    if place is not None:
        window.setGeometry(QRect(*place))
        qtbot.waitUntil(lambda: window.geometry() == QRect(*place))
    where = window.geometry()
    window.close()
    again = opened(qtbot, settings)
    assert again.geometry() == where
    again.close()
    assert opened(qtbot, settings).geometry() == where  # and again: nothing creeps


def test_a_first_start_takes_the_room_the_screen_has(qtbot, tmp_path):
    # it opened 1440 wide on a 1600-wide screen
    assert first_size(1600, 900) == (1600, 900)
    assert first_size(1280, 720) == (1280, 720)
    assert first_size(2560, 1440) == (2176, 1224)  # most of a large screen, not all of it
    window = opened(qtbot, tmp_path / "settings.ini")
    room, frame = window.screen().availableGeometry(), window.frameGeometry()
    assert room.contains(frame)
    assert abs(frame.center().x() - room.center().x()) <= 1 and abs(frame.center().y() - room.center().y()) <= 1
    assert frame.width() >= room.width() - 1 and frame.height() >= room.height() - 1  # the offscreen screen is small


def test_a_place_off_every_screen_or_maximized_is_left_to_qt(qtbot, tmp_path):
    window = opened(qtbot, tmp_path / "settings.ini")
    window.setGeometry(QRect(80, 100, 700, 400))
    blob = bytes(window.saveGeometry())
    assert saved_place(blob) == QRect(80, 100, 700, 400)
    off = bytearray(blob)
    off[50:66] = (5000).to_bytes(4, "big", signed=True) * 2 + (5500).to_bytes(4, "big", signed=True) * 2
    assert saved_place(bytes(off)) is None  # a screen since unplugged: Qt brings it onto one
    maximized = bytearray(blob)
    maximized[44] = 1
    assert saved_place(bytes(maximized)) is None
    assert saved_place(b"garbage") is None and saved_place(blob[:40]) is None
