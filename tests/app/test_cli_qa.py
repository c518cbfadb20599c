"""`tapescope record` from CI: a run that fails or is interrupted leaves a tape that says so."""

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import engine.tape
from app.cli import main
from tests.engine.tape.helpers import reaped

ROOT = Path(__file__).resolve().parents[2]

TRAIN = textwrap.dedent("""
    import sys
    import engine
    import engine.nn as nn

    model = nn.Linear(3, 2)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x = engine.randn(4, 3)
    for step in range(3):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
    if "--fail" in sys.argv:
        raise ValueError("the data loader ran dry")
    if "--exit" in sys.argv:
        sys.exit(3)
    if "--forever" in sys.argv:
        print("ready", flush=True)
        while True:
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            opt.step()
""")


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(TRAIN)
    return path


def _status(tape_path) -> str:
    with engine.tape.open(tape_path) as tape:
        return tape.meta["status"]


def test_a_script_that_raises_leaves_a_tape_that_names_the_error(script, tmp_path, capsys):
    out = tmp_path / "run.tape"
    assert main(["record", str(script), "--fail", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "(the recorded code raised ValueError: the data loader ran dry)" in err  # the summary line
    assert _status(out) == "the recorded code raised ValueError: the data loader ran dry"
    with engine.tape.open(out) as tape:  # the three steps before the failure are there, parameters too
        assert tape.iteration_count() == 3
        assert tape.parameter("weight").iteration == 2
    assert main(["info", str(out)]) == 0
    assert "(the recorded code raised ValueError: the data loader ran dry)" in capsys.readouterr().out.splitlines()[0]


def test_a_script_that_raises_before_its_first_op_keeps_its_source_and_the_line_that_raised(tmp_path, capsys):
    # the Source panel of such a tape said "No source yet": no op had named a file
    early = tmp_path / "early.py"
    early.write_text("import engine\nimport helper\n\nhelper.load('missing.csv')\n")
    (tmp_path / "helper.py").write_text("def load(path):\n    raise FileNotFoundError(path)\n")
    out = tmp_path / "run.tape"
    sys.path.insert(0, str(tmp_path))
    try:
        assert main(["record", str(early), "-o", str(out)]) == 1
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("helper", None)
    capsys.readouterr()
    with engine.tape.open(out) as tape:
        assert tape.counts().get("op", 0) == 0
        assert "helper.load('missing.csv')" in tape.source(str(early))
        assert "raise FileNotFoundError(path)" in tape.source(str(tmp_path / "helper.py"))
        assert json.loads(tape.meta["raised_at"]) == [str(tmp_path / "helper.py"), 2, "load",
                                                      "raise FileNotFoundError(path)"]


def test_a_script_with_a_syntax_error_is_not_called_complete(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("import engine\nx = (\n")
    out = tmp_path / "run.tape"
    assert main(["record", str(bad), "-o", str(out)]) == 1
    assert "SyntaxError" in capsys.readouterr().err
    assert _status(out).startswith("the recorded code raised SyntaxError")


@pytest.mark.parametrize(("args", "status"), [([], "complete"), (["--exit"], "the script exited with 3")])
def test_the_status_of_a_finished_run_and_of_sys_exit(script, tmp_path, args, status):
    out = tmp_path / "run.tape"
    assert main(["record", str(script), *args, "-o", str(out)]) == (1 if args else 0)
    assert _status(out) == status


def test_ctrl_c_during_record_closes_the_tape_as_interrupted(script, tmp_path):
    out = tmp_path / "run.tape"
    # a test run started in the background (`cmd &`) ignores SIGINT, and so would the child: it must take
    # Ctrl-C as a terminal gives it (a handler, unlike an ignored signal, is reset to the default by exec)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "record", str(script), "--forever", "-o", str(out)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    with reaped(proc):
        assert proc.stdout.readline().strip() == "ready"  # the script is in its endless loop
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    summary = [line for line in err.splitlines() if line.startswith("tapescope record: ")]  # the alerts under it
    assert "(interrupted by Ctrl-C)" in summary[-1]
    assert _status(out) == "interrupted by Ctrl-C"
    with engine.tape.open(out) as tape:
        assert tape.iteration_count() >= 3 and tape.parameter_names() == ["bias", "weight"]


def test_recorder_in_a_with_block_notes_the_exception(tmp_path):
    out = tmp_path / "run.tape"
    x = engine.randn(4, 3, requires_grad=True)
    with pytest.raises(KeyError), engine.record(out, capture="summary"):
        (x * 2).sum().backward()
        raise KeyError("batch")
    assert _status(out) == "the recorded code raised KeyError: 'batch'"
    with engine.record(out, capture="summary"):
        (x * 2).sum().backward()
    assert _status(out) == "complete"


@pytest.mark.parametrize(("tail", "message"), [
    (["-o", "run.tape", "--capture"], "argument --capture: expected one argument"),
    (["-o"], "argument -o/--output: expected one argument"),
])
def test_an_option_missing_its_value_at_the_end_is_refused_not_passed_to_the_script(script, tmp_path, capsys,
                                                                                   monkeypatch, tail, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["record", str(script), *tail])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"tapescope record: error: {message}"
    assert not (tmp_path / "run.tape").exists()  # nothing ran, nothing recorded


def test_ctrl_c_during_an_export_is_one_line_and_leaves_no_file(script, tmp_path, capsys, monkeypatch):
    tape = tmp_path / "run.tape"
    assert main(["record", str(script), "-o", str(tape)]) == 0
    capsys.readouterr()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("engine.tape.export.export", interrupted)
    out = tmp_path / "run.json"
    assert main(["export", str(tape), "--format", "json", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == "tapescope export: interrupted by Ctrl-C\n"  # no traceback
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_a_multi_line_exception_message_is_kept_on_one_line(tmp_path):
    out = tmp_path / "run.tape"
    w = engine.nn.Parameter(engine.zeros(2))
    with pytest.raises(KeyError), engine.record(out, capture="structure"):
        {}[w]  # a custom optimizer's state lookup: the key is the parameter's whole printout
    status = _status(out)
    assert status.startswith("the recorded code raised KeyError: Parameter containing: tensor([0., 0.]")
    assert "\n" not in status and len(status) < 220
