"""The Record button's drop-down chooses what a recording keeps; the choice is remembered and named."""

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QToolButton

import engine.tape
from app.window import MainWindow
from tests.app.test_stepping_qa import two_blocks
from tests.app.test_window import TIMEOUT, paused
from tests.shots import shoot


def _window(qtbot, tmp_path) -> MainWindow:
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    window.recordings_dir = str(tmp_path / "recordings")
    qtbot.addWidget(window)
    window.resize(1440, 900)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_the_record_button_records_at_the_capture_chosen_in_its_menu_and_remembers_it(qtbot, tmp_path):
    # a recording from the Record button was always a 'summary' tape: the button offered no choice
    window = _window(qtbot, tmp_path)
    button = window.toolbar.widgetForAction(window.actions["record"])
    assert button.popupMode() == QToolButton.ToolButtonPopupMode.MenuButtonPopup
    texts = [action.text() for action in button.menu().actions()]
    assert [t.split(":")[0] for t in texts] == ["Structure", "Summary", "Values"]
    assert "smallest tape" in texts[0] and "largest tape" in texts[2]
    assert window.record_captures["summary"].isChecked()  # the default
    window.record_captures["values"].trigger()
    window.run_function(two_blocks, "two blocks")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.actions["record"].setChecked(True)
    path = window.session.recording
    assert "Capture: values, plus the values of small tensors" in window.output.text()
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    shoot(window, "record_capture.png")
    window.actions["record"].setChecked(False)
    with engine.tape.open(path) as tape:
        assert tape.capture == "values"
    window.close()
    again = _window(qtbot, tmp_path)  # the same settings: the choice holds
    assert again.record_capture == "values" and again.record_captures["values"].isChecked()
