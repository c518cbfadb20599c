"""The main window, offscreen: what a person sees and presses (pytest-qt; waits, never sleeps)."""

import os
import textwrap

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent

import app.window
from app.cli import main
from app.graph_model import OP
from app.window import Launch, MainWindow

TIMEOUT = 15_000  # ms


def press(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window, key, modifier)


def paused(window) -> bool:
    return status(window).startswith(("Paused", "Replay paused"))


def shown_ops(window) -> list[str]:
    view = window.canvas.view
    if view is None:
        return []
    return [view.label[i] for i in range(len(view)) if view.kind[i] == OP]


def status(window) -> str:
    return window.status_panel.state.text()


def stops(window) -> int:
    """How many times the session has stopped."""
    stop = window.session.current_stop
    return stop.index if stop is not None else 0


def press_and_stop(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Press `key` and wait for the stop it makes."""
    before = stops(window)
    press(qtbot, window, key, modifier)
    qtbot.waitUntil(lambda: paused(window) and stops(window) > before, timeout=TIMEOUT)


def training_loop(steps: int) -> str:
    """The loop that ends the test scripts here, indented as they are: `steps` plain SGD steps of `model` on `x`, `y`
    with `opt` (the scripts above it define them)."""
    return f"""\
    for step in range({steps}):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


def script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_the_demo_opens_paused_on_entry_with_a_hint(qtbot, window):
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert window.graph.hint.isVisible() and "F11" in window.graph.hint.text()
    assert status(window).startswith("Paused on entry")
    assert window.source_view.file.endswith("demo.py")
    assert not window.actions["pause"].isEnabled() and window.actions["step_into"].isEnabled()


def test_five_f11_presses_grow_the_graph_op_by_op(qtbot, window):
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    expected = ["linear", "tanh", "linear", "tanh", "linear"]
    for n in range(1, 6):
        press(qtbot, window, Qt.Key.Key_F11)
        qtbot.waitUntil(lambda n=n: paused(window) and len(shown_ops(window)) == n, timeout=TIMEOUT)
        assert shown_ops(window) == expected[:n]
    assert not window.graph.hint.isVisible()
    assert status(window) == "Paused at op linear in SpiralNet.out"
    assert "self.out(h)" in window.source_view.current_line_text()
    info = window.node_info.plain_text()
    assert "linear" in info and "SpiralNet.out" in info and "64\u00d72" in info
    assert window.canvas.marks_item.current == window.canvas.view.keys.index("SpiralNet.out/linear:0")


def test_f5_trains_live_and_pause_stops_it(qtbot, window):
    window.open_demo(epochs=400, n=128, verbose=False)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.iteration >= 20, timeout=TIMEOUT)
    assert status(window).startswith("Running")
    assert window.actions["pause"].isEnabled() and not window.actions["step_into"].isEnabled()
    press(qtbot, window, Qt.Key.Key_F6)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.loss_plot.points >= 20, timeout=TIMEOUT)
    assert "iteration" in window.status_panel.iteration.text()
    assert int(window.status_panel.iteration.text().split()[1]) >= 20
    assert shown_ops(window)[-1] == "cross_entropy"  # the whole iteration's graph is shown


def test_a_failing_script_shows_its_traceback_and_restart_works(qtbot, window, tmp_path):
    path = script(tmp_path, "bad.py", """
        import engine, engine.nn as nn
        print("building")
        model = nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2))
        model(engine.randn(2, 3))
    """)
    assert window.run_script(path)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    text = window.output.text()
    assert "building" in text and "Traceback (most recent call last)" in text
    assert f'File "{path}", line 5, in <module>' in text
    assert "engine/" not in text.split("Traceback")[1]  # the script's own frames only
    assert "ShapeError: linear: input has 4 features" in window.message_bar.text()
    assert status(window).startswith("Failed: ShapeError")
    assert "Sequential.1/linear:failed" in window.canvas.view.keys  # the failing op, marked
    assert window.alerts_panel.messages()[-1].startswith("ShapeError")
    restart = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    press(qtbot, window, Qt.Key.Key_F5, restart)
    qtbot.waitUntil(lambda: window.session.ended is None and paused(window), timeout=TIMEOUT)
    assert status(window).startswith("Paused on entry")
    assert window.canvas.view is None or len(window.canvas.view) == 0 or window.graph.hint.isVisible()


def test_a_missing_script_is_a_message_not_a_crash(qtbot, window, tmp_path):
    window.open_demo(epochs=1, n=64)
    assert not window.run_script(str(tmp_path / "nowhere.py"))
    assert "No such script" in window.message_bar.text()
    assert window.session.target.kind == "demo"  # what was open stays open


def test_stop_ends_a_script_that_loops_without_the_engine(qtbot, window, tmp_path):
    path = script(tmp_path, "spin.py", """
        print("spinning", flush=True)
        while True:
            pass
    """)
    window.run_script(path, run=True)
    qtbot.waitUntil(lambda: "spinning" in window.output.text(), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_F5, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    assert status(window) == "Stopped"
    assert window.actions["restart"].isEnabled() and not window.actions["stop"].isEnabled()


def test_restart_replaces_a_script_that_loops_without_the_engine(qtbot, window, tmp_path):
    path = script(tmp_path, "spin.py", """
        print("spinning", flush=True)
        while True:
            pass
    """)
    window.run_script(path, run=True)
    first = window.session
    qtbot.waitUntil(lambda: "spinning" in window.output.text(), timeout=TIMEOUT)
    window.restart()
    qtbot.waitUntil(lambda: window.session is not first and window.output.text().count("spinning") == 2,
                    timeout=TIMEOUT)
    assert first.ended.outcome == "stopped" and first.join(5)
    assert "\u21bb Restart" in window.output.text()


def test_record_then_replay_in_the_same_window(qtbot, window, tmp_path):
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert window.session.recording and "recording" in status(window)
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    tapes = os.listdir(tmp_path / "recordings")
    assert len(tapes) == 1 and not window.actions["record"].isChecked()
    tape = str(tmp_path / "recordings" / tapes[0])
    assert window.recent_files()[0] == tape
    live_keys = list(window.canvas.view.keys)

    assert window.open_tape(tape)
    assert window.windowTitle().startswith(tapes[0] + " (replay)")
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    assert list(window.canvas.view.keys) == live_keys
    assert window.timeline.view.count > 0
    assert window.loss_plot.points == 2
    first = window.session.iterations[0].first_seq
    window.timeline.cursorMoved.emit(first + 2)  # what dragging the timeline's cursor does
    qtbot.waitUntil(lambda: window.session.status == "paused", timeout=TIMEOUT)
    assert shown_ops(window) == ["linear"]
    press(qtbot, window, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: paused(window) and len(shown_ops(window)) == 2, timeout=TIMEOUT)
    assert window.timeline.cursor_seq() == window.session.cursor


def test_a_bad_tape_is_a_message(qtbot, window, tmp_path):
    bad = tmp_path / "bad.tape"
    bad.write_bytes(b"no tape here" * 20)
    assert not window.open_tape(str(bad))
    assert "not a tape" in window.message_bar.text()


def test_dropping_a_script_debugs_it(qtbot, window, tmp_path):
    path = script(tmp_path, "dropped.py", "print('hi')\n")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.session.target.path == path
    assert window.windowTitle().startswith("dropped.py")


def test_find_selects_a_node(qtbot, window):
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_phase")
    qtbot.waitUntil(lambda: paused(window) and window.session.phase == "backward", timeout=TIMEOUT)
    assert window.find("tanh") == "SpiralNet/tanh:0"
    assert window.node_info.plain_text().startswith("h \u00b7 tanh")  # `h = F.tanh(self.fc1(x))`


def test_find_counts_its_matches_and_enter_and_f3_go_through_them(qtbot, window):
    # 'in_proj' matched two nodes and one was selected without a word about the other
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_phase")
    qtbot.waitUntil(lambda: paused(window) and window.session.phase == "backward", timeout=TIMEOUT)
    window.actions["find"].trigger()
    qtbot.keyClicks(window.search_box, "tanh")
    assert window.search_count.text() == "2 matches"
    qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    assert (window.canvas.selected_key, window.search_count.text()) == ("SpiralNet/tanh:0", "1 of 2")
    window.actions["find_next"].trigger()  # F3
    assert (window.canvas.selected_key, window.search_count.text()) == ("SpiralNet/tanh:1", "2 of 2")
    qtbot.keyClick(window.search_box, Qt.Key.Key_Return)  # round again
    assert (window.canvas.selected_key, window.search_count.text()) == ("SpiralNet/tanh:0", "1 of 2")
    window.actions["find_previous"].trigger()  # Shift+F3
    assert window.canvas.selected_key == "SpiralNet/tanh:1"
    assert window.actions["find_next"].shortcut().toString() == "F3"
    window.search_box.setText("no such op")
    assert window.search_count.text() == "no match"
    # "linear" names the demo's Linear ops, and sits in the keys of their weights and inputs: the count says which
    window.search_box.setText("linear")
    tip = window.search_count.toolTip()
    assert tip.startswith("3 nodes named like 'linear', visited first; then ") and "whose module or key" in tip


def test_panels_and_window_state_are_kept(make_window):
    first = make_window()
    first.docks["loss"].hide()
    first.close()
    second = make_window()
    assert not second.docks["loss"].isVisible()
    assert second.docks["output"].isVisible()


def test_the_inspector_fits_its_dock_at_the_default_size(qtbot, make_window):
    window = make_window(size=None)  # its own default size and layout
    area = window.docks["inspector"].widget()
    # statistics, histograms and buttons without scrolling (the plots once asked for 640x480 each)
    def fits():
        assert area.viewport().height() > 300
        assert not area.verticalScrollBar().isVisible()
        assert not area.horizontalScrollBar().isVisible()
        assert window.inspector.height() <= area.viewport().height()

    qtbot.waitUntil(fits)


def test_a_first_start_fits_the_screen(qtbot, tmp_path):
    # 1440x900 on a 1280x720 laptop put the inspector and the bottom row off the screen's edges
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    room = window.screen().availableGeometry()
    assert window.width() <= room.width() and window.height() <= room.height()


def test_side_panels_get_their_share_back_when_the_window_grows(qtbot, make_window):
    # Qt gave all the room a growing window gained to the graph: after a small window, the inspector's
    # table stayed behind a scroll bar and the module tree without its Class column
    window = make_window((1440, 900))  # the default size, on a screen with room for it
    d = window.docks
    qtbot.waitUntil(lambda: d["inspector"].width() > 300 and d["modules"].width() > 150)
    qtbot.wait(50)  # the first sizes settle
    start = {name: (d[name].width(), d[name].height()) for name in ("modules", "inspector", "alerts", "source")}
    w0, h0 = window.width(), window.height()
    window.resize(640, 480)  # as small as it goes: the graph gives way, then the docks
    qtbot.waitUntil(lambda: all(d[name].width() < start[name][0] for name in ("modules", "inspector")))
    window.resize(1800, 1100)
    grow_x = 1800 / w0

    def shares_back():
        for name in ("modules", "inspector"):
            assert d[name].width() == pytest.approx(start[name][0] * grow_x, abs=4), name
        assert d["source"].height() > start["source"][1]  # the bottom row grows with the window too
        # the inspector and the alerts below it share the column as they did
        ratio = start["inspector"][1] / start["alerts"][1]
        assert d["inspector"].height() / d["alerts"].height() == pytest.approx(ratio, rel=0.05)

    qtbot.waitUntil(shares_back)
    window.resize(w0, h0)  # and back: the layout it started with, not docks still sized for the big window

    def as_at_start():
        for name, (width, height) in start.items():
            assert d[name].width() == pytest.approx(width, abs=3), name
            assert d[name].height() == pytest.approx(height, abs=3), name

    qtbot.waitUntil(as_at_start)


def test_a_panel_sized_by_hand_keeps_its_size_and_grows_with_the_window(qtbot, make_window):
    window = make_window((1440, 900))  # the default size, on a screen with room for it
    d = window.docks
    qtbot.waitUntil(lambda: d["inspector"].width() > 300)
    window.resizeDocks([d["inspector"]], [300], Qt.Orientation.Horizontal)  # what dragging its edge does
    qtbot.waitUntil(lambda: d["inspector"].width() == 300)
    w0 = window.width()
    window.resize(w0 + 360, window.height())
    qtbot.waitUntil(lambda: d["inspector"].width() == pytest.approx(300 * (w0 + 360) / w0, abs=4))
    window.resize(w0, window.height())
    qtbot.waitUntil(lambda: d["inspector"].width() == pytest.approx(300, abs=2))


def test_the_module_tree_shows_its_class_column_at_the_default_size(qtbot, make_window):
    window = make_window((1440, 900))  # the default size, on a screen with room for it
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_phase")  # through the first forward pass: the modules have run
    tree = window.module_tree
    qtbot.waitUntil(lambda: tree.topLevelItemCount() > 0, timeout=TIMEOUT)
    tree.expandAll()
    metrics = tree.fontMetrics()

    def classes_fit():
        items = [tree.topLevelItem(0)]
        items += [items[0].child(i) for i in range(items[0].childCount())]
        room = tree.viewport().width() - tree.header().sectionViewportPosition(1)  # the Class column's
        for item in items:
            assert metrics.horizontalAdvance(item.text(1)) + 6 <= min(room, tree.columnWidth(1)), item.text(1)

    qtbot.waitUntil(classes_fit)


# ---- the command line opens the window on what it was given ------------------------------------------
def test_run_subcommand_opens_the_script(monkeypatch, tmp_path):
    path = script(tmp_path, "train.py", "pass\n")
    opened = []
    monkeypatch.setattr(app.window, "run_app", lambda *a: opened.append(a) or 0)
    assert main(["run", "--run", path, "--lr", "0.1"]) == 0
    assert opened == [(Launch("script", path, ("--lr", "0.1"), run=True),)]


def test_run_subcommand_with_a_missing_script_says_so(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(app.window, "run_app", lambda *a: pytest.fail("opened the app"))
    assert main(["run", str(tmp_path / "missing.py")]) == 2
    assert capsys.readouterr().err.strip() == f"tapescope run: no such script: {tmp_path / 'missing.py'}"


def test_recordings_go_to_one_tapescope_folder_not_tapescope_tapescope(qapp, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    names = qapp.organizationName(), qapp.applicationName()
    qapp.setOrganizationName("Tapescope")  # as app.window.main names it
    qapp.setApplicationName("Tapescope")
    try:
        path = app.window._default_recordings_dir()
    finally:
        qapp.setOrganizationName(names[0])
        qapp.setApplicationName(names[1])
    assert path == os.path.join(str(tmp_path), "Tapescope", "recordings")
