"""Replaying a tape in the window, offscreen: scrubbing, the end of the tape, damaged tapes."""

import math
import shutil
import sqlite3
import textwrap

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

import app.replay
import app.window
from app.cli import main
from tests.app.test_window import TIMEOUT, status

# log(0) in the third step: -inf in the forward, then NaN everywhere after the update
NAN_SCRIPT = """
    import engine
    import engine
    import engine.nn as nn

    engine.manual_seed(0)
    fc = nn.Linear(4, 3)
    optimizer = engine.optim.SGD(fc.parameters(), lr=0.1)
    x = engine.randn(8, 4)
    for step in range(4):
        h = (fc(x) * fc(x) + 1.0) * (0.0 if step == 2 else 1.0)
        loss = engine.log(h).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


def _recorded(folder, capture: str) -> str:
    script = folder / "nan_run.py"
    script.write_text(textwrap.dedent(NAN_SCRIPT))
    tape = folder / f"{capture}.tape"
    assert main(["record", str(script), "-o", str(tape), "--capture", capture]) == 0
    return str(tape)


@pytest.fixture(scope="module")
def nan_tape(tmp_path_factory):
    return _recorded(tmp_path_factory.mktemp("replay"), "summary")


@pytest.fixture(scope="module")
def structure_tape(tmp_path_factory):
    return _recorded(tmp_path_factory.mktemp("structure"), "structure")


def replay(qtbot, window, tape: str):
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    return window.session


def seek(qtbot, window, seq: int, settled: str = "paused") -> None:
    window.timeline.cursorMoved.emit(seq)  # what dragging the timeline's cursor does
    qtbot.waitUntil(lambda: window.session.status == settled and window.session.cursor == seq, timeout=TIMEOUT)


def test_seeking_to_the_end_shows_the_selected_node_as_it_is_there(qtbot, window, nan_tape):
    session = replay(qtbot, window, nan_tape)
    alert = session.tape.alerts()[0]
    seek(qtbot, window, alert.forward_seq - 1)  # just before log(0) ran: log still holds step 2's output
    window.canvas.select(alert.key)
    qtbot.waitUntil(lambda: window.inspector.stat_text("Inf") == "0", timeout=TIMEOUT)
    seek(qtbot, window, session.last_seq, settled="finished")
    # at the end the graph paints log as non-finite; the inspector must say the same, not keep step 2's values
    assert window.inspector.stat_text("NaN") != "0" or window.inspector.stat_text("Inf") != "0"
    assert "nan_run.py" in window.source_view.title.toolTip()


def test_restart_of_a_replay_leaves_no_stale_source_line(qtbot, window, nan_tape):
    session = replay(qtbot, window, nan_tape)
    seek(qtbot, window, session.tape.alerts()[0].forward_seq)
    assert "engine.log(h)" in window.source_view.current_line_text()
    window.restart()
    qtbot.waitUntil(lambda: status(window) == "Replay paused before the first event", timeout=TIMEOUT)
    assert window.source_view.file == "" and window.source_view.current_line_text() == ""


def _damaged(tape: str, folder, sql: str) -> str:
    bad = str(folder / "damaged.tape")
    shutil.copy(tape, bad)
    with sqlite3.connect(bad) as con:
        con.execute(sql)
    con.close()
    return bad


def test_a_tape_damaged_past_its_index_says_how_much_was_read(qtbot, window, nan_tape, tmp_path):
    whole = app.replay.ReplaySession(nan_tape)
    middle = (whole.first_seq + whole.last_seq) // 2
    whole.close()
    bad = _damaged(nan_tape, tmp_path, f"UPDATE summaries SET layout = 99999 WHERE seq > {middle}")
    session = replay(qtbot, window, bad)
    assert session.cursor == session.last_seq  # a damaged summary costs that summary, not the rest of the tape
    message = window.message_bar.text()
    assert message.startswith(f"Damaged tape: all its {session.counts['events']:,} events were read; lost: "
                              "summaries: damaged rows left out (layouts row 99999 is missing)")
    assert "\n" not in message and window.message_bar.level == "error"


def test_a_tape_none_of_whose_events_can_be_read_opens_with_what_survived(qtbot, window, nan_tape, tmp_path,
                                                                          monkeypatch):
    bad = _damaged(nan_tape, tmp_path, "UPDATE events SET columns = X'0102030405'")
    session = replay(qtbot, window, bad)  # was refused: its alerts, steps and output were there to see
    assert session.no_events and window.timeline.view.count == 0
    message = window.message_bar.text()
    assert message.startswith("Damaged tape: none of its ") and "can be read (an event chunk is truncated)" in message
    assert "shown is what survived: 1 alert (Alerts) and 4 optimizer steps (Training) (" in message
    assert window.alerts_panel.topLevelItemCount() == 1 and len(window.training_plots.series("lr")[0]) == 4
    assert window.graph.hint.isVisible() and "No event of this tape can be read" in window.graph.hint.text()
    opened = []
    monkeypatch.setattr(app.window, "run_app", lambda launch: opened.append(launch.replay.no_events) or 0)
    assert main(["open", bad]) == 0 and opened == [True]  # tapescope open too


def value_header(window) -> str:
    stats = window.inspector.stats
    return stats.horizontalHeaderItem(0).text()


def test_a_node_that_has_not_run_yet_in_this_iteration_names_the_iteration_of_its_values(qtbot, window,
                                                                                       nan_tape):
    session = replay(qtbot, window, nan_tape)
    alert = session.tape.alerts()[0]
    seek(qtbot, window, alert.forward_seq - 1)  # log runs next: it still holds the iteration before's output
    now = session.iteration
    window.canvas.select(alert.key)
    qtbot.waitUntil(lambda: window.inspector.title.text().endswith(alert.key), timeout=TIMEOUT)
    assert value_header(window) == f"value (it. {now - 1})"
    assert f"from iteration {now - 1} (not run yet in iteration {now})" in window.inspector.meta.text()
    assert window.inspector.stat_text("Inf") == "0"  # indeed the earlier output: this one's log(0) is -inf
    seek(qtbot, window, alert.forward_seq)  # log has run: its own output, no iteration to name
    qtbot.waitUntil(lambda: value_header(window) == "value", timeout=TIMEOUT)
    assert "not run yet" not in window.inspector.meta.text() and window.inspector.stat_text("Inf") != "0"


def values_note(window) -> str:
    """The status bar's note about values, once every fetch asked for has answered."""
    assert window.panels.worker.wait(TIMEOUT)
    QApplication.processEvents()  # its answer arrives queued
    return window.status_panel.note.text()


def test_a_tape_without_values_disables_load_values_and_says_why_once(qtbot, window, nan_tape):
    session = replay(qtbot, window, nan_tape)
    load = window.inspector.load_button
    for key in list(session.model.view().keys)[-3:]:  # selection after selection
        window.canvas.select(key)
        qtbot.waitUntil(lambda k=key: window.inspector.title.text().endswith(k), timeout=TIMEOUT)
        assert window.inspector.stat_text("min") != ""  # its summary is shown
        assert not load.isEnabled() and "holds no values" in load.toolTip() and "--capture values" in load.toolTip()
        assert not values_note(window).startswith("Values:")  # was "Values: the tape holds no values..."


def test_a_structure_tape_says_it_holds_no_values_or_summaries(qtbot, window, structure_tape):
    session = replay(qtbot, window, structure_tape)
    window.canvas.select(session.model.view().keys[-1])
    qtbot.waitUntil(lambda: window.inspector.title.text() != "", timeout=TIMEOUT)
    meta = window.inspector.meta.text()
    assert "A structure tape holds no values or summaries" in meta and "--capture summary" in meta
    assert not window.inspector.load_button.isEnabled()
    empty = window.loss_plot.empty
    said = " ".join(empty.toPlainText().split())  # in lines that fit the dock
    assert empty.isVisible() and "structure tape holds no values" in said and "--capture summary" in said
    assert not values_note(window).startswith("Values:")


def test_the_plots_show_the_whole_run_as_soon_as_a_tape_opens(qtbot, window, nan_tape):
    # they filled only as fast as the replay played through (a minute for a 444k-event tape), and a seek
    # to the end right after opening left out every iteration it skipped
    assert window.open_tape(nan_tape)
    session = window.session
    losses = session.tape.losses()
    assert sorted(losses) == [0, 1, 2, 3] and math.isnan(losses[2]) and math.isnan(losses[3])  # log(0), then NaN
    xs, _ = window.loss_plot.curve.getData()
    assert list(xs) == [0, 1, 2, 3]  # before the replay has drained a single batch
    assert window.training_plots.series("lr")[1].tolist() == [0.1] * 4
    seek(qtbot, window, session.last_seq, settled="finished")
    assert list(window.loss_plot.curve.getData()[0]) == [0, 1, 2, 3]
    assert len(window.training_plots.series("lr")[1]) == 4  # the replay added no step twice


def test_rewinding_a_replay_empties_the_gradient_flow_of_steps_after_the_cursor(qtbot, window, nan_tape):
    session = replay(qtbot, window, nan_tape)
    last_step = session.recorded_steps[-1][0]
    assert window.gradient_flow.where.text() == f"iteration {last_step}"
    window.restart()
    qtbot.waitUntil(lambda: status(window) == "Replay paused before the first event", timeout=TIMEOUT)
    # before the first event no optimizer step has run: the chart kept showing the last one of the tape
    assert window.gradient_flow.where.text() == "" and window.gradient_flow.bars()[0] == []
    seek(qtbot, window, session.iteration_info(1).first_seq)
    assert window.gradient_flow.where.text() == "iteration 0"


def test_clicking_an_alert_at_the_end_of_a_replay_selects_its_node_there(qtbot, window, nan_tape):
    session = replay(qtbot, window, nan_tape)
    alert = session.tape.alerts()[0]
    rows = window.alerts_panel.list
    item = rows.topLevelItem(0)
    qtbot.mouseClick(rows.viewport(), Qt.MouseButton.LeftButton, pos=rows.visualItemRect(item).center())
    qtbot.waitUntil(lambda: session.status == "paused" and session.cursor == alert.forward_seq, timeout=TIMEOUT)
    # the seek back rebuilt the graph after the node was selected on the old one: nothing stayed selected
    qtbot.waitUntil(lambda: window.canvas.selected_key == alert.key, timeout=TIMEOUT)
    assert window.inspector.title.text().endswith(alert.key)
    assert "engine.log(h)" in window.source_view.current_line_text()


def test_stop_is_offered_only_while_a_replay_plays(qtbot, window, nan_tape):
    replay(qtbot, window, nan_tape)  # at the end of the tape: nothing plays
    stop = window.actions["stop"]
    assert not stop.isEnabled()
    window.restart()  # back at the start, paused
    qtbot.waitUntil(lambda: window.session.status == "paused", timeout=TIMEOUT)
    assert not stop.isEnabled()
    window.command("resume")  # plays (this tape takes a frame or two) to its NaN alert
    qtbot.waitUntil(lambda: window.session.status == "paused", timeout=TIMEOUT)
    assert not stop.isEnabled()
    window.command("resume")  # and on to the end
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    assert not stop.isEnabled()


def test_at_the_first_event_of_a_tape_the_timeline_has_not_reached_the_first_op(qtbot, window, nan_tape):
    session = replay(qtbot, window, nan_tape)
    first_step = int(window.timeline.view.seqs()[0])
    assert session.first_seq < first_step  # the tape starts with a module call, before any op
    seek(qtbot, window, session.first_seq)
    # the replay has applied only the module call: the timeline must not claim the first op has run
    assert window.timeline.cursor_seq() is None
    assert f"before event {window.timeline.event_number(first_step):,}/" in window.timeline.where.text()
    # nor the source: it kept the line of the tape's end, where the replay had opened
    assert window.source_view.current_line_text() == ""
    window.command("step_into")
    qtbot.waitUntil(lambda: session.status == "paused" and session.cursor == first_step, timeout=TIMEOUT)
    assert window.timeline.cursor_seq() == first_step


def test_continue_stops_at_the_nan_alert_as_a_live_run_does(qtbot, window, nan_tape):
    session = replay(qtbot, window, nan_tape)
    alert = session.tape.alerts()[0]
    window.restart()  # back to the start of the tape
    qtbot.waitUntil(lambda: session.status == "paused" and session.cursor < session.first_seq, timeout=TIMEOUT)
    window.command("resume")  # F5: "run until a breakpoint, an alert or the end"
    qtbot.waitUntil(lambda: session.status != "running", timeout=TIMEOUT)
    assert session.status == "paused" and session.last.event.seq == alert.forward_seq  # at log(0)
    qtbot.waitUntil(lambda: "on an alert" in status(window), timeout=TIMEOUT)
    assert window.timeline.cursor_seq() == alert.forward_seq
    window.command("resume")  # again: on to the end of the tape
    qtbot.waitUntil(lambda: session.status == "finished", timeout=TIMEOUT)
    seek(qtbot, window, alert.forward_seq - 3)  # a seek past nothing; then a step over the alert stops at it
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: session.status != "running", timeout=TIMEOUT)
    assert session.last.event.seq == alert.forward_seq


def test_a_values_tape_says_an_output_too_big_to_keep_was_too_big(qtbot, window, tmp_path):
    # it told a person who had recorded with --capture values to record with capture='values'
    import engine
    import engine.nn as nn

    tape = str(tmp_path / "values.tape")
    net = nn.Sequential(nn.Linear(4, 1024), nn.Tanh(), nn.Linear(1024, 1))
    with engine.record(tape, capture="values"):
        net(engine.randn(8, 4)).sum().backward()  # the first linear's output: 8,192 elements
    replay(qtbot, window, tape)
    key = next(k for k in window.session.model.view().keys if k.endswith("Sequential.0/linear:0"))
    window.canvas.select(key)
    qtbot.waitUntil(lambda: window.inspector.title.text().endswith(key), timeout=TIMEOUT)
    if window.inspector.load_button.isEnabled():
        window.inspector.load_button.click()
    note = values_note(window)
    assert "too big for the tape" in note and "capture='values')" not in note


def test_a_tape_of_a_newer_format_says_so_in_one_sentence(qtbot, window, nan_tape, tmp_path):
    # it read "Cannot open /x/newer.tape was written by tapescope …": the path ran into the reason
    newer = tmp_path / "newer.tape"
    shutil.copy(nan_tape, newer)
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    assert not window.open_tape(str(newer))
    text = window.message_bar.label.text()
    assert text.startswith(f"Cannot open {newer}: it was written by"), text
    assert "upgrade tapescope" in text


def test_end_on_a_tape_of_marked_iterations_is_the_end_of_the_tape(qtbot, window, tmp_path):
    # a loop that updates by hand and ends each iteration with mark_iteration(): its tape ends with the mark, which
    # the timeline does not hold, and End stopped one event short, "paused at op sub", where opening it had said
    # "at the end of the tape"
    import engine
    import engine.debug

    tape = str(tmp_path / "marked.tape")
    with engine.record(tape, capture="summary"):
        x, w = engine.randn(8, 2), engine.zeros(2, 1, requires_grad=True)
        for _ in range(3):
            ((x @ w - 1.0) ** 2).mean().backward()
            with engine.no_grad():
                w -= 0.1 * w.grad
                w.grad.zero_()
            engine.debug.mark_iteration()
    session = replay(qtbot, window, tape)
    end = session.cursor
    seek(qtbot, window, session.first_seq)
    window.timeline.go_to_end()
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    assert session.cursor == end and status(window).startswith("Replay at the end of the tape")
