"""Losses come from backward() calls only: the roots of autograd.grad() calls (MAML's inner loop, a gradient
penalty, a gradient checked after training) are differentiated, not minimised, and make no loss curve, live
and on a tape alike; a tape from before the calls were told apart reads as it did."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
import engine.tape
from engine.debug import BackwardRecord, Debugger
from engine.debug.losses import LossCurves
from engine.events import BackwardEvent, hub
from tests.engine.debug.test_losses import Critic


def traced(fn, path, **options):
    """Run `fn` under a debugger recording to `path`: (live curves, the records, tape curves)."""
    records = []
    dbg = Debugger("summary", interactive=False, cache_bytes=0, on_record=records.append)
    with dbg, engine.record(path, debugger=dbg, **options):
        fn()
    live = LossCurves()
    for k in range(0, len(records), 5):  # in batches, as a session drains them
        live.feed(records[k:k + 5])
    with engine.tape.open(path) as tape:
        return live.curves(), records, tape.loss_curves()


class SineNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(1, 8), nn.Linear(8, 1)

    def forward(self, x):
        return self.fc2(engine.tanh(self.fc1(x)))


def maml(iterations: int = 3, tasks: int = 2, inner_steps: int = 2):
    """A MAML loop (inner SGD by autograd.grad with create_graph, outer Adam over the tasks' query losses),
    then a first-order gradient check by grad() without create_graph; returns (train, outer losses, inner)."""
    engine.manual_seed(0)
    rng = np.random.default_rng(0)
    model = SineNet()
    opt = engine.optim.Adam(model.parameters(), lr=1e-2)
    outers, inners = [], []

    def task():
        amp, phase = rng.uniform(0.5, 2.0), rng.uniform(0, np.pi)
        xs = rng.uniform(-3, 3, (8, 1)).astype(np.float32)
        ys = (amp * np.sin(xs - phase)).astype(np.float32)
        return engine.tensor(xs[:4]), engine.tensor(ys[:4]), engine.tensor(xs[4:]), engine.tensor(ys[4:])

    def adapt(params, xs, ys, create_graph=True):
        for _ in range(inner_steps):
            inner = F.mse_loss(engine.func.functional_call(model, params, (xs,)), ys)
            grads = engine.autograd.grad(inner, list(params.values()), create_graph=create_graph)
            params = {name: p - 0.1 * g for (name, p), g in zip(params.items(), grads)}
            inners.append(inner.item())
        return params

    def train():
        for _ in range(iterations):
            opt.zero_grad()
            outer = 0.0
            for _ in range(tasks):
                xs, ys, xq, yq = task()
                fast = adapt(dict(model.named_parameters()), xs, ys)
                outer = outer + F.mse_loss(engine.func.functional_call(model, fast, (xq,)), yq)
            outer = outer / tasks
            outer.backward()
            opt.step()
            outers.append(outer.item())
        xs, ys, xq, yq = task()  # after training: a one-element grad() root without create_graph
        fo = adapt(dict(model.named_parameters()), xs, ys, create_graph=False)
        _g1, = engine.autograd.grad(F.mse_loss(engine.func.functional_call(model, fo, (xq,)), yq), fo["fc1.weight"])

    return train, outers, inners


def test_maml_has_one_curve_the_outer_loss(tmp_path):
    train, outers, _ = maml()
    live, _, tape = traced(train, tmp_path / "maml.tape")
    assert list(live) == ["outer"] and live == tape
    np.testing.assert_allclose([live["outer"][i] for i in range(3)], outers, rtol=1e-6)


def test_a_wgan_gp_has_the_critic_and_generator_curves_only(tmp_path):
    engine.manual_seed(0)
    G, D = nn.Linear(3, 2), Critic()
    opt_g, opt_d = engine.optim.Adam(G.parameters(), lr=1e-3), engine.optim.Adam(D.parameters(), lr=1e-3)
    real = engine.randn(8, 2)
    printed: list[tuple[list[float], float]] = []

    def penalty(fake):
        eps = engine.rand(8, 1)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        score = D(mixed).sum()  # one element: before, this grad() root was a curve of its own
        g, = engine.autograd.grad(score, mixed, create_graph=True, only_inputs=True)
        return ((g.norm(2, dim=1) - 1) ** 2).mean()

    def train():
        for _ in range(3):
            critic = []
            for _ in range(3):
                opt_d.zero_grad()
                fake = G(engine.randn(8, 3)).detach()
                loss_D = D(fake).mean() - D(real).mean() + 10 * penalty(fake)
                loss_D.backward()
                opt_d.step()
                critic.append(loss_D.item())
            opt_g.zero_grad()
            loss_G = -D(G(engine.randn(8, 3))).mean()
            loss_G.backward()
            opt_g.step()
            printed.append((critic, loss_G.item()))

    records = []
    dbg = Debugger("summary", interactive=False, cache_bytes=0, on_record=records.append, optimizer=opt_g)
    with dbg, engine.record(tmp_path / "wgan.tape", debugger=dbg):
        train()
    live = LossCurves()
    live.feed(records)
    with engine.tape.open(tmp_path / "wgan.tape") as tape:
        assert list(live.curves()) == ["loss_D", "loss_G"] and tape.loss_curves() == live.curves()
    critic, g = printed[-1]
    curves = live.curves()
    last = max(curves["loss_G"])
    assert curves["loss_G"][last] == pytest.approx(g, abs=1e-6)
    assert curves["loss_D"][last] == pytest.approx(np.mean(critic), abs=1e-6)


def test_backward_events_say_which_nodes_a_grad_call_ran():
    w = engine.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    seen: list[tuple[str, bool]] = []
    off = hub.subscribe(lambda ev: seen.append((ev.op, ev.grad_call)) if isinstance(ev, BackwardEvent) else None)
    try:
        for create_graph in (False, True):
            seen.clear()
            g, = engine.autograd.grad((w * w).sum(), w, create_graph=create_graph)
            assert seen and all(flag for _, flag in seen), seen
            seen.clear()
            ((w * 3).sum() + g.sum()).backward(create_graph=create_graph)
            # backward() through the graph the grad() call made (create_graph): backward()'s own nodes
            assert seen and not any(flag for _, flag in seen), seen
    finally:
        off()


def test_a_tape_gives_back_each_nodes_mark_where_a_writer_batch_ends_inside_a_grad_call(tmp_path):
    w = engine.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = engine.optim.SGD([w], lr=0.1)
    path, records = tmp_path / "split.tape", []
    dbg = Debugger("summary", interactive=False, cache_bytes=0, on_record=records.append)
    with dbg, engine.record(path, debugger=dbg) as recorder:
        for _ in range(3):
            h = w * 2
            h.register_hook(lambda g: recorder.flush() and None)  # the writer commits while grad() runs
            inner = (h * h).sum()
            g, = engine.autograd.grad(inner, w, create_graph=True)
            outer = ((w - 0.1 * g) ** 2).sum()
            opt.zero_grad()
            outer.backward()
            opt.step()
    marks = [(r.event.seq, r.event.grad_call) for r in records if isinstance(r, BackwardRecord)]
    assert any(m for _, m in marks) and not all(m for _, m in marks)
    with engine.tape.open(path) as tape:
        assert [(r.event.seq, r.event.grad_call) for r in tape.records() if isinstance(r, BackwardRecord)] == marks
        assert tape.in_grad_call([s for s, _ in marks]).tolist() == [m for _, m in marks]
        assert list(tape.loss_curves()) == ["outer"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM grad_calls").fetchone()[0] == 6  # each call cut in two
    conn.close()


def test_a_tape_from_before_grad_calls_were_marked_reads_as_it_did(tmp_path):
    train, outers, inners = maml(iterations=3, tasks=1, inner_steps=1)
    path = tmp_path / "old.tape"
    traced(train, path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE grad_calls")  # the writer before the mark wrote everything else the same
    conn.close()
    with engine.tape.open(path) as tape:
        curves = tape.loss_curves()
        # what it read before: the inner loss (one grad() call an iteration here) is a curve, and comes first
        assert list(curves)[:2] == ["inner", "outer"] and len(curves) == 3  # and the grad() check after training
        np.testing.assert_allclose([curves["inner"][i] for i in range(3)], inners[:3], rtol=1e-6)
        np.testing.assert_allclose([curves["outer"][i] for i in range(3)], outers, rtol=1e-6)
        assert not any(r.event.grad_call for r in tape.records() if isinstance(r, BackwardRecord))
        assert not tape.in_grad_call([1, 2, 3]).any() and tape.notes == []


def test_a_damaged_grad_calls_row_is_left_out_and_noted(tmp_path):
    train, _, _ = maml(iterations=1, tasks=1, inner_steps=1)
    path = tmp_path / "damaged.tape"
    traced(train, path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO grad_calls VALUES (?, ?)", (10_000_000, "'); DROP TABLE events; --"))
    conn.close()
    with engine.tape.open(path) as tape:
        assert list(tape.loss_curves()) == ["outer"]
        assert len(tape.notes) == 1 and "grad_calls: 1 damaged rows left out" in tape.notes[0]
