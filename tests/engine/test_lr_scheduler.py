"""Learning-rate schedulers: the rates (and cycled momenta) equal PyTorch's step by step."""

import math

import numpy as np
import pytest

import engine
from engine import optim
from engine.optim import lr_scheduler
from tests.engine.oracle import needs_torch, torch


def make_optimizer(lib, kind="SGD"):
    """Two parameter groups with different rates, so per-group handling is exercised."""
    a = lib.zeros(2, requires_grad=True)
    b = lib.zeros(3, requires_grad=True)
    groups = [{"params": [a]}, {"params": [b], "lr": 0.01}]
    if kind == "SGD":
        return lib.optim.SGD(groups, lr=0.1, momentum=0.9)
    return lib.optim.Adam(groups, lr=0.1)


def run(lib, make_scheduler, steps, kind="SGD", metrics=None):
    """Rates (and momenta) after construction and after each step, as plain floats."""
    opt = make_optimizer(lib, kind)
    sched = make_scheduler(lib.optim.lr_scheduler, opt)
    seen = []
    for i in range(steps + 1):
        if i:
            opt.step()
            sched.step(metrics[i - 1]) if metrics is not None else sched.step()
        momenta = [float(m) for g in opt.param_groups
                   for m in (g["betas"] if kind == "Adam" else [g["momentum"]])]
        seen.append((list(sched.get_last_lr()), momenta))
    return seen


_rng = np.random.default_rng(0)
# a loss that falls, stalls with noise, falls again and stalls: enough plateaus to trigger reductions
PLATEAU = [float(v) for v in np.concatenate([np.linspace(1, 0.5, 15), 0.5 + 0.01 * _rng.standard_normal(25),
                                             np.linspace(0.5, 0.3, 10), np.full(30, 0.3)])]

CASES = {
    "StepLR": (lambda s, o: s.StepLR(o, step_size=7, gamma=0.5), 40, "SGD", None),
    "MultiStepLR": (lambda s, o: s.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.3), 40, "SGD", None),
    "ExponentialLR": (lambda s, o: s.ExponentialLR(o, gamma=0.93), 50, "SGD", None),
    "CosineAnnealingLR": (lambda s, o: s.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 60, "SGD", None),
    "CosineAnnealingLR-no-floor": (lambda s, o: s.CosineAnnealingLR(o, T_max=17), 40, "SGD", None),
    "LambdaLR": (lambda s, o: s.LambdaLR(o, lambda e: 1 / (1 + 0.3 * e)), 30, "SGD", None),
    "LambdaLR-per-group": (lambda s, o: s.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: min(1.0, (e + 1) / 10)]),
                           30, "SGD", None),
    "OneCycleLR-cos": (lambda s, o: s.OneCycleLR(o, max_lr=[1.0, 0.1], total_steps=60), 60, "SGD", None),
    "OneCycleLR-linear": (lambda s, o: s.OneCycleLR(o, max_lr=0.5, epochs=5, steps_per_epoch=10,
                                                    anneal_strategy="linear", pct_start=0.25),
                          50, "SGD", None),
    "OneCycleLR-three-phase": (lambda s, o: s.OneCycleLR(o, max_lr=0.3, total_steps=45, three_phase=True,
                                                         div_factor=10.0, final_div_factor=100.0),
                               45, "SGD", None),
    "OneCycleLR-adam-betas": (lambda s, o: s.OneCycleLR(o, max_lr=0.01, total_steps=30, base_momentum=0.8),
                              30, "Adam", None),
    "OneCycleLR-no-momentum": (lambda s, o: s.OneCycleLR(o, max_lr=0.01, total_steps=30,
                                                         cycle_momentum=False),
                               30, "SGD", None),
    "ConstantLR": (lambda s, o: s.ConstantLR(o, factor=0.25, total_iters=6), 12, "SGD", None),
    "LinearLR": (lambda s, o: s.LinearLR(o, start_factor=0.1, total_iters=8), 15, "SGD", None),
    "LinearLR-decay": (lambda s, o: s.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=10), 15, "SGD",
                       None),
    "CosineAnnealingWarmRestarts": (lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=5, eta_min=0.001), 23,
                                    "SGD", None),
    "CosineAnnealingWarmRestarts-T_mult": (lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2), 40,
                                           "SGD", None),
    "SequentialLR": (lambda s, o: s.SequentialLR(o, [s.LinearLR(o, start_factor=0.1, total_iters=4),
                                                     s.CosineAnnealingLR(o, T_max=8, eta_min=0.001)],
                                                 milestones=[5]), 20, "SGD", None),
    "SequentialLR-three": (lambda s, o: s.SequentialLR(o, [s.ConstantLR(o, factor=0.5, total_iters=3),
                                                           s.ExponentialLR(o, gamma=0.9),
                                                           s.StepLR(o, step_size=2, gamma=0.5)],
                                                       milestones=[4, 9]), 16, "SGD", None),
    "ReduceLROnPlateau": (lambda s, o: s.ReduceLROnPlateau(o, patience=3), 80, "SGD", PLATEAU),
    "ReduceLROnPlateau-max-abs-cooldown": (
        lambda s, o: s.ReduceLROnPlateau(o, mode="max", factor=0.5, patience=2, threshold=0.01,
                                         threshold_mode="abs", cooldown=4, min_lr=[0.02, 0.001]),
        80, "SGD", [-v for v in PLATEAU]),
    "ReduceLROnPlateau-min-lr-eps": (
        lambda s, o: s.ReduceLROnPlateau(o, factor=0.2, patience=1, min_lr=0.004, eps=1e-3),
        80, "SGD", PLATEAU),
}


@needs_torch
@pytest.mark.parametrize("name", CASES)
def test_rates_equal_torch(name):
    make, steps, kind, metrics = CASES[name]
    ours = run(engine, make, steps, kind, metrics)
    theirs = run(torch, make, steps, kind, metrics)
    assert len({tuple(lrs) for lrs, _ in ours}) > 1  # the schedule does change the rate
    for step, ((lr_a, mom_a), (lr_b, mom_b)) in enumerate(zip(ours, theirs)):
        assert lr_a == pytest.approx(lr_b, rel=1e-12, abs=1e-15), f"lr at step {step}"
        assert mom_a == pytest.approx(mom_b, rel=1e-12), f"momentum at step {step}"


@needs_torch
def test_a_rate_changed_by_hand_is_carried_forward_like_torch():
    def run_with_edit(lib):
        opt = make_optimizer(lib)
        sched = lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
        lrs = []
        for i in range(15):
            if i == 6:
                opt.param_groups[0]["lr"] = 0.05  # e.g. edited from the debugger mid-run
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr())
        return lrs

    np.testing.assert_allclose(run_with_edit(engine), run_with_edit(torch), rtol=1e-12)


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


@pytest.mark.parametrize("name", [n for n in CASES if "per-group" not in n])
def test_state_dict_is_plain_data_and_resumes_identically(name, tmp_path):
    make, steps, kind, metrics = CASES[name]
    metrics = metrics or [None] * steps
    half = steps // 2

    def advance(opt, sched, values):
        out = []
        for m in values:
            opt.step()
            sched.step(m) if m is not None else sched.step()
            out.append(sched.get_last_lr())
        return out

    opt = make_optimizer(engine, kind)
    sched = make(lr_scheduler, opt)
    advance(opt, sched, metrics[:half])
    assert _plain(sched.state_dict())
    engine.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()},
                tmp_path / "ckpt.safetensors")

    checkpoint = engine.load(tmp_path / "ckpt.safetensors")
    opt2 = make_optimizer(engine, kind)
    sched2 = make(lr_scheduler, opt2)
    opt2.load_state_dict(checkpoint["optimizer"])
    sched2.load_state_dict(checkpoint["scheduler"])
    assert advance(opt2, sched2, metrics[half:]) == advance(opt, sched, metrics[half:])


def test_lambda_lr_state_dict_leaves_functions_out_but_keeps_callable_objects():
    class Warmup:
        def __init__(self):
            self.steps = 5

        def __call__(self, epoch):
            return min(1.0, (epoch + 1) / self.steps)

    opt = make_optimizer(engine)
    sched = lr_scheduler.LambdaLR(opt, [lambda e: 0.5 ** e, Warmup()])
    state = sched.state_dict()
    assert state["lr_lambdas"] == [None, {"steps": 5}]
    state["lr_lambdas"][1]["steps"] = 2
    sched.load_state_dict(state)
    assert sched.lr_lambdas[1].steps == 2
    sched.step()
    assert sched.get_last_lr() == pytest.approx([0.05, 0.01])


def test_errors_are_clear():
    opt = make_optimizer(engine)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match=r"Factor should be < 1\.0"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode sideways is unknown"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="sideways")
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.ExponentialLR(make_optimizer(engine), gamma=0.9, last_epoch=4)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="either total_steps OR"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="pct_start"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10, pct_start=1)
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        lr_scheduler.OneCycleLR(opt, max_lr=[0.1], total_steps=10)
    sched = lr_scheduler.OneCycleLR(make_optimizer(engine), max_lr=0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match=r"Tried to step 4 times\. The specified number of total steps is 3"):
        sched.step()
    with pytest.warns(UserWarning, match=r"epoch parameter in `scheduler.step\(\)` was not necessary"):
        lr_scheduler.StepLR(make_optimizer(engine), step_size=2).step(3)
    with pytest.raises(ValueError, match="unknown keys"):
        lr_scheduler.StepLR(make_optimizer(engine), step_size=2).load_state_dict({"T_max": 3})
    with pytest.raises(ValueError, match="ConstantLR: factor must be between 0 and 1"):
        lr_scheduler.ConstantLR(opt, factor=2.0)
    with pytest.raises(ValueError, match="LinearLR: start_factor"):
        lr_scheduler.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="T_mult must be an integer"):
        lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=0)
    first = lr_scheduler.ConstantLR(opt)
    with pytest.raises(ValueError, match="expected 1 milestones for 2 schedulers, got 2"):
        lr_scheduler.SequentialLR(opt, [first, lr_scheduler.ExponentialLR(opt, gamma=0.9)], milestones=[2, 4])
    with pytest.raises(ValueError, match="different optimizer"):
        lr_scheduler.SequentialLR(opt, [first, lr_scheduler.ExponentialLR(make_optimizer(engine), gamma=0.9)],
                                  milestones=[2])


def test_plateau_takes_a_tensor_metric_and_reduces_after_patience():
    opt = make_optimizer(engine)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=2, factor=0.5)
    for _ in range(4):
        sched.step(engine.tensor(1.0))
    assert sched.get_last_lr() == pytest.approx([0.05, 0.005])
    assert sched.best == 1.0 and not math.isinf(sched.best)


def test_schedulers_drive_engine_optimizers():
    opt = optim.Adam([engine.zeros(2, requires_grad=True)], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.25 and opt.param_groups[0]["initial_lr"] == 1.0
