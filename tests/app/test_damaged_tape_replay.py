"""A damaged tape in the window: every panel shows the events that could be read, the same ones, and the banner
says what was lost; a tape cut short opens as far as it goes."""

from __future__ import annotations

import pytest

from tests.app.test_replay_window import replay
from tests.app.test_window import make_window
from tests.engine.tape.helpers import record_run
from tests.engine.tape.test_damaged_tapes import PAGE, _overwritten
from tests.shots import shoot


@pytest.fixture(scope="module")
def tape(tmp_path_factory):
    path = tmp_path_factory.mktemp("damaged-replay") / "run.tape"
    record_run(path, capture="values", steps=60, batch_events=64)
    return path


def test_a_damaged_chunk_of_events_ends_the_timeline_the_loss_curve_and_the_graph_alike(qtbot, tmp_path, tape):
    bad = _overwritten(tape, tmp_path, "events", "overflow")
    window = make_window(qtbot, tmp_path)
    session = replay(qtbot, window, bad)
    end = session.tape.events_end
    assert end is not None and session.cursor == session.last_seq == end  # the replay read up to the damage
    last = session.counts["last_iteration"]
    assert session.iterations[-1].iteration == last < 59  # its labels end where the events do
    assert window.timeline.view.seqs().max() <= end
    iterations, _losses = session.loss_curve()
    assert max(iterations) <= last  # the loss curve too: it ran to the end of the run (iteration 59)
    assert all(step[0] <= last for step in session.recorded_steps)
    message = window.message_bar.text()
    assert message.startswith(f"Damaged tape: shown are the first {session.counts['events']:,} of ")
    assert f"events (to iteration {last}); lost: events {end + 1:,}-" in message
    shoot(window, "damaged-events.png")


def test_a_tape_cut_short_opens_as_far_as_it_goes_and_says_it_is_cut_short(qtbot, tmp_path, tape):
    data = tape.read_bytes()
    cut = tmp_path / "cut.tape"
    cut.write_bytes(data[:len(data) // 2 // PAGE * PAGE])
    window = make_window(qtbot, tmp_path)
    assert window.open_tape(str(cut)), window.message_bar.text()
    session = replay(qtbot, window, str(cut))  # was: "damaged tape (database disk image is malformed)", no window
    assert session.counts["events"] > 0 and session.cursor == session.last_seq
    message = window.message_bar.text()
    assert message.startswith("Damaged tape: ") and "lost: the file is cut short: " in message
    assert cut.read_bytes() == data[:len(cut.read_bytes())]  # never written to
