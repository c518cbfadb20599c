"""A model that will not train, in the classic ways, and what the debugger's alerts say about each: once,
naming the layer, what is wrong and what to try. The healthy examples raise none of them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.data import two_spirals
from engine.debug import AlertSettings, Debugger
from tests.engine.oracle import needs_torch, torch

pytestmark = pytest.mark.filterwarnings("ignore:overflow", "ignore:invalid value", "ignore:divide by zero")
EXAMPLES = Path(__file__).resolve().parents[3] / "resources" / "examples"
TRAINING = ("exploding_grad", "vanishing_grad", "dead_relu", "large_update", "accumulating_grad", "not_updated",
            "frozen", "probabilities", "no_gradient", "eval_mode", "weight_decay", "lr_gone", "tiny_update")


def mlp(act=nn.Tanh, hidden: int = 32, depth: int = 2) -> nn.Sequential:
    layers = [nn.Linear(2, hidden), act()]
    for _ in range(depth - 1):
        layers += [nn.Linear(hidden, hidden), act()]
    return nn.Sequential(*layers, nn.Linear(hidden, 2))


def train(model, opt, steps: int = 8, zero_grad: bool = True, head=None, loss_fn=None) -> list[float]:
    """A plain training loop on the spirals; `head` is applied to the model's output before the loss."""
    x, y = two_spirals(128, noise=0.05)
    losses = []
    for _ in range(steps):
        out = model(x)
        loss = (loss_fn or F.cross_entropy)(head(out) if head else out, y)
        if zero_grad:
            opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def watched(model, run, **settings):
    with Debugger("summary", model=model, alerts=AlertSettings(**settings)) as dbg:
        run()
    return list(dbg.alerts)


def kinds(alerts) -> list[str]:
    return [a.kind for a in alerts]


def test_a_learning_rate_far_too_high_is_named_before_the_loss_turns_nan():
    model = mlp()
    opt = engine.optim.SGD(model.parameters(), lr=20.0)
    alerts = watched(model, lambda: train(model, opt, steps=6, loss_fn=lambda o, y: F.mse_loss(
        o, F.one_hot(y, 2).float() * 100)))
    big = [a for a in alerts if a.kind == "large_update"]
    assert len(big) == 1  # one alert for every layer, not one per layer and step
    msg = big[0].message
    assert "learning rate (20) is far too high" in msg and "10 to 100 times smaller" in msg
    assert big[0].key in ("0", "2", "4") and big[0].value > 0.5
    # against the weights the step started from: after the step, a diverging update is most of the weights, and
    # the ratio read "1x its weights" where it was over a hundred thousand
    assert big[0].value > 1000 and f"are {big[0].value:,.0f}x its weights" in msg
    first_nan = min((a.iteration for a in alerts if a.kind.startswith("nonfinite")), default=99)
    assert big[0].iteration < first_nan
    exploding = [a for a in alerts if a.kind == "exploding_grad"]
    assert len(exploding) == 1 and "smaller learning rate" in exploding[0].message
    # the saturated layers after it get no gradient: said as a consequence, not as a second cause
    (saturated,) = [a for a in alerts if a.kind == "vanishing_grad"]
    assert saturated.value == 0 and "Fix the learning rate first" in saturated.message


def test_a_zero_initialised_layer_is_not_taken_for_a_learning_rate_too_high():
    model = mlp()
    with engine.no_grad():
        model[4].weight.fill_(0.0)  # its first update is all of its weights, as by design
        model[4].bias.fill_(0.0)
    opt = engine.optim.Adam(model.parameters(), lr=0.01)
    assert "large_update" not in kinds(watched(model, lambda: train(model, opt)))


def vanishing_model() -> nn.Sequential:
    model = mlp(nn.Sigmoid, depth=8)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.weight.data.normal_(0, 0.05)
            m.bias.data.zero_()
    return model


def test_vanishing_gradients_in_a_deep_sigmoid_mlp_are_one_alert_that_says_what_to_try():
    model = vanishing_model()
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    alerts = watched(model, lambda: train(model, opt, steps=12))
    assert kinds(alerts) == ["vanishing_grad"]  # ten of them before: one per parameter crossing the line
    msg = alerts[0].message
    assert alerts[0].key.startswith("0.")  # the smallest gradient is the layer nearest the input
    assert "layers ('0', '2', '4'" in msg and "against" in msg and "at '16.weight'" in msg
    assert "Kaiming or Xavier init" in msg and "ReLU" in msg


@needs_torch
def test_the_vanishing_alert_reports_the_gradient_norm_pytorch_computes():
    model = vanishing_model()
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = two_spirals(128, noise=0.05)
    layers = [m for m in model if isinstance(m, nn.Linear)]
    ref = torch.nn.Sequential(*[t for m in model for t in (
        [torch.nn.Linear(m.in_features, m.out_features)] if isinstance(m, nn.Linear) else [torch.nn.Sigmoid()])])
    with torch.no_grad():
        for mine, theirs in zip(layers, [m for m in ref if isinstance(m, torch.nn.Linear)], strict=True):
            theirs.weight.copy_(torch.from_numpy(mine.weight.detach().numpy()))
            theirs.bias.copy_(torch.from_numpy(mine.bias.detach().numpy()))
    alerts = watched(model, lambda: train(model, opt, steps=1))
    torch.nn.functional.cross_entropy(ref(torch.from_numpy(x.numpy())), torch.from_numpy(y.numpy())).backward()
    expected = {name: float(p.grad.norm()) for name, p in ref.named_parameters()}
    (alert,) = alerts
    assert alert.key == min(expected, key=expected.get)
    np.testing.assert_allclose(alert.value, expected[alert.key], rtol=1e-3)


def test_a_dead_relu_says_why_and_the_zero_gradients_behind_it_point_to_it():
    model = mlp(nn.ReLU, hidden=32, depth=2)
    model[2].bias.data.fill_(-5.0)  # the second relu's units never fire
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    alerts = watched(model, lambda: train(model, opt))
    assert kinds(alerts) == ["dead_relu", "vanishing_grad"]
    dead, zero = alerts
    assert dead.module == "Sequential.3" and "100% of the units" in dead.message
    assert "large negative bias" in dead.message and "LeakyReLU" in dead.message
    assert zero.value == 0 and f"the dead ReLU '{dead.key}' after it passes none" in zero.message


def test_a_forgotten_zero_grad_is_named_once_with_the_fix():
    model = mlp()
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    alerts = watched(model, lambda: train(model, opt, steps=10, zero_grad=False))
    assert kinds(alerts) == ["accumulating_grad"] and alerts[0].iteration == 1
    assert "'0.weight', '0.bias', '2.weight', '2.bias' and 2 more" in alerts[0].message
    assert "optimizer.zero_grad() before loss.backward()" in alerts[0].message


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_either_way_and_gradient_accumulation_on_purpose_raise_nothing(set_to_none):
    model = mlp()
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    x, y = two_spirals(128, noise=0.05)

    def run():
        for _ in range(6):
            opt.zero_grad(set_to_none=set_to_none)
            for half in (slice(0, 64), slice(64, 128)):  # two micro-batches per step
                F.cross_entropy(model(x[half]), y[half]).backward()
            opt.step()
    assert watched(model, run) == []


def test_softmax_before_cross_entropy_is_named_at_the_softmax():
    model = mlp()
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    alerts = watched(model, lambda: train(model, opt, head=lambda o: F.softmax(o, dim=1)))
    assert kinds(alerts) == ["probabilities"]
    # placed at the softmax, the line to change; the message names the loss too
    assert alerts[0].op == "softmax" and "F.softmax(o, dim=1)" in alerts[0].code
    assert alerts[0].message.startswith("'cross_entropy'") and "gets probabilities from 'softmax'" in alerts[0].message
    assert "Pass the raw logits (remove the softmax)" in alerts[0].message
    nll = watched(model, lambda: train(model, opt, head=lambda o: F.softmax(o, dim=1), loss_fn=F.nll_loss))
    assert kinds(nll) == ["probabilities"] and "use log_softmax instead of softmax" in nll[0].message
    fine = watched(model, lambda: train(model, opt, head=lambda o: F.log_softmax(o, dim=1), loss_fn=F.nll_loss))
    assert fine == []


def test_a_layer_replaced_after_the_optimizer_was_made_is_named_as_never_trained():
    model = mlp()
    opt = engine.optim.Adam(model.parameters(), lr=0.01)
    model[4] = nn.Linear(32, 2)
    before = model[4].weight.detach().numpy().copy()
    alerts = watched(model, lambda: train(model, opt))
    assert np.array_equal(model[4].weight.detach().numpy(), before)  # what the alert is about
    assert kinds(alerts) == ["not_updated"]  # not also "gradients add up": that follows from it
    assert alerts[0].message.startswith("'4.weight', '4.bias' get gradients but no optimizer updates them")
    assert "Make the optimizer after the model is final" in alerts[0].message


def test_two_optimizers_over_one_model_are_not_an_unupdated_layer():
    model = mlp()
    first = engine.optim.SGD(list(model[0].parameters()) + list(model[2].parameters()), lr=0.05)
    second = engine.optim.Adam(model[4].parameters(), lr=0.01)
    x, y = two_spirals(128, noise=0.05)

    def run():
        for _ in range(4):
            first.zero_grad()
            second.zero_grad()
            F.cross_entropy(model(x), y).backward()
            first.step()
            second.step()
    assert watched(model, run) == []


def test_frozen_parameters_given_to_the_optimizer_are_named_once():
    model = mlp()
    for p in model[0].parameters():
        p.requires_grad_(False)
    opts = [engine.optim.Adam(model.parameters(), lr=0.01)]
    alerts = watched(model, lambda: train(model, opts[0]))
    assert kinds(alerts) == ["frozen"]
    assert "'0.weight', '0.bias' are given to the optimizer but have requires_grad=False" in alerts[0].message
    opts.clear()  # an optimizer still alive holds them: the rule looks at every live one
    trainable = engine.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    assert watched(model, lambda: train(model, trainable)) == []  # frozen on purpose: left out of it


def test_each_new_rule_can_be_turned_off():
    model = mlp()
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    off = watched(model, lambda: train(model, opt, zero_grad=False, head=lambda o: F.softmax(o, dim=1)),
                  training=False, update_ratio_max=None)
    assert off == []


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"_qa_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, kwargs", [
    ("mlp_spirals", {"epochs": 2, "n": 400}),
    ("cnn_glyphs", {"epochs": 1, "n": 300}),
    ("char_lstm", {"epochs": 1, "batches_per_epoch": 8}),
])
def test_the_healthy_examples_raise_no_training_alert(name, kwargs, capsys):
    with Debugger("summary", discover=True) as dbg:
        load(name).main(**kwargs)
    assert [a.message for a in dbg.alerts if a.kind in TRAINING] == []


def test_a_gan_loop_is_not_a_forgotten_zero_grad():
    # generator and discriminator in one model, one optimizer each: the generator's backward adds once into
    # the discriminator's .grad between their two steps, which read as "nothing reset it"
    gen, disc = nn.Linear(4, 2), nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    model = nn.Sequential(gen, disc)
    opt_g = engine.optim.SGD(gen.parameters(), lr=0.01)
    opt_d = engine.optim.SGD(disc.parameters(), lr=0.01)
    real, noise = engine.randn(8, 2), engine.randn(8, 4)

    def run():
        for _ in range(4):
            opt_d.zero_grad()
            (disc(gen(noise).detach()).mean() - disc(real).mean()).backward()
            opt_d.step()
            opt_g.zero_grad()
            (-disc(gen(noise)).mean()).backward()  # flows through disc too, into its .grad
            opt_g.step()
    assert "accumulating_grad" not in kinds(watched(model, run))


class Detached(nn.Module):
    """A forward that detaches before its head by mistake: the first layers never get a gradient."""

    def __init__(self, every: int = 0, skip: bool = False) -> None:
        super().__init__()
        self.body, self.head = nn.Sequential(nn.Linear(2, 16), nn.Tanh()), nn.Linear(16, 2)
        self.every, self.calls, self.skip = every, 0, skip

    def forward(self, x):
        self.calls += 1
        if self.skip and self.calls % self.every:  # skip: the body runs every `every` calls, a fixed input else
            return self.head(engine.zeros(x.shape[0], 16))
        h = self.body(x)
        if not self.every or self.calls % self.every:  # every: the body's gradient arrives every `every` calls
            h = h.detach()
        return self.head(h)


def test_trained_parameters_the_loss_never_reaches_are_named_with_the_likely_cut():
    # an accidental detach: the optimizer holds the body's parameters, which get no gradient and never change; no
    # alert said so (only parameters with requires_grad=False were reported)
    model = Detached()
    opt = engine.optim.Adam(model.parameters(), lr=1e-2)
    alerts = watched(model, lambda: train(model, opt, steps=8))
    (cut,) = [a for a in alerts if a.kind == "no_gradient"]
    assert cut.message.startswith("'body.0.weight', 'body.0.bias' are trained")  # not the head's
    assert "`h = h.detach()` at" in cut.message and cut.iteration == 0  # the detach seen: named at once
    # a branch that some steps skip (no detach to blame) gets its gradient soon enough: no alert
    model = Detached(every=3, skip=True)
    opt = engine.optim.Adam(model.parameters(), lr=1e-2)
    assert "no_gradient" not in kinds(watched(model, lambda: train(model, opt, steps=12)))


def test_training_left_in_eval_mode_after_validation_is_named_at_its_batch_norm():
    # model.eval() for a validation pass, never undone: BatchNorm kept its running statistics (and Dropout was off)
    # for the rest of training, and the loss chart looked healthy
    def run(undo: bool, no_grad_validation: bool = True):
        engine.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
        opt = engine.optim.SGD(model.parameters(), lr=0.05)
        x, y = two_spirals(64, noise=0.05)

        def loop():
            for epoch in range(3):
                model.train() if undo or epoch == 0 else None
                for _ in range(3):
                    opt.zero_grad()
                    F.cross_entropy(model(x), y).backward()
                    opt.step()
                model.eval()
                if no_grad_validation:
                    with engine.no_grad():
                        model(x)
                else:  # a validation pass without no_grad, in the iteration the next training step is in
                    model(x)

        return watched(model, loop)

    (left,) = [a for a in run(undo=False) if a.kind == "eval_mode"]
    assert left.module == "Sequential.1" and "model.train()" in left.message and left.line > 0
    assert "eval_mode" not in kinds(run(undo=True))
    assert "eval_mode" not in kinds(run(undo=True, no_grad_validation=False))
    # norms kept in eval mode from the start (fine-tuning with frozen statistics): never trained, no alert
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    model[1].eval()
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    assert "eval_mode" not in kinds(watched(model, lambda: train(model, opt, steps=6)))
