"""The window as a keyboard-and-menu user meets it: scripts that fail in odd ways, menus, settings."""

import io
import os
import sys

import pytest
from PySide6.QtCore import Qt

from tests.app.test_window import TIMEOUT, paused, press, script, status


def run_to_end(qtbot, window, path: str) -> None:
    """Open `path` paused on entry, press F5 and wait for the run to end."""
    assert window.run_script(path)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)


def test_a_syntax_error_shows_the_line_that_does_not_parse(qtbot, window, tmp_path):
    path = script(tmp_path, "typo.py", """
        import engine
        x = engine.tensor([1.0, 2.0]
        print(x)
    """)
    assert window.run_script(path)  # found when the script is loaded (compiled, not run): no F5 needed
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    assert "SyntaxError" in window.message_bar.text()
    assert window.source_view.file == path
    assert "x = engine.tensor([1.0, 2.0]" in window.source_view.current_line_text()


@pytest.fixture
def console_stdin(monkeypatch):
    """The app's stdin is a console no one types into (a pipe kept open), as when started from a terminal."""
    read_end, write_end = os.pipe()
    stdin = io.TextIOWrapper(io.FileIO(read_end, "r"))
    monkeypatch.setattr(sys, "stdin", stdin)
    yield stdin
    os.close(write_end)  # a read still blocked (without the fix) gets its end of file


def test_input_fails_at_once_and_says_what_to_do(qtbot, window, tmp_path, console_stdin):
    path = script(tmp_path, "ask.py", """
        name = input("your name? ")
        print("hello", name)
    """)
    run_to_end(qtbot, window, path)
    assert status(window).startswith("Failed: EOFError")
    assert "sys.argv" in window.message_bar.text()
    assert "your name? " in window.output.text()
    assert sys.stdin is console_stdin  # given back once the run ended


def test_what_the_scripts_own_threads_print_shows_in_the_output(qtbot, window, tmp_path):
    path = script(tmp_path, "workers.py", """
        import threading

        def work(n):
            print(f"worker {n} done")
            inner = threading.Thread(target=print, args=(f"helper of {n} done",))
            inner.start()
            inner.join()

        threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    """)
    run_to_end(qtbot, window, path)
    text = window.output.text()
    for n in range(2):
        assert f"worker {n} done" in text and f"helper of {n} done" in text
    assert status(window) == "Finished"


def test_a_corrupt_settings_file_starts_with_the_default_layout(make_window, tmp_path):
    path = tmp_path / "settings.ini"
    path.write_text("[General]\nrecent=@Variant(\\0\\0\\0\\x7f\\0\\0\\0\\x1fbogus)\n"
                    "[window]\ngeometry=garbage\nstate=3\n")
    window = make_window(size=None)  # on that settings file
    assert all(dock.isVisible() for dock in window.docks.values())
    assert window.recent_files() == []
    assert status(window) == "Ready"


def test_choices_a_settings_file_holds_that_are_no_choice_start_at_the_defaults(make_window, tmp_path):
    (tmp_path / "settings.ini").write_text("[recordings]\ncapture=everything\n"  # e.g. a file edited by hand
                                           "[debug]\nstop_on_alerts=all, none\n")  # read back as a list
    window = make_window()
    assert window.record_capture == "summary" and window.record_captures["summary"].isChecked()
    assert window.stop_on_alerts == "all" and window.actions["stop_on_all"].isChecked()
    with pytest.raises(ValueError, match="a recording's capture must be one of structure, summary, values, got 'all'"):
        window.set_record_capture("all")
    with pytest.raises(ValueError, match="alert stops must be one of all, nonfinite, none, got 'summary'"):
        window.set_stop_on_alerts("summary")
    assert window.record_capture == "summary" and window.stop_on_alerts == "all"


def test_each_menu_item_underlines_a_letter_of_its_own(qtbot, window):
    window.open_demo(epochs=1, n=64)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F10, Qt.KeyboardModifier.ControlModifier)  # "Run to Optimizer Step" now
    qtbot.waitUntil(lambda: paused(window) and window.session.phase == "backward", timeout=TIMEOUT)
    for menu_action in window.menuBar().actions():
        texts = [a.text() for a in menu_action.menu().actions() if a.text()]
        letters = [t[t.index("&") + 1].lower() for t in texts if "&" in t]
        assert len(letters) == len(set(letters)), (menu_action.text(), texts)


def test_run_to_next_phase_keeps_its_name_and_tells_where_it_goes(qtbot, window):
    # the Debug menu said "Run to Next Phase" and Help > Keyboard Shortcuts "Run to Optimizer Step" for Ctrl+F10:
    # the name is one, in the menu, on the button and in the help; where it goes now is its tip
    window.open_demo(epochs=1, n=64)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    action = window.actions["run_to_phase"]
    assert action.toolTip() == "Run to Next Phase (Ctrl+F10)\nNow: to the backward pass"
    press(qtbot, window, Qt.Key.Key_F10, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: paused(window) and window.session.phase == "backward", timeout=TIMEOUT)
    assert action.text().replace("&", "") == "Run to Next Phase"
    assert action.toolTip() == "Run to Next Phase (Ctrl+F10)\nNow: to the optimizer step"
    assert action.statusTip() == "Run to the next phase: now to the optimizer step"


def test_f9_is_offered_only_while_a_live_run_can_stop(qtbot, window, tmp_path):
    assert not window.actions["toggle_breakpoint"].isEnabled()  # nothing open
    path = script(tmp_path, "done.py", """
        import engine
        (engine.tensor([1.0, 2.0], requires_grad=True) * 2).sum().backward()
    """)
    assert window.run_script(path)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert window.actions["toggle_breakpoint"].isEnabled()
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    assert not window.actions["toggle_breakpoint"].isEnabled()

