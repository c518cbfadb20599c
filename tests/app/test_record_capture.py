"""The Record button's drop-down chooses what a recording keeps; the choice is remembered and named. A recording
stops at the default size cap and says so."""

from PySide6.QtWidgets import QToolButton

import engine.tape
from tests.app.test_stepping_qa import two_blocks
from tests.app.test_window import TIMEOUT, paused
from tests.engine.tape.test_default_cap import free_space  # noqa: F401  (the fixture)
from tests.shots import shoot


def test_the_record_button_records_at_the_capture_chosen_in_its_menu_and_remembers_it(qtbot, make_window):
    # a recording from the Record button was always a 'summary' tape: the button offered no choice
    window = make_window((1440, 900))
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
    again = make_window((1440, 900))  # the same settings: the choice holds
    assert again.record_capture == "values" and again.record_captures["values"].isChecked()


def test_the_app_records_under_the_default_cap_and_says_when_it_is_hit(qtbot, make_window, free_space):  # noqa: F811
    free_space(200_000)  # the default cap: 100,000 bytes, less than the demo's run
    window = make_window()
    window.open_demo(epochs=2, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.actions["record"].trigger()  # Debug > Record
    assert "(stops at 97.7 KiB)" in window.output.text()
    window.command("resume")  # F5
    qtbot.waitUntil(lambda: window.session.ended is not None and "Recording saved" in window.output.text(),
                    timeout=TIMEOUT)
    assert window.message_bar.text() == ("Recording stopped early: size cap of 97.7 KiB reached. "
                                         "The tape holds the run up to there.")
