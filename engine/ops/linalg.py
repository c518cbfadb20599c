"""Matrix products."""

from __future__ import annotations

from engine.autograd.function import Function, ShapeError, sum_to
from engine.tensor import Tensor


class Matmul(Function):
    promotes = True

    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError("matmul: both arguments need at least 1 dimension, got a 0-d tensor")
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            raise ShapeError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied ({k_a} != {k_b})"
            )
        ctx.save(a, b)
        return a @ b

    def backward(ctx, grad):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:
            return (grad * b if need_a else None), (grad * a if need_b else None)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            g2 = g2[..., None, :]
        if b.ndim == 1:
            g2 = g2[..., None]
        ga = gb = None
        if need_a:
            ga = sum_to(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if need_b:
            gb = sum_to(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with PyTorch's rules for 1-D operands and broadcast batch dimensions."""
    return Matmul.apply(a, b)
