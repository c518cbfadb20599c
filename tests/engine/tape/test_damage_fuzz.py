"""Random bit flips in the pages of a tape's tables, as a failing disk or a bad copy makes them: `tapescope info`,
`info --json`, each export and a replay of the damaged tape end, each with exit 0 or 2 and at most one line on
stderr, never a traceback or a hang.

A hang cannot be stopped inside the test's own process, so the commands run in a child process with a time limit;
the child prints each command before it runs it, so a hang names the tape and the command."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import sqlite3
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from tests.engine.tape.helpers import record_run

ROOT = Path(__file__).resolve().parents[3]
TABLES = ("summaries", "events", "iterations", "nodes", "frames", "stacks", "output", "parameters",
          "optimizer_steps", "alerts", "sources")
SEEDS = 8
LIMIT = 120  # seconds for all the commands on all the tapes (about 6 here)
FLIPS, PAGES = 64, 3  # bits flipped, in this many pages of the table (or all it has, if fewer)
COMMANDS = (("info",), ("info", "--json"), ("export", "--format", "json"), ("export", "--format", "dot"),
            ("export", "--format", "perfetto"), ("replay",))


def flipped(data: bytes, pages: list[int], page_size: int, rng: random.Random) -> bytes:
    """`data` with FLIPS random bits flipped in PAGES of `pages` (1-based page numbers)."""
    out = bytearray(data)
    chosen = rng.sample(pages, min(PAGES, len(pages)))
    for _ in range(FLIPS):
        page = rng.choice(chosen)
        out[(page - 1) * page_size + rng.randrange(page_size)] ^= 1 << rng.randrange(8)
    return bytes(out)


def table_pages(path) -> tuple[dict[str, list[int]], int]:
    """The page numbers of each table and index of a tape (SQLite's dbstat), and its page size."""
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        pages: dict[str, list[int]] = {}
        for name, page in con.execute("SELECT name, pageno FROM dbstat"):
            pages.setdefault(name, []).append(page)
        return pages, con.execute("PRAGMA page_size").fetchone()[0]
    finally:
        con.close()


def run_commands(paths: list[str]) -> None:
    """In the child: each command on each tape, one JSON line before it starts and one with how it ended."""
    from app.cli import main
    from app.replay import ReplaySession
    from engine.tape import TapeError

    for path in paths:
        for command in COMMANDS:
            print(json.dumps({"start": [path, *command]}), flush=True)
            err = io.StringIO()
            try:
                if command == ("replay",):
                    try:
                        replay = ReplaySession(path)
                        replay.damage_text()
                        replay.close()
                        code = 0
                    except TapeError as bad:
                        err.write(f"{bad}\n")
                        code = 2
                else:
                    args = [command[0], path, *command[1:]]
                    if command[0] == "export":
                        args += ["-o", f"{path}.{command[2]}"]
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                        code = main(args)
            except BaseException as crash:  # what the test reports: the traceback's last lines
                code, err = "crash", io.StringIO("".join(traceback.format_exception(crash)[-4:]))
            print(json.dumps({"end": [path, *command], "code": code, "stderr": err.getvalue()}), flush=True)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> list[str]:
    """Copies of one recorded run (with a NaN, so with alerts), each with bits flipped in pages of one table."""
    folder = tmp_path_factory.mktemp("fuzz")
    sound = folder / "sound.tape"
    record_run(sound, capture="summary", steps=12, nan_at=8, flush_every=3)  # the same pages in every run
    pages, page_size = table_pages(sound)
    data = sound.read_bytes()
    paths = []
    for table in TABLES:
        for seed in range(SEEDS):
            path = folder / f"{table}-{seed}.tape"
            path.write_bytes(flipped(data, pages[table], page_size, random.Random(f"{table} {seed}")))
            paths.append(str(path))
    return paths


def test_every_command_ends_on_tapes_with_flipped_bits(damaged):
    code = "import sys; from tests.engine.tape.test_damage_fuzz import run_commands; run_commands(sys.argv[1:])"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    try:
        done = subprocess.run([sys.executable, "-c", code, *damaged], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=LIMIT)
    except subprocess.TimeoutExpired as hung:
        out = hung.stdout.decode() if isinstance(hung.stdout, bytes) else hung.stdout or ""
        last = [json.loads(line) for line in out.splitlines()][-1:]
        pytest.fail(f"a command did not end in {LIMIT} s: {last}")
    assert done.returncode == 0, done.stderr[-2000:]
    ends = [e for e in map(json.loads, done.stdout.splitlines()) if "end" in e]
    assert len(ends) == len(damaged) * len(COMMANDS)
    bad = [e for e in ends if e["code"] not in (0, 2) or len(e["stderr"].strip().splitlines()) > 1
           or "Traceback" in e["stderr"]]
    assert not bad, bad[:5]
    assert sum(e["code"] == 2 for e in ends) > len(ends) // 4  # the flips did damage what the commands read
