"""The engine marks where each backward pass starts (BackwardEvent.pass_start; a tape's pass_starts table), so
losses backpropagated in the opposite order to how they were computed make one curve each, live and on a tape;
a tape from before the mark has its passes guessed from the order of their nodes, as it did."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
import engine.tape
from engine.debug import BackwardRecord, Debugger, EventRecord
from engine.debug.losses import NODE, STEP, LossCurves, pass_starts
from engine.events import BackwardEvent, OpEvent, hub


def traced(fn, path):
    """Run `fn` under a debugger recording to `path`: (live curves, the records); fed in batches of 5."""
    records = []
    dbg = Debugger("summary", interactive=False, cache_bytes=0, on_record=records.append)
    with dbg, engine.record(path, debugger=dbg):
        fn()
    live = LossCurves()
    for k in range(0, len(records), 5):
        live.feed(records[k:k + 5])
    return live.curves(), records


def reversed_losses(create_graph: bool = False, iterations: int = 2):
    """loss_a, then loss_b, computed; loss_b, then loss_a, backpropagated; one step."""
    w1 = engine.tensor([1.0, 2.0], requires_grad=True)
    w2 = engine.tensor([3.0, 4.0], requires_grad=True)
    opt = engine.optim.SGD([w1, w2], lr=0.01)

    def train():
        for _ in range(iterations):
            opt.zero_grad()
            loss_a = (w1 * w1).sum()
            loss_b = (w2 * 3).sum()
            loss_b.backward(create_graph=create_graph)
            loss_a.backward(create_graph=create_graph)
            opt.step()

    return train


def fed(records) -> dict:
    curves = LossCurves()
    curves.feed(records)
    return curves.curves()


@pytest.mark.parametrize("create_graph", [False, True])
def test_two_losses_backpropagated_in_reverse_order_make_two_curves_live_and_on_a_tape(tmp_path, create_graph):
    path = tmp_path / "reversed.tape"
    live, records = traced(reversed_losses(create_graph), path)
    lr = 0.01  # loss_a = |w1|^2 shrinks by (1 - 2 lr)^2 a step; loss_b = 3 sum(w2) by 3 * 2 * 3 lr
    expected = {"loss_b": {0: 21.0, 1: 21.0 - 18 * lr}, "loss_a": {0: 5.0, 1: 5.0 * (1 - 2 * lr) ** 2}}
    assert list(live) == ["loss_b", "loss_a"]
    for label, values in expected.items():
        assert live[label] == pytest.approx(values, rel=1e-6)
    with engine.tape.open(path) as tape:
        assert tape.marks_pass_starts and tape.loss_curves() == live
        assert fed(tape.records()) == live  # a replay that reads its records draws the same
        marked = [(r.event.seq, r.event.pass_start) for r in tape.records() if isinstance(r, BackwardRecord)]
        assert marked == [(r.event.seq, r.event.pass_start) for r in records if isinstance(r, BackwardRecord)]
        assert sum(m for _, m in marked) == 4  # two passes an iteration
        seqs = [s for s, _ in marked]
        assert tape.is_pass_start(seqs).tolist() == [m for _, m in marked]


def test_an_actor_critic_pair_backpropagated_critic_first_keeps_the_actor_loss(tmp_path):
    engine.manual_seed(0)
    actor, critic = nn.Linear(3, 2), nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    opt_a, opt_c = engine.optim.Adam(actor.parameters(), lr=1e-3), engine.optim.Adam(critic.parameters(), lr=1e-3)
    printed: list[tuple[float, float]] = []

    def train():
        for _ in range(3):
            s, target = engine.randn(16, 3), engine.randn(16, 1)
            actor_loss = -critic(engine.cat([s, actor(s)], 1)).mean()
            critic_loss = F.mse_loss(critic(engine.cat([s, actor(s).detach()], 1)), target)
            opt_a.zero_grad()
            opt_c.zero_grad()
            critic_loss.backward()
            actor_loss.backward()
            opt_c.step()
            opt_a.step()
            printed.append((actor_loss.item(), critic_loss.item()))

    live, _ = traced(train, tmp_path / "ac.tape")
    assert sorted(live) == ["actor_loss", "critic_loss"]
    for k, label in enumerate(("actor_loss", "critic_loss")):  # each of the two steps is an iteration
        np.testing.assert_allclose(list(live[label].values()), [p[k] for p in printed], rtol=1e-6)
    with engine.tape.open(tmp_path / "ac.tape") as tape:
        assert tape.loss_curves() == live


def _unmark(path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE pass_starts")  # the writer before the mark wrote everything else the same
    conn.close()


def test_a_tape_from_before_passes_were_marked_reads_as_the_guess_did(tmp_path):
    path = tmp_path / "old.tape"
    traced(reversed_losses(), path)
    _unmark(path)
    with engine.tape.open(path) as tape:
        assert not tape.marks_pass_starts and tape.notes == []
        # the guess takes the two passes for one: loss_a's root comes after loss_b's nodes, and was made earlier
        assert list(tape.loss_curves()) == ["loss_b"]
        records = list(tape.records())
        assert not any(r.event.pass_start for r in records if isinstance(r, BackwardRecord))
        assert not tape.is_pass_start([1, 2, 3]).any()
        assert fed(records) == tape.loss_curves()  # a replay fed its records guesses alike
        items = [r for r in records if (isinstance(r, BackwardRecord) and r.event.forward_seq > 0)
                 or isinstance(r, EventRecord)]
        kinds = [NODE if isinstance(r, BackwardRecord) else STEP for r in items]
        guess = pass_starts(kinds, [r.iteration for r in items],
                            [r.event.forward_seq if k == NODE else 0 for r, k in zip(items, kinds)])
        assert guess.sum() == 2  # one start an iteration, where two passes ran


def test_an_old_tape_of_an_ordinary_run_gives_the_curves_a_new_one_does(tmp_path):
    engine.manual_seed(0)
    G, D = nn.Linear(2, 2), nn.Linear(2, 1)
    opt_g, opt_d = engine.optim.SGD(G.parameters(), lr=0.1), engine.optim.SGD(D.parameters(), lr=0.1)

    def train():
        for _ in range(3):
            z, real = engine.randn(8, 2), engine.randn(8, 2)
            opt_d.zero_grad()
            errD = F.softplus(-D(real)).mean() + F.softplus(D(G(z).detach())).mean()
            errD.backward()
            opt_d.step()
            opt_g.zero_grad()
            errG = F.softplus(-D(G(z))).mean()
            errG.backward()
            opt_g.step()

    path = tmp_path / "gan.tape"
    live, _ = traced(train, path)
    with engine.tape.open(path) as tape:
        new = tape.loss_curves()
    _unmark(path)
    with engine.tape.open(path) as tape:
        assert list(live) == ["errD", "errG"] and new == live and tape.loss_curves() == new


def test_each_pass_marks_its_first_node_the_root_create_graph_and_grad_calls_too():
    w = engine.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    seen: list[tuple[str, int, bool, bool]] = []
    ops: list[int] = []

    def listen(ev):
        if isinstance(ev, BackwardEvent):
            seen.append((ev.op, ev.forward_seq, ev.grad_call, ev.pass_start))
        elif isinstance(ev, OpEvent):
            ops.append(ev.seq)

    off = hub.subscribe(listen)
    try:
        for create_graph in (False, True):
            seen.clear()
            loss = (w * w).sum()
            root = ops[-1]
            loss.backward(create_graph=create_graph)
            assert [s[3] for s in seen] == [True] + [False] * (len(seen) - 1) and seen[0][:3] == ("sum", root, False)
            seen.clear()
            g, = engine.autograd.grad((w * w * 2).sum(), w, create_graph=create_graph)
            assert [s[3] for s in seen] == [True] + [False] * (len(seen) - 1) and all(s[2] for s in seen)
            if create_graph:
                seen.clear()
                (g * g).sum().backward(create_graph=True)  # through the grad() call's own graph
                assert [s[3] for s in seen] == [True] + [False] * (len(seen) - 1) and not any(s[2] for s in seen)
    finally:
        off()


def test_a_pass_listened_to_from_its_middle_marks_the_first_node_it_emits():
    w = engine.tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen: list[bool] = []
    offs = []

    def listen(ev):
        if isinstance(ev, BackwardEvent):
            seen.append(ev.pass_start)

    h = (w * 3).exp()
    h.register_hook(lambda g: offs.append(hub.subscribe(listen)) and None)  # attached while the pass runs
    (h * h).sum().backward()
    offs[0]()
    assert seen == [True, False]  # exp, then w * 3: the root's sum and the square ran unheard


def test_pass_starts_takes_the_marks_where_a_run_has_them():
    kinds, its, refs = [NODE, NODE, NODE, STEP, NODE], [0, 0, 0, 0, 1], [9, 4, 3, 0, 5]
    assert pass_starts(kinds, its, refs).tolist() == [True, False, False, False, True]  # the guess: one pass
    marks = [True, False, True, False, True]
    assert pass_starts(kinds, its, refs, marks=marks).tolist() == marks
    assert pass_starts(kinds, its, refs, marks=[False, True, False, True, False]).tolist() == \
        [False, True, False, False, False]  # a step is never a pass's start


def test_a_damaged_pass_starts_row_is_left_out_and_noted(tmp_path):
    path = tmp_path / "damaged.tape"
    live, _ = traced(reversed_losses(iterations=1), path)
    with sqlite3.connect(path) as conn:
        seqs = [s for (s,) in conn.execute("SELECT seq FROM pass_starts")]
        conn.execute("DROP TABLE pass_starts")
        conn.execute("CREATE TABLE pass_starts (seq)")  # a hand-made table: no type on its column
        conn.executemany("INSERT INTO pass_starts VALUES (?)", [(seqs[0],), ("'); DROP TABLE events; --",)])
    conn.close()
    with engine.tape.open(path) as tape:
        assert tape.loss_curves() == {"loss_b": live["loss_b"]}  # loss_a's pass lost its row: no root
        assert len(tape.notes) == 1 and "pass_starts: 1 damaged rows left out" in tape.notes[0]
