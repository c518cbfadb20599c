"""The README works as written: its script blocks run, one after the other as a person pastes them, and its table
of commands lists every option each command takes."""

import os
import re
import subprocess
import sys
from pathlib import Path

from app.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_script_blocks_run_as_written(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    script = tmp_path / "readme.py"
    script.write_text("\n".join(blocks))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout.splitlines()
    assert out[0] == "engine.Size([10, 784])"  # what its comment says
    # the tape's block: one line per optimizer step, each iteration's loss beside its gradient norm, then the
    # iterations, one more than the steps (the evaluation after the last step made it)
    steps = [line.split() for line in out if re.fullmatch(r"\d+ \S+ \S+", line)]
    assert [int(s[0]) for s in steps] == list(range(20)) and all(float(s[1]) > 0 for s in steps)
    assert any(line.startswith("21 {20: ") for line in out)
    # the breakpoint's block: no terminal here, so one line on stderr, and the run went on to its stops
    hits = [line for line in done.stderr.splitlines() if line.startswith("tapescope: breakpoint 1 ")]
    assert hits and out[-len(hits)].startswith("Sequential.0/linear:0 ")


def _rows() -> dict[str, str]:
    """The README's table of commands: command name -> its row."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `tapescope (\w+)[^|]*(?:\\\|[^|]*)*\|.*$", README, re.M)}


def test_the_table_of_commands_lists_every_option_of_each():
    rows = _rows()
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert set(commands) <= set(rows)
    for name, parser in commands.items():
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert any(f"{option} " in rows[name] or f"{option}`" in rows[name] or f"{option}]" in rows[name]
                           for option in action.option_strings), f"`tapescope {name}` row lacks {action.option_strings}"
