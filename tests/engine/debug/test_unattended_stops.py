"""A breakpoint in a script that attaches the debugger to its own thread (`with dbg:`), where nothing can resume a
stop: pdb at the person's line when stdin is a terminal (PYTHONBREAKPOINT=0 turns it off, as for breakpoint()),
else one line on stderr; the run goes on and Debugger.stops keeps the stop. Never hangs. And breakpoints on a
debugger never attached are warned about instead of doing nothing."""

import gc
import os
import pty
import select
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

import engine
import engine.nn as nn
from engine.debug import Breakpoint, Debugger

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TIMEOUT = 60

SCRIPT = textwrap.dedent("""\
    import engine, engine.nn as nn
    from engine.debug import Debugger, Breakpoint
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    dbg = Debugger()
    dbg.add_breakpoint(Breakpoint.max_abs(50, on="output", pattern="Sequential.0/*"))
    def forward(x):
        scale = 1000
        h = model(x * scale)
        return h.sum()
    with dbg:
        forward(engine.randn(8, 4))
    (stop,) = dbg.stops
    print("ran on:", len(dbg.stops), stop.reason, stop.record.event.key, stop.source.line)
    """)
STOP_LINE = 9  # h = model(x * scale)


def _write(tmp_path) -> str:
    path = tmp_path / "bp.py"
    path.write_text(SCRIPT)
    return str(path)


def _env(**extra) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT, **extra}
    env.pop("PYTHONBREAKPOINT", None)
    env.update(extra)
    return env


def _on_a_terminal(script: str, typed: str, **env) -> tuple[int, str]:
    """Run `script` with a pseudo-terminal for stdin, stdout and stderr, typing `typed`; (exit code, all it showed)."""
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, script], stdin=child, stdout=child, stderr=child, env=_env(**env),
                            cwd=os.path.dirname(script), close_fds=True)
    os.close(child)
    os.write(main, typed.encode())
    shown, deadline = b"", time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the child closed its side: all was read
                    break
                if not chunk:
                    break
                shown += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(f"the script hung; it showed:\n{shown.decode(errors='replace')}")
        return proc.wait(TIMEOUT), shown.decode(errors="replace").replace("\r\n", "\n")
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()


HEADER = ("tapescope: breakpoint 1 (max |x| > 50 in Sequential.0/*  (output)) hit at Sequential.0/linear:0 "
          "(iteration 0, forward): output max |x| ")


def test_on_a_terminal_pdb_opens_at_the_persons_line_and_c_goes_on(tmp_path):
    script = _write(tmp_path)
    code, shown = _on_a_terminal(script, "p scale * 2\nc\n")
    assert code == 0, shown
    header = next(line for line in shown.splitlines() if line.startswith("tapescope: "))
    assert header.startswith(HEADER) and header.endswith(f", {script}:{STOP_LINE}")
    assert f"> {script}({STOP_LINE})forward()" in shown and "-> h = model(x * scale)" in shown
    assert "\n2000\n" in shown  # evaluated in the person's frame
    assert f"ran on: 1 breakpoint Sequential.0/linear:0 {STOP_LINE}" in shown


def test_n_runs_to_the_persons_next_line(tmp_path):
    code, shown = _on_a_terminal(_write(tmp_path), "n\np h.shape\nc\n")
    assert code == 0, shown
    assert "-> return h.sum()" in shown and "engine.Size([8, 1])" in shown
    assert "ran on: 1" in shown


def test_q_ends_the_run_as_quitting_pdb_does(tmp_path):
    code, shown = _on_a_terminal(_write(tmp_path), "q\n")
    assert code == 1 and "BdbQuit" in shown and "ran on" not in shown


def test_pythonbreakpoint_0_turns_pdb_off_and_the_run_goes_on(tmp_path):
    script = _write(tmp_path)
    code, shown = _on_a_terminal(script, "", PYTHONBREAKPOINT="0")
    assert code == 0, shown
    assert "(Pdb)" not in shown
    (line,) = [line for line in shown.splitlines() if line.startswith("tapescope: ")]
    assert line.startswith(HEADER) and "PYTHONBREAKPOINT=0, so the run goes on" in line
    assert "ran on: 1" in shown


def test_without_a_terminal_one_line_on_stderr_and_the_run_goes_on(tmp_path):
    script = _write(tmp_path)
    done = subprocess.run([sys.executable, script], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=_env(), timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(HEADER) and f", {script}:{STOP_LINE}; " in line
    assert line.endswith("so the run goes on (Debugger.stops keeps it)")
    assert done.stdout == f"ran on: 1 breakpoint Sequential.0/linear:0 {STOP_LINE}\n"


def test_the_readme_example_runs_through_without_a_terminal(tmp_path):
    """/tmp/gui32/bp.py, the tester's: it hung with no message."""
    script = tmp_path / "bp.py"
    script.write_text(textwrap.dedent("""\
        import engine, engine.nn as nn
        from engine.debug import Debugger, Breakpoint
        model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
        d = Debugger()
        d.add_breakpoint(Breakpoint.max_abs(50, on="output", pattern="*linear*"))
        with d:
            out = model(engine.randn(8, 4) * 1000)
        print("passed through", len(d.stops))
        """))
    done = subprocess.run([sys.executable, str(script)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=_env(), timeout=TIMEOUT)
    assert done.returncode == 0 and done.stdout.startswith("passed through ")
    assert len(done.stderr.splitlines()) == int(done.stdout.split()[-1]) >= 1


def test_a_stop_with_a_controller_still_waits_for_it():
    model = nn.Linear(4, 3)
    dbg = Debugger()
    dbg.add_breakpoint(Breakpoint.op("linear"))
    seen = []
    dbg.on_stop.append(lambda stop: (seen.append(stop.reason), dbg.resume()))
    with dbg:
        model(engine.randn(2, 4))
    assert seen == ["breakpoint"] and len(dbg.stops) == 1


def _never_attached_warnings(make) -> list:
    """The "never attached" warnings given when the debugger `make()` returns goes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dbg = make()
        del dbg
        gc.collect()
    return [w for w in caught if "never attached" in str(w.message)]


def test_breakpoints_on_a_debugger_never_attached_are_warned_about_at_the_line_that_added_them():
    lines = []

    def forgotten():
        dbg, spec = Debugger(), Breakpoint.max_abs(50, on="output", pattern="*linear*")
        dbg.add_breakpoint(spec); lines.append(sys._getframe().f_lineno)  # noqa: E702
        nn.Linear(4, 3)(engine.randn(8, 4) * 1000)  # no `with dbg:`: nothing stops
        return dbg

    (w,) = _never_attached_warnings(forgotten)
    assert (w.filename, w.lineno, w.category) == (__file__, lines[0], RuntimeWarning)
    assert str(w.message).startswith("engine.debug: a Debugger with 1 breakpoint (max |x| > 50 in *linear*  "
                                     "(output)) was never attached, so nothing stopped: run the code in `with dbg:`")

    def run_later():  # added before run_callable attaches it: no warning
        dbg = Debugger()
        dbg.add_breakpoint(Breakpoint.op("nothing_runs_this"))
        assert dbg.run_callable(lambda: engine.randn(2) * 2).join(TIMEOUT)
        return dbg

    assert _never_attached_warnings(run_later) == []


# ---- PYTHONBREAKPOINT names another hook, as breakpoint() follows it ------------------------------------------------
HOOKS = textwrap.dedent("""\
    import pdb
    import sys

    def stop(*args, **kwargs):
        # the frames below the hook: the script's own, at the line after the stop, with its locals
        f = sys._getframe(1)
        while f is not None and not f.f_code.co_filename.endswith("bp.py"):
            f = f.f_back
        print(f"hook: called {args} {kwargs} in {f.f_code.co_name}() at line {f.f_lineno}, scale={f.f_locals['scale']},"
              f" h={'h' in f.f_locals}")

    def debugger():  # as ipdb.set_trace() starts its debugger: at the frame that called it
        pdb.Pdb().set_trace(sys._getframe().f_back)
    """)
RAN = f"ran on: 1 breakpoint Sequential.0/linear:0 {STOP_LINE}"


def _hooks(tmp_path) -> dict:
    """The environment of a script run with PYTHONBREAKPOINT naming a function of a module `breakhooks` in a folder
    on sys.path."""
    folder = tmp_path / "hooks"
    folder.mkdir()
    (folder / "breakhooks.py").write_text(HOOKS)
    return {"PYTHONPATH": f"{ROOT}{os.pathsep}{folder}"}


def _without_a_terminal(script: str, *options: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *options, script], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=_env(**env), timeout=TIMEOUT)


def test_pythonbreakpoint_names_a_hook_that_is_called_in_the_persons_frame(tmp_path):
    script = _write(tmp_path)
    done = _without_a_terminal(script, PYTHONBREAKPOINT="breakhooks.stop", **_hooks(tmp_path))
    assert done.returncode == 0, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(HEADER) and line.endswith(f", {script}:{STOP_LINE}; PYTHONBREAKPOINT=breakhooks.stop is "
                                                     "called as the script goes on (Debugger.stops keeps the stop)")
    # once, with no arguments, in the person's frame as it goes on: at the line after the stop, before it runs
    called = f"hook: called () {{}} in forward() at line {STOP_LINE + 1}, scale=1000, h=True"
    assert done.stdout.splitlines() == [called, RAN]


def test_on_a_terminal_the_hook_is_called_instead_of_pdb(tmp_path):
    code, shown = _on_a_terminal(_write(tmp_path), "", PYTHONBREAKPOINT="breakhooks.stop", **_hooks(tmp_path))
    assert code == 0, shown
    assert "(Pdb)" not in shown and f"hook: called () {{}} in forward() at line {STOP_LINE + 1}" in shown
    assert RAN in shown


def test_a_debugger_the_hook_starts_stops_in_the_persons_code_not_in_the_engine(tmp_path):
    script = _write(tmp_path)
    code, shown = _on_a_terminal(script, "p scale, h.shape\nc\n", PYTHONBREAKPOINT="breakhooks.debugger",
                                 **_hooks(tmp_path))
    assert code == 0, shown
    prompt = shown[shown.index("\n> ") + 1:shown.index("(Pdb)")]
    assert prompt.startswith(f"> {script}({STOP_LINE + 1})forward()") and "-> return h.sum()" in prompt
    assert "(1000, engine.Size([8, 1]))" in shown and RAN in shown


def test_a_hook_that_cannot_be_imported_is_warned_about_once_and_the_run_goes_on(tmp_path):
    script = tmp_path / "bp.py"
    twice = "forward(engine.randn(8, 4)); forward(engine.randn(8, 4))"  # two stops
    script.write_text(SCRIPT.replace("forward(engine.randn(8, 4))", twice).replace("(stop,) = ", "stop, _ = "))
    env = _hooks(tmp_path)
    for hook in ("no_such_module.set_trace", "breakhooks.no_such_function", "no_such_builtin"):
        done = _without_a_terminal(str(script), "-W", "always", PYTHONBREAKPOINT=hook, **env)
        assert done.returncode == 0, done.stderr
        assert done.stdout == RAN.replace("ran on: 1", "ran on: 2") + "\n"
        lines = done.stderr.splitlines()
        assert [line for line in lines if "Warning" in line] == [
            f"{script}:{STOP_LINE}: RuntimeWarning: Ignoring unimportable $PYTHONBREAKPOINT: \"{hook}\""]
        stops = [line for line in lines if line.startswith("tapescope: ")]
        assert len(stops) == 2 and all(line.startswith(HEADER) and line.endswith(
            f"; PYTHONBREAKPOINT={hook} cannot be imported, so the run goes on (Debugger.stops keeps it)")
            for line in stops)
