"""Small models and loops the debugger tests drive."""

from __future__ import annotations

import numpy as np

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import BackwardRecord, EventRecord, OpRecord

TIMEOUT = 10.0  # seconds: a deadlock fails a test instead of hanging it


class MLP(nn.Module):
    """fc1 -> relu -> fc2, with a top-level op between the layers."""

    def __init__(self, d_in: int = 4, hidden: int = 6, d_out: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, d_out)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return self.fc2(h * 2.0)


def batch(n: int = 5, d_in: int = 4, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d_in)).astype(np.float32)
    return engine.tensor(x), engine.tensor(rng.integers(0, classes, n))


def trainer(model, steps: int = 1, lr: float = 0.1):
    """A plain training loop (returns the optimizer and a function running `steps` steps)."""
    opt = engine.optim.SGD(model.parameters(), lr=lr)
    x, y = batch()

    def train(n: int = steps):
        losses = []
        for _ in range(n):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    return opt, train


def label(rec) -> str:
    """A short, comparable name for a record: 'fwd:<key>', 'bwd:<key>', 'opt' or 'mod:<path>:<enter>'."""
    if isinstance(rec, OpRecord):
        return "fwd:" + rec.event.key
    if isinstance(rec, BackwardRecord):
        return "bwd:" + rec.event.key
    if isinstance(rec, EventRecord) and rec.phase == "optimizer":
        return "opt"
    ev = rec.event
    return f"mod:{ev.path}:{'in' if ev.enter else 'out'}" if hasattr(ev, "enter") else "mark"


def steppable(labels):
    return [s for s in labels if not s.startswith(("mod:", "mark"))]
