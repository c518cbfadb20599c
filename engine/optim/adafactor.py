"""Adafactor: Adam-like steps whose second moment of a matrix is kept as one row and one column."""

from __future__ import annotations

import math

import numpy as np

from engine.backend import array_module, square_sum
from engine.optim.optimizer import Optimizer, count_step, restore_state_value, scalar_state, zeros_state
from engine.tensor import Tensor


class Adafactor(Optimizer):
    """Adafactor as in PyTorch (torch.optim.Adafactor): factored second moments, relative step sizes."""

    non_negative = ()  # Adafactor's own messages, in _check_group

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8, eps: tuple = (None, 1e-3),
                 d: float = 1.0, weight_decay: float = 0.0, *, foreach: bool | None = None,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay,
                                      foreach=foreach, maximize=maximize))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        eps = group["eps"]
        if not isinstance(eps, tuple | list) or len(eps) != 2:
            raise ValueError(f"eps must be a pair (eps1 or None, eps2), got {eps!r}")
        checks = [("Learning rate", group["lr"], lambda v: v >= 0.0, ">= 0"),
                  ("beta2_decay", group["beta2_decay"], lambda v: v <= 0.0, "<= 0"),
                  ("epsilon1", eps[0], lambda v: v is None or v >= 0.0, ">= 0"),
                  ("epsilon2", eps[1], lambda v: v >= 0.0, ">= 0"),
                  ("Clipping threshold d", group["d"], lambda v: v >= 1.0, ">= 1"),
                  ("weight_decay", group["weight_decay"], lambda v: v >= 0.0, ">= 0")]
        for label, value, ok, bound in checks:
            if not ok(value):
                raise ValueError(f"{label} should be {bound} but is: {value}")

    def _init_state(self, param, group: dict) -> dict:
        if param.ndim < 2:
            return {"step": scalar_state(0), "variance": zeros_state(param)}
        xp = array_module(param)
        row, col = list(param.shape), list(param.shape)
        row[-1], col[-2] = 1, 1
        return {"step": scalar_state(0), "row_var": Tensor._wrap(xp.zeros(row, param.dtype)),
                "col_var": Tensor._wrap(xp.zeros(col, param.dtype))}

    def _restore_state(self, values: dict, param: Tensor) -> dict:
        # the factored moments are shaped (..., m, 1) and (..., 1, n), not like the parameter
        return {k: restore_state_value(v, param, k, check_shape=k not in ("row_var", "col_var"))
                for k, v in values.items()}

    def _update(self, param, grad, state: dict, group: dict):
        xp = array_module(param)
        lr, decay, d = group["lr"], group["weight_decay"], group["d"]
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = float(np.finfo(param.dtype).eps)
        if group["maximize"]:
            grad = -grad
        t = count_step(state)
        one_minus_beta2 = t ** group["beta2_decay"]
        rho = min(lr, 1 / math.sqrt(t))
        alpha = max(eps2, math.sqrt(float(square_sum(param))) / math.sqrt(param.size)) * rho
        if decay != 0:
            param *= 1 - lr * decay
        square = grad * grad
        if grad.ndim > 1:
            row_var, col_var = state["row_var"].array, state["col_var"].array
            row_var += one_minus_beta2 * (square.mean(axis=-1, keepdims=True) - row_var)
            col_var += one_minus_beta2 * (square.mean(axis=-2, keepdims=True) - col_var)
            estimate = (row_var @ col_var) / xp.maximum(row_var.mean(axis=-2, keepdims=True), eps1)
        else:
            variance = state["variance"].array
            variance += one_minus_beta2 * (square - variance)
            estimate = variance
        update = grad / xp.sqrt(xp.maximum(estimate, eps1 * eps1))
        denom = max(1.0, math.sqrt(float(square_sum(update))) / (math.sqrt(update.size) * d))
        step = (alpha / denom) * update
        param -= step
        return step

    def _gives_step(self, param, group: dict) -> bool:
        return not group["weight_decay"]
