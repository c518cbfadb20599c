"""Two optimizers in one recording: the tape names their parameters apart, as a person would recognise them."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
import engine.tape
from engine.events import OptimizerEvent, renamed


class Generator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return F.tanh(self.fc(x))


class Discriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


def _gan(path, capture="summary", steps=3):
    """A generator (the model the recorder finds first) and a discriminator, each with its own Adam."""
    g, d = Generator(), Discriminator()
    rng = np.random.default_rng(0)
    x = engine.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    y = engine.tensor(rng.integers(0, 3, 8))
    with engine.record(path, capture):
        _train_gan(g, d, *_adams(g, d), x, y, steps)
    return g, d


def _adams(*models) -> list:
    return [engine.optim.Adam(m.parameters(), lr=0.01) for m in models]


def _train_gan(g, d, opt_g, opt_d, x, y, steps: int) -> None:
    """`steps` times: a step of the discriminator's optimizer, then one of the generator's."""
    for _ in range(steps):
        opt_d.zero_grad()
        F.cross_entropy(d(g(x).detach()), y).backward()
        opt_d.step()
        opt_g.zero_grad()
        F.cross_entropy(d(g(x)), y).backward()
        opt_g.step()


def _step_names(tape) -> list[set]:
    return [set(ev.weight_norms) for _, ev in tape.optimizer_steps()]


def test_a_second_optimizers_parameters_are_named_by_optimizer_and_module_path(tmp_path):
    path = tmp_path / "gan.tape"
    g, d = _gan(path)
    with engine.tape.open(path) as tape:
        steps = _step_names(tape)
        end = tape.parameters()
    ours = {"fc.weight", "fc.bias"}  # the generator is the model: the model's names
    # the discriminator's Adam stepped first: "Adam" (the generator's, named by the model, is the second)
    theirs = {"Adam:Discriminator.fc.weight", "Adam:Discriminator.fc.bias"}
    assert steps == [theirs, ours] * 3
    # each name holds its own tensor's trained value, not the other model's
    trained = {**dict(g.named_parameters()), **{f"Adam:Discriminator.{n}": p for n, p in d.named_parameters()}}
    assert set(end) == set(trained)
    for name, p in trained.items():
        assert end[name].tensor == p.id, name
        assert end[name].summary.mean == pytest.approx(float(p.array.mean()), rel=1e-6), name


def test_plain_tensors_of_two_optimizers_are_numbered_by_optimizer(tmp_path):
    """No model: the first optimizer to step names its tensor as the script does ("a"), the other is qualified by
    class and number ("SGD#2:b")."""
    path = tmp_path / "plain.tape"
    with engine.record(path, "values"):
        a = engine.tensor(np.ones(3, np.float32), requires_grad=True)
        b = engine.tensor(np.full(3, 2.0, np.float32), requires_grad=True)
        opts = [(engine.optim.SGD([a], lr=0.1), a), (engine.optim.SGD([b], lr=0.1), b)]
        for _ in range(2):
            for opt, p in opts:
                opt.zero_grad()
                (p * p).sum().backward()
                opt.step()
    with engine.tape.open(path) as tape:
        assert _step_names(tape) == [{"a"}, {"SGD#2:b"}] * 2
        end = tape.parameters()
    assert end["a"].tensor == a.id and end["SGD#2:b"].tensor == b.id
    np.testing.assert_array_equal(end["SGD#2:b"].value, b.array)


def test_one_optimizer_keeps_its_names_and_the_replay_equals_the_live_events(tmp_path):
    path = tmp_path / "one.tape"
    live = []
    unsubscribe = engine.hub.subscribe(lambda ev: live.append(ev) if isinstance(ev, OptimizerEvent) else None)
    try:
        with engine.record(path, "summary"):
            a = engine.tensor(np.ones(3, np.float32), requires_grad=True)
            opt = engine.optim.Adam([a], lr=0.1)
            for _ in range(2):
                opt.zero_grad()
                (a * a).sum().backward()
                opt.step()
    finally:
        unsubscribe()
    with engine.tape.open(path) as tape:  # the hub's events call `a` by its place; the debugger by its name
        assert [ev for _, ev in tape.optimizer_steps()] == [renamed(ev, {"group0.0": "a"}) for ev in live]
        assert _step_names(tape) == [{"a"}] * 2


def test_a_tape_naming_two_optimizers_parameters_alike_still_opens(tmp_path):
    """A tape written before the names were qualified reads as it was written."""
    path = tmp_path / "old.tape"
    _gan(path, steps=1)
    with sqlite3.connect(path) as conn:
        for seq, names in conn.execute("SELECT seq, names FROM optimizer_steps").fetchall():
            old = [[n.replace("Adam:Discriminator.fc.", "group0.").replace("weight", "0").replace("bias", "1")
                    if n.startswith("Adam:") else n for n in ns] for ns in json.loads(names)]
            conn.execute("UPDATE optimizer_steps SET names = ? WHERE seq = ?", (json.dumps(old), seq))
    conn.close()
    with engine.tape.open(path) as tape:
        assert _step_names(tape) == [{"group0.0", "group0.1"}, {"fc.weight", "fc.bias"}]


def _live_gan(shared_class: bool, steps: int = 2) -> list[tuple[str, tuple]]:
    """A GAN trained under a live Debugger (no tape): each step's (optimizer, parameter names) as it reported."""
    g, d = (nn.Sequential(nn.Linear(4, 4)), nn.Sequential(nn.Linear(4, 3))) if shared_class else \
        (Generator(), Discriminator())
    opt_g, opt_d = _adams(g, d)
    steps_seen = []
    dbg = engine.debug.Debugger("summary", model=g, optimizer=opt_g)
    dbg.on_record.append(lambda rec: steps_seen.append((rec.event.optimizer, tuple(rec.event.weight_norms)))
                         if isinstance(rec.event, OptimizerEvent) else None)
    with dbg:
        _train_gan(g, d, opt_g, opt_d, engine.randn(8, 4), engine.randint(0, 3, (8,)), steps)
    return steps_seen


def test_a_live_debugger_names_a_second_optimizers_parameters_as_the_tape_does():
    # live, the discriminator's Adam reported "group0.0", "group0.1": the Gradient Flow chart showed numbers
    # where a tape of the same run says which module the parameter belongs to
    steps = _live_gan(shared_class=False)
    # (the discriminator's Adam steps first: it is "Adam", the generator's "Adam#2", as on a tape)
    assert steps[:2] == [("Adam", ("Adam:Discriminator.fc.weight", "Adam:Discriminator.fc.bias")),
                         ("Adam", ("fc.weight", "fc.bias"))]
    assert steps[2:] == steps[:2]
    # two roots of one class: the second called is "Sequential_2", so its path names its parameters
    steps = _live_gan(shared_class=True)
    assert steps[0] == ("Adam", ("Adam:Sequential_2.0.weight", "Adam:Sequential_2.0.bias"))
    assert steps[1][1] == ("0.weight", "0.bias")


class Coupling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.s = nn.Sequential(nn.Linear(2, 2), nn.Tanh())

    def forward(self, x):
        return x * self.s(x).exp()


class Flow(nn.Module):
    """A model that is never called itself: its log_prob calls its layers, as normalizing flows do."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Coupling(), Coupling()])

    def log_prob(self, x):
        for layer in self.layers:
            x = layer(x)
        return -(x * x).sum(-1)


def test_a_model_driven_through_another_method_than_forward_names_its_parameters(tmp_path):
    # the debugger took the first module called (layers.0) for the model: the other coupling's parameters were
    # "group0.4"..., the first's lacked their "layers.0." prefix
    flow = Flow()
    opt = engine.optim.Adam(flow.parameters(), lr=0.01)
    path = tmp_path / "flow.tape"
    with engine.record(path, "summary"):
        for _ in range(2):
            opt.zero_grad()
            (-flow.log_prob(engine.randn(4, 2)).mean()).backward()
            opt.step()
    with engine.tape.open(path) as tape:
        steps = _step_names(tape)
    assert steps == [{name for name, _ in flow.named_parameters()}] * 2
    assert "layers.1.s.0.weight" in steps[0]
