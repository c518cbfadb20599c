"""Adadelta: steps scaled by the ratio of running RMS of past updates to running RMS of gradients."""

from __future__ import annotations

import numbers

from engine.backend import array_module
from engine.optim.optimizer import Optimizer, count_step, l2_gradient, scalar_state, zeros_state


class Adadelta(Optimizer):
    """Adadelta as in PyTorch, with `rho`, `weight_decay` and `maximize`."""

    non_negative = ("lr", "eps", "weight_decay")

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
                 *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                                      foreach=foreach, capturable=capturable, differentiable=differentiable))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        rho = group["rho"]
        if not isinstance(rho, numbers.Real) or not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")

    def _init_state(self, param, group: dict) -> dict:
        return {"step": scalar_state(0), "square_avg": zeros_state(param), "acc_delta": zeros_state(param)}

    def _gives_step(self, param, group: dict) -> bool:
        return True

    def _update(self, param, grad, state: dict, group: dict):
        xp = array_module(param)
        rho, eps = group["rho"], group["eps"]
        grad = l2_gradient(param, grad, group)
        count_step(state)
        square_avg, acc_delta = state["square_avg"].array, state["acc_delta"].array
        square_avg *= rho
        square_avg += (1 - rho) * grad * grad
        delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * grad
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        step = group["lr"] * delta
        param -= step
        return step
