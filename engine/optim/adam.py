"""Adam and AdamW: bias-corrected running averages of the gradient and of its square."""

from __future__ import annotations

import math

from engine import kernels
from engine.backend import array_module
from engine.optim.optimizer import (
    Optimizer,
    check_betas,
    count_step,
    decayed_gradient,
    decouples,
    scalar_state,
    zeros_state,
)


class Adam(Optimizer):
    """Adam as in PyTorch, with `amsgrad`, L2 `weight_decay` and `maximize`."""

    non_negative = ("lr", "eps", "weight_decay")

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        check_betas(group["betas"])

    def _init_state(self, param, group: dict) -> dict:
        state = {"step": scalar_state(0), "exp_avg": zeros_state(param), "exp_avg_sq": zeros_state(param)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_state(param)
        return state

    def _gives_step(self, param, group: dict) -> bool:
        # the fused kernel keeps its step to itself; decoupled decay also scales the parameter
        return kernels.get("adam_update", array_module(param)) is None and not (
            decouples(group) and group["weight_decay"])

    def _update(self, param, grad, state: dict, group: dict):
        xp = array_module(param)
        fused = kernels.get("adam_update", xp)
        if fused is not None:  # CUDA: the whole update below as one kernel
            fused(param, grad, state["exp_avg"].array, state["exp_avg_sq"].array,
                  state["max_exp_avg_sq"].array if group["amsgrad"] else None, count_step(state), group,
                  decouples(group))
            return None
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        grad = decayed_gradient(param, grad, group)
        step = count_step(state)
        exp_avg, exp_avg_sq = state["exp_avg"].array, state["exp_avg_sq"].array
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if group["amsgrad"]:  # normalise by the largest second moment seen so far
            second = state["max_exp_avg_sq"].array
            xp.maximum(second, exp_avg_sq, out=second)
        else:
            second = exp_avg_sq
        step_size = lr / (1 - beta1 ** step)
        denom = xp.sqrt(second) / math.sqrt(1 - beta2 ** step) + eps
        step = step_size * exp_avg / denom
        param -= step
        return step


class AdamW(Adam):
    """Adam with decoupled weight decay: `p *= 1 - lr * weight_decay` before the Adam update."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, foreach=foreach,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
