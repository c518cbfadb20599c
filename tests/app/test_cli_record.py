"""`tapescope record` of a script that fails: the tape says how the run ended whatever becomes of stderr, holds only
the person's own source files, and an existing recording is not overwritten unless asked."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import engine.tape
from app.cli import main

ROOT = Path(__file__).resolve().parents[2]

FAILS = textwrap.dedent("""
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    target = engine.randint(0, 2, (6,))
    for xb in [engine.randn(6, 4) for _ in range(3)] + [engine.randn(6, 5)]:  # the last has a feature too many
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), target)
        loss.backward()
        opt.step()
        print("batch done")
""")
ERROR = "ShapeError: linear: input has 5 features but weight expects 4"


@pytest.fixture
def fails(tmp_path):
    path = tmp_path / "fails.py"
    path.write_text(FAILS)
    return path


def test_a_failure_is_on_the_tape_and_the_exit_code_though_stderr_is_a_closed_pipe(fails, tmp_path):
    # `tapescope record fails.py -o x.tape 2>&1 | head`, once head has quit: the tape said "complete", exit 0
    tape = tmp_path / "pipe.tape"
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the traceback is written
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "record", str(fails), "-o", str(tape)],
                              stdout=subprocess.DEVNULL, stderr=write, cwd=tmp_path, timeout=120)
    finally:
        os.close(write)
    assert proc.returncode == 1  # as `python fails.py` exits
    with engine.tape.open(tape) as t:
        assert t.meta["status"].startswith(f"the recorded code raised {ERROR}")
        assert json.loads(t.meta["raised_at"])[:2] == [str(fails), 11]
        seq, message = t.raised_op()
        assert message.startswith(ERROR) and t.event(seq).op == "linear"
        assert "".join(row.text for row in t.output()).rstrip().endswith(message)  # the whole traceback is kept


def test_the_sources_of_a_failed_run_are_the_scripts_not_the_tools(fails, tmp_path, capsys):
    tape = tmp_path / "run.tape"
    assert main(["record", str(fails), "-o", str(tape)]) == 1
    capsys.readouterr()
    with engine.tape.open(tape) as t:
        assert list(t.sources()) == [str(fails)]  # app/cli.py, which ran it, was copied in too
        assert main(["info", str(tape)]) == 0
    assert "  sources:    1 file\n" in capsys.readouterr().out


def test_record_refuses_to_overwrite_a_recording_unless_forced(fails, tmp_path, capsys):
    tape = tmp_path / "run.tape"
    assert main(["record", str(fails), "-o", str(tape)]) == 1
    capsys.readouterr()
    before = tape.read_bytes()
    assert main(["record", str(fails), "-o", str(tape)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tape) in err and "--force" in err
    assert tape.read_bytes() == before  # the recording is as it was
    assert main(["record", str(fails), "-o", str(tape), "--force"]) == 1
    assert "written to" in capsys.readouterr().err
    with engine.tape.open(tape) as t:
        assert t.meta["created"] != "" and t.meta["status"].startswith("the recorded code raised")


def test_two_copies_of_a_script_each_name_their_own_file(tmp_path, capsys):
    # code objects compare equal without their file: the second copy's ops were said to run in the first one
    tapes = {}
    for folder in ("first", "second"):
        (tmp_path / folder).mkdir()
        script = tmp_path / folder / "fails.py"
        script.write_text(FAILS)
        tapes[script] = tmp_path / f"{folder}.tape"
        assert main(["record", str(script), "-o", str(tapes[script])]) == 1
    capsys.readouterr()
    for script, tape in tapes.items():
        with engine.tape.open(tape) as t:
            assert list(t.sources()) == [str(script)]
            files = {t.stack(row.seq)[0].file for row in t.rows() if row.kind == "op"}
        assert files == {str(script)}
