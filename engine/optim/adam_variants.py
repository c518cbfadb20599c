"""Adam's relatives: NAdam (Nesterov momentum), RAdam (rectified variance) and Adamax (infinity norm)."""

from __future__ import annotations

import math

from engine.backend import array_module
from engine.optim.optimizer import (
    Optimizer,
    check_betas,
    count_step,
    decayed_gradient,
    decouples,
    l2_gradient,
    scalar_state,
    set_scalar,
    zeros_state,
)


class _AdamLike(Optimizer):
    """What the three share: `betas` checked as PyTorch does, moments kept in `exp_avg` and a second buffer."""

    non_negative = ("lr", "eps", "weight_decay")
    second_moment = "exp_avg_sq"  # the state key of the second buffer

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        check_betas(group["betas"])

    def _init_state(self, param, group: dict) -> dict:
        return {"step": scalar_state(0), "exp_avg": zeros_state(param), self.second_moment: zeros_state(param)}

    def _gives_step(self, param, group: dict) -> bool:
        # decoupled decay scales the parameter outside of the step returned
        return not (decouples(group) and group["weight_decay"])

    def _moments(self, grad, state: dict, group: dict):
        """Count the step and update both running averages: (step, exp_avg, exp_avg_sq) as arrays."""
        beta1, beta2 = group["betas"]
        step = count_step(state)
        exp_avg, exp_avg_sq = state["exp_avg"].array, state["exp_avg_sq"].array
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        return step, exp_avg, exp_avg_sq


class NAdam(_AdamLike):
    """NAdam as in PyTorch: Adam with Nesterov momentum whose weight follows `momentum_decay`."""

    non_negative = ("lr", "eps", "weight_decay", "momentum_decay")

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False,
                 *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                                      foreach=foreach, capturable=capturable, differentiable=differentiable))

    def _init_state(self, param, group: dict) -> dict:
        return {**super()._init_state(param, group), "mu_product": scalar_state(1.0)}

    def _update(self, param, grad, state: dict, group: dict):
        xp = array_module(param)
        grad = decayed_gradient(param, grad, group)
        t, exp_avg, exp_avg_sq = self._moments(grad, state, group)
        lr, (beta1, beta2), decay = group["lr"], group["betas"], group["momentum_decay"]
        # the momentum weights of this step and the next, and the product of all so far
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * decay))
        mu_product = set_scalar(state, "mu_product", float(state["mu_product"].array) * mu)
        denom = xp.sqrt(exp_avg_sq / (1 - beta2 ** t)) + group["eps"]
        step = (lr * (1 - mu) / (1 - mu_product)) * grad / denom
        step += (lr * mu_next / (1 - mu_product * mu_next)) * exp_avg / denom
        param -= step
        return step


class RAdam(_AdamLike):
    """RAdam as in PyTorch: Adam whose adaptive step waits until the second moment's variance is tractable."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                                      foreach=foreach, capturable=capturable, differentiable=differentiable))

    def _update(self, param, grad, state: dict, group: dict):
        xp = array_module(param)
        grad = decayed_gradient(param, grad, group)
        t, exp_avg, exp_avg_sq = self._moments(grad, state, group)
        beta1, beta2 = group["betas"]
        bias_correction2 = 1 - beta2 ** t
        # the length of the approximated simple moving average, and its limit
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2 ** t / bias_correction2
        step = exp_avg / (1 - beta1 ** t) * group["lr"]
        if rho_t > 5.0:  # early on, plain momentum SGD: the variance of the adaptive step is unbounded
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            step *= math.sqrt(bias_correction2) / (xp.sqrt(exp_avg_sq) + group["eps"])
            step *= rect
        param -= step
        return step


class Adamax(_AdamLike):
    """Adamax as in PyTorch: Adam with the second moment replaced by a decaying infinity norm."""

    second_moment = "exp_inf"

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize,
                                      foreach=foreach, capturable=capturable, differentiable=differentiable))

    def _update(self, param, grad, state: dict, group: dict):
        xp = array_module(param)
        beta1, beta2 = group["betas"]
        grad = l2_gradient(param, grad, group)
        t = count_step(state)
        exp_avg, exp_inf = state["exp_avg"].array, state["exp_inf"].array
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_inf *= beta2
        xp.maximum(exp_inf, xp.abs(grad) + group["eps"], out=exp_inf)
        step = group["lr"] / (1 - beta1 ** t) * exp_avg / exp_inf
        param -= step
        return step
