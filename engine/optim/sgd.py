"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from engine.optim.optimizer import Optimizer, l2_gradient
from engine.tensor import Tensor


class SGD(Optimizer):
    """SGD as in PyTorch: `buf = momentum * buf + (1 - dampening) * g`, `p -= lr * buf` (or Nesterov)."""

    non_negative = ("lr", "momentum", "weight_decay")

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                                      foreach=foreach, differentiable=differentiable, fused=fused))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _gives_step(self, param, group: dict) -> bool:
        return True

    def _update(self, param, grad, state: dict, group: dict):
        d_p = l2_gradient(param, grad, group)
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:  # the first step starts the running average at the gradient itself
                buf = state["momentum_buffer"] = Tensor._wrap(d_p.copy())
            else:
                buf.array *= momentum
                buf.array += (1 - group["dampening"]) * d_p
            d_p = d_p + momentum * buf.array if group["nesterov"] else buf.array
        step = group["lr"] * d_p
        param -= step
        return step
