"""A run whose script raises mid-iteration, replayed: the tape keeps the op that raised (its inputs' shapes, the
error's line, its iteration), so the replay shows the failed iteration as the live run did, not drawn over the one
before it: the graph, the inspector, the status, the timeline and the Alerts panel agree."""

import sqlite3
import textwrap

from PySide6.QtCore import Qt

import engine.tape
from app.cli import main
from tests.app.test_window import TIMEOUT, paused, press
from tests.shots import shoot

# two linears; iteration 3 feeds the first one 5 features instead of 4
SCRIPT = """
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    for step in range(5):
        x = engine.randn(16, 4) if step != 3 else engine.randn(16, 5)
        loss = F.cross_entropy(model(x), engine.randint(0, 3, (16,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
"""
ERROR = "ShapeError: linear: input has 5 features but weight expects 4 (weight shape (8, 4), input shape (16, 5))"
FAILED = "Sequential.0/linear:failed"


def _script(tmp_path) -> str:
    path = tmp_path / "fails_at_3.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return str(path)


def _seen(window) -> dict:
    """What a person sees of the end of the run."""
    session, view, timeline = window.session, window.canvas.view, window.timeline
    panel = window.alerts_panel
    failed = session.failed_key
    return {
        "nodes": sorted(view.keys),
        "failed": failed,
        "marked": bool(session.model.nonfinite.get(failed)),
        "node": window.node_info.plain_text() if window.graph.selected == failed else "",
        "iteration": window.status_panel.iteration.text(),
        "timeline": (timeline.view.count, timeline.where_text().split(" \u00b7 event")[0]),
        "marker on the last step": timeline.view.markers("alert").tolist() == timeline.view.seqs()[-1:].tolist(),
        "alerts": [tuple(panel.topLevelItem(i).text(c) for c in range(4)) for i in range(panel.topLevelItemCount())],
    }


def _replayed(qtbot, make_window, tape: str) -> dict:
    window = make_window()
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    window.canvas.select(FAILED)
    qtbot.waitUntil(lambda: window.graph.selected == FAILED, timeout=TIMEOUT)
    return _seen(window), window


def test_the_replay_of_a_run_that_raised_shows_its_failed_iteration_as_the_live_run_did(qtbot, make_window, tmp_path):
    script = _script(tmp_path)
    window = make_window()
    assert window.run_script(script)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    press(qtbot, window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # the app's Record
    press(qtbot, window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.ended is not None and not window.session.recording, timeout=TIMEOUT)
    window.canvas.select(FAILED)
    qtbot.waitUntil(lambda: window.graph.selected == FAILED, timeout=TIMEOUT)
    live = _seen(window)
    assert live["failed"] == FAILED and live["marked"] and live["iteration"] == "iteration 3"
    assert "16\u00d75, 8\u00d74, 8\noutput\nnothing (it raised)" in live["node"] and ERROR in live["node"]
    assert live["alerts"] == [("3", "error", "linear in Sequential.0", ERROR)]
    assert [k for k in live["nodes"] if "/in" not in k] == [FAILED]  # iteration 3 alone, as far as it got
    assert live["timeline"] == (22, "iteration 3/3 \u00b7 forward")
    assert live["marker on the last step"]

    recorded, replay = _replayed(qtbot, make_window, window.session.last_recording)
    assert recorded == live
    shoot(replay, "replay-of-a-failed-run.png")
    tape = tmp_path / "cli.tape"  # tapescope record's tape of the same script: the same iteration
    assert main(["record", script, "-o", str(tape)]) == 1
    assert _replayed(qtbot, make_window, str(tape))[0] == live


def test_the_tape_keeps_the_op_that_raised_in_its_iteration(tmp_path, capsys):
    tape = tmp_path / "run.tape"
    assert main(["record", _script(tmp_path), "-o", str(tape), "--capture", "structure"]) == 1
    assert main(["info", str(tape)]) == 0
    assert f"  raised:     linear in Sequential.0 in iteration 3 (inputs 16x5, 8x4, 8): {ERROR}\n" in \
        capsys.readouterr().out
    with engine.tape.open(tape) as t:
        seq, message = t.raised_op()
        assert message == ERROR
        (rec,) = [r for r in t.records(iteration=3) if r.seq == seq]
        assert rec.event.key == FAILED and rec.event.input_shapes == ((16, 5), (8, 4), (8,))
        assert rec.event.output == 0 and rec.depth == 2
        assert rec.source.line == 11 and rec.source.text.startswith("loss = F.cross_entropy(model(x)")
        assert t.iteration(3).ops == 1 and t.iteration(3).last_seq == seq  # an iteration of its own


def test_a_tape_without_the_op_that_raised_still_replays_and_lists_its_error_by_line(qtbot, make_window, tmp_path):
    tape = tmp_path / "old.tape"
    assert main(["record", _script(tmp_path), "-o", str(tape)]) == 1
    con = sqlite3.connect(tape)  # as a tape written before the op that raised was kept: no raised_op
    with con:
        con.execute("DELETE FROM meta WHERE key = 'raised_op'")
    con.close()
    window = make_window()
    assert window.open_tape(str(tape))
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    assert window.session.failure is None and not window.session.failed_key
    (row,) = [window.alerts_panel.topLevelItem(i) for i in range(window.alerts_panel.topLevelItemCount())]
    assert row.text(1) == "error" and row.text(2) == "fails_at_3.py:11"
    assert row.text(3).startswith("the recorded code raised ShapeError")
