"""`tapescope record | info | export | open`: what a person types and what they get back."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import app.window
import engine.tape
from app.cli import CAPTURES, FORMATS, main
from engine.debug.records import CAPTURES as ENGINE_CAPTURES
from engine.tape.export import FORMATS as ENGINE_FORMATS
from engine.tape.schema import FORMAT_VERSION

ROOT = Path(__file__).resolve().parents[3]

TRAIN = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import engine
    import engine.nn as nn
    import engine.nn.functional as F
    import sibling  # from the script's own folder

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(5, 3), engine.randint(0, 2, (5,))
    for step in range(3):
        opt.zero_grad()
        out = model(x)
        if "--nan" in sys.argv and step == 1:
            with np.errstate(invalid="ignore"):
                out = out + (engine.zeros(1) - 1.0).log()
        F.cross_entropy(out, y).backward()
        opt.step()
    with open(os.environ["SEEN"], "w") as f:
        json.dump({"argv": sys.argv, "name": __name__, "sibling": sibling.VALUE}, f)
    if "--fail" in sys.argv:
        def deep():
            raise ValueError("the script's own error")
        deep()
    if "--exit" in sys.argv:
        sys.exit(int(sys.argv[-1]))
""")


@pytest.fixture
def script(tmp_path, monkeypatch):
    (tmp_path / "sibling.py").write_text("VALUE = 42\n")
    path = tmp_path / "train.py"
    path.write_text(TRAIN)
    monkeypatch.setenv("SEEN", str(tmp_path / "seen.json"))
    return path


def _seen(script) -> dict:
    return json.loads((script.parent / "seen.json").read_text())


def test_cli_tiers_and_formats_match_the_engine():
    assert CAPTURES == ENGINE_CAPTURES and FORMATS == ENGINE_FORMATS


def test_record_runs_the_script_as_python_would(script, tmp_path, capsys):
    out = tmp_path / "run.tape"
    assert main(["record", str(script), "--lr", "0.1", "-o", str(out), "--capture", "structure"]) == 0
    seen = _seen(script)
    assert seen == {"argv": [str(script), "--lr", "0.1"], "name": "__main__", "sibling": 42}
    assert "written to" in capsys.readouterr().err
    with engine.tape.open(out) as tape:
        assert tape.capture == "structure"
        assert tape.iteration_count() == 3
        assert json.loads(tape.meta["command_line"])[:3] == ["tapescope", "record", str(script)]


def test_options_before_the_script_and_arguments_after_a_double_dash(script, tmp_path):
    out = tmp_path / "run.tape"
    assert main(["record", "-o", str(out), str(script), "--", "-o", "theirs", "--capture", "x"]) == 0
    assert _seen(script)["argv"] == [str(script), "-o", "theirs", "--capture", "x"]
    with engine.tape.open(out) as tape:
        assert tape.capture == "summary"  # the default tier


def test_a_failing_script_exits_1_with_its_own_traceback(script, tmp_path, capsys):
    out = tmp_path / "run.tape"
    assert main(["record", str(script), "--fail", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "ValueError: the script's own error" in err
    assert f'File "{script}", line' in err and "in deep" in err
    assert "runpy" not in err and "cli.py" not in err
    with engine.tape.open(out) as tape:  # what ran before the failure is on the tape
        assert tape.iteration_count() == 3


def test_an_inplace_error_names_both_lines_and_becomes_an_alert(tmp_path, capsys):
    path = tmp_path / "inplace.py"
    path.write_text("import engine\nx = engine.ones(3, requires_grad=True)\nh = engine.sigmoid(x * 2)\nh += 1\n"
                    "h.sum().backward()\n")
    out = tmp_path / "run.tape"
    assert main(["record", str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    # the traceback's message names the write (line 4) and the op that saved the tensor (line 3)
    assert f"changed in place at {path}:4 (`h += 1`) after it was saved by sigmoid at {path}:3" in err
    assert "changed in place  first at iteration 0  sigmoid (inplace.py:4)" in err
    with engine.tape.open(out) as tape:
        (alert,) = tape.alerts()
    assert (alert.kind, alert.line) == ("inplace", 4)


@pytest.mark.parametrize(("code", "expected"), [(0, 0), (3, 1)])
def test_sys_exit_of_the_script(script, tmp_path, code, expected):
    assert main(["record", str(script), "--exit", str(code), "-o", str(tmp_path / "r.tape")]) == expected


def test_record_bad_usage_exits_2(script, tmp_path, capsys):
    assert main(["record", str(tmp_path / "missing.py"), "-o", str(tmp_path / "r.tape")]) == 2
    assert "no such script" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["record", str(script)])  # no -o
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main(["record", str(script), "-o", str(tmp_path / "r.tape"), "--capture", "all"])
    assert exit_.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # a cap that rounds to no bytes is a mistake (0 means no cap)
        main(["record", str(script), "-o", str(tmp_path / "r.tape"), "--max-size", "0.0001"])
    assert exit_.value.code == 2 and "a size cap must be at least one byte, not '0.0001'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["record", str(script), "-o", str(tmp_path / "r.tape"), "--max-size", "lots"])
    assert exit_.value.code == 2 and "not a size: 'lots'" in capsys.readouterr().err


@pytest.fixture
def tape_with_alert(script, tmp_path):
    out = tmp_path / "alert.tape"
    assert main(["record", str(script), "--nan", "-o", str(out)]) == 0
    return out


def test_info_human_and_json(tape_with_alert, script, capsys):
    capsys.readouterr()
    assert main(["info", str(tape_with_alert)]) == 0
    text = capsys.readouterr().out
    assert f"tape format {FORMAT_VERSION}" in text and "iterations: 3 (0..2)" in text
    assert "iteration 1: NaN/Inf (forward), 'log' at " in text  # the kind in words, as `record` prints it
    assert main(["info", str(tape_with_alert), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format_version"] == FORMAT_VERSION and info["iterations"] == 3 and info["edits"] == 0
    assert info["events"] > info["ops"] > 0
    alert = info["alerts"][0]
    assert {k: alert[k] for k in ("kind", "op", "module", "file", "iteration")} == \
        {"kind": "nonfinite_forward", "op": "log", "module": "", "file": str(script), "iteration": 1}
    assert isinstance(alert["line"], int) and alert["line"] > 0


@pytest.mark.parametrize("fmt", ["json", "dot", "perfetto"])
def test_export_writes_the_file_quietly_when_not_on_a_terminal(tape_with_alert, tmp_path, fmt, capsys):
    capsys.readouterr()
    out = tmp_path / f"out.{fmt}"
    assert main(["export", str(tape_with_alert), "--format", fmt, "-o", str(out)]) == 0
    text = out.read_text()
    if fmt == "dot":
        assert text.startswith("digraph")
    else:
        assert json.loads(text)
    assert capsys.readouterr().err == ""  # no progress bar when stderr is not a terminal


def run_with_stderr_on_a_terminal(args: list[str]) -> tuple[int, bytes]:
    """`python main.py *args` with its stderr on a 100-column pty: its exit status and what the terminal showed."""
    import fcntl
    import pty
    import struct
    import termios

    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal's size
    command = [sys.executable, str(ROOT / "main.py"), *args]
    proc = subprocess.run(command, stderr=secondary, stdout=subprocess.PIPE, timeout=120)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO on Linux once the script's end is closed and read dry
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    return proc.returncode, shown


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_export_shows_progress_on_a_terminal(tape_with_alert, tmp_path):
    returncode, shown = run_with_stderr_on_a_terminal(
        ["export", str(tape_with_alert), "--format", "json", "-o", str(tmp_path / "o.json")])
    assert returncode == 0
    assert b"export json" in shown and b"event" in shown


@pytest.mark.parametrize("command", [["info"], ["info", "--json"], ["open"],
                                     ["export", "--format", "json", "-o", "x.json"]])
def test_a_bad_tape_is_one_line_and_exit_2(tmp_path, command, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.tape"
    bad.write_bytes(b"not a tape at all" * 10)
    opened = []
    monkeypatch.setattr(app.window, "run_app", lambda *a: opened.append(a) or 0)
    assert main([command[0], str(bad), *command[1:]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a tape" in err and "Traceback" not in err
    assert not opened and not (tmp_path / "x.json").exists()


def test_a_bad_tape_in_a_real_process_prints_no_traceback(tmp_path):
    bad = tmp_path / "bad.tape"
    bad.write_bytes(b"SQLite format 3\x00" + bytes(50))
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "info", str(bad)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == f"tapescope info: {bad}: damaged tape (truncated)"


def test_open_validates_then_starts_the_app(tape_with_alert, monkeypatch):
    opened = []
    monkeypatch.setattr(app.window, "run_app", lambda *a: opened.append(a) or 0)
    assert main(["open", str(tape_with_alert)]) == 0
    assert opened


def test_no_arguments_still_opens_the_app(monkeypatch):
    opened = []
    monkeypatch.setattr(app.window, "run_app", lambda *a: opened.append(a) or 0)
    assert main([]) == 0
    assert opened


ONE_OP = "import engine\nengine.randn(2) + 1\n"


@pytest.mark.parametrize("where", ["missing folder", "under a file", "empty"])
def test_record_to_a_path_that_cannot_be_written_is_one_line_and_exit_2(script, tmp_path, where, capsys):
    output = {"missing folder": str(tmp_path / "no" / "r.tape"), "under a file": str(script / "r.tape"),
              "empty": ""}[where]
    assert main(["record", str(script), "-o", output]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tapescope record: cannot record") and err.count("\n") == 1
    assert not (script.parent / "seen.json").exists()  # refused before the script ran


def test_record_of_a_folder_says_it_is_a_folder(tmp_path, capsys):
    assert main(["record", str(tmp_path), "-o", str(tmp_path / "r.tape")]) == 2
    assert capsys.readouterr().err == f"tapescope record: not a script: {tmp_path} is a folder\n"


@pytest.mark.parametrize("imports_torch", [False, True])
def test_record_of_a_script_that_runs_no_engine_op_says_why_the_tape_is_empty(tmp_path, capsys, monkeypatch,
                                                                             imports_torch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    script = tmp_path / "plain.py"
    # a stand-in for `import torch` (the test must not depend on PyTorch being installed)
    script.write_text("import sys, types\n" + ("sys.modules['torch'] = types.ModuleType('torch')\n" * imports_torch)
                      + "print(sum(range(4)))\n")
    assert main(["record", str(script), "-o", str(tmp_path / "plain.tape")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("tapescope record: 0 events (summary) written to")
    assert err[1] == ("  the script imported PyTorch, whose ops tapescope cannot see: import the engine in its place "
                      "(import engine as torch, import engine.nn as nn)" if imports_torch else
                      "  the script ran no engine op, so there was nothing to record: does it build and run its "
                      "model with engine?")


def test_counts_of_one_are_singular(tmp_path, capsys):
    script = tmp_path / "one.py"
    script.write_text(ONE_OP)
    tape = tmp_path / "one.tape"
    assert main(["record", str(script), "-o", str(tape)]) == 0
    assert "tapescope record: 1 event (summary) written to" in capsys.readouterr().err
    assert main(["info", str(tape)]) == 0
    assert "  sources:    1 file\n" in capsys.readouterr().out


def test_export_onto_its_own_tape_is_refused(tape_with_alert, tmp_path, capsys):
    link = tmp_path / "link.json"
    link.symlink_to(tape_with_alert)
    for output in (tape_with_alert, link):
        assert main(["export", str(tape_with_alert), "--format", "json", "-o", str(output)]) == 2
        assert "it is the tape being exported" in capsys.readouterr().err
    with engine.tape.open(tape_with_alert) as tape:
        assert tape.iteration_count() == 3


def test_export_of_an_iteration_the_tape_lacks_is_refused(tape_with_alert, tmp_path, capsys):
    out = tmp_path / "g.dot"
    assert main(["export", str(tape_with_alert), "--format", "dot", "-o", str(out), "--iteration", "7"]) == 2
    assert capsys.readouterr().err == \
        f"tapescope export: {tape_with_alert} has no iteration 7 (it holds iterations 0..2)\n"
    assert main(["export", str(tape_with_alert), "--format", "json", "-o", str(out), "--iteration", "1"]) == 2
    assert "--iteration applies to --format dot only" in capsys.readouterr().err
    assert not out.exists()


def test_a_failed_export_leaves_the_earlier_file_as_it_was(tape_with_alert, tmp_path, capsys):
    import shutil
    import sqlite3

    damaged = tmp_path / "damaged.tape"
    shutil.copyfile(tape_with_alert, damaged)
    conn = sqlite3.connect(damaged)
    with conn:
        conn.execute("UPDATE events SET columns = x'00' WHERE first_seq = (SELECT max(first_seq) FROM events)")
    conn.close()
    out = tmp_path / "out.json"
    out.write_text("the export of yesterday")
    assert main(["export", str(damaged), "--format", "json", "-o", str(out)]) == 2
    assert "damaged tape" in capsys.readouterr().err
    assert out.read_text() == "the export of yesterday"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.json"]


def test_info_into_a_closed_pipe_is_quiet(tape_with_alert):
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "info", str(tape_with_alert)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `| head -0` would, before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert err == ""


def test_info_of_a_tape_not_closed(tmp_path):
    from engine.tape.info import describe, tape_info

    path = tmp_path / "open.tape"
    recorder = engine.tape.record(path)
    try:
        engine.randn(2) + 1
        recorder.flush()
        with engine.tape.open(path) as tape:
            info = tape_info(tape)
        assert info["status"] == "recording"
        assert info["size_bytes"] == os.path.getsize(path) + os.path.getsize(f"{path}-wal")
        assert "(not closed: still recording, or the recorder was killed)" in describe(info).splitlines()[0]
    finally:
        recorder.close()


def test_a_tape_named_like_an_sqlite_memory_database_is_still_a_file(tmp_path, monkeypatch):
    script = tmp_path / "one.py"
    script.write_text(ONE_OP)
    monkeypatch.chdir(tmp_path)
    assert main(["record", str(script), "-o", ":memory:"]) == 0
    with engine.tape.open(tmp_path / ":memory:") as tape:
        assert tape.counts()["events"] == 1
