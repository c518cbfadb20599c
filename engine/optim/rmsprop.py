"""RMSprop: divide the gradient by a running root mean square of recent gradients."""

from __future__ import annotations

from engine.backend import array_module
from engine.optim.optimizer import Optimizer, count_step, l2_gradient, scalar_state, zeros_state


class RMSprop(Optimizer):
    """RMSprop as in PyTorch, with `momentum`, `centered`, `weight_decay` and `maximize`."""

    non_negative = ("lr", "eps", "momentum", "weight_decay", "alpha")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize,
                                      foreach=foreach, capturable=capturable, differentiable=differentiable))

    def _init_state(self, param, group: dict) -> dict:
        state = {"step": scalar_state(0), "square_avg": zeros_state(param)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_state(param)
        if group["centered"]:
            state["grad_avg"] = zeros_state(param)
        return state

    def _gives_step(self, param, group: dict) -> bool:
        return True

    def _update(self, param, grad, state: dict, group: dict):
        xp = array_module(param)
        alpha, eps, momentum = group["alpha"], group["eps"], group["momentum"]
        grad = l2_gradient(param, grad, group)
        count_step(state)
        square_avg = state["square_avg"].array
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:  # subtract the squared mean: a running variance instead of a second moment
            grad_avg = state["grad_avg"].array
            grad_avg += (1 - alpha) * (grad - grad_avg)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            avg = xp.sqrt(square_avg) + eps
        if momentum > 0:
            buf = state["momentum_buffer"].array
            buf *= momentum
            buf += grad / avg
            step = group["lr"] * buf
        else:
            step = group["lr"] * grad / avg
        param -= step
        return step
