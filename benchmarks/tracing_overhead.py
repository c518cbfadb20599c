"""Debugger tracing overhead on MLP and CNN training steps: each capture tier against no tracing.

    python benchmarks/tracing_overhead.py [--quick] [--device cuda]

Contenders, timed interleaved in one run (one thread each); a debugger is attached around each timed
block of steps, as a person attaches one to a stretch of training, not around every step:
  untraced         nothing attached to the event hub
  no subscriber    a Debugger attached and detached again: the hub is back to its one attribute check
  idle subscriber  one subscriber that does nothing: what the engine itself spends once anybody listens
                   (op, backward, module and optimizer events; optimizer norms only when a debugger asks)
  structure        Debugger("structure"): records, module depth, source lines, value cache
  summary          Debugger("summary"): plus a TensorSummary of every op output and gradient, alerts
  values           Debugger("values"): plus host copies of tensors up to 4096 elements
Bars: no subscriber <= 1.02x, structure <= 1.10x, summary <= 1.30x (of untraced). A second line gives
the tracer's own share: each tier against the idle subscriber.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved, report  # first: it sets one BLAS thread before numpy loads

# isort: split
import numpy as np
from engine_cpu import BATCH, D_IN, D_OUT, HIDDEN, LR, make_data

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger
from engine.debug.records import CAPTURES

BARS = (("no subscriber", 1.02), ("structure", 1.10), ("summary", 1.30))


class MLP(nn.Module):
    def __init__(self, params) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(D_IN, HIDDEN), nn.Linear(HIDDEN, D_OUT)
        with engine.no_grad():  # the same start as benchmarks/engine_cpu.py
            for p, value in zip(self.parameters(), params):
                p.data[...] = value

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc(x.flatten(1))


def training_step(model, x, y):
    """One step of a plain training loop: zero_grad, forward, loss, backward, optimizer step."""
    opt = engine.optim.SGD(model.parameters(), lr=LR)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step, opt


def contenders(model, x, y) -> tuple[dict, dict]:
    """(name -> one training step, name -> what is attached around a timed block of steps)."""
    step, opt = training_step(model, x, y)
    idle = Debugger("summary", model=model, optimizer=opt)

    @contextlib.contextmanager
    def attached_once():  # the hub has had a subscriber and lost it again
        idle.attach()
        idle.detach()
        yield

    @contextlib.contextmanager
    def idle_subscriber():
        off = engine.hub.subscribe(lambda event: None)
        try:
            yield
        finally:
            off()

    steps = dict.fromkeys(("untraced", "no subscriber", "idle subscriber", *CAPTURES), step)
    contexts = {"no subscriber": attached_once, "idle subscriber": idle_subscriber}
    for capture in CAPTURES:
        dbg = Debugger(capture, model=model, optimizer=opt)
        contexts[capture] = lambda dbg=dbg: dbg  # a Debugger attaches on entering, detaches on leaving
    return steps, contexts


def bar_lines(title: str, times: dict) -> None:
    base = times["untraced"]
    verdicts = []
    for name, limit in BARS:
        ratio = times[name] / base
        verdicts.append(f"{name} {ratio:.2f}x <= {limit:.2f}x {'met' if ratio <= limit else 'MISSED'}")
    print(f"{title} bars: " + "; ".join(verdicts), flush=True)
    idle = times["idle subscriber"]
    own = ", ".join(f"{name} {times[name] / idle:.2f}x" for name in ("structure", "summary", "values"))
    print(f"{title} tracer's own share (against the idle subscriber): {own}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: where the step runs")
    args = parser.parse_args(argv)
    rounds, repeat = (3, 2) if args.quick else (15, 10)
    dev = args.device
    print(f"tracing_overhead: numpy {np.__version__}, one thread, device {dev}")

    x, y, params = make_data()
    mlp = MLP(params).to(dev)
    steps, contexts = contenders(mlp, engine.tensor(x, device=dev), engine.tensor(y, device=dev))
    times = interleaved(steps, rounds, repeat, contexts=contexts)
    title = f"MLP {D_IN}-{HIDDEN}-{D_OUT} training step, batch {BATCH}, {dev}"
    report(title, times, "untraced")
    bar_lines(title, times)

    rng = np.random.default_rng(1)
    images = engine.tensor(rng.standard_normal((32, 1, 28, 28)).astype(np.float32), device=dev)
    labels = engine.tensor(rng.integers(0, 10, 32), device=dev)
    steps, contexts = contenders(CNN().to(dev), images, labels)
    times = interleaved(steps, rounds, max(1, repeat // 2), contexts=contexts)
    title = f"CNN conv8-conv16-fc training step, batch 32, 28x28, {dev}"
    report(title, times, "untraced")
    bar_lines(title, times)


if __name__ == "__main__":
    main()
