"""A language model's output layer "tied" to its embedding by a copy of the weight (two Parameters, trained apart)
is named; a real tie, a target network's copy, constant inits and independent layers are not."""

from __future__ import annotations

import copy

import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger

V, D = 40, 8


class LM(nn.Module):
    def __init__(self, tie: str = "") -> None:
        super().__init__()
        self.encoder = nn.Embedding(V, D)
        self.rnn = nn.GRU(D, D, batch_first=True)
        self.decoder = nn.Linear(D, V)
        if tie == "assign":  # the tie: one Parameter
            self.decoder.weight = self.encoder.weight
        elif tie == "clone":
            self.decoder.weight = nn.Parameter(self.encoder.weight.clone())
        elif tie == "copy_":
            with engine.no_grad():
                self.decoder.weight.copy_(self.encoder.weight)
        elif tie == "deepcopy":
            self.decoder.weight = copy.deepcopy(self.encoder.weight)
        elif tie == "data":  # one storage, two Parameters: engine.debug's storage_tie
            self.decoder.weight.data = self.encoder.weight.data
        elif tie == "zeros":  # both constant: same_units' concern, not a tie
            nn.init.zeros_(self.encoder.weight)
            nn.init.zeros_(self.decoder.weight)

    def forward(self, x):
        h, _ = self.rnn(self.encoder(x))
        return self.decoder(h)


def run(model: LM, steps: int = 3, target: LM | None = None, device: str = "cpu") -> list:
    """The broken_tying alerts of `steps` SGD steps of `model` (and of a frozen `target` run beside it)."""
    opt = engine.optim.SGD(model.parameters(), lr=0.5)
    engine.manual_seed(1)
    x, y = engine.randint(0, V, (4, 6), device=device), engine.randint(0, V, (4, 6), device=device)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
            if target is not None:
                with engine.no_grad():
                    distance = target(x).mean()
                loss = loss + 0.0 * distance
            loss.backward()
            opt.step()
    return [a for a in dbg.alerts if a.kind == "broken_tying"]


@pytest.mark.parametrize("tie", ["clone", "copy_", "deepcopy"])
def test_a_tie_made_by_copying_is_named(tie):
    engine.manual_seed(0)
    found = run(LM(tie))
    assert len(found) == 1
    alert = found[0]
    assert "'decoder.weight'" in alert.message and "'encoder.weight'" in alert.message
    assert "self.decoder.weight = self.encoder.weight" in alert.message
    assert alert.module.endswith("decoder") and alert.line > 0 and alert.iteration == 0


def test_the_copies_do_drift_apart():  # what the alert says happens: two matrices trained apart
    engine.manual_seed(0)
    model = LM("clone")
    run(model)
    assert not bool((model.decoder.weight == model.encoder.weight).all())


@pytest.mark.parametrize("tie", ["assign", "zeros", ""])
def test_a_real_tie_constant_inits_and_untied_layers_are_not_named(tie):
    engine.manual_seed(0)
    assert run(LM(tie)) == []


def test_a_target_networks_copy_is_not_named():
    engine.manual_seed(0)
    model = LM("assign")
    target = copy.deepcopy(model)  # its embedding holds the values of the model's decoder: a copy nobody trains
    for p in target.parameters():
        p.requires_grad_(False)
    assert run(model, target=target) == []


def test_two_peers_copied_from_one_tied_model_and_trained_together_are_not_named():
    # deep mutual learning, an ensemble: b's embedding holds a's decoder's values, but each model is tied itself
    engine.manual_seed(0)
    a = LM("assign")
    b = copy.deepcopy(a)
    opt = engine.optim.SGD([*a.parameters(), *b.parameters()], lr=0.5)
    engine.manual_seed(1)
    x, y = engine.randint(0, V, (4, 6)), engine.randint(0, V, (4, 6))
    with Debugger("summary", model=a, optimizer=opt) as dbg:
        for _ in range(3):
            opt.zero_grad()
            loss = sum(F.cross_entropy(m(x).reshape(-1, V), y.reshape(-1)) for m in (a, b))
            loss.backward()
            opt.step()
    assert [a.kind for a in dbg.alerts if a.kind == "broken_tying"] == []


def test_two_peers_of_an_untied_copy_are_told_apart_from_the_copy_in_each():
    engine.manual_seed(0)
    a = LM("clone")
    b = copy.deepcopy(a)
    opt = engine.optim.SGD([*a.parameters(), *b.parameters()], lr=0.5)
    x, y = engine.randint(0, V, (4, 6)), engine.randint(0, V, (4, 6))
    with Debugger("summary", model=a, optimizer=opt) as dbg:
        opt.zero_grad()
        sum(F.cross_entropy(m(x).reshape(-1, V), y.reshape(-1)) for m in (a, b)).backward()
        opt.step()
    found = [a for a in dbg.alerts if a.kind == "broken_tying"]
    assert len(found) == 1 and "'decoder.weight'" in found[0].message  # a's own copy, named once
