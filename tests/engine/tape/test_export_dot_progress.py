"""A DOT export reports its progress like the others, so a command line shows a bar and the app can cancel it."""

import io
import sys

import numpy as np
import pytest

import engine
import engine.tape
from engine.tape.export import export, progress_total
from tests.engine.tape.test_cli import run_with_stderr_on_a_terminal

OPS = 3000  # one iteration's forward: 3000 ops, then as many backward nodes


def record_long_iteration(path) -> None:
    """Two training steps of a chain of OPS multiplications (a long unrolled loop)."""
    with engine.record(path, "structure", max_bytes=0):
        w = engine.tensor(np.ones(4, np.float32), requires_grad=True)
        opt = engine.optim.SGD([w], lr=0.01)
        for _ in range(2):
            x = w
            for _ in range(OPS):
                x = x * 1.0001
            x.sum().backward()
            opt.step()
            opt.zero_grad()


@pytest.fixture(scope="module")
def long_tape(tmp_path_factory):
    path = tmp_path_factory.mktemp("dot") / "long.tape"
    record_long_iteration(path)
    return path


def test_dot_reports_the_events_it_reads_and_the_ops_it_writes(long_tape):
    reports = []
    out = io.StringIO()
    with engine.tape.open(long_tape) as tape:
        total = progress_total(tape, "dot")
        info = tape.iteration(1)
        export(tape, "dot", out, progress=reports.append)
        assert progress_total(tape, "dot", 0) == tape.iteration(0).events + tape.iteration(0).ops
    assert total == info.events + info.ops > 2 * OPS
    assert sum(reports) == total and len(reports) > 3  # in steps, not once at the end
    # every op of the drawn iteration, each named by the line `x = x * 1.0001` that the loop runs again and again
    assert out.getvalue().count("[label=\"x\\nmul\\n") == OPS


def test_a_progress_callback_that_raises_stops_a_dot_export_early(long_tape):
    class Stop(Exception):
        pass

    reports = []

    def cancel_at_second(n):
        reports.append(n)
        if len(reports) == 2:
            raise Stop

    out = io.StringIO()
    with engine.tape.open(long_tape) as tape, pytest.raises(Stop):
        export(tape, "dot", out, progress=cancel_at_second)
    assert len(reports) == 2 and out.getvalue() == ""  # stopped while reading, before the graph was written


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_export_dot_shows_a_progress_bar_on_a_terminal(long_tape, tmp_path):
    returncode, shown = run_with_stderr_on_a_terminal(
        ["export", str(long_tape), "--format", "dot", "-o", str(tmp_path / "o.dot")])
    assert returncode == 0
    assert b"export dot" in shown and b"%|" in shown  # a bar with a percentage: it knows how far it is
    assert (tmp_path / "o.dot").read_text().startswith("digraph")
