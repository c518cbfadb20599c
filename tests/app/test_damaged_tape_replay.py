"""A damaged tape in the window: every panel shows the events that could be read, the same ones, past the damage
where the rows after it can be read, with the hole shown on the timeline and the charts; the banner says what was
lost; a tape cut short opens as far as it goes."""

from __future__ import annotations

import itertools
import sqlite3

import numpy as np
import pytest

import engine.tape
from tests.app.test_cli_record import FAILS
from tests.app.test_replay_window import replay
from tests.engine.tape.helpers import recorded_script
from tests.engine.tape.test_damaged_tapes import PAGE, _overwritten, _pages, cut_inside_events, record_in_chunks
from tests.shots import shoot
from widgets.theme import MUTED_TEXT, pick
from widgets.timeline import PHASE_COLOURS, RULER


@pytest.fixture(scope="module")
def tape(tmp_path_factory):
    path = tmp_path_factory.mktemp("damaged-replay") / "run.tape"
    record_in_chunks(path)
    return path


def test_the_events_after_a_damaged_chunk_are_replayed_with_the_hole_shown(qtbot, make_window, tmp_path, tape):
    bad = _overwritten(tape, tmp_path, "events", "overflow")
    with engine.tape.open(tape) as whole:
        last_seq, last_iteration = whole.iterations()[-1].last_seq, whole.iterations()[-1].iteration
    window = make_window()
    session = replay(qtbot, window, bad)
    (gap,) = session.gaps
    assert session.cursor == session.last_seq == last_seq  # read on past the damage, to the tape's end
    assert session.iterations[-1].iteration == last_iteration == 59
    # the timeline: the events either side of the hole, and a hatched break where it is
    seqs = window.timeline.view.seqs()
    assert seqs.max() == last_seq and not ((seqs >= gap.first_seq) & (seqs <= gap.last_seq)).any()
    assert window.timeline.view.gaps().tolist() == [gap.first_seq]
    after = int(np.searchsorted(seqs, gap.first_seq))
    window.timeline.view.set_view(after - 20, after + 20)
    x = round((window.timeline.view.event_x(after - 1) + window.timeline.view.event_x(after)) / 2)
    strip = window.timeline.view.grab().toImage()
    colours = {strip.pixelColor(x + dx, RULER + 4).name() for dx in range(-3, 4)}
    assert pick(MUTED_TEXT) in colours and not colours & set(PHASE_COLOURS)  # hatched, not an iteration's band
    # the charts: the loss goes on after the hole, with no line across it, and the hole hatched
    iterations, _losses = session.loss_curve()
    assert max(iterations) == last_iteration
    line = window.loss_plot.lines[0][0]
    assert isinstance(line.opts["connect"], np.ndarray)
    across = [k for k, (a, b) in enumerate(itertools.pairwise(iterations))
              if b - a > 1 and a < gap.last_iteration and b > gap.first_iteration]
    assert across and not line.opts["connect"][across].any()  # no line over the iterations whose losses were lost
    assert window.loss_plot.gaps.spans == [(gap.first_iteration, gap.last_iteration)]
    assert all(len(marks.bands) == 1 for marks in window.training_plots.gaps)
    # the graph shows the last iteration as a sound tape does: nothing marked as changed by the damage
    assert len(window.canvas.marks_item.changed) == 0
    message = window.message_bar.text()
    assert message.startswith(f"Damaged tape: {session.counts['events']:,} of ")
    assert f"lost are {gap.text(session.origin)}: the hatched gaps on the timeline and the charts" in message
    first, last = (window.timeline.event_number(s) for s in (gap.first_seq, gap.last_seq))  # as the timeline counts
    assert gap.text(session.origin) == f"events {first:,}-{last:,} (iterations {gap.first_iteration}-" \
                                       f"{gap.last_iteration})"
    shoot(window, "damaged-events.png")


@pytest.mark.parametrize("where", ["inside the events", "past the events"])
def test_a_tape_cut_short_opens_as_far_as_it_goes_and_says_it_is_cut_short(qtbot, make_window, tmp_path, tape,
                                                                           where):
    data = tape.read_bytes()
    cut = tmp_path / "cut.tape"
    # past the events: the pages of the values and snapshots written after them are lost, and every event is read
    end = cut_inside_events(tape) if where == "inside the events" else max(_pages(tape, "events")) * PAGE
    assert end < len(data)
    cut.write_bytes(data[:end])
    with engine.tape.open(tape) as whole:
        events = len(whole.columns()["seq"])
    window = make_window()
    assert window.open_tape(str(cut)), window.message_bar.text()
    session = replay(qtbot, window, str(cut))  # was: "damaged tape (database disk image is malformed)", no window
    assert session.counts["events"] > 0 and session.cursor == session.last_seq
    message = window.message_bar.text()
    if where == "inside the events":
        assert session.counts["events"] < events and session.gaps
        assert message.startswith(f"Damaged tape: {session.counts['events']:,} of {events:,} events shown; lost are ")
        assert "lost too: the file is cut short: " in message
    else:
        assert session.counts["events"] == events and not session.gaps
        assert message.startswith(f"Damaged tape: all its {events:,} events were read; lost: the file is cut short: ")
    assert cut.read_bytes() == data[:len(cut.read_bytes())]  # never written to


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """A recorded run of a script that prints a line per batch and fails at its fourth."""
    return recorded_script(tmp_path_factory.mktemp("printed"), FAILS, code=1)


def _cut_before(tape, folder, index: str):
    """A copy of the tape cut short at the first page of `index`: the events' and the output's pages written after
    the schema's are lost with it, the output table's first page (made with the schema) kept."""
    con = sqlite3.connect(f"file:{tape}?mode=ro&immutable=1", uri=True)
    try:
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (index,)).fetchone()[0]
        output = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'output'").fetchone()[0]
        assert output < root < max(_pages(tape, "events"))  # the layout the test needs
    finally:
        con.close()
    cut = folder / "cut.tape"
    cut.write_bytes(tape.read_bytes()[:(root - 1) * PAGE])
    return cut


def test_a_tape_cut_short_before_its_events_shows_the_output_it_promises(qtbot, make_window, tmp_path, printed):
    # cut at 70%: "none of its events can be read; below is the output it recorded", and nothing followed (the
    # output was read through its index, whose page was lost)
    cut = _cut_before(printed, tmp_path, "output_by_seq")
    window = make_window()
    session = replay(qtbot, window, str(cut))
    assert session.no_events
    text = window.output.text()
    assert "none of its events can be read (a damaged tape); below is the output it recorded." in text
    assert text.split("below is the output it recorded.")[1].count("batch done") == 3  # what ran before the error
    assert "ShapeError: linear: input has 5 features" in text
    shoot(window, "damaged_cut_before_events_output.png")


def _changed_copy(tape, dest, *statements: str):
    """A copy of `tape` at `dest` with the SQL `statements` run on it (cells made what a damaged page reads as)."""
    dest.write_bytes(tape.read_bytes())
    con = sqlite3.connect(dest)
    with con:
        for sql in statements:
            con.execute(sql)
    con.close()
    return dest


def test_a_tape_none_of_whose_output_can_be_read_does_not_promise_it(qtbot, make_window, tmp_path, printed):
    bad = _changed_copy(printed, tmp_path / "bad.tape", "UPDATE events SET columns = X'0102030405'",
                        "UPDATE output SET text = X'00'")  # each output row damaged: left out
    window = make_window()
    session = replay(qtbot, window, str(bad))
    assert session.no_events
    text = window.output.text()
    assert "none of its events can be read (a damaged tape), nor can the output it recorded." in text
    assert "below is the output" not in text


def test_a_tape_with_a_blob_in_its_iterations_opens_with_every_event(qtbot, make_window, tmp_path, printed):
    # `tapescope open` of it was a ValueError traceback, no window
    bad = _changed_copy(printed, tmp_path / "blob.tape", "UPDATE iterations SET t_first = X'00' WHERE iteration = 1")
    with engine.tape.open(printed) as whole:
        events = whole.counts()["events"]
    window = make_window()
    session = replay(qtbot, window, str(bad))
    assert session.counts["events"] == events and not session.gaps
    assert "the row of iteration 1 is damaged (its t_first is a blob)" in window.message_bar.text()
