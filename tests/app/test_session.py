"""The session controller without a window: live runs (demo and scripts) and replays of their tapes."""

import os
import textwrap

import pytest

from app import replay
from app.graph_model import OP
from app.replay import ReplaySession
from app.session import MIN_BACKLOG, LiveSession, Target

TIMEOUT = 15_000  # ms: a hang fails the test instead of blocking it


def drained(qtbot, session, predicate, timeout: int = TIMEOUT) -> None:
    """Drain the session (as the pump does once per frame) until `predicate()` holds."""
    def check():
        session.drain()
        assert predicate()
    qtbot.waitUntil(check, timeout=timeout)


def live(sessions, target, **options) -> LiveSession:
    s = LiveSession(target, **options).start()
    sessions.append(s)
    return s


def op_labels(session) -> list[str]:
    view = session.model.view()
    return [view.label[i] for i in range(len(view)) if view.kind[i] == OP]


def write(tmp_path, name, body) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


LOOP = """
    import engine, engine.nn as nn, engine.nn.functional as F
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(5, 3), engine.tensor([0, 1, 0, 1, 1])
    for step in range({steps}):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print("done", step)
"""


# ---- the demo, live ---------------------------------------------------------------------------------
def test_demo_pauses_on_entry_and_five_steps_make_five_ops_in_order(qtbot, sessions):
    s = live(sessions, Target.demo(epochs=1, n=128))
    drained(qtbot, s, lambda: s.status == "paused")
    assert s.status_text().startswith("Paused on entry")
    assert len(s.model.view()) == 0
    for _ in range(5):
        s.command("step_into")  # pressed faster than the engine stops: each still makes one step
    drained(qtbot, s, lambda: len(op_labels(s)) == 5 and s.status == "paused")
    assert op_labels(s) == ["linear", "tanh", "linear", "tanh", "linear"]
    assert s.status_text() == "Paused at op linear in SpiralNet.out"
    assert s.node_info(s.model.current).summary.shape == (64, 2)


def test_continue_trains_and_the_loss_is_recorded_per_iteration(qtbot, sessions):
    s = live(sessions, Target.demo(epochs=3, n=128))
    drained(qtbot, s, lambda: s.status == "paused")
    s.command("resume")
    drained(qtbot, s, lambda: s.ended is not None)
    assert s.status == "finished"
    assert s.iteration == 5  # 3 epochs of 2 batches, from 0
    iterations, losses = s.loss_curve()
    assert iterations == list(range(6))
    assert 0.3 < losses[0] < 1.2


def test_step_over_skips_a_module_call_and_run_to_phase_reaches_backward(qtbot, sessions):
    s = live(sessions, Target.demo(epochs=1, n=128))
    drained(qtbot, s, lambda: s.status == "paused")
    s.command("step_into")
    drained(qtbot, s, lambda: s.status == "paused" and len(op_labels(s)) == 1)
    s.command("step_over")  # from fc1's linear (depth 2) to the next op at depth <= 2: the tanh
    drained(qtbot, s, lambda: s.status == "paused" and len(op_labels(s)) == 2)
    s.command("run_to_phase")
    drained(qtbot, s, lambda: s.status == "paused" and s.phase == "backward")
    assert s.status_text() == "Paused at the backward of cross_entropy in the top level"
    s.command("run_to_next_iteration")
    drained(qtbot, s, lambda: s.status == "paused" and s.iteration == 1)
    assert s.phase == "forward"


def test_a_stop_in_a_modules_second_call_names_that_call_as_the_graph_does(qtbot, sessions, tmp_path):
    # the status bar said "in Net.act" where the graph and the inspector say "Net.act#1"
    path = write(tmp_path, "twice.py", """
        import engine, engine.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc, self.act = nn.Linear(3, 3), nn.Tanh()
            def forward(self, x):
                return self.act(self.fc(self.act(x)))
        Net()(engine.randn(2, 3)).sum().backward()
    """)
    s = live(sessions, Target.script(path))
    drained(qtbot, s, lambda: s.status == "paused")
    for n in range(1, 4):
        s.command("step_into")
        drained(qtbot, s, lambda n=n: s.status == "paused" and len(op_labels(s)) == n)
    assert op_labels(s) == ["tanh", "linear", "tanh"]
    assert s.status_text() == "Paused at op tanh in Net.act#1"
    assert s.node_info(s.model.current).module == "Net.act#1"
    s.command("run_to_phase")
    drained(qtbot, s, lambda: s.status == "paused" and s.phase == "backward")
    s.command("step_into")  # sum's backward, then the second tanh's
    drained(qtbot, s, lambda: s.status == "paused" and s.status_text().endswith("tanh in Net.act#1"))
    assert s.status_text() == "Paused at the backward of tanh in Net.act#1"


def test_stepping_through_a_fan_shows_each_op_of_it_in_the_inspector(qtbot, sessions, tmp_path):
    path = write(tmp_path, "windows.py", """
        import engine
        ids = engine.arange(100).float()
        windows = engine.stack([ids[s:s + 10] for s in range(0, 90, 5)])
    """)
    s = live(sessions, Target.script(path))
    drained(qtbot, s, lambda: s.status == "paused")
    for n in range(2, 18):  # float, then the first 15 slices (stop 1: on entry; arange is no op)
        s.command("step_into")
        drained(qtbot, s, lambda n=n: s.status == "paused" and s.current_stop.index == n)
    info = s.node_info(s.model.current)
    assert s.model.current == "getitem:14" and info.key == "getitem:14"  # itself, not the fan's first op
    assert info.label == "getitem \u00d715" and info.summary.min == 70.0 and info.summary.max == 79.0
    assert s.status_text() == "Paused at op getitem in the top level"


# ---- scripts ----------------------------------------------------------------------------------------
def test_a_script_runs_with_its_arguments_and_its_output_is_captured(qtbot, sessions, tmp_path):
    path = write(tmp_path, "echo.py", """
        import sys
        print("args", sys.argv[1:])
        print("oops", file=sys.stderr)
    """)
    s = live(sessions, Target.script(path, ("a", "b")), pause_on_entry=False)
    out = []
    def check():
        change = s.drain()
        out.extend(change.output if change else ())
        assert s.ended is not None
    qtbot.waitUntil(check, timeout=TIMEOUT)
    assert s.status == "finished"
    assert [(c.stream, c.text) for c in out] == [("stdout", "args ['a', 'b']\n"), ("stderr", "oops\n")]


def test_a_failing_script_shows_its_own_traceback_and_marks_the_op(qtbot, sessions, tmp_path):
    path = write(tmp_path, "bad.py", """
        import engine, engine.nn as nn

        def run():
            model = nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2))
            return model(engine.randn(2, 3))

        run()
    """)
    s = live(sessions, Target.script(path), pause_on_entry=False)
    drained(qtbot, s, lambda: s.ended is not None)
    error = s.ended.error
    assert s.status == "failed"
    assert error.message == ("ShapeError: linear: input has 4 features but weight expects 5 "
                             "(weight shape (2, 5), input shape (2, 4))")
    lines = error.traceback.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    frames = [line for line in lines if line.startswith('  File "')]
    assert len(frames) == 2 and all(path in f for f in frames)  # <module> and run(): nothing of the engine
    assert "Sequential.1/linear:failed" in s.model.view().keys
    assert s.model.nonfinite.get("Sequential.1/linear:failed")  # drawn in red
    assert s.status_text().startswith("Failed: ShapeError")


def test_a_nan_stops_the_run_at_the_op_that_made_it(qtbot, sessions, tmp_path):
    path = write(tmp_path, "nan.py", """
        import numpy as np
        import engine, engine.nn as nn
        model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
        out = model(engine.randn(5, 3))
        with np.errstate(invalid="ignore"):
            bad = (out - 100.0).log()
        bad.mean().backward()
    """)
    s = live(sessions, Target.script(path), pause_on_entry=False)
    drained(qtbot, s, lambda: s.status == "paused")
    assert s.current_stop.record.event.op == "log"
    assert s.status_text().startswith("Paused on an alert, NaN/Inf (forward): non-finite values first appear in "
                                     "the output of 'log'")
    assert s.model.nonfinite.get("log:0")
    assert [a.kind for a in s.alerts] == ["nonfinite_forward"]


def test_exit_codes_of_a_script(qtbot, sessions, tmp_path):
    ok = live(sessions, Target.script(write(tmp_path, "ok.py", "raise SystemExit(0)")), pause_on_entry=False)
    bad = live(sessions, Target.script(write(tmp_path, "no.py", "raise SystemExit(3)")), pause_on_entry=False)
    drained(qtbot, ok, lambda: ok.ended is not None)
    drained(qtbot, bad, lambda: bad.ended is not None)
    assert ok.status == "finished"
    assert bad.status == "failed" and bad.ended.error.message == "SystemExit: 3"


def spinning(qtbot, sessions, tmp_path) -> LiveSession:
    """A live script looping in plain Python (no engine op), once it has printed that it started."""
    path = write(tmp_path, "spin.py", """
        print("spinning", flush=True)
        n = 0
        while True:
            n += 1
    """)
    s = live(sessions, Target.script(path), pause_on_entry=False)
    out = []
    def started():
        change = s.drain()
        out.extend(change.output if change else ())
        assert out
    qtbot.waitUntil(started, timeout=TIMEOUT)
    return s


def test_stop_ends_a_script_that_never_touches_the_engine(qtbot, sessions, tmp_path):
    s = spinning(qtbot, sessions, tmp_path)
    s.stop()
    drained(qtbot, s, lambda: s.ended is not None)
    assert s.status == "stopped"
    assert s.join(5)


def test_close_stops_a_run_whose_first_stop_was_dropped(qtbot, sessions, tmp_path, monkeypatch):
    # an asynchronous exception that lands in a finalizer (a __del__) is printed and dropped: a run went on after
    # Quit's Stop; close() asks again until the run ends
    s = spinning(qtbot, sessions, tmp_path)
    interrupt, asked = s.run.interrupt, []
    monkeypatch.setattr(s.run, "interrupt", lambda: asked.append(1) if len(asked) < 1 else interrupt())
    s.close()
    assert s.join(0) and len(asked) == 1  # ended within close(), by the second stop


def test_stop_while_paused_and_a_restart_runs_again(qtbot, sessions, tmp_path):
    path = write(tmp_path, "loop.py", LOOP.format(steps=3))
    s = live(sessions, Target.script(path))
    drained(qtbot, s, lambda: s.status == "paused")
    s.stop()
    drained(qtbot, s, lambda: s.ended is not None)
    assert s.status == "stopped"
    again = live(sessions, s.target, pause_on_entry=False)
    drained(qtbot, again, lambda: again.ended is not None)
    assert again.status == "finished" and again.iteration == 2


def test_the_engine_waits_for_a_slow_gui_instead_of_dropping_events(qtbot, sessions, tmp_path):
    path = write(tmp_path, "loop.py", LOOP.format(steps=30))
    s = live(sessions, Target.script(path), pause_on_entry=False, max_queue=40)
    qtbot.waitUntil(lambda: len(s.queue) > 20, timeout=TIMEOUT)
    assert not s.run.done.is_set()
    drained(qtbot, s, lambda: s.ended is not None)
    assert s.iteration == 29 and len(s.losses) == 30


def test_what_a_slow_gui_shows_trails_the_engine_by_a_bounded_backlog(qtbot, sessions, tmp_path):
    path = write(tmp_path, "loop.py", LOOP.format(steps=1_000_000))
    s = live(sessions, Target.script(path), pause_on_entry=False)
    seen = []

    def slow_frame():  # a GUI that applies 20 items a frame, for 150 frames
        s.drain(max_items=20)
        seen.append(len(s.queue))
        assert len(seen) >= 150

    qtbot.waitUntil(slow_frame, timeout=TIMEOUT)
    assert max(seen) > MIN_BACKLOG // 2  # the engine did outrun the GUI
    peak = max(seen)
    # the GUI's pace (a few hundred items a second) allows no more than the minimum to wait
    assert peak <= MIN_BACKLOG + 1
    s.command("pause")
    drained(qtbot, s, lambda: s.status == "paused")
    assert not s.run.done.is_set()


# ---- replay -----------------------------------------------------------------------------------------
@pytest.fixture
def recorded(qtbot, sessions, tmp_path):
    """A live demo run recorded to a tape: (the finished live session, the tape's path)."""
    tape = str(tmp_path / "demo.tape")
    s = live(sessions, Target.demo(epochs=2, n=128), pause_on_entry=False, record=tape)
    drained(qtbot, s, lambda: s.ended is not None)
    assert s.recording is None and os.path.exists(tape)
    return s, tape


def test_a_replayed_tape_gives_the_same_model_as_the_live_session(qtbot, sessions, recorded):
    s, tape = recorded
    r = ReplaySession(tape)
    sessions.append(r)
    drained(qtbot, r, lambda: r.status == "finished")
    a, b = s.model.view(), r.model.view()
    assert a.keys == b.keys and a.label == b.label and a.sublabel == b.sublabel
    assert a.edges.tolist() == b.edges.tolist() and a.groups == b.groups
    assert a.backward.tolist() == b.backward.tolist()
    assert r.model.current == s.model.current and r.iteration == s.iteration == 3
    assert r.loss_curve() == s.loss_curve()
    assert r.summaries.keys() == s.summaries.keys()
    key = "SpiralNet.fc2/linear:0"
    assert r.summaries[key].mean == pytest.approx(s.summaries[key].mean)


def test_a_long_tape_opens_at_its_end_without_playing_it_through(qtbot, sessions, recorded, monkeypatch):
    # playing a 444k-event tape through to its end took a minute before the window showed where it ended
    s, tape = recorded
    monkeypatch.setattr(replay, "OPEN_AT_END", 20)  # this tape has about a hundred events
    applied = []
    apply = ReplaySession._apply
    monkeypatch.setattr(ReplaySession, "_apply", lambda self, rec, change: (applied.append(rec.seq),
                                                                              apply(self, rec, change)))
    r = ReplaySession(tape)
    sessions.append(r)
    drained(qtbot, r, lambda: r.status == "finished")
    a, b = s.model.view(), r.model.view()
    assert a.keys == b.keys and a.edges.tolist() == b.edges.tolist() and a.groups == b.groups
    assert r.model.current == s.model.current and r.iteration == s.iteration == 3
    assert r.loss_curve() == s.loss_curve() and r.cursor == r.last_seq
    assert min(applied) == r.iterations[-2].first_seq  # from the iteration before the last, for the layout
    assert r.status_text() == "Replay at the end of the tape"
    r.rewind()  # and the whole tape is still there to play
    r.command("resume")
    drained(qtbot, r, lambda: r.status == "finished")
    assert min(applied) == r.first_seq and r.model.view().keys == a.keys


def test_replay_steps_seeks_both_ways_and_rewinds(qtbot, sessions, recorded):
    _, tape = recorded
    r = ReplaySession(tape)
    sessions.append(r)
    drained(qtbot, r, lambda: r.status == "finished")
    r.rewind()
    drained(qtbot, r, lambda: r.status == "paused")
    assert len(r.model.view()) == 0
    for n in range(1, 4):
        r.command("step_into")
        drained(qtbot, r, lambda n=n: r.status == "paused" and len(op_labels(r)) == n)
    assert op_labels(r) == ["linear", "tanh", "linear"]
    r.command("run_to_next_iteration")
    drained(qtbot, r, lambda: r.status == "paused" and r.iteration == 1)
    later = r.iterations[2].first_seq + 3
    r.seek(later)
    drained(qtbot, r, lambda: r.status == "paused" and r.cursor == later)
    assert r.iteration == 2
    r.seek(r.iterations[0].first_seq + 2)  # back: the graph is rebuilt up to there
    drained(qtbot, r, lambda: r.status == "paused" and r.iteration == 0)
    assert op_labels(r) == ["linear"]
    assert r.status_text() == "Replay paused at op linear in SpiralNet.fc1"


def test_step_out_of_a_layer_stops_at_the_next_layer_live_and_in_replay(qtbot, sessions, tmp_path):
    def step_out_of_the_first_layer(session) -> None:
        drained(qtbot, session, lambda: session.status == "paused")
        session.command("step_into")
        drained(qtbot, session, lambda: session.status_text().endswith("linear in Sequential.0"))
        session.command("step_out")  # Sequential.0 returns; the next thing that runs is the ReLU
        drained(qtbot, session, lambda: session.status_text().endswith("relu in Sequential.1"))
        session.command("resume")
        drained(qtbot, session, lambda: session.status == "finished")

    tape = str(tmp_path / "seq.tape")
    s = live(sessions, Target.script(write(tmp_path, "seq.py", LOOP.format(steps=1))), record=tape)
    step_out_of_the_first_layer(s)
    s.close()
    r = ReplaySession(tape)
    sessions.append(r)
    drained(qtbot, r, lambda: r.status == "finished")
    r.rewind()
    step_out_of_the_first_layer(r)


def test_a_replay_stopped_at_an_optimizer_step_shows_the_line_that_called_it(qtbot, sessions, tmp_path):
    tape = str(tmp_path / "loop.tape")
    script = write(tmp_path, "loop.py", LOOP.format(steps=2))
    s = live(sessions, Target.script(script), pause_on_entry=False, record=tape)
    drained(qtbot, s, lambda: s.status == "finished")
    s.close()
    r = ReplaySession(tape)
    sessions.append(r)
    drained(qtbot, r, lambda: r.status == "finished")
    r.rewind()
    drained(qtbot, r, lambda: r.status == "paused")
    for _ in range(3):  # into the forward, to the backward, to the optimizer step
        r.command("run_to_phase")
        drained(qtbot, r, lambda: r.status == "paused")
    source = r.current_stop.source
    assert r.current_stop.phase == "optimizer"
    assert (source.file, source.line, source.text) == (script, 10, "opt.step()")


def test_the_session_controller_imports_no_qt():
    import subprocess
    import sys

    qt = ("PySide6", "pyqtgraph")
    code = f"import app.session, sys; print(sorted(n for n in sys.modules if n.startswith({qt!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.stdout.strip() == "[]"


def test_a_replay_scrubbed_back_before_a_nan_is_not_paused_on_its_alert(qtbot, sessions, tmp_path):
    tape = str(tmp_path / "nan.tape")
    path = write(tmp_path, "nan_loop.py", """
        import engine, engine.nn as nn
        model = nn.Linear(3, 2)
        x = engine.randn(4, 3)
        for step in range(4):
            out = model(x)
            value = (out - 100.0).log() if step == 2 else (out * out + 1.0).log()  # NaN at step 2 only
            value.mean().backward()
            engine.debug.mark_iteration()
    """)
    s = live(sessions, Target.script(path), pause_on_entry=False, stop_on_alerts="none", record=tape)
    drained(qtbot, s, lambda: s.ended is not None)
    r = ReplaySession(tape)
    sessions.append(r)
    drained(qtbot, r, lambda: r.status == "finished")  # played past the alert to the end
    (alert,) = r.tape.alerts()
    r.seek(r.iterations[1].first_seq + 1)  # an iteration before the NaN
    drained(qtbot, r, lambda: r.status == "paused")
    assert r.iteration == 1 and r.stop_alert is None
    assert "alert" not in r.status_text()
    r.seek(alert.forward_seq)  # the op where it started
    drained(qtbot, r, lambda: r.status == "paused" and r.cursor == alert.forward_seq)
    assert r.current_stop.record.event.op == "log"



def test_an_op_without_a_gradient_shows_no_gradient_of_an_earlier_iterations_op(qtbot, sessions, tmp_path):
    # after training, an evaluation's ops are numbered as training's top-level ops were ("mul:0"): the Inspector
    # showed the training op's gradient, of another shape, beside an op under no_grad
    script = write(tmp_path, "evaluate.py", """
        import engine, engine.nn as nn
        model = nn.Linear(3, 1)
        opt = engine.optim.SGD(model.parameters(), lr=0.1)
        x = engine.randn(8, 3)
        for _ in range(3):
            loss = (model(x) * 2.0).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with engine.no_grad():
            print((engine.tensor([1.0, 2.0]) * 3.0).tolist())
    """)
    s = live(sessions, Target.script(script), pause_on_entry=False, record=str(tmp_path / "run.tape"))
    drained(qtbot, s, lambda: s.ended is not None)
    replayed = ReplaySession(str(tmp_path / "run.tape"))
    sessions.append(replayed)
    drained(qtbot, replayed, lambda: replayed.status == "finished")
    for session in (s, replayed):
        info = session.node_info("mul:0")
        assert info.summary.shape == (2,) and info.grad is None, session


def test_the_replay_of_a_run_that_raised_says_so_at_its_end(qtbot, sessions, tmp_path):
    script = write(tmp_path, "metric.py", """
        import engine
        w = engine.ones(3, requires_grad=True)
        for step in range(3):
            (w * w).sum().backward()
        correct = 0
        print(step / correct)
    """)
    s = live(sessions, Target.script(script), pause_on_entry=False, record=str(tmp_path / "run.tape"))
    drained(qtbot, s, lambda: s.ended is not None)
    replayed = ReplaySession(str(tmp_path / "run.tape"))
    sessions.append(replayed)
    drained(qtbot, replayed, lambda: replayed.status == "finished")
    assert replayed.status_text() == ("Replay at the end of the tape (the recorded code raised ZeroDivisionError: "
                                      "division by zero)")
    # and where: the line that raised, with its file's source on the tape
    assert replayed.raised_at.file == script and replayed.raised_at.line == 7
    assert replayed.raised_at.text == "print(step / correct)"
    assert "correct = 0" in replayed.tape.source(script)


def test_every_alert_stops_the_run_where_it_is_raised_and_the_stop_names_it(qtbot, sessions, tmp_path):
    # only a NaN/Inf stopped a run: the alerts of a learning rate far too high went by
    from tests.app.test_stepping_controls import HOT

    path = write(tmp_path, "hot.py", HOT)
    with pytest.raises(ValueError, match="stop_on_alerts must be one of all, nonfinite, none, got 'warnings'"):
        LiveSession(Target.script(path), stop_on_alerts="warnings")
    s = live(sessions, Target.script(path), pause_on_entry=False)  # every alert, by default
    drained(qtbot, s, lambda: s.status == "paused")
    assert s.current_stop.reason == "alert" and s.stop_alert.kind == "dead_relu"
    assert s.current_stop.record.event.op == "relu"  # at the op whose output it is about
    s.command("resume")
    drained(qtbot, s, lambda: s.status == "paused" and s.current_stop.index == 2)
    assert s.stop_alert.kind == "large_update" and s.current_stop.record.phase == "optimizer"
    assert s.status_text().startswith("Paused on an alert, learning rate too high: the updates of layer")
    s.stop_on_alerts = "nonfinite"  # changed while it runs: the rest is listed, not stopped at
    s.command("resume")
    drained(qtbot, s, lambda: s.ended is not None)
    assert [a.kind for a in s.alerts] == ["dead_relu", "large_update", "vanishing_grad"]
