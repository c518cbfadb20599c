"""A weight tie made through shared storage (`decoder.weight.data = encoder.weight.data`: two Parameters, one matrix)
is named where the optimizer's two steps a step are no tie's (Adam's, weight decay's), as torch trains it too; plain
SGD's add up to a tie's and are not named, nor is a real tie, a transposed tie in forward, or a frozen alias."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger
from tests.engine.debug.test_broken_tying import LM, V
from tests.engine.oracle import needs_torch, torch


def run(model, make_optimizer, steps: int = 3) -> list:
    """The alerts of `steps` steps of the optimizer make_optimizer(parameters) on a language model's loss."""
    opt = make_optimizer([p for p in model.parameters() if p.requires_grad])
    engine.manual_seed(1)
    x, y = engine.randint(0, V, (4, 6)), engine.randint(0, V, (4, 6))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1)).backward()
            opt.step()
    return list(dbg.alerts)


def moved(lib, tie: str, optimizer: str, **options) -> np.ndarray:
    """How far 20 steps move a tied embedding matrix, in `lib` (engine or torch: the same code), tied by assigning
    the Parameter or by `.data =`."""
    def make(encoder, decoder):
        return getattr(lib.optim, optimizer)(list(dict.fromkeys([*encoder.parameters(), *decoder.parameters()])),
                                             **options)
    return tied_steps(lib, tie, make) - tied_steps(lib, tie, make, steps=0)


@needs_torch
def test_a_tie_through_shared_storage_stepped_by_adam_is_named_and_moves_as_far_as_it_says():
    engine.manual_seed(0)
    (alert,) = run(LM("data"), lambda p: engine.optim.Adam(p, lr=1e-2))
    assert alert.kind == "storage_tie" and alert.module.endswith("decoder") and alert.line > 0
    assert alert.message.startswith("'encoder.weight' and 'decoder.weight' are two Parameters on one storage")
    assert "Adam scales each Parameter's step by its own running statistics" in alert.message
    assert "`self.decoder.weight = self.encoder.weight`" in alert.message
    for lib in (engine, torch):  # each step writes two updates: more than a tie's one, less than twice
        ratio = np.linalg.norm(moved(lib, "data", "Adam", lr=1e-3)) / np.linalg.norm(moved(lib, "", "Adam", lr=1e-3))
        assert 1.3 < ratio < 2.0
    np.testing.assert_allclose(moved(engine, "data", "Adam", lr=1e-3), moved(torch, "data", "Adam", lr=1e-3),
                               rtol=1e-3, atol=1e-5)


@needs_torch
def test_weight_decay_on_a_shared_storage_tie_is_named_and_plain_sgd_is_not():
    engine.manual_seed(0)
    (alert,) = run(LM("data"), lambda p: engine.optim.SGD(p, lr=0.5, weight_decay=0.01))
    assert alert.kind == "storage_tie" and "weight_decay=0.01 decays the matrix twice a step" in alert.message
    engine.manual_seed(0)
    assert run(LM("data"), lambda p: engine.optim.SGD(p, lr=0.5, momentum=0.9)) == []
    for lib in (engine, torch):  # why not: plain SGD's two steps add up to a tie's step with both gradients
        np.testing.assert_allclose(moved(lib, "data", "SGD", lr=0.1, momentum=0.9),
                                   moved(lib, "", "SGD", lr=0.1, momentum=0.9), rtol=1e-4, atol=1e-6)


class TiedAutoencoder(nn.Module):
    """A decoder tied to the encoder's weight transposed: in forward (one Parameter), or by `.data =` a view of it."""

    def __init__(self, tie: str) -> None:
        super().__init__()
        self.enc = nn.Linear(12, 4)
        self.dec = nn.Linear(4, 12)
        self.in_forward = tie == "forward"
        if tie == "data":
            self.dec.weight.data = self.enc.weight.data.t()

    def forward(self, x):
        h = engine.tanh(self.enc(x))
        return F.linear(h, self.enc.weight.t(), self.dec.bias) if self.in_forward else self.dec(h)


def autoencoded(tie: str) -> list:
    """The alerts of 3 Adam steps of a TiedAutoencoder(tie)."""
    engine.manual_seed(0)
    model = TiedAutoencoder(tie)
    opt = engine.optim.Adam(model.parameters(), lr=1e-2)
    x = engine.randn(16, 12)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(3):
            opt.zero_grad()
            F.mse_loss(model(x), x).backward()
            opt.step()
    return list(dbg.alerts)


def test_a_real_tie_a_frozen_alias_and_a_tie_in_forward_are_not_named_a_transposed_alias_is():
    adam = lambda p: engine.optim.Adam(p, lr=1e-2)  # noqa: E731
    engine.manual_seed(0)
    assert run(LM("assign"), adam) == []
    engine.manual_seed(0)
    frozen = LM("data")
    frozen.decoder.weight.requires_grad_(False)  # one of the two trained: one step a step
    assert run(frozen, adam) == []
    assert autoencoded("forward") == []
    (alert,) = autoencoded("data")
    assert alert.kind == "storage_tie" and "'enc.weight' and 'dec.weight'" in alert.message
    assert "use F.linear(h, self.enc.weight.t()) in forward" in alert.message


def counting(base):
    """A subclass of `base` (an SGD) that counts its steps and keeps SGD's update."""

    class CountingSGD(base):
        steps = 0

        def step(self, closure=None):
            CountingSGD.steps += 1
            return super().step(closure)

    return CountingSGD


def tied_steps(lib, tie: str, make_optimizer, steps: int = 20) -> np.ndarray:
    """The embedding matrix after `steps` steps of make_optimizer(encoder, decoder) in `lib`, tied by assigning the
    Parameter or by `.data =`."""
    lib.manual_seed(0)
    encoder, decoder = lib.nn.Embedding(12, 6), lib.nn.Linear(6, 12)
    if tie == "data":
        decoder.weight.data = encoder.weight.data
    else:
        decoder.weight = encoder.weight
    opt = make_optimizer(encoder, decoder)
    x, y = lib.tensor(np.arange(16) % 12), lib.tensor((np.arange(16) * 5) % 12)
    for _ in range(steps):
        opt.zero_grad()
        lib.nn.functional.cross_entropy(decoder(lib.tanh(encoder(x))), y).backward()
        opt.step()
    return encoder.weight.detach().numpy()


def counting_sgd(lib):
    """A counting SGD subclass with momentum over both Parameters."""
    def make(encoder, decoder):
        return counting(lib.optim.SGD)(list(dict.fromkeys([*encoder.parameters(), *decoder.parameters()])), lr=0.1,
                                       momentum=0.9)
    return make


def decay_on_the_embedding(lib):
    """SGD with weight decay in the embedding's group only (the decoder's weight, a second Parameter or none, and
    bias in an undecayed one)."""
    def make(encoder, decoder):
        rest = [p for p in decoder.parameters() if p is not encoder.weight]
        return lib.optim.SGD([{"params": [encoder.weight], "weight_decay": 0.01},
                              {"params": rest, "weight_decay": 0.0}], lr=0.2)
    return make


@needs_torch
def test_a_shared_storage_under_an_sgd_subclass_or_decayed_in_one_group_only_steps_as_a_tie_and_is_not_named():
    engine.manual_seed(0)
    assert run(LM("data"), lambda p: counting(engine.optim.SGD)(p, lr=0.5, momentum=0.9)) == []
    decayed = [{"params": [], "weight_decay": 0.01}, {"params": [], "weight_decay": 0.0}]

    def one_decayed(params):  # the embedding's weight decayed, the decoder's (the same matrix) not
        model_params = dict(model.named_parameters())
        decayed[0]["params"] = [model_params["encoder.weight"]]
        decayed[1]["params"] = [p for n, p in model_params.items() if n != "encoder.weight" and p.requires_grad]
        return engine.optim.SGD(decayed, lr=0.5)

    engine.manual_seed(0)
    model = LM("data")
    assert run(model, one_decayed) == []
    for lib in (engine, torch):  # why not: either steps the matrix as a real tie does
        np.testing.assert_allclose(tied_steps(lib, "data", counting_sgd(lib)), tied_steps(lib, "", counting_sgd(lib)),
                                   rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(tied_steps(lib, "data", decay_on_the_embedding(lib)),
                                   tied_steps(lib, "", decay_on_the_embedding(lib)), rtol=1e-4, atol=1e-5)


def two_models(lib, share: str):
    """Two Linear layers of two models, trained apart by SGD and Adam, whose weights share storage: one tensor
    wrapped in nn.Parameter twice, or one a view of the other's (its transpose)."""
    lib.manual_seed(0)
    a, b = lib.nn.Linear(6, 6), lib.nn.Linear(6, 6)
    if share == "wrapped":
        start = lib.randn(6, 6) * 0.3
        a.weight, b.weight = lib.nn.Parameter(start), lib.nn.Parameter(start)
    elif share == "view":
        b.weight = lib.nn.Parameter(a.weight.data.t())
    return a, b, lib.optim.SGD(a.parameters(), lr=0.1), lib.optim.Adam(b.parameters(), lr=1e-2)


def step_both(lib, a, b, opt_a, opt_b, steps: int) -> None:
    """`steps` iterations, each a step of a's optimizer on a's loss and then one of b's on b's."""
    x = lib.tensor(np.linspace(-1, 1, 36, dtype=np.float32).reshape(6, 6))
    for _ in range(steps):
        for model, opt, sign in ((a, opt_a, 1.0), (b, opt_b, -1.0)):
            opt.zero_grad()
            lib.nn.functional.mse_loss(model(x), sign * x).backward()
            opt.step()


@needs_torch
@pytest.mark.parametrize("share", ["wrapped", "view"])
def test_two_parameters_on_one_storage_stepped_by_two_optimizers_are_named(share):
    a, b, opt_a, opt_b = two_models(engine, share)
    with Debugger("summary", model=a, optimizer=opt_a) as dbg:
        step_both(engine, a, b, opt_a, opt_b, 3)
    (alert,) = dbg.alerts
    assert alert.kind == "storage_tie" and alert.iteration == 2 and alert.line > 0 and "opt.step()" in alert.code
    assert alert.message.startswith("'weight' (SGD) and 'Linear_2.weight' (Adam) are two Parameters on one storage")
    assert "two optimizers step them" in alert.message and "nn.Parameter(w.clone())" in alert.message
    # what it says: in torch too, b's optimizer alone moves a's weight, which a's loss and optimizer do not
    a, b, opt_a, opt_b = two_models(torch, share)
    before = a.weight.detach().clone()
    opt_b.zero_grad()
    torch.nn.functional.mse_loss(b(torch.ones(2, 6)), torch.zeros(2, 6)).backward()
    opt_b.step()
    assert a.weight.grad is None and not torch.equal(a.weight, before)


LATE = 20  # steps of the first model alone before the second phase: past any first-steps-only window


def late_pair(lib, how: str) -> tuple:
    """(a, b, opt_a, opt_b, run) where run(steps) takes LATE steps of a's SGD alone, then `steps` iterations each a
    step of a's and one of b's Adam: b made then over a view of a's weight (`created`), made at the start over it
    and stepped from then on (`phase`), made then over a copy (`copied`: no tie), or made then over the view and
    stepped alone (`handed` over: a steps no more)."""
    lib.manual_seed(0)
    a = lib.nn.Linear(6, 6)
    opt_a = lib.optim.SGD(a.parameters(), lr=0.1)
    x = lib.tensor(np.linspace(-1, 1, 36, dtype=np.float32).reshape(6, 6))
    made = {}

    def make():
        b = lib.nn.Linear(6, 6)
        weight = a.weight.data.clone() if how == "copied" else a.weight.data.t()
        b.weight = lib.nn.Parameter(weight)
        made["b"], made["opt"] = b, lib.optim.Adam(b.parameters(), lr=1e-2)

    def step(model, opt, sign):
        opt.zero_grad()
        lib.nn.functional.mse_loss(model(x), sign * x).backward()
        opt.step()

    if how == "phase":
        make()

    def run(steps: int) -> None:
        for _ in range(LATE):
            step(a, opt_a, 1.0)
        if how != "phase":
            make()
        for _ in range(steps):
            if how != "handed":
                step(a, opt_a, 1.0)
            step(made["b"], made["opt"], -1.0)

    return a, made, opt_a, run


@pytest.mark.parametrize("how", ["created", "phase"])
def test_two_optimizers_that_first_step_one_storage_after_many_steps_are_named(how):
    a, _, opt_a, run = late_pair(engine, how)
    with Debugger("summary", model=a, optimizer=opt_a) as dbg:
        run(3)
    (alert,) = [a for a in dbg.alerts if a.kind == "storage_tie"]
    assert alert.iteration > LATE and "two optimizers step them" in alert.message
    assert "'weight' (SGD)" in alert.message and "'Linear_2.weight' (Adam)" in alert.message
    for neighbour in ("copied", "handed"):  # its own copy, trained apart; the weights handed to a new optimizer
        a, _, opt_a, run = late_pair(engine, neighbour)
        with Debugger("summary", model=a, optimizer=opt_a) as dbg:
            run(3)
        assert [a for a in dbg.alerts if a.kind == "storage_tie"] == [], neighbour


@needs_torch
def test_what_a_late_pair_does_in_torch_b_moves_a():
    a, made, opt_a, run = late_pair(torch, "created")
    run(1)
    opt_a.zero_grad()
    before = a.weight.detach().clone()
    made["opt"].zero_grad()
    torch.nn.functional.mse_loss(made["b"](torch.ones(2, 6)), torch.zeros(2, 6)).backward()
    made["opt"].step()
    assert a.weight.grad is None and not torch.equal(a.weight, before)


def test_a_data_tie_whose_second_parameter_first_trains_late_is_named():
    engine.manual_seed(0)
    model = LM("data")
    model.decoder.weight.requires_grad_(False)  # frozen at first: one of the two trained, a step a step
    opt = engine.optim.Adam(model.parameters(), lr=1e-2)
    engine.manual_seed(1)
    x, y = engine.randint(0, V, (4, 6)), engine.randint(0, V, (4, 6))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for i in range(LATE + 3):
            model.decoder.weight.requires_grad_(i >= LATE)  # unfrozen: Adam steps the matrix through both
            opt.zero_grad()
            F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1)).backward()
            opt.step()
    (alert,) = [a for a in dbg.alerts if a.kind == "storage_tie"]
    assert alert.iteration == LATE and "Adam scales each Parameter's step" in alert.message
