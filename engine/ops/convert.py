"""Copies and conversions: clone, dtype casts, device moves."""

from __future__ import annotations

from engine import backend
from engine.autograd.function import Function
from engine.dtypes import DType
from engine.tensor import Tensor


class Clone(Function):
    def forward(ctx, x):
        return x.copy()

    def backward(ctx, grad):
        return grad


class Cast(Function):
    op = "to"

    def forward(ctx, x):
        return x.astype(ctx.dtype.np)

    def backward(ctx, grad):
        return grad  # cast back to the input's dtype centrally


class ToDevice(Function):
    op = "to"

    def forward(ctx, x):
        ctx.source = backend.device_of(x)
        return backend.to_device(x, ctx.device)

    def backward(ctx, grad):
        return backend.to_device(grad, ctx.source)


def clone(x: Tensor) -> Tensor:
    """A copy of `x` that is differentiable back to `x`."""
    return Clone.apply(x)


def cast(x: Tensor, dtype: DType) -> Tensor:
    """`x` as `dtype` (the same tensor when it already is)."""
    if x.array.dtype == dtype.np:
        return x
    return Cast.apply(x, dtype=dtype)


def to_device(x: Tensor, device) -> Tensor:
    """`x` on `device` (the same tensor when it already is)."""
    dev = backend.device(device)
    if x.device == dev:
        return x
    return ToDevice.apply(x, device=dev)
