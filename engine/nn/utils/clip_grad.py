"""Gradient clipping: clip_grad_norm_ and clip_grad_value_ (torch.nn.utils)."""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Iterable

import numpy as np

from engine.backend import array_module, to_device
from engine.tensor import Tensor
from engine.user_warning import warn

clipped_nothing = 0  # clip_grad_norm_ calls that found no gradient at all (before backward(), say)
# clip_grad_norm_ calls given no parameters at all: (calls so far, whether the last was given a generator read to its
# end, the file and line that called it); the debugger's exploding-gradient alert names it
given_nothing: tuple = (0, False, "", 0)
# the latest clip_grad_norm_ call that found gradients: (calls so far, the norm before as an array on its device,
# max_norm); the debugger reads the norm at a step, so the call itself never waits for a GPU
last_clip: tuple = (0, None, 0.0)


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale all gradients together so their joint norm is at most `max_norm`; returns the norm before.

    The norm stays on the device (no host sync) unless `error_if_nonfinite` has to look at it.
    """
    generator = isinstance(parameters, types.GeneratorType)
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)  # a generator: read twice
    grads = _grads(parameters)
    if not grads:
        if not parameters:
            global given_nothing
            caller = sys._getframe(1)
            given_nothing = (given_nothing[0] + 1, generator, caller.f_code.co_filename, caller.f_lineno)
        if generator and not parameters:  # as torch warns: model.parameters() already read to its end
            warn("`parameters` is an empty generator, no gradient clipping will occur.")
        elif parameters:
            global clipped_nothing
            clipped_nothing += 1  # the debugger's exploding-gradient alert names it
            warn(f"clip_grad_norm_: none of the {len(parameters)} parameters has a gradient, so nothing was clipped; "
                 "call it after loss.backward() and before optimizer.step()")
        return Tensor._of(np.zeros((), dtype=np.float32))
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    global last_clip
    last_clip = (last_clip[0] + 1, total.array, float(max_norm))
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    grads = _grads(parameters)
    if not grads:  # torch raises here too
        raise RuntimeError("clip_grad_value_: no parameter has a gradient (an empty list, or none with .grad set); "
                           "call it after backward()")
    for g in grads:
        array_module(g.array).clip(g.array, -clip_value, clip_value, out=g.array)
        g._vc[0] += 1


def get_total_norm(tensors: Tensor | Iterable[Tensor], norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """The norm of all `tensors` together (usually gradients), as if concatenated into one vector."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = [t for t in tensors if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return Tensor._of(np.zeros((), dtype=np.float32))
    first = tensors[0]
    xp = array_module(first.array)

    def on_first_device(a):
        return a if array_module(a) is xp else to_device(a, first.device)

    arrays = [t.array for t in tensors]
    if math.isinf(norm_type):
        reduce = (lambda a: array_module(a).abs(a).max()) if norm_type > 0 else (lambda a: array_module(a).abs(a).min())
        norms = [on_first_device(reduce(a)) for a in arrays]
        total = xp.max(xp.stack(norms)) if norm_type > 0 else xp.min(xp.stack(norms))
    elif norm_type == 0:
        total = xp.sum(xp.stack([on_first_device((a != 0).sum().astype(a.dtype)) for a in arrays]))
    else:
        with np.errstate(all="ignore"):  # exploding gradients overflow to an inf norm, silently as in torch
            norms = [on_first_device((array_module(a).abs(a) ** norm_type).sum()) for a in arrays]
            total = xp.sum(xp.stack(norms)) ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the non-finite norm anyway, "
            "set `error_if_nonfinite=False`"
        )
    return Tensor._of(total.astype(first.array.dtype))


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Tensor,
                          foreach: bool | None = None) -> None:
    """Scale the gradients by min(1, max_norm / (total_norm + 1e-6)), in place (total_norm from get_total_norm)."""
    grads = _grads(parameters)
    if not grads:
        return
    total = total_norm.array if isinstance(total_norm, Tensor) else np.asarray(total_norm, dtype=np.float64)
    xp = array_module(total)
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    with np.errstate(all="ignore"):  # an infinite gradient times 0 is NaN, silently as in torch
        for g in grads:
            c = coef if array_module(g.array) is xp else to_device(coef, g.device)
            g.array *= c.astype(g.array.dtype)
            g._vc[0] += 1
