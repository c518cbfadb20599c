"""A recording process killed with SIGKILL leaves a tape that opens and holds all but the last moment;
one stopped with SIGTERM closes its tape."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import engine.tape
from tests.engine.tape.helpers import reaped

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent("""
    import sys
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    x, y = engine.randn(4, 8), engine.randint(0, 2, (4,))
    with engine.record(sys.argv[1], capture="summary"):
        step = 0
        while True:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            step += 1
            if step == 20:
                print("recording", flush=True)
""")


def committed(path: Path) -> tuple[int, int]:
    """(iterations, events) committed so far to the live tape, read read-only; (0, 0) before it exists."""
    try:
        with engine.tape.open(path) as tape:
            counts = tape.counts()
    except engine.tape.TapeError:
        return 0, 0  # not created yet
    return counts["iterations"], counts["events"]


def wait_for_committed_iterations(path: Path, n: int, timeout: float = 60.0) -> None:
    """Poll the live tape until `n` iterations are committed: a loaded machine is slow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if committed(path)[0] >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the recording process committed fewer than {n} iterations in {timeout} s")


def commits_seen(path: Path, seconds: float) -> int:
    """Poll the live tape for `seconds`; how many times it grew."""
    grew, last = 0, committed(path)[1]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
        events = committed(path)[1]
        grew += events > last
        last = events
    return grew


def spawn(tmp_path, source: str, args, stderr=subprocess.PIPE) -> subprocess.Popen:
    """A Python child running `args(script)` (with `source` written to loop.py) in tmp_path, engine importable;
    its stdout (and by default stderr) piped, as text."""
    script = tmp_path / "loop.py"
    script.write_text(source)
    return subprocess.Popen([sys.executable, *args(script)], stdout=subprocess.PIPE, stderr=stderr,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_while_recording_loses_at_most_about_a_second(tmp_path):
    tape_path = tmp_path / "killed.tape"
    proc = spawn(tmp_path, SCRIPT, lambda script: [str(script), str(tape_path)], stderr=None)
    with reaped(proc):
        assert proc.stdout.readline().strip() == "recording"
        wait_for_committed_iterations(tape_path, 20)
        # A writer that falls behind the loop shows only after the first batches (it used to commit a
        # batch, then nothing for seconds): let the loop run a while, and see commits keep coming.
        grew = commits_seen(tape_path, 2.0)
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert grew >= 2, f"the tape grew {grew} times in 2 s of recording"
    before = tape_path.read_bytes()
    with engine.tape.open(tape_path) as tape:
        assert tape.meta["status"] == "recording"  # it never closed
        counts = tape.counts()
        events = list(tape.events())
        last = tape.iteration(counts["last_iteration"])
        created = float(tape.meta["created_unix"])
    assert counts["iterations"] >= 20
    assert len(events) == counts["events"]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    lost = killed_at - (created + last.t_last / 1e9)
    assert lost <= 1.5, f"the last committed event is {lost:.2f} s older than the kill"
    assert tape_path.read_bytes() == before  # reading a crashed tape changes nothing
    with engine.record(tape_path, capture="structure"):  # the killed recorder's lock went with it
        pass


LOOP = textwrap.dedent("""
    import engine
    import engine.nn as nn

    model = nn.Linear(8, 2)
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    x = engine.randn(4, 8)
    step = 0
    while True:
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        step += 1
        if step == 20:
            print("recording", flush=True)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM to a child is POSIX")
def test_a_plain_kill_of_tapescope_record_closes_the_tape(tmp_path):
    # SIGTERM ended the process at once, as Python does by default: the tape stayed unclosed, its WAL beside it
    tape_path = tmp_path / "run.tape"
    proc = spawn(tmp_path, LOOP, lambda script: [str(ROOT / "main.py"), "record", str(script), "-o", str(tape_path)])
    with reaped(proc):
        assert proc.stdout.readline().strip() == "recording"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "(terminated by SIGTERM)" in err and "Traceback" not in err
    assert not os.path.exists(f"{tape_path}-wal")  # closed: one file
    with engine.tape.open(tape_path) as tape:
        assert tape.meta["status"] == "terminated by SIGTERM"
        assert tape.counts()["iterations"] >= 20
