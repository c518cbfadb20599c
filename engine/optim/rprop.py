"""Rprop: per-coordinate step sizes that grow while the gradient keeps its sign and shrink when it flips."""

from __future__ import annotations

import numbers

from engine.backend import array_module
from engine.optim.optimizer import Optimizer, count_step, scalar_state, zeros_state
from engine.tensor import Tensor


class Rprop(Optimizer):
    """Rprop as in PyTorch: `etas` (shrink, grow), `step_sizes` (min, max) and `maximize`; `lr` is the first step."""

    def __init__(self, params, lr: float = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes, maximize=maximize,
                                      foreach=foreach, capturable=capturable, differentiable=differentiable))

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        etas, sizes = group["etas"], group["step_sizes"]
        if not _real_pair(etas) or not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {_pair_text(etas)} (need 0 < etaminus < 1 < etaplus)")
        if not _real_pair(sizes) or not 0.0 <= sizes[0] <= sizes[1]:
            raise ValueError(f"Invalid step_sizes: {_pair_text(sizes)} (need 0 <= min <= max)")

    def _init_state(self, param, group: dict) -> dict:
        xp = array_module(param)
        return {"step": scalar_state(0), "prev": zeros_state(param),
                "step_size": Tensor._wrap(xp.full_like(param, group["lr"]))}

    def _gives_step(self, param, group: dict) -> bool:
        return True

    def _update(self, param, grad, state: dict, group: dict):
        xp = array_module(param)
        etaminus, etaplus = group["etas"]
        grad = -grad if group["maximize"] else grad
        count_step(state)
        prev, step_size = state["prev"].array, state["step_size"].array
        sign = xp.sign(grad * prev)
        factor = xp.where(sign > 0, etaplus, xp.where(sign < 0, etaminus, 1.0)).astype(param.dtype, copy=False)
        step_size *= factor
        xp.clip(step_size, *group["step_sizes"], out=step_size)
        grad = xp.where(sign < 0, 0, grad)  # after a sign flip, wait a step before moving again
        step = xp.sign(grad) * step_size
        param -= step
        prev[...] = grad
        return step


def _real_pair(value) -> bool:
    return isinstance(value, tuple | list) and len(value) == 2 and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)


def _pair_text(value) -> str:
    return f"{value[0]}, {value[1]}" if isinstance(value, tuple | list) and len(value) == 2 else repr(value)
