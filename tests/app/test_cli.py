"""The command line and the window it opens."""

import subprocess
import sys
from pathlib import Path

from app.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("tapescope ")


def test_main_py_and_console_script_share_the_entry_point():
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.startswith("tapescope ")


def test_bad_usage_exits_2():
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--no-such-flag"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unrecognized arguments" in out.stderr
