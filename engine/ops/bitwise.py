"""Bitwise ops on integer and bool tensors, as torch's: and, or, xor, not and the shifts; the operators & | ^ ~ << >>
of a Tensor are these (on bool tensors & | ^ ~ are the logical ops, as bitwise ops on single bits are).

Shifts follow torch, not C: shifting by a negative amount or by the width of the dtype or more shifts every bit out
(0, or -1 for a negative number shifted right). A Python integer operand takes the tensor's dtype, wrapping as
torch's does (int8 | 1000 is int8 | -24) rather than raising as numpy would.
"""

from __future__ import annotations

from engine import dtypes
from engine.autograd.function import Function, promoted_dtype
from engine.backend import array_module
from engine.tensor import Tensor

__all__ = ["bitwise_and", "bitwise_left_shift", "bitwise_not", "bitwise_or", "bitwise_right_shift", "bitwise_xor"]


def _shift_left(xp, a, b):
    inside = (b >= 0) & (b < 8 * a.dtype.itemsize)
    return xp.where(inside, xp.left_shift(a, xp.where(inside, b, 0)), 0).astype(a.dtype, copy=False)


def _shift_right(xp, a, b):
    inside = (b >= 0) & (b < 8 * a.dtype.itemsize)
    shifted_out = xp.where(a < 0, -1, 0)  # what is left once every bit is shifted out: the sign
    return xp.where(inside, xp.right_shift(a, xp.where(inside, b, 0)), shifted_out).astype(a.dtype, copy=False)


_LOGICAL = (dtypes.BOOL, dtypes.INT)
# name -> (kernel on arrays of one dtype, the dtype categories it takes)
BITWISE = {
    "bitwise_and": (lambda xp, a, b: xp.bitwise_and(a, b), _LOGICAL),
    "bitwise_or": (lambda xp, a, b: xp.bitwise_or(a, b), _LOGICAL),
    "bitwise_xor": (lambda xp, a, b: xp.bitwise_xor(a, b), _LOGICAL),
    "bitwise_left_shift": (_shift_left, (dtypes.INT,)),
    "bitwise_right_shift": (_shift_right, (dtypes.INT,)),
}


class Bitwise(Function):
    """A binary op of the BITWISE table, on operands promoted to one integer or bool dtype."""

    promotes = True
    differentiable = False

    def forward(ctx, a, b):
        xp = array_module(a if hasattr(a, "dtype") else b)
        a, b = (v if hasattr(v, "dtype") else xp.asarray(v).astype(ctx.dtype) for v in (a, b))
        return ctx.f(xp, a, b)


def _refuse(name: str, dtype: dtypes.DType, categories) -> None:
    if dtype.category not in categories:
        takes = "integer and bool" if dtypes.BOOL in categories else "integer"
        raise NotImplementedError(f"{name}: not implemented for {dtype.name} tensors; it takes {takes} tensors")


def _make_bitwise(name, f, categories):
    cls = type("".join(w.capitalize() for w in name.split("_")), (Bitwise,), {"op": name, "f": staticmethod(f)})

    def fn(input, other) -> Tensor:
        if not isinstance(input, Tensor) and not isinstance(other, Tensor):
            raise TypeError(f"{name}(): expected a Tensor for input or other, got {type(input).__name__} and "
                            f"{type(other).__name__}")
        dtype = promoted_dtype(input, other)
        _refuse(name, dtype, categories)
        return cls.apply(input, other, dtype=dtype.np)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise {name} of integer{' or bool' if dtypes.BOOL in categories else ''} tensors and " \
                 f"Python integers (broadcast), as torch.{name}."
    return fn


bitwise_and, bitwise_or, bitwise_xor, bitwise_left_shift, bitwise_right_shift = (
    _make_bitwise(name, *row) for name, row in BITWISE.items())


class BitwiseNot(Function):
    differentiable = False
    op = "bitwise_not"

    def forward(ctx, x):
        return array_module(x).invert(x)


def bitwise_not(input: Tensor) -> Tensor:
    """Every bit flipped (logical not for bool), as torch.bitwise_not."""
    _refuse("bitwise_not", input.dtype, _LOGICAL)
    return BitwiseNot.apply(input)


def invert(input: Tensor) -> Tensor:
    """The `~` operator: bitwise_not, refused for floating-point tensors with torch's TypeError."""
    if input.dtype.is_floating_point:
        raise TypeError(f"~ (operator.invert) is only implemented on integer and Boolean-type tensors, got "
                        f"{input.dtype.name}; use logical_not() for a mask of zeros")
    return bitwise_not(input)
