"""Targets that reach the model's input by paths the graph walk once missed, each named: a multi-hot target under
binary_cross_entropy_with_logits, a target rescaled before it is joined ((y - y.mean()) / y.std(), y.float() / 10),
a join made inside the model's forward from a target passed as a second argument, and class indices looked up in an
nn.Embedding and joined (cat, or added) to the features. torch trains each program to a
loss near 0, which is what the alert says happens."""

from __future__ import annotations

import warnings

import pytest

import engine
from engine.debug import Debugger
from tests.engine.oracle import needs_torch, torch

N, D, L = 64, 8, 4


def mlp(lib, d_in: int, d_out: int = L):
    return lib.nn.Sequential(lib.nn.Linear(d_in, 32), lib.nn.ReLU(), lib.nn.Linear(32, d_out))


def multi_hot(lib):
    """Multi-label classification whose multi-hot targets are joined to the features."""
    x, y = lib.randn(N, D), (lib.rand(N, L) < 0.3).float()
    model = mlp(lib, D + L)
    return model, lambda: lib.nn.functional.binary_cross_entropy_with_logits(model(lib.cat([x, y], 1)), y)


def standardised(lib):
    """A regression whose target, standardised, is joined to the features."""
    x, y = lib.randn(N, D), lib.randn(N, 1) * 3 + 5
    model = mlp(lib, D + 1, 1)
    return model, lambda: lib.nn.functional.mse_loss(model(lib.cat([x, (y - y.mean()) / y.std()], 1)), y)


def scaled(lib):
    """Class indices, as floats divided by 10, joined to the features of a classifier of them."""
    x, y = lib.randn(N, D), lib.randint(0, L, (N,))
    model = mlp(lib, D + 1)
    return model, lambda: lib.nn.functional.cross_entropy(model(lib.cat([x, y.float().unsqueeze(1) / 10], 1)), y)


def joined_in_forward(lib):
    """A classifier whose forward joins its features with the labels passed as a second argument."""
    nn, F = lib.nn, lib.nn.functional

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp(lib, D + L)

        def forward(self, x, y):
            return self.net(lib.cat([x, F.one_hot(y, L).float()], 1))

    x, y = lib.randn(N, D), lib.randint(0, L, (N,))
    model = Classifier()
    return model, lambda: F.cross_entropy(model(x, y), y)


def embedded(lib):
    """Class indices looked up in an nn.Embedding (its vectors fixed: no optimizer takes them) and joined to the
    features of a classifier of them, before the model."""
    x, y = lib.randn(N, D), lib.randint(0, L, (N,))
    emb, model = lib.nn.Embedding(L, 3), mlp(lib, D + 3)
    return model, lambda: lib.nn.functional.cross_entropy(model(lib.cat([x, emb(y)], 1)), y)


def embedded_sum(lib):
    """The same with the label's vector added to the features."""
    x, y = lib.randn(N, D), lib.randint(0, L, (N,))
    emb, model = lib.nn.Embedding(L, D), mlp(lib, D)
    return model, lambda: lib.nn.functional.cross_entropy(model(x + emb(y)), y)


LEAKS = {"multi_hot": (multi_hot, "binary_cross_entropy_with_logits", "model(lib.cat([x, y], 1))"),
         "standardised": (standardised, "mse_loss", "(y - y.mean()) / y.std()"),
         "scaled": (scaled, "cross_entropy", "y.float().unsqueeze(1) / 10"),
         "joined_in_forward": (joined_in_forward, "cross_entropy", "lib.cat([x, F.one_hot(y, L).float()], 1)"),
         "embedded": (embedded, "cross_entropy", "lib.cat([x, emb(y)], 1)"),
         "embedded_sum": (embedded_sum, "cross_entropy", "model(x + emb(y))")}


def trained(lib, program, steps: int, debugger: bool = False) -> tuple[list[float], list]:
    """The losses of `steps` Adam steps of program(lib), and the alerts a Debugger at "summary" raised."""
    lib.manual_seed(0)
    model, loss_of = program(lib)
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    with Debugger("summary", model=model, optimizer=opt) if debugger else warnings.catch_warnings() as dbg:
        for _ in range(steps):
            opt.zero_grad()
            loss = loss_of()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses, list(dbg.alerts) if debugger else []


@needs_torch
@pytest.mark.parametrize("name", LEAKS)
def test_a_target_fed_as_input_is_named_and_torch_fits_it_to_nothing(name):
    program, loss, code = LEAKS[name]
    (alert,) = trained(engine, program, 2, debugger=True)[1]
    assert alert.kind == "label_leak" and alert.iteration == 0 and alert.line > 0
    assert alert.op == ("add" if name == "embedded_sum" else "cat")
    assert alert.message.startswith(f"the targets of '{loss}'") and "are also in the model's input" in alert.message
    assert code in alert.code
    if name == "joined_in_forward":
        assert alert.module == "Classifier" and "inside its forward" in alert.message
    losses = trained(torch, program, 200)[0]
    assert losses[-1] < 0.02 * losses[0]  # what the alert says: the loss falls toward 0
