"""A small model and a recorded training run that the tape tests share."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import sqlite3
from dataclasses import dataclass, field, fields

import numpy as np

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import BackwardRecord, Debugger, OpRecord, TensorSummary


class MLP(nn.Module):
    """fc1 -> relu -> fc2."""

    def __init__(self, d_in: int = 6, hidden: int = 5, d_out: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, d_out)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


@dataclass
class Run:
    """What a recorded run saw live: hub events, the debugger's records, and the model."""

    events: list = field(default_factory=list)
    records: list = field(default_factory=list)
    model: MLP | None = None


def train(steps: int, model: MLP | None = None, nan_at: int = -1, after_step=None):
    """Run `steps` training steps of a fresh MLP (a NaN-making op at step `nan_at`, `after_step(i)` after step i);
    returns the model."""
    model = model or MLP()
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    x = engine.tensor(rng.standard_normal((4, 6)).astype(np.float32))
    y = engine.tensor(rng.integers(0, 3, 4))
    for i in range(steps):
        opt.zero_grad()
        out = model(x)
        if i == nan_at:
            with np.errstate(invalid="ignore"):
                out = out + (engine.zeros(1) - 1.0).log()  # log(-1): the NaN's origin
        F.cross_entropy(out, y).backward()
        opt.step()
        if after_step is not None:
            after_step(i)
    return model


def record_run(path, capture: str = "summary", steps: int = 3, nan_at: int = -1, flush_every: int = 0,
               **options) -> Run:
    """Record `steps` steps to `path`, keeping what the hub and the recording debugger delivered.

    flush_every: commit the events of each `flush_every` steps as one batch, and only then, so that the tape's
    chunks of events and its pages come out the same in every run (left to itself the writer takes whatever
    is queued when it wakes, which the machine's speed decides); tests that damage a chosen page need that."""
    if flush_every:  # the writer wakes for nothing but the flushes
        options.update(flush_interval=3600.0, max_lag=3600.0, batch_events=1 << 20)
    run = Run()
    unsubscribe = engine.hub.subscribe(run.events.append)
    model = MLP()
    dbg = Debugger(capture, model=model, interactive=False, cache_bytes=0, on_record=run.records.append)
    try:
        with dbg, engine.record(path, debugger=dbg, **options) as recorder:
            def flush(i: int) -> None:
                if (i + 1) % flush_every == 0:
                    assert recorder.flush(60.0), "the tape's writer did not commit a batch in a minute"

            train(steps, model, nan_at, flush if flush_every else None)
    finally:
        unsubscribe()
    run.model = model
    return run


def same_summary(a: TensorSummary | None, b: TensorSummary | None) -> bool:
    """Field-by-field equality (NaN equals NaN; the histogram compared by value)."""
    if a is None or b is None:
        return a is b
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            if not np.array_equal(x, y):
                return False
        elif isinstance(x, tuple) and x and isinstance(x[0], float):  # samples may hold NaN
            if len(x) != len(y) or not all(_same_float(u, v) for u, v in zip(x, y)):
                return False
        elif isinstance(x, float):
            if not _same_float(x, y):
                return False
        elif x != y:
            return False
    return True


def _same_float(x, y) -> bool:
    return x == y or (isinstance(y, float) and math.isnan(x) and math.isnan(y))


def same_record(a, b) -> bool:
    """A replayed record equals a live one: event, place, source, summaries and values."""
    if type(a) is not type(b) or a.event != b.event or a.iteration != b.iteration or a.depth != b.depth:
        return False
    if isinstance(a, OpRecord):
        return (a.source == b.source and a.stack == b.stack and same_summary(a.summary, b.summary)
                and _same_array(a.value, b.value))
    if isinstance(a, BackwardRecord):
        return (same_summary(a.grad_output, b.grad_output) and len(a.grad_inputs) == len(b.grad_inputs)
                and all(same_summary(x, y) for x, y in zip(a.grad_inputs, b.grad_inputs))
                and len(a.values) == len(b.values) and all(map(_same_array, a.values, b.values))
                and (a.forward is None) == (b.forward is None))
    return a.phase == b.phase


def _same_array(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a.dtype == b.dtype and np.array_equal(a, b)


@contextlib.contextmanager
def reaped(proc):
    """`proc` for the block; killed and waited for if the block leaves it running (an assertion failed)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def copy_of(src, tmp_path, name: str = "copy.tape"):
    """A copy of the tape `src` in `tmp_path`, to damage without touching the original."""
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def as_format_1(path) -> None:
    """Rewrite a tape's optimizer steps as format 1 wrote them: update and weight norms, no gradient norms."""
    con = sqlite3.connect(path)
    with con:
        for seq, names_json, norms in con.execute("SELECT seq, names, norms FROM optimizer_steps").fetchall():
            update, weight, _grad = json.loads(names_json)
            con.execute("UPDATE optimizer_steps SET names = ?, norms = ? WHERE seq = ?",
                        (json.dumps([update, weight]), norms[:8 * (len(update) + len(weight))], seq))
        con.execute("UPDATE meta SET value = '1' WHERE key = 'format_version'")
    con.close()


def recorded_script(folder, source: str, *options: str, code: int = 0, name: str = "run"):
    """`source` written to folder/NAME.py and recorded by `tapescope record` (with `options`, e.g. "--capture",
    "values") to folder/NAME.tape, exiting with `code`; the tape's path."""
    from app.cli import main

    script = folder / f"{name}.py"
    script.write_text(source)
    tape = folder / f"{name}.tape"
    assert main(["record", str(script), "-o", str(tape), *options]) == code
    return tape
