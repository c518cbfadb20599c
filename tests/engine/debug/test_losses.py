"""Loss curves: every backward() root of an iteration, one curve per source line (engine.debug.losses), live
from the debugger's records and read back from a tape alike."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
import engine.tape
from engine.debug import Debugger
from engine.debug.losses import NODE, STEP, LossCurves, Root, Step, label_of, loss_curves, pass_starts


def root(iteration: int, line: int, value: float, text: str = "loss = f(x)", op: str = "mean") -> Root:
    return Root(iteration, "/work/train.py", line, text, op, value)


# ---- the grouping, on plain data -------------------------------------------------------------------------
def test_a_plain_loop_has_one_curve_of_its_one_loss():
    items = [x for it, v in enumerate([2.3, 1.7, 1.2]) for x in (root(it, 10, v), Step(it))]
    assert loss_curves(items) == {"loss": {0: 2.3, 1: 1.7, 2: 1.2}}


def test_accumulated_micro_losses_add_up_to_what_the_step_differentiates():
    micro = [0.31, 0.27, 0.35, 0.29]
    items = [root(0, 12, v) for v in micro] + [Step(0)] + [root(1, 12, v / 2) for v in micro] + [Step(1)]
    curves = loss_curves(items)["loss"]
    assert curves[0] == pytest.approx(sum(micro), abs=1e-12) and curves[1] == pytest.approx(sum(micro) / 2)


def test_a_gan_has_a_curve_per_loss_line_named_by_its_assignment():
    items = []
    for it, (d, g) in enumerate([(1.39, 0.69), (1.30, 0.75)]):
        items += [Root(it, "gan.py", 20, "errD = criterion(D(real), ones) + fake_loss", "add", d), Step(it),
                  Root(it, "gan.py", 24, "errG = criterion(D(fake), ones)", "bce_with_logits", g), Step(it)]
    assert loss_curves(items) == {"errD": {0: 1.39, 1: 1.30}, "errG": {0: 0.69, 1: 0.75}}


def test_a_wgan_critic_curve_is_the_mean_of_its_five_steps():
    critic = [-0.5, -0.6, -0.4, -0.7, -0.3]
    items = [x for v in critic for x in (root(0, 30, v, "errC = d_fake - d_real"), Step(0))]
    items += [root(0, 35, 0.9, "errG = -D(G(z)).mean()"), Step(0)]
    curves = loss_curves(items)
    assert curves["errC"] == {0: pytest.approx(np.mean(critic), abs=1e-12)} and curves["errG"] == {0: 0.9}


def test_two_losses_of_one_line_in_a_loop_add_up_and_two_stretches_average():
    # two heads scored on one line in a loop, then one step: their sum; a second stretch: the mean of two sums
    items = [root(0, 40, 1.0), root(0, 40, 2.0), Step(0), root(0, 40, 3.0), root(0, 40, 5.0), Step(0)]
    assert loss_curves(items) == {"loss": {0: (1.0 + 2.0 + 3.0 + 5.0) / 2}}


def test_an_iteration_without_backward_has_no_loss_and_a_nan_loss_stays_nan():
    items = [root(0, 10, 1.0), Step(0), Step(1), root(2, 10, math.nan), Step(2)]
    curves = loss_curves(items)["loss"]
    assert list(curves) == [0, 2] and math.isnan(curves[2])


def test_labels_come_from_the_assignment_target_else_the_op_and_line():
    assert label_of("errD = criterion(out, real)", "bce", "t.py", 3) == "errD"
    assert label_of("loss_g = adversarial(fake)", "mean", "t.py", 3) == "loss_g"
    assert label_of("loss = loss / accum", "div", "t.py", 3) == "loss"
    assert label_of("total += crit(out, y)", "add", "t.py", 3) == "total"
    assert label_of("loss: Tensor = crit(out, y)", "mean", "t.py", 3) == "loss"
    assert label_of("self.loss_d = crit(out, y)", "mean", "t.py", 3) == "self.loss_d"
    assert label_of("F.cross_entropy(model(x), y).backward()", "cross_entropy", "/a/train.py", 42) \
        == "cross_entropy @ train.py:42"
    assert label_of("else: loss = f(x)", "mean", "t.py", 7) == "mean @ t.py:7"  # not "else"
    assert label_of("if loss == best:", "mean", "t.py", 8) == "mean @ t.py:8"
    # several statements on a line: the assignment that opens it need not be the loss
    assert label_of("model.use_ckpt = True; F.cross_entropy(model(x), y).backward()", "cross_entropy", "c.py",
                    62) == "cross_entropy @ c.py:62"
    assert label_of("opt.zero_grad(); loss = crit(model(x), y); loss.backward()", "mean", "c.py", 5) == "loss"
    assert label_of("self.flag = 1; err_d = crit(out, y)", "mean", "c.py", 5) == "err_d"
    assert label_of("a = f(x); b = g(x)", "mean", "c.py", 5) == "mean @ c.py:5"  # which one: not known
    assert label_of("loss = crit(out, y)  # a; b", "mean", "c.py", 5) == "loss"  # one statement, a ';' comment
    assert label_of('loss = crit(out, y, tag="a;b")', "mean", "c.py", 5) == "loss"
    # two lines assigning `loss`: the second is named by its place too
    items = [Root(0, "a.py", 5, "loss = f(x)", "mean", 1.0), Root(0, "a.py", 9, "loss = g(x)", "mean", 2.0)]
    assert list(loss_curves(items)) == ["loss", "loss @ a.py:9"]


def test_a_pass_starts_at_an_iterations_first_node_after_a_step_or_where_nodes_stop_descending():
    kinds = [NODE, NODE, NODE, NODE, NODE, STEP, NODE, NODE, NODE]
    its = [0, 0, 0, 0, 0, 0, 0, 0, 1]
    refs = [50, 40, 10, 60, 20, 0, 5, 4, 3]  # a pass runs its nodes newest first: 60 after 10 is a new one
    assert pass_starts(kinds, its, refs).tolist() == [True, False, False, True, False, False, True, False, True]
    assert pass_starts([NODE], [0], [2], before=(NODE, 0, 3)).tolist() == [False]  # fed in batches
    assert pass_starts([NODE], [0], [4], before=(NODE, 0, 3)).tolist() == [True]


# ---- live records and a tape of the same run ---------------------------------------------------------------
def traced(fn, tmp_path=None, **options):
    """Run `fn` under a debugger (and a recorder to tmp_path/run.tape when given): (live curves, tape curves)."""
    records = []
    dbg = Debugger("summary", interactive=False, cache_bytes=0, on_record=records.append, **options)
    path = tmp_path / "run.tape" if tmp_path is not None else None
    with dbg:
        if path is None:
            fn()
        else:
            with engine.record(path, debugger=dbg):
                fn()
    live = LossCurves()
    for k in range(0, len(records), 7):  # in batches, as a session drains them
        live.feed(records[k:k + 7])
    if path is None:
        return live.curves(), None
    with engine.tape.open(path) as tape:
        return live.curves(), (tape.loss_curves(), tape.losses())


def regression(seed: int = 0, n: int = 16):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)), rng.standard_normal((n, 1))


def test_accumulating_four_quarter_losses_gives_the_full_batch_loss(tmp_path):
    x, y = regression()
    w0 = np.array([[0.5], [-0.2], [0.1]])
    w = engine.tensor(w0.copy(), requires_grad=True)
    opt = engine.optim.SGD([w], lr=0.1)
    expected = []

    def train():
        for _ in range(3):
            expected.append(float(np.mean((x @ w.detach().numpy() - y) ** 2)))  # the full batch, by hand
            opt.zero_grad()
            for k in range(4):
                xb, yb = engine.tensor(x[4 * k:4 * k + 4]), engine.tensor(y[4 * k:4 * k + 4])
                loss = ((xb @ w - yb) ** 2).mean()
                loss = loss / 4
                loss.backward()
            opt.step()

    live, (tape, first) = traced(train, tmp_path)
    assert list(live) == ["loss"] and live == tape
    np.testing.assert_allclose([live["loss"][i] for i in range(3)], expected, rtol=0, atol=1e-6)
    assert first == live["loss"]


class Critic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(2, 8), nn.Linear(8, 1)

    def forward(self, x):
        return self.fc2(F.leaky_relu(self.fc1(x), 0.2))


def test_a_wgans_critic_curve_averages_its_five_steps_and_the_generator_has_its_own(tmp_path):
    engine.manual_seed(0)
    G, D = nn.Linear(3, 2), Critic()
    opt_g, opt_d = engine.optim.SGD(G.parameters(), lr=1e-3), engine.optim.SGD(D.parameters(), lr=1e-3)
    real = engine.randn(8, 2)
    printed: list[tuple[list[float], float]] = []

    def train():
        for _ in range(3):
            critic = []
            for _ in range(5):
                opt_d.zero_grad()
                errC = D(G(engine.randn(8, 3)).detach()).mean() - D(real).mean()
                errC.backward()
                opt_d.step()
                critic.append(errC.item())
            opt_g.zero_grad()
            errG = -D(G(engine.randn(8, 3))).mean()
            errG.backward()
            opt_g.step()
            printed.append((critic, errG.item()))

    live, (tape, _) = traced(train, tmp_path, optimizer=opt_g)  # the generator's steps end the iterations
    assert list(live) == ["errC", "errG"] and live == tape
    # the first loop is split while the debugger learns how many critic steps come between two of G's
    critic, g = printed[-1]
    last = max(live["errG"])
    assert live["errG"][last] == pytest.approx(g, abs=1e-6)
    assert live["errC"][last] == pytest.approx(np.mean(critic), abs=1e-6)


def test_two_backward_calls_in_a_row_are_two_roots():
    x, y = regression()
    w = engine.tensor(np.ones((3, 1)), requires_grad=True)
    opt = engine.optim.SGD([w], lr=0.01)
    values = []

    def train():
        for _ in range(2):
            opt.zero_grad()
            pred = engine.tensor(x) @ w
            fit = ((pred - engine.tensor(y)) ** 2).mean()
            decay = (w * w).sum() * 0.01
            fit.backward(retain_graph=True)
            decay.backward()  # no op between the passes: made after the matmul where fit's ended, so a new one
            opt.step()
            values.append((fit.item(), decay.item()))

    live, _ = traced(train)
    assert list(live) == ["fit", "decay"]
    assert [live["fit"][i] for i in range(2)] == pytest.approx([v[0] for v in values])
    assert [live["decay"][i] for i in range(2)] == pytest.approx([v[1] for v in values])


def test_a_gradient_penalty_graph_is_one_loss_and_its_grad_call_none(tmp_path):
    engine.manual_seed(1)
    D = Critic()
    opt = engine.optim.SGD(D.parameters(), lr=1e-3)
    values = []

    def train():
        for _ in range(2):
            opt.zero_grad()
            x = engine.randn(6, 2, requires_grad=True)
            out = D(x)  # (6, 1): the grad() call's root is no loss
            (g,) = engine.autograd.grad(out, x, grad_outputs=engine.ones_like(out), create_graph=True)
            errD = out.mean() + 10 * ((g.norm(2, dim=1) - 1) ** 2).mean()
            errD.backward()
            opt.step()
            values.append(errD.item())

    live, (tape, _) = traced(train, tmp_path)
    assert live == tape == {"errD": {0: pytest.approx(values[0]), 1: pytest.approx(values[1])}}


def test_without_summaries_there_are_no_losses(tmp_path):
    w = engine.tensor(np.ones(3), requires_grad=True)
    path = tmp_path / "structure.tape"
    with engine.record(path, capture="structure"):
        for _ in range(2):
            (w * 2).sum().backward()
    with engine.tape.open(path) as tape:
        assert tape.loss_curves() == {} and tape.losses() == {}


def test_a_damaged_tape_raises_tape_error_from_loss_curves(tmp_path):
    path = tmp_path / "run.tape"
    w = engine.tensor(np.ones(3), requires_grad=True)
    with engine.record(path, capture="summary"):
        (w * 2).sum().backward()
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("UPDATE nodes SET op = x'00ff'")  # a node row of the wrong type
    with engine.tape.open(path) as tape, pytest.raises(engine.tape.TapeError, match="damaged"):
        tape.loss_curves()


def test_a_closure_evaluating_step_is_worth_its_stretchs_first_root():
    curves = loss_curves([root(0, 5, 3.0), root(0, 5, 2.0), root(0, 5, 1.5), Step(0, closure=True),
                          root(1, 5, 1.0), root(1, 5, 0.5), Step(1, closure=False)])
    assert curves == {"loss": {0: 3.0, 1: 1.5}}


def test_lbfgs_curve_is_what_each_step_returns_not_the_sum_of_its_line_search(tmp_path):
    # style transfer's and PINNs' loop: every step(closure) evaluates the loss a dozen times
    x, y = regression(n=32)
    w = engine.tensor(np.zeros((3, 1)), requires_grad=True)
    opt = engine.optim.LBFGS([w], lr=1, line_search_fn="strong_wolfe")
    returned = []

    def train():
        for _ in range(3):
            def closure():
                opt.zero_grad()
                loss = ((engine.tensor(x) @ w - engine.tensor(y)) ** 2).mean()
                loss.backward()
                return loss

            returned.append(float(opt.step(closure)))

    live, (tape, _) = traced(train, tmp_path)
    assert live == tape and list(live) == ["loss"]
    np.testing.assert_allclose([live["loss"][i] for i in range(3)], returned, rtol=1e-6)
