"""What optimizers and schedulers written by hand after torch's (SAM, a Lookahead, a warm-up schedule) use of the
base classes, and torch's scheduler checkpoints loading into the engine's."""

import warnings

import numpy as np
import pytest

import engine
from tests.engine.oracle import needs_torch, torch


def sam_class(lib):
    class SAM(lib.optim.Optimizer):
        """Sharpness-aware minimisation around a base optimizer, as the paper's public code writes it."""

        def __init__(self, params, base, rho=0.05, **kwargs):
            super().__init__(params, dict(rho=rho, **kwargs))
            self.base = base(self.param_groups, **kwargs)
            self.param_groups = self.base.param_groups

        @lib.no_grad()
        def first_step(self):
            norm = lib.norm(lib.stack([p.grad.norm(p=2) for g in self.param_groups for p in g["params"]]), p=2)
            for group in self.param_groups:
                for p in group["params"]:
                    e_w = p.grad * (group["rho"] / (norm + 1e-12))
                    self.state[p]["e_w"] = e_w  # a defaultdict, as torch's
                    p.add_(e_w)

        @lib.no_grad()
        def second_step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    p.sub_(self.state[p]["e_w"])
            self.base.step()

    return SAM


@needs_torch
def test_sam_written_on_the_optimizer_base_class_matches_torch():
    rng = np.random.default_rng(0)
    w0, x, y = rng.standard_normal((3, 1)), rng.standard_normal((16, 3)), rng.standard_normal((16, 1))
    results = []
    for lib in (engine, torch):
        w = lib.nn.Parameter(lib.tensor(w0))
        opt = sam_class(lib)([w], lib.optim.SGD, lr=0.1, momentum=0.9)
        xs, ys = lib.tensor(x), lib.tensor(y)
        for _ in range(5):
            ((xs @ w - ys) ** 2).mean().backward()
            opt.first_step()
            opt.zero_grad()
            ((xs @ w - ys) ** 2).mean().backward()
            opt.second_step()
            opt.zero_grad()
        results.append(w.detach().numpy())
        assert set(opt.state[w]) == {"e_w"} and "momentum_buffer" in opt.base.state[w]
    np.testing.assert_allclose(*results, rtol=1e-12)


def test_a_state_read_before_the_first_step_still_starts_the_optimizer():
    w = engine.nn.Parameter(engine.ones(3))
    opt = engine.optim.Adam([w], lr=0.1)
    assert opt.state[w] == {}  # made empty by the read, as in torch
    (w * w).sum().backward()
    opt.step()
    assert opt.state[w]["step"].item() == 1.0 and set(opt.state[w]) == {"step", "exp_avg", "exp_avg_sq"}
    opt.load_state_dict(opt.state_dict())
    assert opt.state[engine.nn.Parameter(engine.ones(1))] == {}  # still a defaultdict after loading


@needs_torch
def test_a_schedule_written_after_torchs_reads_get_lr_called_within_step():
    results = []
    for lib in (engine, torch):
        class WarmupInverseSqrt(lib.optim.lr_scheduler.LRScheduler):
            def get_lr(self):
                if not self._get_lr_called_within_step:
                    warnings.warn("To get the last learning rate computed by the scheduler, use get_last_lr()",
                                  stacklevel=2)
                step = max(self.last_epoch, 1)
                return [base * min(step / 4, (4 / step) ** 0.5) for base in self.base_lrs]

        opt = lib.optim.SGD([lib.nn.Parameter(lib.zeros(2))], lr=1.0)
        sched = WarmupInverseSqrt(opt)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            rates = []
            for _ in range(8):
                opt.step()
                sched.step()
                rates.append(sched.get_last_lr()[0])
        with pytest.warns(UserWarning, match="get_last_lr"):
            sched.get_lr()
        results.append(rates)
    np.testing.assert_allclose(*results, rtol=1e-12)


SCHEDULERS = {"StepLR": dict(step_size=2), "MultiStepLR": dict(milestones=[2]), "ExponentialLR": dict(gamma=0.9),
              "CosineAnnealingLR": dict(T_max=5), "ReduceLROnPlateau": dict(min_lr=0.001),
              "OneCycleLR": dict(max_lr=1.0, total_steps=10), "CyclicLR": dict(base_lr=0.01, max_lr=0.1),
              "LinearLR": {}, "ConstantLR": {}, "PolynomialLR": {}, "CosineAnnealingWarmRestarts": dict(T_0=3)}


@needs_torch
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_torchs_scheduler_state_dict_loads_and_goes_on_as_torchs(name):
    def made(lib):
        opt = lib.optim.SGD([lib.nn.Parameter(lib.zeros(2))], lr=0.1, momentum=0.9)
        return opt, getattr(lib.optim.lr_scheduler, name)(opt, **SCHEDULERS[name])

    def advance(opt, sched, n):
        for _ in range(n):
            opt.step()
            sched.step(1.0) if name == "ReduceLROnPlateau" else sched.step()

    t_opt, t_sched = made(torch)
    advance(t_opt, t_sched, 3)
    e_opt, e_sched = made(engine)
    e_opt.load_state_dict(t_opt.state_dict())
    e_sched.load_state_dict(t_sched.state_dict())
    assert set(e_sched.state_dict()) == set(t_sched.state_dict())
    advance(t_opt, t_sched, 3)
    advance(e_opt, e_sched, 3)
    assert e_opt.param_groups[0]["lr"] == pytest.approx(t_opt.param_groups[0]["lr"], rel=1e-12)
