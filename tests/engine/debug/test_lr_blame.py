"""Alerts that blamed the learning rate for what was not the learning rate, from a tester's scripts: a weight decay
typed 1000x too large (the updates are the decay's: "learning rate too high", then "look at the initialisation"),
Adam at a rate 1000x too high (its first step threw the weights far off, then shrank against them: no alert for the
rate at all, and dead ReLUs blamed on the initialisation), a StepLR stepped per batch (first told to raise the rate,
which the scheduler decays again). Each beside healthy neighbours that stay silent, and the alert's advice, applied,
makes the loss fall."""

from __future__ import annotations

import linecache
import warnings

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger, watch
from tests.engine.oracle import needs_torch, torch

O = engine.optim


def spirals(n: int = 100, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Three interleaved spirals (the tester's data, numpy only: the same run under the engine and torch)."""
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1.0, n)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, n) + rng.normal(0, 0.2, n)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        ys.append(np.full(n, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def mlp(lib=nn, hidden: int = 64):
    return lib.Sequential(lib.Linear(2, hidden), lib.ReLU(), lib.Linear(hidden, hidden), lib.ReLU(),
                          lib.Linear(hidden, 3))


def run(make_opt, steps: int, batch: int | None = None, scheduler=None, per_epoch: bool = False,
        hidden: int = 64, warned: list | None = None) -> tuple[list, float]:
    """The alerts of training an MLP on the spirals, and the loss over all of them at the end; `batch`: minibatches
    in a fixed shuffled order (else the whole set each step); `scheduler(opt)` stepped after each step, or once per
    pass over the data (`per_epoch`); `warned`: a list, given, gets the warnings of the run under the headless
    watch(model) in place of the Debugger."""
    engine.manual_seed(0)
    X, Y = spirals()
    x, y = engine.from_numpy(X), engine.from_numpy(Y)
    model = mlp(hidden=hidden)
    opt = make_opt(model.parameters())
    sched = scheduler(opt) if scheduler else None
    order = np.random.default_rng(1).permutation(len(X))
    starts = list(range(0, len(X), batch)) if batch else [0]
    debugger = Debugger("summary", model=model, optimizer=opt) if warned is None else watch(model)
    with debugger as dbg, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore" if warned is None else "always")
        for step in range(steps):
            at = starts[step % len(starts)]
            idx = engine.from_numpy(order[at:at + batch]) if batch else slice(None)
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            if sched is not None and (not per_epoch or step % len(starts) == len(starts) - 1):
                sched.step()
    if warned is not None:
        warned += caught
    with engine.no_grad():
        return list(dbg.alerts), F.cross_entropy(model(x), y).item()


# ---- a weight decay typed 1000x too large --------------------------------------------------------------------------
def test_a_weight_decay_far_too_large_is_named_and_not_taken_for_a_learning_rate_too_high():
    alerts, loss = run(lambda p: O.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.5), 100)
    assert loss > 1.09  # ln 3: nothing learned
    first = alerts[0]
    assert first.kind == "weight_decay" and first.key == "SGD" and first.iteration < 8
    assert "weight_decay=0.5, param group 0" in first.message and "pulls the weights of '0', '2', '4' toward 0" \
        in first.message and "Lower weight_decay (0.5) into the usual 1e-5 to 1e-2" in first.message
    # at the line that made the optimizer, where weight_decay=0.5 is written, not at the step
    assert first.file == __file__ and "weight_decay=0.5" in first.code
    assert "large_update" not in [a.kind for a in alerts]
    # what follows from it says so, and sends no one to the learning rate or the initialisation
    later = [a for a in alerts if a.kind in ("vanishing_grad", "dead_relu")]
    assert later and all("see the weight-decay alert" in a.message for a in later)
    assert not any("learning rate" in a.message or "initialisation" in a.message for a in later)


def test_a_smaller_learning_rate_does_not_cure_a_weight_decay_the_lower_decay_does():
    alerts, loss = run(lambda p: O.SGD(p, lr=0.01, momentum=0.9, weight_decay=0.5), 100)
    assert loss > 1.09 and alerts[0].kind == "weight_decay"
    alerts, loss = run(lambda p: O.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4), 100)
    assert alerts == [] and loss < 0.5


@pytest.mark.parametrize("make", [lambda p: O.Adam(p, lr=1e-2, weight_decay=0.5),
                                  lambda p: O.AdamW(p, lr=1e-3, weight_decay=500.0)], ids=["Adam", "AdamW"])
def test_a_huge_weight_decay_of_adam_or_adamw_is_named(make):
    alerts, loss = run(make, 60)
    assert loss > 1.09
    assert alerts[0].kind == "weight_decay" and "a smaller learning rate only slows the shrinking" in \
        alerts[0].message


@pytest.mark.parametrize("make", [lambda p: O.Adam(p, lr=1e-3, weight_decay=5e-4), lambda p: O.AdamW(p, lr=1e-3),
                                  lambda p: O.AdamW(p, lr=1e-3, weight_decay=0.5)],
                         ids=["Adam 5e-4", "AdamW 0.01", "AdamW 0.5"])
def test_usual_weight_decays_raise_nothing(make):
    alerts, loss = run(make, 150)
    assert alerts == [] and loss < 0.8


# ---- Adam at a learning rate 1000x too high ------------------------------------------------------------------------
def test_adam_at_a_rate_far_too_high_is_named_when_the_loss_blows_up():
    alerts, _ = run(lambda p: O.Adam(p, lr=3.0), 60, batch=32, hidden=32)
    first = alerts[0]
    assert first.kind == "large_update" and first.iteration <= 3
    assert "the learning rate (3) is far too high" in first.message and "training diverges" in first.message
    # its first step is measured against the weights before it: many times their size, not "1x"
    assert first.value > 5
    # the dead ReLUs it left say so (a vanishing gradient behind one names that ReLU), none blames the init
    dead = [a for a in alerts if a.kind == "dead_relu"]
    assert dead and all(f"After the learning-rate blow-up at iteration {first.iteration}, the weights are far off"
                        in a.message and "Fix the learning rate first" in a.message for a in dead)
    later = dead + [a for a in alerts if a.kind == "vanishing_grad"]
    assert not any("Kaiming" in a.message or "look at the initialisation" in a.message for a in later)


def test_watch_names_adam_at_a_rate_far_too_high_too():
    # the headless watch() captures no summaries and asked for no update norms: the loss's blow-up and the updates'
    # size went unseen, and only the dead ReLUs it left were warned about
    warned = []
    alerts, _ = run(lambda p: O.Adam(p, lr=3.0), 60, batch=32, hidden=32, warned=warned)
    first = alerts[0]
    assert first.kind == "large_update" and first.iteration <= 3 and "training diverges" in first.message
    (w,) = [w for w in warned if "the learning rate (3) is far too high" in str(w.message)]
    assert w.category is RuntimeWarning
    # at the line that writes lr=3.0, where the optimizer is made
    assert (w.filename, linecache.getline(w.filename, w.lineno).strip()) == (
        __file__, "alerts, _ = run(lambda p: O.Adam(p, lr=3.0), 60, batch=32, hidden=32, warned=warned)")
    dead = [a for a in alerts if a.kind == "dead_relu"]
    assert dead and all("Fix the learning rate first" in a.message for a in dead)


def test_adam_at_usual_rates_raises_nothing():
    for lr, trained in ((1e-3, 1.0), (3e-2, 0.5)):  # the usual one, and the one the alert's advice gives (100x less)
        alerts, loss = run(lambda p, lr=lr: O.Adam(p, lr=lr), 60, batch=32, hidden=32)
        assert alerts == [] and loss < trained
        warned = []
        alerts, _ = run(lambda p, lr=lr: O.Adam(p, lr=lr), 60, batch=32, hidden=32, warned=warned)
        assert alerts == [] and warned == []


# ---- a StepLR stepped per batch ------------------------------------------------------------------------------------
def step_lr(opt):
    return O.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)


def test_a_scheduler_that_decayed_the_rate_is_named_first_not_a_rate_to_raise():
    alerts, _ = run(lambda p: O.Adam(p, lr=1e-2), 60, batch=30, scheduler=step_lr)
    assert [a.kind for a in alerts] == ["lr_gone"]  # not "learning rate too low: try one 100 to 10,000x larger"
    assert alerts[0].iteration < 56  # when the updates stayed tiny, not 20 steps after the rate fell below 1e-6
    assert "StepLR's step() runs at every iteration: meant for every epoch?" in alerts[0].message
    assert "StepLR(step_size=1, gamma=0.7) stepped" in alerts[0].message


@pytest.mark.parametrize("scheduler", [step_lr, lambda opt: O.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 20)),
                                       lambda opt: O.lr_scheduler.LinearLR(opt, start_factor=1e-3, total_iters=20)],
                         ids=["StepLR per epoch", "warmup", "linear warmup"])
def test_schedules_stepped_as_meant_raise_nothing(scheduler):
    per_epoch = scheduler is step_lr
    alerts, loss = run(lambda p: O.Adam(p, lr=1e-2), 60, batch=30, scheduler=scheduler, per_epoch=per_epoch)
    assert alerts == [] and loss < 0.9


# ---- the same runs under PyTorch: the causes are what the alerts say -----------------------------------------------
@needs_torch
def test_torch_agrees_the_weight_decay_not_the_rate_stalls_it_and_adam_at_3_diverges():
    X, Y = spirals()
    x, y = torch.from_numpy(X), torch.from_numpy(Y)

    def final(lr, wd, steps=100):
        torch.manual_seed(0)
        model = mlp(torch.nn)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        return loss.item()

    assert final(0.1, 0.5) > 1.09 and final(0.01, 0.5) > 1.07 and final(0.1, 5e-4) < 0.5
    torch.manual_seed(0)
    model = mlp(torch.nn, 32)
    opt = torch.optim.Adam(model.parameters(), lr=3.0)
    order = torch.from_numpy(np.random.default_rng(1).permutation(len(X)))  # run()'s batches
    losses = []
    for i in range(3):
        opt.zero_grad()
        idx = order[i * 32:(i + 1) * 32]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[1] > 100 * losses[0] and losses[2] > 100 * losses[0]
