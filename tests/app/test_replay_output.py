"""A replay's Output panel shows what the script printed, as far as the replay's cursor (offscreen)."""

import shutil
import sqlite3
import textwrap

import pytest

import engine
import engine.nn as nn
import engine.tape
from app.cli import main
from tests.app.test_replay_window import replay, seek
from tests.app.test_window import TIMEOUT
from tests.shots import shoot
from widgets.output_panel import OutputPanel
from widgets.theme import ERROR_TEXT, pick

SCRIPT = textwrap.dedent("""
    import sys
    import engine
    import engine.nn as nn

    print("training a small model")
    engine.manual_seed(0)
    fc = nn.Linear(4, 3)
    optimizer = engine.optim.SGD(fc.parameters(), lr=0.1)
    x = engine.randn(8, 4)
    for step in range(4):
        loss = fc(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"step {step}  loss {loss.item():.4f}")
        if step == 2:
            print("warning: the loss went up", file=sys.stderr)
    print("done")
""")


@pytest.fixture(scope="module")
def printing_tape(tmp_path_factory):
    folder = tmp_path_factory.mktemp("printing")
    script = folder / "printing.py"
    script.write_text(SCRIPT)
    tape = folder / "printing.tape"
    assert main(["record", str(script), "-o", str(tape)]) == 0
    return str(tape)


def section(window) -> str:
    """The Output panel's text after the "Replaying" note."""
    text = window.output.text()
    head, _, rest = text.partition("\n")
    while not head.startswith("Replaying"):
        head, _, rest = rest.partition("\n")
    return rest


def recorded(tape: str, stop_seq: int | None = None) -> str:
    with engine.tape.open(tape) as t:
        return "".join(row.text for row in t.output(stop_seq=stop_seq))


def test_the_output_panel_shows_the_recorded_output_at_the_end_of_a_replay(qtbot, window, printing_tape):
    window.output.append_text("stdout", "an earlier session's line\n")
    replay(qtbot, window, printing_tape)
    whole = recorded(printing_tape)
    assert whole.startswith("training a small model\nstep 0  loss ") and whole.endswith("done\n")
    qtbot.waitUntil(lambda: section(window) == whole, timeout=TIMEOUT)
    lines = window.output.text().splitlines()
    assert lines[0] == "an earlier session's line" and lines[1].startswith(f"Replaying {printing_tape}")
    # stderr in the panel's error colour, as a live run shows it; stdout in the plain one
    found = window.output.document().find("warning: the loss went up")
    assert found.charFormat().foreground().color().name() == pick(ERROR_TEXT, window.output.palette())
    plain = window.output.document().find("step 3")
    assert plain.charFormat().foreground().color().name() != pick(ERROR_TEXT, window.output.palette())
    window.docks["output"].raise_()
    shoot(window, "replay-output.png")


def test_seeking_back_cuts_the_output_back_and_playing_on_grows_it(qtbot, window, printing_tape):
    session = replay(qtbot, window, printing_tape)
    with engine.tape.open(printing_tape) as t:
        rows = t.output()
    warning = next(row for row in rows if row.stream == "stderr")
    seek(qtbot, window, warning.seq - 1)  # just before the event that the warning followed
    expected = recorded(printing_tape, warning.seq)
    assert "step 2" not in expected and "step 1" in expected
    qtbot.waitUntil(lambda: section(window) == expected, timeout=TIMEOUT)
    seek(qtbot, window, warning.seq)
    qtbot.waitUntil(lambda: section(window) == recorded(printing_tape, warning.seq + 1), timeout=TIMEOUT)
    assert section(window).endswith("step 2  loss " + rows[-3].text.split("loss ")[1] +
                                    "warning: the loss went up\n")
    seek(qtbot, window, session.last_seq, settled="finished")
    qtbot.waitUntil(lambda: section(window) == recorded(printing_tape), timeout=TIMEOUT)
    window.restart()  # back to the start: what the script printed before its first event
    qtbot.waitUntil(lambda: section(window) == "training a small model\n", timeout=TIMEOUT)
    assert window.output.text().count("Replaying") == 1


def test_a_cut_output_says_so_where_it_was_cut(qtbot, window, tmp_path):
    tape = tmp_path / "cut.tape"
    rec = engine.record(tape, max_output_bytes=12)
    with rec:
        rec.output("stdout", "first line\n")
        nn.Linear(2, 2)(engine.randn(1, 2))
        rec.flush()
        rec.output("stdout", "a line too many\n")
    replay(qtbot, window, str(tape))
    qtbot.waitUntil(lambda: "\u2702" in section(window), timeout=TIMEOUT)
    assert section(window) == ("first line\na\n\u2702 The tape keeps the first 12 bytes of the script's output: "
                               "15 bytes more was not recorded.\n")


def test_a_flood_of_output_keeps_the_replaying_note_first(qtbot, window, tmp_path):
    tape = tmp_path / "flood.tape"
    rec = engine.record(tape)
    with rec:
        for block in range(4):
            nn.Linear(2, 2)(engine.randn(1, 2))
            rec.flush()
            rec.output("stdout", "".join(f"block {block} line {i}\n" for i in range(3000)))
    window.output.append_text("stdout", "an earlier session's line\n")
    replay(qtbot, window, str(tape))
    qtbot.waitUntil(lambda: section(window).endswith("block 3 line 2999\n"), timeout=TIMEOUT)
    lines = window.output.text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Replaying"))
    assert at <= 1 and len(lines) <= 2 + window.output.max_lines * 6 // 5  # only the lines kept were laid out
    assert lines[at + 1].startswith("block ") and lines[at + 1] != "block 0 line 0"  # the oldest lines went


def test_trimming_keeps_a_sections_note_and_cutting_back_keeps_what_came_before(qtbot):
    panel = OutputPanel(max_lines=10)
    qtbot.addWidget(panel)
    panel.append_text("stdout", "before\n")
    panel.begin_section("Replaying run.tape")
    for i in range(40):
        panel.append_text("stderr" if i % 2 else "stdout", f"line {i}\n")
    lines = panel.text().splitlines()
    assert lines[0] == "Replaying run.tape" and lines[-1] == "line 39" and len(lines) <= 1 + 12
    panel.cut_section()
    assert panel.text().splitlines() == ["Replaying run.tape"]
    panel.append_chunks([("stdout", "again\n"), ("note", "a note")])
    assert panel.text().splitlines() == ["Replaying run.tape", "again", "a note"]
    panel.end_section()  # a new session: the old note is trimmed like any line
    for i in range(40):
        panel.append_text("stdout", f"next {i}\n")
    assert panel.text().splitlines()[0].startswith("next ")


def test_a_damaged_output_row_costs_only_that_chunk_in_a_replay(qtbot, window, printing_tape, tmp_path):
    tape = tmp_path / "damaged.tape"
    shutil.copy(printing_tape, tape)
    with sqlite3.connect(tape) as conn:
        conn.execute("UPDATE output SET text = x'ff00' WHERE text LIKE 'warning%'")
    conn.close()
    session = replay(qtbot, window, str(tape))
    qtbot.waitUntil(lambda: section(window).endswith("done\n"), timeout=TIMEOUT)
    assert section(window) == recorded(printing_tape).replace("warning: the loss went up\n", "")
    assert session.read_error == ""  # the events replayed whole


def test_a_live_session_that_records_keeps_the_scripts_output_on_its_tape(qtbot, window, tmp_path):
    script = tmp_path / "printing.py"
    script.write_text(SCRIPT)
    tape = tmp_path / "live.tape"
    assert window.run_script(str(script), run=True, record=str(tape))
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    printed = recorded(str(tape))
    assert printed.startswith("training a small model\nstep 0  loss ") and printed.endswith("done\n")
    assert "warning: the loss went up\n" in printed
    assert printed in window.output.text()  # what the live run showed
