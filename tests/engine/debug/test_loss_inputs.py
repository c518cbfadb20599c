"""What a tester's scripts trained through without an alert: nll_loss fed raw logits (the loss fell to -951 while the
accuracy stayed at 1/3), a hand-written squared error of (N, 1) outputs against (N,) targets (broadcast to (N, N): it
learns the mean), a loss at chance under watch() (its value never read at capture "structure"), and a bare
`with watch():` that found no model, so the checks of parameters never ran. Each is named once, where it is; the
correct programs beside each (checked under PyTorch, the same code) raise none of them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import engine
from engine.debug import Debugger, watch
from tests.engine.debug.test_gpu import _has_cuda
from tests.engine.oracle import torch

LIBS = (engine,) if torch is None else (engine, torch)  # the programs run the same in each
KINDS = ("log_probabilities", "broadcast_loss", "probabilities")


def data(lib, n: int = 32, classes: int = 3):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return lib.tensor(x), lib.tensor((x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0) * (classes - 2))


def fit(lib, loss_fn, out: int = 3, steps: int = 4) -> list[float]:
    """The losses of `steps` Adam steps of a small MLP with `out` outputs, `loss_fn(lib, output, x)` its loss."""
    lib.manual_seed(0)
    nn = lib.nn
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, out))
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    x, _ = data(lib)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(lib, model(x), x)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def alerts_of(loss_fn, out: int = 3, steps: int = 4) -> list:
    """The alerts of KINDS while `fit` runs, its model and optimizer found as the app finds them."""
    with Debugger("summary", discover=True) as dbg, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's reduction="mean", broadcasting: the engine warns as torch does
        fit(engine, loss_fn, out, steps)
    return [a for a in dbg.alerts if a.kind in KINDS]


# ---- nll_loss and kl_div given what is not log-probabilities -------------------------------------------------
def labels(lib, x):
    return (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def nll_on_logits(lib, out, x):
    return lib.nn.functional.nll_loss(out, labels(lib, x))  # log_softmax forgotten


def test_nll_loss_fed_raw_logits_is_named_at_its_line_with_the_fix():
    (alert,) = alerts_of(nll_on_logits)
    assert alert.kind == "log_probabilities" and alert.op == "nll_loss" and alert.iteration == 0 and alert.line > 0
    assert alert.code == "return lib.nn.functional.nll_loss(out, labels(lib, x))  # log_softmax forgotten"
    assert "gets values that are not log-probabilities (values up to " in alert.message
    assert "Apply log_softmax first" in alert.message and "F.cross_entropy" in alert.message
    for lib in LIBS:  # as it says: the loss falls below zero and on
        losses = fit(lib, nll_on_logits, steps=40)
        assert losses[-1] < losses[20] - 1 < losses[20] < 0
    if torch is not None:
        np.testing.assert_allclose(fit(engine, nll_on_logits, steps=10), fit(torch, nll_on_logits, steps=10),
                                   rtol=1e-3, atol=1e-4)


def test_kl_div_given_probabilities_or_logits_as_its_input_is_named():
    def kl(made):
        def loss(lib, out, x):
            F = lib.nn.functional
            teacher = F.softmax(x[:, :3] * 2, dim=1)
            return F.kl_div(made(F, out), teacher, reduction="batchmean")
        return loss

    for made in (lambda F, out: F.softmax(out, dim=1), lambda F, out: out):
        (alert,) = alerts_of(kl(made))
        assert alert.kind == "log_probabilities" and alert.op == "kl_div" and alert.iteration == 0
        assert "Pass F.log_softmax(scores, dim=-1) as the input" in alert.message
    assert alerts_of(kl(lambda F, out: F.log_softmax(out, dim=1))) == []


LOG_PROBABILITIES = {
    "log_softmax": lambda lib, out: lib.nn.functional.log_softmax(out, dim=1),
    "log of softmax": lambda lib, out: lib.nn.functional.softmax(out, dim=1).log(),
    "log of softmax + eps": lambda lib, out: (lib.nn.functional.softmax(out, dim=1) + 1e-3).log(),
    "LogSoftmax module": lambda lib, out: lib.nn.LogSoftmax(dim=1)(out),
    "logits minus logsumexp": lambda lib, out: out - out.logsumexp(1, keepdim=True),
    "weighted by an advantage": lambda lib, out: lib.nn.functional.log_softmax(out, 1) * (out.detach()[:, :1] - 0.5),
}


@pytest.mark.parametrize("name", LOG_PROBABILITIES)
def test_log_probabilities_in_their_usual_forms_raise_nothing(name):
    def loss(lib, out, x):
        return lib.nn.functional.nll_loss(LOG_PROBABILITIES[name](lib, out), labels(lib, x))

    assert alerts_of(loss) == []
    if torch is not None:  # the same program: it learns under torch as under the engine
        np.testing.assert_allclose(fit(engine, loss), fit(torch, loss), rtol=1e-3, atol=1e-4)


def test_label_smoothing_and_log_probabilities_over_positions_raise_nothing():
    def smoothed(lib, out, x):  # by hand: nll of the labels and the mean log-probability, mixed
        logp = lib.nn.functional.log_softmax(out, dim=1)
        return 0.9 * lib.nn.functional.nll_loss(logp, labels(lib, x)) - 0.1 * logp.mean()

    def per_position(lib, out, x):  # (N, C, T) log-probabilities, one label per position
        targets = lib.tensor(np.random.default_rng(1).integers(0, 3, (32, 4)))
        return lib.nn.functional.nll_loss(lib.nn.functional.log_softmax(out.view(32, 3, 4), dim=1), targets)

    assert alerts_of(smoothed) == [] and alerts_of(per_position, out=12) == []
    assert alerts_of(lambda lib, out, x: lib.nn.functional.cross_entropy(out, labels(lib, x),
                                                                         label_smoothing=0.1)) == []


# ---- a hand-written squared error that broadcasts ---------------------------------------------------------
def regression(lib, how: str, steps: int = 4, printed: bool = False) -> list[float]:
    """Losses of a regression whose model outputs (32, 1), its loss written by hand as `how` says; `printed`: on
    every other step the true error is computed after the step (a print's ops, numbered before the next loss's)."""
    lib.manual_seed(0)
    nn = lib.nn
    x, _ = data(lib)
    y = x[:, 0] * 2 - x[:, 1]
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        pred = model(x)
        if how == "broadcast":
            loss = ((pred - y) ** 2).mean()  # (32, 1) against (32,)
        elif how == "squeezed":
            loss = ((pred.squeeze(1) - y) ** 2).mean()
        elif how == "pairwise":  # every output against every output: a column of a vector, on purpose
            loss = -(pred.view(-1)[:, None] - pred.view(-1)).abs().mean()
        elif how == "against samples":  # an energy distance's term: the outputs against the data, on purpose
            loss = (pred.view(-1)[:, None] - y).abs().mean()
        elif how == "kernel":  # (N, 1) against (1, M): a kernel's outer difference
            loss = (-((pred - y[None, :8]) ** 2)).exp().mean()
        elif how == "nearest":  # each output's nearest target: reduced over one dim first
            loss = ((pred - y) ** 2).min(1)[0].mean()
        else:  # every positive's score against every negative's: both require grad
            loss = nn.functional.relu(1 - (pred[:16] - pred[16:].view(-1))).mean()
        loss.backward()
        opt.step()
        if printed and step % 2 == 0:
            ((pred.squeeze(1) - y) ** 2).mean().item()
        losses.append(loss.item())
    return losses


def test_a_hand_written_squared_error_of_n_by_1_outputs_against_n_targets_is_named_once_with_the_fix():
    with Debugger("summary", discover=True) as dbg, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        regression(engine, "broadcast", steps=6, printed=True)
    (alert,) = [a for a in dbg.alerts if a.kind in KINDS]  # once, though a print's ops renumber it on some steps
    assert alert.kind == "broadcast_loss" and alert.op == "sub" and alert.iteration == 0
    assert alert.code == "loss = ((pred - y) ** 2).mean()  # (32, 1) against (32,)"
    assert "takes tensors of shapes (32, 1) and (32,), iteration 0: they broadcast to (32, 32), and 'mean' makes a " \
           "loss of all of it" in alert.message
    assert "least where each output predicts the targets' mean" in alert.message
    assert "Make the (32, 1) output a vector, output.squeeze(1) (or output.view(-1))" in alert.message
    for lib in LIBS:  # as it says: it fits nothing, where the squeezed loss fits
        assert regression(lib, "squeezed", steps=60)[-1] < 0.3 * regression(lib, "broadcast", steps=60)[-1]
    if torch is not None:
        np.testing.assert_allclose(regression(engine, "broadcast"), regression(torch, "broadcast"), rtol=1e-4)


@pytest.mark.parametrize("how", ["squeezed", "pairwise", "against samples", "kernel", "nearest", "ranking"])
def test_outer_differences_on_purpose_raise_nothing(how):
    with Debugger("summary", discover=True) as dbg, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        regression(engine, how)
    assert [a.message for a in dbg.alerts if a.kind in KINDS] == []
    if torch is not None:
        np.testing.assert_allclose(regression(engine, how), regression(torch, how), rtol=1e-4, atol=1e-6)


# ---- a loss at chance, under watch() -------------------------------------------------------------------------
def test_a_loss_at_chance_is_named_under_watch_which_makes_no_summaries():
    def run(shuffled: bool) -> list:
        engine.manual_seed(0)
        rng = np.random.default_rng(0)
        y = np.arange(96) % 3  # three balanced classes, around three centres on a circle
        angle = 2 * np.pi * y / 3
        x = (np.stack([np.cos(angle), np.sin(angle)], 1) + 0.3 * rng.standard_normal((96, 2))).astype(np.float32)
        if shuffled:
            y = y[rng.permutation(96)]  # the labels shuffled apart from their inputs
        x, y = engine.tensor(x), engine.tensor(y)
        model = engine.nn.Sequential(engine.nn.Linear(2, 16), engine.nn.ReLU(), engine.nn.Linear(16, 3))
        opt = engine.optim.SGD(model.parameters(), lr=0.05)
        with warnings.catch_warnings(), watch(model) as dbg:
            warnings.simplefilter("ignore")
            for _ in range(130):
                opt.zero_grad()
                engine.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
        return [a for a in dbg.alerts if a.kind == "at_chance"]

    (alert,) = run(shuffled=True)
    assert alert.iteration >= 99 and "has stayed within 2% of chance, ln 3 = 1.1 " in alert.message
    assert run(shuffled=False) == []


# ---- a bare watch() -----------------------------------------------------------------------------------------
class Net(engine.nn.Module):
    """Two layers, and with `unused` a third that the optimizer trains and forward never runs."""

    def __init__(self, unused: bool = False) -> None:
        super().__init__()
        self.fc1, self.fc2 = engine.nn.Linear(4, 16), engine.nn.Linear(16, 3)
        self.unused = engine.nn.Linear(16, 3) if unused else None

    def forward(self, x):
        return self.fc2(engine.nn.functional.relu(self.fc1(x)))


def loop(mistake: str, watched: str):
    """A few steps of a small classifier with `mistake`, under watch() given nothing, the model, or both: the kinds
    of its alerts, and what it warned about finding no model."""
    engine.manual_seed(0)
    model = Net(unused=mistake == "unreached")
    if mistake == "constant init":
        for layer in (model.fc1, model.fc2):
            engine.nn.init.constant_(layer.weight, 0.1)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = data(engine)
    given = {"bare": {}, "model": {"model": model}, "both": {"model": model, "optimizer": opt}}[watched]
    with warnings.catch_warnings(record=True) as caught, watch(**given) as dbg:
        warnings.simplefilter("always")
        for _ in range(6):
            if mistake != "zero_grad between":
                opt.zero_grad()
            engine.nn.functional.cross_entropy(model(x), y).backward()
            if mistake == "zero_grad between":
                opt.zero_grad()  # between backward and step: every step finds no gradient
            opt.step()
    return sorted({a.kind for a in dbg.alerts}), [str(w.message) for w in caught if "found no model" in str(w.message)]


@pytest.mark.parametrize("mistake, kind", [("zero_grad between", "step_without_grad"),
                                           ("constant init", "same_units"), ("unreached", "no_gradient")])
def test_a_bare_watch_finds_the_model_and_its_optimizer_and_runs_the_same_checks(mistake, kind):
    kinds, said = loop(mistake, "bare")
    assert kind in kinds and said == []
    assert kinds == loop(mistake, "model")[0] == loop(mistake, "both")[0]
    assert loop("none", "bare") == ([], [])  # a healthy loop: nothing, and no word about the model


def test_a_bare_watch_that_finds_no_model_nor_optimizer_says_so_once():
    w = engine.randn(4, 3, requires_grad=True)
    x, y = data(engine)
    with warnings.catch_warnings(record=True) as caught, watch():
        warnings.simplefilter("always")
        for _ in range(3):  # plain tensors updated by hand: nothing names parameters
            engine.nn.functional.cross_entropy(x @ w, y).backward()
            with engine.no_grad():
                w -= 0.1 * w.grad
            w.grad = None
    (said,) = [w for w in caught if "found no model" in str(w.message)]
    assert said.category is RuntimeWarning and said.filename == __file__
    assert "the checks of parameters did not run" in str(said.message) and "watch(model" in str(said.message)
    with warnings.catch_warnings(record=True) as caught, watch():  # an evaluation alone: no checks wanted
        warnings.simplefilter("always")
        engine.nn.functional.cross_entropy(x @ w, y)
    assert [w for w in caught if "found no model" in str(w.message)] == []


# ---- on a GPU --------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs CuPy and a CUDA GPU")
def test_log_probabilities_and_a_loss_at_chance_are_read_on_the_device():
    engine.manual_seed(0)
    F = engine.nn.functional
    model = engine.nn.Sequential(engine.nn.Linear(4, 16), engine.nn.ReLU(), engine.nn.Linear(16, 3))
    with engine.no_grad():  # scores near 0: a loss near ln 3 whatever the device's random numbers
        model[2].weight.mul_(0.01)
        model[2].bias.zero_()
    model.to("cuda")
    x = engine.randn(96, 4, device="cuda")
    y = engine.arange(96, device="cuda") % 3  # labels nothing in x tells: the loss stays at chance
    with warnings.catch_warnings(), watch(model) as dbg:
        warnings.simplefilter("ignore")
        for step in range(110):
            out = model(x)
            loss = F.cross_entropy(out, y) if step else F.nll_loss(out, y)  # the first step's forgets log_softmax
            loss.backward()
            model.zero_grad()  # no step: the loss stays where it started, near chance
    assert [(a.kind, a.iteration) for a in dbg.alerts] == [("log_probabilities", 0), ("at_chance", 100)]
