"""Adagrad: per-coordinate step sizes shrinking with the sum of squared gradients."""

from __future__ import annotations

from engine.backend import array_module
from engine.optim.optimizer import Optimizer, count_step, l2_gradient, scalar_state
from engine.tensor import Tensor


class Adagrad(Optimizer):
    """Adagrad as in PyTorch, with `lr_decay`, `weight_decay`, `initial_accumulator_value` and `maximize`."""

    non_negative = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *,
                 maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize,
                                      foreach=foreach, differentiable=differentiable, fused=fused))

    def _init_state(self, param, group: dict) -> dict:
        xp = array_module(param)
        return {"step": scalar_state(0), "sum": Tensor._wrap(xp.full_like(param, group["initial_accumulator_value"]))}

    def _gives_step(self, param, group: dict) -> bool:
        return True

    def _update(self, param, grad, state: dict, group: dict):
        xp = array_module(param)
        grad = l2_gradient(param, grad, group)
        clr = group["lr"] / (1 + (count_step(state) - 1) * group["lr_decay"])
        total = state["sum"].array
        total += grad * grad
        step = clr * grad / (xp.sqrt(total) + group["eps"])
        param -= step
        return step
