"""Reading a tape from a script, as the README shows: what a person gets for common slips."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import engine
import engine.tape
from engine.tape import TapeError
from tests.engine.tape.helpers import reaped

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def tape_path(tmp_path):
    path = tmp_path / "run.tape"
    x = engine.randn(4, 3, requires_grad=True)
    with engine.record(path, capture="summary"):
        (x * 2).sum().backward()
    return path


@pytest.mark.parametrize("read", [
    lambda t: t.iterations(), lambda t: list(t.events()), lambda t: t.alerts(), lambda t: t.losses(),
])
def test_reading_after_the_with_block_says_the_tape_is_closed_not_damaged(tape_path, read):
    with engine.tape.open(tape_path) as tape:
        assert read(tape) is not None  # fine inside the block
    with pytest.raises(TapeError) as err:
        read(tape)
    assert str(err.value) == f"{tape_path}: the tape is closed; read it before close(), inside its `with` block"
    assert "damaged" not in str(err.value)


KILLED = """
import sys
import engine
rec = engine.record(sys.argv[1], capture="summary")
x = engine.randn(4, 3, requires_grad=True)
for _ in range(3):
    (x * 2).sum().backward()
assert rec.flush()
print("committed", flush=True)
sys.stdin.read()  # until killed
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_tape_copied_without_its_log_file_says_what_is_missing(tmp_path):
    live = _killed_recording(tmp_path)
    alone, both = tmp_path / "alone", tmp_path / "both"
    for folder in (alone, both):
        folder.mkdir()
    shutil.copy(live / "run.tape", alone / "run.tape")  # what a CI job uploading *.tape keeps
    for name in ("run.tape", "run.tape-wal"):
        shutil.copy(live / name, both / name)
    for _ in range(2):  # the empty log SQLite leaves beside it after a first try changes nothing
        with pytest.raises(TapeError) as err:
            engine.tape.open(alone / "run.tape")
        assert str(err.value) == (f"{alone / 'run.tape'}: the recording was not closed and its log file "
                                  f"run.tape-wal, which holds what was recorded, is missing (copy it next to the tape)")
    with engine.tape.open(both / "run.tape") as tape:  # with its log it opens, with all it committed
        assert tape.meta["status"] == "recording" and tape.counts()["ops"] == 6  # mul and sum, 3 times


def _killed_recording(tmp_path) -> Path:
    """A folder holding run.tape and run.tape-wal of a recording killed with SIGKILL after 6 ops."""
    live = tmp_path / "live"
    live.mkdir()
    (tmp_path / "rec.py").write_text(KILLED)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "rec.py"), str(live / "run.tape")], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    with reaped(proc):
        assert proc.stdout.readline().strip() == "committed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    return live


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="POSIX permissions, which root ignores")
def test_a_killed_tape_in_a_read_only_folder_says_to_copy_it(tmp_path):
    folder = tmp_path / "readonly"
    folder.mkdir()
    live = _killed_recording(tmp_path)
    for name in ("run.tape", "run.tape-wal"):
        shutil.copy(live / name, folder / name)
    folder.chmod(0o555)
    try:
        with pytest.raises(TapeError) as err:
            engine.tape.open(folder / "run.tape")
    finally:
        folder.chmod(0o755)
    assert str(err.value) == (f"{folder / 'run.tape'}: the recording was not closed, and such a tape can be read "
                              f"only in a folder it may write to: copy it and its -wal file to one")


def test_info_of_a_structure_tape_does_not_pass_zero_alerts_off_as_no_nan(tmp_path):
    from engine.tape.info import describe, tape_info

    x = engine.randn(4, 3, requires_grad=True)
    lines = {}
    for capture in ("structure", "summary"):
        path = tmp_path / f"{capture}.tape"
        with engine.record(path, capture=capture):
            ((x * 0).log().sum()).backward()  # -inf: a NaN alert at summary, unchecked at structure
        with engine.tape.open(path) as tape:
            lines[capture] = [line for line in describe(tape_info(tape)).splitlines() if "alerts:" in line]
    assert lines["structure"] == ["  alerts:     0 (a structure tape checks no values: record at summary or "
                                  "values for NaN alerts)"]
    assert lines["summary"] == ["  alerts:     1"]
