"""The keyboard alone: between the panels (Ctrl+Tab, Alt+digit), along the timeline (Home, End, Ctrl+G), and a
help table that names every action and key as the menus do."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDockWidget

from app.actions import DEBUG, EDIT, FILE, GO_TO_PANEL, HELP, VIEW
from app.cli import main
from app.help import action_name
from tests.app.test_script_dialog import focus
from tests.app.test_window import TIMEOUT, paused, script, shown_ops
from widgets.timeline_goto import GoToDialog

CTRL, SHIFT, ALT = (Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier,
                    Qt.KeyboardModifier.AltModifier)
RUN = """\
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(16, 4), engine.randint(0, 3, (16,))
    for step in range(6):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


@pytest.fixture(scope="module")
def tape(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    path = str(folder / "run.tape")
    assert main(["record", script(folder, "run.py", RUN), "-o", path]) == 0
    return path


@pytest.fixture
def window(qtbot, make_window):
    window = make_window()
    focus(qtbot, window)
    return window


def key(qtbot, k, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Press `k` where the keyboard focus is, as a person does."""
    qtbot.keyClick(QApplication.focusWidget(), k, modifier)


def replayed(qtbot, window, tape):
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    return window.session


# ---- between the panels ---------------------------------------------------------------------------------------------
def test_ctrl_tab_goes_round_every_panel_in_view_and_ctrl_shift_tab_back(qtbot, window):
    # Tab in the graph goes round its nodes, and Ctrl+Tab did nothing: the Alerts and Inspector docks were out of reach
    window.open_demo(epochs=1, n=64)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    focus_ = window.panel_focus
    key(qtbot, Qt.Key.Key_1, ALT)
    assert focus_.current() == "graph"
    visited = []
    for _ in range(len(focus_.panels())):
        key(qtbot, Qt.Key.Key_Tab, CTRL)
        visited.append(focus_.current())
    in_view = [name for name, _ in focus_.panels()]
    assert visited[-1] == "graph" and sorted(visited) == sorted(in_view)  # each once, then round again
    assert {"modules", "inspector", "alerts", "source", "output", "loss", "timeline"} <= set(visited)
    assert "breakpoints" not in visited  # behind the Alerts tab: not in view
    assert QApplication.focusWidget() is not None and window.isAncestorOf(QApplication.focusWidget())
    key(qtbot, Qt.Key.Key_Backtab, CTRL | SHIFT)
    assert focus_.current() == visited[-2]
    # where the focus went, framed for a moment and said
    assert focus_.flash.isVisible() and focus_.flash.parentWidget() is window.findChild(QDockWidget, visited[-2])
    assert "Ctrl+Tab" in window.status_panel.note.text()


def test_alt_digit_brings_a_panel_to_the_front_and_focuses_it(qtbot, window):
    window.open_demo(epochs=1, n=64)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    key(qtbot, Qt.Key.Key_5, ALT)  # Breakpoints, tabbed behind Alerts
    breakpoints = window.docks["breakpoints"]
    qtbot.waitUntil(lambda: not breakpoints.visibleRegion().isEmpty(), timeout=TIMEOUT)
    assert window.panel_focus.current() == "breakpoints"
    key(qtbot, Qt.Key.Key_4, ALT)
    qtbot.waitUntil(lambda: not window.docks["alerts"].visibleRegion().isEmpty(), timeout=TIMEOUT)
    assert window.panel_focus.current() == "alerts"
    key(qtbot, Qt.Key.Key_3, ALT)
    assert window.panel_focus.current() == "inspector"
    # the View menu lists them with their keys, as the help does
    [menu] = [a.menu() for a in window.menuBar().actions() if a.text() == "&View"]
    [go_to] = [a.menu() for a in menu.actions() if a.menu() is not None and a.text() == "&Go to Panel"]
    assert [a.shortcut().toString() for a in go_to.actions()][:9] == [f"Alt+{n}" for n in range(1, 10)]
    assert len(go_to.actions()) == len(window.docks) + 1  # every dock, and the graph


def test_a_closed_panel_opens_again_when_it_is_gone_to(qtbot, window):
    window.docks["alerts"].close()
    key(qtbot, Qt.Key.Key_4, ALT)
    qtbot.waitUntil(lambda: window.docks["alerts"].isVisible(), timeout=TIMEOUT)
    assert window.panel_focus.current() == "alerts"


# ---- along the timeline ---------------------------------------------------------------------------------------------
def test_home_and_end_in_the_graph_go_to_a_replays_first_and_last_event(qtbot, window, tape):
    session = replayed(qtbot, window, tape)
    seqs = window.timeline.view.seqs()
    window.panel_focus.go_to("graph")
    key(qtbot, Qt.Key.Key_Home)
    qtbot.waitUntil(lambda: session.cursor == seqs[0] and session.status == "paused", timeout=TIMEOUT)
    assert window.timeline.cursor_seq() == seqs[0] and shown_ops(window)  # the graph as it was there
    key(qtbot, Qt.Key.Key_End)
    qtbot.waitUntil(lambda: session.cursor == seqs[-1] and session.status != "running", timeout=TIMEOUT)
    # in a text, Home stays the text's own
    window.panel_focus.go_to("output")
    key(qtbot, Qt.Key.Key_Home)
    qtbot.wait(50)
    assert session.cursor == seqs[-1]


def test_home_goes_back_through_a_paused_runs_history_and_end_to_where_it_stands(qtbot, window):
    window.open_demo(epochs=3, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert not window.actions["go_to_first"].isEnabled()  # nothing ran yet
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.actions["go_to_first"].isEnabled(), timeout=TIMEOUT)
    timeline = window.timeline
    head = timeline.cursor_seq()
    window.panel_focus.go_to("graph")
    key(qtbot, Qt.Key.Key_Home)
    assert timeline.cursor_seq() == timeline.view.seqs()[0] and not timeline.following()
    assert window.inspector.title.text().endswith("SpiralNet.fc1/linear:0")  # the first op, as recorded
    key(qtbot, Qt.Key.Key_End)
    assert timeline.cursor_seq() == head and timeline.following()


def test_ctrl_g_goes_to_an_iteration_or_an_event_by_its_number(qtbot, window, tape):
    session = replayed(qtbot, window, tape)
    timeline = window.timeline
    window.panel_focus.go_to("graph")
    key(qtbot, Qt.Key.Key_G, CTRL)
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(GoToDialog)), timeout=TIMEOUT)
    [dialog] = [d for d in window.findChildren(GoToDialog) if d.isVisible()]
    assert dialog.hint.text().startswith("0 to 5")  # the tape's iterations
    dialog.number.setValue(3)
    dialog.accept()
    first = timeline.view.iteration_start(3)
    qtbot.waitUntil(lambda: session.cursor == first and session.status == "paused", timeout=TIMEOUT)
    assert timeline.where_text().startswith("iteration 3/5 \u00b7 forward")
    # by an event's number, as the status bar and the inspector give it
    number = timeline.event_number(int(timeline.view.seqs()[40]))
    assert window.go_to("event", number)
    qtbot.waitUntil(lambda: session.cursor == timeline.view.seqs()[40] and session.status == "paused",
                    timeout=TIMEOUT)
    assert f"event {number:,}/" in timeline.where_text()
    assert window.settings.value("timeline/go_to") == "event"  # the dialog offers events next time
    assert not window.go_to("iteration", 99)


# ---- one name and one key per action, wherever they are shown ----------------------------------------------------
def test_the_keyboard_shortcuts_table_names_each_action_as_its_menu_does(qtbot, window):
    # Ctrl+F10 was "Run to Next Phase" in the Debug menu and "Run to Optimizer Step" in the help
    window.open_demo(epochs=1, n=64)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    for phase in ("backward", "optimizer"):
        window.command("run_to_phase")
        qtbot.waitUntil(lambda phase=phase: paused(window) and window.session.phase == phase, timeout=TIMEOUT)
    dialog = window.show_shortcuts()
    rows = {(action, shortcut) for _, action, shortcut in dialog.rows()}
    specs = [s for s in DEBUG + FILE + EDIT + VIEW + GO_TO_PANEL + HELP if s.shortcut]
    for spec in specs:
        name = spec.text.replace("&", "").rstrip("\u2026")
        assert action_name(window.actions[spec.name]) == name  # the menu says what the spec says
        shown = f"Go to Panel \u203a {name}" if spec in GO_TO_PANEL else name  # a submenu's item says which
        assert (shown, window.actions[spec.name].shortcut().toString()) in rows, name
    assert ("Run to Next Phase", "Ctrl+F10") in rows
    assert {"Go to First Event", "Go to Last Event", "Next Panel", "Go to Panel \u203a Alerts"} <= {a for a, _ in rows}
    assert len({action for action, _ in rows}) == len(rows)  # one key per action, one action per key
    assert len({shortcut for _, shortcut in rows}) == len(rows)


def test_the_dock_the_focus_is_in_is_found_for_floating_docks_too(qtbot, window):
    dock = window.docks["output"]
    dock.setFloating(True)
    qtbot.waitUntil(dock.isVisible, timeout=TIMEOUT)
    window.panel_focus.go_to("output")
    qtbot.waitUntil(lambda: window.panel_focus.current() == "output", timeout=TIMEOUT)
    assert [name for name, _ in window.panel_focus.panels()][-1] == "output"  # floating ones come last
    assert isinstance(window.findChild(QDockWidget, "output"), QDockWidget)
