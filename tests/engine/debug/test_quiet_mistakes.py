"""Four mistakes a tester's scripts trained through without an alert, the loss flat or learning the wrong thing: a
model left in eval mode by an evaluation before training, a GAN whose generator loss takes fake.detach() (its
optimizer never gets a gradient), one loss backpropagated twice into each step, and an (N, 1) output against (N,)
targets in mse_loss. Each is named once, where it is; the correct programs beside each (checked under PyTorch, the
same code) raise none of them."""

from __future__ import annotations

import warnings

import numpy as np

import engine
from engine.debug import Debugger
from tests.engine.oracle import torch

KINDS = ("eval_mode", "optimizer_no_gradient", "backward_twice", "broadcast_loss")
LIBS = (engine,) if torch is None else (engine, torch)  # the programs run the same in each


def data(lib, n: int = 16, classes: int = 3):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return lib.tensor(x), lib.tensor((x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0))


def alerts_of(run) -> list:
    """The alerts of KINDS while `run()` runs, its model and optimizers found as the app finds them."""
    with Debugger("summary", discover=True) as dbg:
        run()
    return [a for a in dbg.alerts if a.kind in KINDS]


def train(lib, model, opt, x, y, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad()
        lib.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


# ---- a model left in eval mode -------------------------------------------------------------------------
def left_in_eval(lib, undo: bool, steps: int = 4):
    """An evaluation of the untrained model (model.eval(), under no_grad), then training: model.train() called
    again (`undo`), or not."""
    lib.manual_seed(0)
    nn = lib.nn
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    opt = lib.optim.SGD(model.parameters(), lr=0.05)
    x, y = data(lib)
    model.eval()
    with lib.no_grad():
        nn.functional.cross_entropy(model(x), y)
    if undo:
        model.train()
    train(lib, model, opt, x, y, steps)
    return model, x


def test_training_left_in_eval_mode_by_an_evaluation_before_it_is_named_at_its_batch_norm():
    # no BatchNorm had trained in train mode before (the existing check's sign), so nothing was said
    (alert,) = alerts_of(lambda: left_in_eval(engine, undo=False))
    assert alert.kind == "eval_mode" and alert.module == "Sequential.1" and alert.iteration == 0 and alert.line > 0
    assert alert.message.startswith("'Sequential' trains in eval mode, iteration 0: model.eval() was called")
    assert "BatchNorm 'Sequential.1' normalises with its running statistics" in alert.message
    assert "Dropout 'Sequential.3' drops nothing" in alert.message and "Call model.train()" in alert.message
    assert alerts_of(lambda: left_in_eval(engine, undo=True)) == []
    for lib in LIBS:  # as it says: BatchNorm's statistics never move, and one forward is the next (no dropout)
        for undo in (False, True):
            model, x = left_in_eval(lib, undo)
            assert bool((model[1].running_mean == 0).all()) is not undo
            assert bool((model(x) == model(x)).all()) is not undo
    # model.eval() on purpose: the norms and dropout in a part no gradient trains, the head alone learns
    engine.manual_seed(0)
    nn = engine.nn
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5)),
                          nn.Linear(16, 3))
    model[0].requires_grad_(False)
    opt = engine.optim.SGD(model[1].parameters(), lr=0.05)
    x, y = data(engine)
    model.eval()
    assert alerts_of(lambda: train(engine, model, opt, x, y, 4)) == []


# ---- an optimizer no gradient reaches ------------------------------------------------------------------
def gan(lib, detached: bool, frozen: int = 0, steps: int = 7) -> list[bool]:
    """A small GAN: the generator's loss on D(fake.detach()) (`detached`) or D(fake), its parameters frozen
    (requires_grad False) for the first `frozen` iterations; whether the generator moved at each iteration."""
    lib.manual_seed(0)
    nn, F = lib.nn, lib.nn.functional
    G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    D = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    opt_g, opt_d = lib.optim.Adam(G.parameters(), lr=1e-2), lib.optim.Adam(D.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    ones, zeros = lib.ones(16, 1), lib.zeros(16, 1)
    moved = []
    for i in range(steps):
        G.requires_grad_(i >= frozen)
        z = lib.tensor(rng.standard_normal((16, 4)).astype(np.float32))
        real = lib.tensor(rng.standard_normal((16, 2)).astype(np.float32) * 0.5 + 2)
        fake = G(z)
        opt_d.zero_grad()
        loss_d = F.binary_cross_entropy_with_logits(D(real), ones) + \
            F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        before = G[0].weight.detach().clone()
        opt_g.zero_grad()
        F.binary_cross_entropy_with_logits(D(fake.detach() if detached else fake), ones).backward()
        opt_g.step()
        moved.append(not bool((G[0].weight == before).all()))
    return moved


def test_an_optimizer_that_never_gets_a_gradient_is_named_at_the_loss_that_does_not_reach_it():
    # the discriminator's parameters got gradients from that loss, so no_gradient (one model's parameters
    # without, others with) and step_without_grad (steps before backward) said nothing
    (alert,) = alerts_of(lambda: gan(engine, detached=True))
    assert alert.kind == "optimizer_no_gradient" and alert.op == "binary_cross_entropy_with_logits"
    assert alert.iteration == 4 and alert.code.startswith("F.binary_cross_entropy_with_logits(D(fake.detach()")
    assert alert.message.startswith("Adam steps '0.weight', '0.bias', '2.weight', '2.bias', but none of them got a "
                                    "gradient in its last 5 steps, though backward() ran before each")
    assert "must take D(fake), not D(fake.detach())" in alert.message
    # a GAN, and one whose generator is frozen on purpose for a while (requires_grad False): no mistake
    assert alerts_of(lambda: gan(engine, detached=False)) == []
    assert alerts_of(lambda: gan(engine, detached=False, frozen=5, steps=12)) == []
    for lib in LIBS:  # the generator never moves through fake.detach(); it does through fake, once unfrozen
        assert gan(lib, detached=True) == [False] * 7
        assert gan(lib, detached=False) == [True] * 7
        assert gan(lib, detached=False, frozen=4) == [False] * 4 + [True] * 3


# ---- one loss backpropagated twice ---------------------------------------------------------------------
def gradients(lib, how: str, steps: int = 1) -> list[np.ndarray]:
    """The gradients of a classifier's last step, its loss backpropagated as `how` says."""
    lib.manual_seed(0)
    nn, F = lib.nn, lib.nn.functional
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    x, y = data(lib)
    for _ in range(steps):
        opt.zero_grad()
        if how == "micro-batches":  # gradient accumulation: four quarters of the batch, each loss a quarter
            for i in range(0, 16, 4):
                (F.cross_entropy(model(x[i:i + 4]), y[i:i + 4]) / 4).backward()
        elif how == "two losses":  # two terms of one graph backpropagated one after the other
            out = model(x)
            F.cross_entropy(out, y).backward(retain_graph=True)
            (0.1 * out.pow(2).mean()).backward()
        elif how == "sum":
            out = model(x)
            (F.cross_entropy(out, y) + 0.1 * out.pow(2).mean()).backward()
        else:
            loss = F.cross_entropy(model(x), y)
            loss.backward(retain_graph=how != "once")
            if how == "reset":  # backpropagated again after zero_grad: the step takes one pass
                opt.zero_grad()
            if how != "once":
                loss.backward()
        opt.step()
    return [p.grad.detach().numpy().copy() for p in model.parameters()]


def test_a_loss_backpropagated_twice_into_a_step_is_named_at_the_second_backward():
    (alert,) = alerts_of(lambda: gradients(engine, "twice", steps=3))
    assert alert.kind == "backward_twice" and alert.op == "cross_entropy" and alert.iteration == 0
    assert alert.code == "loss.backward()" and alert.value == 2.0
    assert alert.message.startswith("backward() ran 2 times from 'cross_entropy' (cross_entropy:0) at ")
    assert "so the step moves 2 times as far as the loss asks" in alert.message
    # each loss backpropagated once into a step (or again after zero_grad): no mistake
    for how in ("once", "reset", "micro-batches", "two losses"):
        assert alerts_of(lambda how=how: gradients(engine, how, steps=3)) == [], how
    for lib in LIBS:  # twice: the gradients doubled; the others: the gradients of one pass, of one batch, of a sum
        once = gradients(lib, "once")
        for how, expected in (("twice", [2 * g for g in once]), ("reset", once), ("micro-batches", once),
                              ("two losses", gradients(lib, "sum"))):
            for got, want in zip(gradients(lib, how), expected, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=how)


# ---- a loss's shapes broadcast -------------------------------------------------------------------------
def regression(lib, how: str, steps: int = 3):
    """Losses of a regression whose model outputs (16, 1), against targets `how` says."""
    lib.manual_seed(0)
    nn, F = lib.nn, lib.nn.functional
    x, _ = data(lib)
    y = x[:, 0] * 2 - x[:, 1]
    model = nn.Linear(4, 1)
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        out = model(x)
        if how == "broadcast":
            loss = F.mse_loss(out, y)  # (16, 1) against (16,)
        elif how == "matching":
            loss = F.mse_loss(out, y.unsqueeze(1))
        elif how == "to one target":  # every output pulled towards one value: broadcast along the batch
            loss = F.mse_loss(out, y[:1])
        else:  # a pairwise loss broadcast on purpose: each output's distance to every target, the nearest kept
            loss = (out - y.unsqueeze(0)).pow(2).min(1)[0].mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_an_n_by_1_output_against_n_targets_is_named_once_with_its_shapes_and_the_fix():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the engine warns as torch does; the alert says what to do
        (alert,) = alerts_of(lambda: regression(engine, "broadcast"))
        # matching shapes, targets broadcast along the batch, a pairwise loss broadcast on purpose: no mistake
        for how in ("matching", "to one target", "pairwise"):
            assert alerts_of(lambda how=how: regression(engine, how)) == [], how
        for lib in LIBS:  # the loss is least where every output is the targets' mean: it stays far above a fit
            x, _ = data(lib)
            target = x[:, 0] * 2 - x[:, 1]
            at_mean = lib.full((16, 1), float(target.mean()), requires_grad=True)
            lib.nn.functional.mse_loss(at_mean, target).backward()
            assert float(at_mean.grad.abs().max()) < 1e-6
            assert regression(lib, "matching", steps=20)[-1] < 0.1 * regression(lib, "broadcast", steps=20)[-1]
        for how in ("broadcast", "matching", "to one target", "pairwise") if torch is not None else ():
            np.testing.assert_allclose(regression(engine, how), regression(torch, how), rtol=1e-4, err_msg=how)
    assert alert.kind == "broadcast_loss" and alert.op == "mse_loss" and alert.iteration == 0
    assert alert.code == "loss = F.mse_loss(out, y)  # (16, 1) against (16,)"
    assert alert.message.startswith("'mse_loss' (mse_loss:0) at ")
    assert "takes an input of shape (16, 1) and targets of shape (16,), iteration 0: they broadcast to (16, 16)" \
        in alert.message
    assert "Pass output.squeeze(1) (or target.unsqueeze(1)), so that the shapes match" in alert.message


def fine_tuned_in_eval(lib, p: float | None, pretrained: bool = True, steps: int = 4):
    """A model whose BatchNorm statistics come from data seen before the run (pretrained), fine-tuned with the whole
    model in eval mode to freeze them; a Dropout of probability `p` (None: none). The model and its losses."""
    lib.manual_seed(0)
    nn = lib.nn
    drop = [nn.Dropout(p)] if p is not None else []
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), *drop, nn.Linear(16, 3))
    x, y = data(lib)
    if pretrained:
        with lib.no_grad():
            model(x * 2 + 1)  # the statistics of another data set, kept by the BatchNorm
    model.eval()
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses


def test_batchnorm_frozen_on_purpose_by_eval_is_silent_and_eval_that_turns_dropout_or_unfitted_norms_off_is_not():
    for p in (None, 0.0):  # statistics from data, frozen on purpose; dropout absent or p=0: training needs nothing
        assert alerts_of(lambda p=p: fine_tuned_in_eval(engine, p, pretrained=True)) == [], p
    # frozen statistics beside a Dropout that drops nothing: the Dropout is named, as is eval() before any data
    (alert,) = alerts_of(lambda: fine_tuned_in_eval(engine, 0.5, pretrained=True))
    assert alert.kind == "eval_mode" and "Dropout 'Sequential.3' drops nothing" in alert.message
    (alert,) = alerts_of(lambda: fine_tuned_in_eval(engine, None, pretrained=False))
    assert alert.kind == "eval_mode" and "BatchNorm 'Sequential.1' normalises with its running statistics" in \
        alert.message and "never computed (mean 0, variance 1: it normalises nothing)" in alert.message
    for lib in LIBS:  # frozen statistics stay as loaded and the loss falls; never computed, the norm divides by 1
        loaded = fine_tuned_in_eval(lib, None, pretrained=True, steps=0)[0][1].running_mean.numpy().copy()
        model, losses = fine_tuned_in_eval(lib, None, pretrained=True, steps=20)
        assert losses[-1] < 0.7 * losses[0] and loaded.any()
        np.testing.assert_array_equal(model[1].running_mean.numpy(), loaded)
        model, _ = fine_tuned_in_eval(lib, None, pretrained=False, steps=0)
        x = data(lib)[0]
        bn = lib.nn.functional.batch_norm(x @ model[0].weight.t() + model[0].bias, model[1].running_mean,
                                          model[1].running_var, training=False)
        np.testing.assert_allclose(bn.detach().numpy(), (x @ model[0].weight.t() + model[0].bias).detach().numpy()
                                   / np.sqrt(1 + 1e-5), rtol=1e-5, atol=1e-6)
