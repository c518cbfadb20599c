"""Alerts that must fit what the script does and come when the evidence is there: a scheduler that zeroes the rate
(one alert, a step later, at its lambda), batches sliced in order by the script itself (no DataLoader to pass
shuffle=True to), a .detach() in the model (named at its line in the first iteration), a hand-written RNN's
tensors (named as the script holds them, and the clipping that clipped nothing), a deep model that normalises
(not told to add normalisation). Each beside the neighbour that stays silent."""

from __future__ import annotations

import warnings

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import AlertSettings, Debugger
from tests.engine.debug.test_alert_causes import scheduled_run


# ---- a scheduler that sets the learning rate to 0 --------------------------------------------------------------
def scheduled(make, steps: int = 30) -> list:
    """The learning-rate alerts of `steps` SGD steps, the scheduler `make(opt)` stepped after each."""
    return scheduled_run(make, steps, kinds=("lr_zero", "lr_gone"), lr=0.05,
                         model=lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))


def test_a_scheduler_that_zeroes_the_rate_is_one_alert_a_step_later_at_its_lambda():
    # both alerts came at iteration 29, 19 steps late, each with a wrong guess, at the opt.step() line
    warmup = lambda s: 1.0 if s < 10 else 0.0  # noqa: E731 (a warmup written the wrong way round)
    (alert,) = scheduled(lambda opt: engine.optim.lr_scheduler.LambdaLR(opt, warmup))
    assert alert.kind == "lr_zero" and alert.iteration == 11
    assert (alert.file, alert.line) == (__file__, warmup.__code__.co_firstlineno)
    assert alert.message.startswith("the learning rate of SGD has been 0 since iteration 10 (2 steps), iteration 11")
    assert "LambdaLR's lr_lambda (line" in alert.message and "returns 0 from epoch 10 on" in alert.message
    assert "its step() runs at every iteration" in alert.message
    assert "never called" not in alert.message and "once per epoch" not in alert.message


def test_a_decay_that_ends_at_zero_before_the_run_does_names_its_scheduler_where_it_was_made():
    made = []

    def polynomial(opt):
        made.append(polynomial.__code__.co_firstlineno + 2)
        return engine.optim.lr_scheduler.PolynomialLR(opt, total_iters=5)

    (alert,) = scheduled(polynomial)
    assert alert.kind == "lr_zero" and alert.iteration == 6 and alert.line == made[0]
    assert "PolynomialLR (made at line" in alert.message and "schedules 0 from epoch 5 on" in alert.message
    assert "give it the run's length in iterations" in alert.message


def test_schedules_that_touch_zero_or_start_there_raise_nothing_early():
    # cosine annealing reaches 0 at T_max for one step and rises again; a warmup from 0 rises at once
    assert scheduled(lambda opt: engine.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)) == []
    assert scheduled(lambda opt: engine.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 5))) == []


def decayed(decay, steps: int = 60) -> list:
    """The learning-rate alerts of `steps` SGD steps, `decay(opt, step)` after each."""
    engine.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(16, 4), engine.randint(0, 2, (16,))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for step in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            decay(opt, step)
    return [a for a in dbg.alerts if a.kind in ("lr_zero", "lr_gone")]


def test_a_rate_decayed_to_nothing_is_told_why_by_how_it_was_decayed():
    # "A scheduler stepped every batch where it was meant for every epoch?" whatever had decayed it
    epochs = []

    def per_epoch(opt, step):  # a decay far too steep, stepped once per epoch of 20 batches, as meant
        if not epochs:
            epochs.append(engine.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=1e-4))
        if step % 20 == 19:
            epochs[0].step()

    (alert,) = decayed(per_epoch)
    assert alert.kind == "lr_gone" and "StepLR's step() ran 2 times in" in alert.message
    assert "give it a gentler decay" in alert.message and "once per epoch?" not in alert.message

    def by_hand(opt, step):
        opt.param_groups[0]["lr"] *= 0.5

    (alert,) = decayed(by_hand)
    assert alert.kind == "lr_gone" and "No scheduler set it: a rate decayed by hand" in alert.message


# ---- data the script slices in order itself ---------------------------------------------------------------------
def sliced_run(shuffle: bool) -> list:
    engine.manual_seed(0)
    y = engine.randint(0, 3, (384,))
    y = y if shuffle else y.sort().values
    x = engine.randn(384, 6) + y[:, None].float()
    model = nn.Linear(6, 3)
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for it in range(12):
            j = it * 32
            xb, yb = x[j:j + 32], y[j:j + 32]
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    return [a for a in dbg.alerts if a.kind == "one_class_batches"]


def test_batches_sliced_in_label_order_are_told_to_shuffle_the_indices_at_the_slicing_line():
    # "Pass shuffle=True to the DataLoader" to a script that has none
    (alert,) = sliced_run(shuffle=False)
    assert "DataLoader" not in alert.message and "shuffle the indices each epoch" in alert.message
    assert "engine.randperm(len(x))" in alert.message
    assert alert.op == "getitem" and alert.code == "xb, yb = x[j:j + 32], y[j:j + 32]"
    assert sliced_run(shuffle=True) == []


# ---- a .detach() in the middle of the model ---------------------------------------------------------------------
class Detached(nn.Module):
    def __init__(self, detach: bool) -> None:
        super().__init__()
        self.enc, self.mid, self.head = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 3)
        self.detach = detach

    def forward(self, x):
        h = F.relu(self.enc(x))
        if self.detach:
            h = h.detach()  # the cut
        h = F.relu(self.mid(h))
        return self.head(h)


def detached_run(model, steps: int = 6) -> list:
    engine.manual_seed(1)
    opt = engine.optim.Adam(model.parameters(), lr=1e-2)
    x, y = engine.randn(32, 8), engine.randint(0, 3, (32,))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return [a for a in dbg.alerts if a.kind == "no_gradient"]


def test_a_detach_in_the_model_is_named_at_its_line_in_the_first_iteration():
    # it came at iteration 4 (five steps without gradient), with no file or line
    engine.manual_seed(0)
    (alert,) = detached_run(Detached(detach=True))
    assert alert.iteration == 0 and alert.key == "enc.weight"
    assert alert.file == __file__ and alert.code == "h = h.detach()"
    assert "'enc.weight', 'enc.bias' are trained by the optimizer but got no gradient" in alert.message
    assert "`h = h.detach()` at" in alert.message and "cuts the output of 'relu' (Detached/relu:0" in alert.message
    engine.manual_seed(0)
    assert detached_run(Detached(detach=False)) == []


def test_a_detach_that_cuts_no_trained_parameter_off_and_a_layer_never_used_keep_their_ways():
    class Truncated(nn.Module):  # truncated backpropagation through time: the state is detached, not the layers
        def __init__(self) -> None:
            super().__init__()
            self.cell, self.head = nn.Linear(8 + 16, 16), nn.Linear(16, 3)
            self.h = None

        def forward(self, x):
            h = engine.zeros(x.shape[0], 16) if self.h is None else self.h.detach()
            h = engine.tanh(self.cell(engine.cat([x, h], dim=1)))
            self.h = h
            return self.head(h)

    engine.manual_seed(0)
    assert detached_run(Truncated()) == []

    class Unused(nn.Module):  # a layer forward never calls: no detach to blame, the alert waits its five steps
        def __init__(self) -> None:
            super().__init__()
            self.used, self.spare = nn.Linear(8, 3), nn.Linear(8, 3)

        def forward(self, x):
            return self.used(x).detach() * 0 + self.used(x)

    engine.manual_seed(0)
    (alert,) = detached_run(Unused())
    assert alert.iteration == 4 and alert.key == "spare.weight" and "in 5 steps" in alert.message


# ---- a hand-written RNN: plain tensors, clipping given an exhausted generator ---------------------------------------
def hand_rnn(as_list: bool) -> list:
    engine.manual_seed(0)
    T, N, H = 30, 8, 32
    x = engine.randn(T, N, 4)
    y = x[0, :, :1]
    Wx = nn.Parameter(engine.randn(4, H) * 0.5)
    Wh = nn.Parameter(engine.randn(H, H) * 0.6)
    Wo = nn.Parameter(engine.randn(H, 1) * 0.1)
    params = [Wx, Wh, Wo] if as_list else (p for p in [Wx, Wh, Wo])
    opt = engine.optim.SGD(params, lr=0.01)
    with Debugger("summary", discover=True) as dbg, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the empty generator's warning
        for _ in range(3):
            opt.zero_grad()
            h = engine.zeros(N, H)
            for t in range(T):
                h = engine.tanh(x[t] @ Wx + h @ Wh)
            F.mse_loss(h @ Wo, y).backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
    return [a for a in dbg.alerts if a.kind == "exploding_grad"]


def test_a_hand_written_rnn_is_named_by_its_variables_and_its_exhausted_clipping_is_named():
    # "gradient norm of 'group0.1' ... in layer 'group0'", and "try gradient clipping" to a script that clips
    (alert,) = hand_rnn(as_list=False)
    assert alert.key == "Wh" and alert.message.startswith("gradient norm of 'Wh' is ")
    assert "group0" not in alert.message and "in layer" not in alert.message
    assert "clip_grad_norm_ at" in alert.message and "was given `params`, a generator that the optimizer had " \
        "already read to its end" in alert.message
    assert "(params = [Wx, Wh, Wo])" in alert.message
    assert "gradient clipping" not in alert.message and alert.code == "nn.utils.clip_grad_norm_(params, 1.0)"
    assert hand_rnn(as_list=True) == []  # clipped: the step sees norms of 1 at most


def test_a_tensor_no_variable_holds_is_named_by_its_place_in_the_optimizer():
    engine.manual_seed(0)
    opt = engine.optim.SGD([nn.Parameter(engine.randn(3) * 1e4) for _ in range(2)], lr=0.1)
    with Debugger("summary", discover=True) as dbg:
        opt.zero_grad()
        (opt.param_groups[0]["params"][1] ** 2).sum().backward()
        opt.step()
    (alert,) = [a for a in dbg.alerts if a.kind == "exploding_grad"]
    assert alert.key == "group0.1"
    assert alert.message.startswith("gradient norm of parameter 2 of the optimizer's group 0 is ")


# ---- a deep model that normalises in every block ----------------------------------------------------------------
def deep_run(norm: bool) -> list:
    engine.manual_seed(0)
    layers = []
    for i in range(12):
        layers += [nn.Linear(8 if i == 0 else 32, 32), *([nn.LayerNorm(32)] if norm else []), nn.GELU()]
    model = nn.Sequential(*layers, nn.Linear(32, 3))
    opt = engine.optim.Adam(model.parameters(), lr=1e-3)
    x, y = engine.randn(64, 8), engine.randint(0, 3, (64,))
    # a limit that the first layers' gradients are under from the start
    with Debugger("summary", model=model, optimizer=opt, alerts=AlertSettings(grad_norm_min=5e-2)) as dbg:
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return [a for a in dbg.alerts if a.kind == "vanishing_grad"]


def test_vanishing_gradients_in_a_model_that_normalises_are_not_told_to_add_normalisation():
    (alert,) = deep_run(norm=True)
    assert "normalisation layers" not in alert.message and "without normalisation" not in alert.message
    assert "the model normalises (LayerNorm) but adds no skip connection" in alert.message
    assert "Add residual connections (h = h + block(h))" in alert.message
    (plain,) = deep_run(norm=False)  # none: normalisation is still the advice
    assert "normalisation layers or residual connections" in plain.message
