"""Indexing ops: x[index], out-of-place x[index] = value, masked_fill and masked_select (gather and the
scatter family: engine.ops.gather_scatter).

PyTorch indexes in two steps, and so do we: ints, slices, None and Ellipsis are applied first (a
view), then the integer and boolean arrays index that view together, with NumPy's rules for
advanced indexing. So a prepared index is a `Key` of two parts, `basic` and `advanced`; keeping
them apart is what makes `x[0, :, [0, 1]]` come out as PyTorch's (3, 2) and not NumPy's (2, 3).
"""

from __future__ import annotations

import numbers
import operator
from typing import NamedTuple

import numpy as np

from engine.autograd.function import Function, RegionGrad, ShapeError
from engine.backend import array_module, device_of
from engine.tensor import Tensor

__all__ = ["getitem", "masked_fill", "masked_select", "setitem"]


class IndexOutOfRange(IndexError, RuntimeError):
    """An index beyond a dimension's size (IndexError as for x[i]; RuntimeError as torch.gather raises)."""


def scatter_add_into(xp):
    """`f(a, key, values)`: a[key] += values in place, repeated positions adding up (`xp.add.at`)."""
    at = getattr(xp.add, "at", None)
    if at is not None:
        return at
    import cupyx  # CuPy before 13 has no ufunc.at

    return cupyx.scatter_add


# ---- x[index] -----------------------------------------------------------------------------------
class Key(NamedTuple):
    """A prepared index: `basic` gives a view; `advanced` (arrays, or None) indexes that view."""

    basic: tuple
    advanced: tuple | None
    repeats: bool  # integer arrays may name a position twice, so gradients must add up


def _region(a, key: Key):
    """a[index]: a view for a basic key, a copy otherwise."""
    view = a[key.basic]
    return view if key.advanced is None else view[key.advanced]


def _assign(a, key: Key, value) -> None:
    """a[index] = value, in place."""
    view = a[key.basic]
    view[... if key.advanced is None else key.advanced] = value


def _accumulate(a, key: Key, value) -> None:
    """a[index] += value, in place; positions named twice get both contributions."""
    view = a[key.basic]
    if key.repeats:
        scatter_add_into(array_module(a))(view, key.advanced, value)
    else:
        view[... if key.advanced is None else key.advanced] += value


class KeyGrad(RegionGrad):
    """The gradient of x[key]: zero outside the region, which the scheduler adds into x's gradient."""

    __slots__ = ()

    def add_to(self, out) -> None:
        _accumulate(out, self.index, self.values)


class Index(Function):
    """x[key] with integer or boolean arrays: a copy."""

    op = "getitem"

    def forward(ctx, x):
        ctx.shape = x.shape
        return _region(x, ctx.key)

    def backward(ctx, grad):
        return KeyGrad(ctx.shape, ctx.key, grad)


class Slice(Index):
    """x[key] with ints, slices, None and Ellipsis only: a view sharing x's storage."""

    op = "getitem"  # (a subclass would otherwise be named for its class)
    view = True


def getitem(x: Tensor, index) -> Tensor:
    """`x[index]` with PyTorch's semantics; a view when the index has no arrays or bools."""
    key = _prepare(x, index)
    return (Slice if key.advanced is None else Index).apply(x, key=key)


# ---- x[index] = value, out of place -------------------------------------------------------------
class SetItem(Function):
    """x with x[key] = value; the gradient goes to x outside the region and to value inside it."""

    op = "setitem"

    def forward(ctx, x, value):
        out = x.copy()
        _assign(out, ctx.key, value)  # broadcasts value and casts it to x's dtype
        ctx.value_ndim = getattr(value, "ndim", 0)
        return out

    def backward(ctx, grad):
        need_x, need_value = ctx.needs_input_grad
        gx = gv = None
        if need_x:
            gx = grad.copy()
            _assign(gx, ctx.key, 0)
        if need_value:
            gv = _region(grad, ctx.key)
            # assignment drops leading 1-dims of value, which sum_to cannot restore; put them back
            if ctx.value_ndim > gv.ndim:
                gv = gv.reshape((1,) * (ctx.value_ndim - gv.ndim) + gv.shape)
        return gx, gv


def setitem(x: Tensor, index, value) -> Tensor:
    """A new tensor equal to `x` with `x[index] = value` (value broadcast and cast to x's dtype)."""
    key = _prepare(x, index)
    if not isinstance(value, Tensor):
        value = _host_value(value, x)
    return SetItem.apply(x, value, key=key)


def _host_value(value, x: Tensor):
    if isinstance(value, numbers.Number | np.generic):
        return value
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        _check_same_device(value, x, "setitem", "value", host_ok=True)
        return array_module(x.array).asarray(value)
    raise TypeError(
        f"setitem: can't assign a {type(value).__name__} to a tensor; assign a tensor, an array or a number"
    )


# ---- turning a Python index into a Key ----------------------------------------------------------
def _prepare(x: Tensor, index) -> Key:
    items = [_convert(item, x) for item in _items(index)]
    shape = x.array.shape
    if sum(it is Ellipsis for it in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(_dims_used(it) for it in items)
    if used > len(shape):
        if not shape:
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` to convert a 0-dim tensor "
                             "to a number")
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    if not any(it is Ellipsis for it in items):
        items.append(Ellipsis)  # also makes x[i, j] a 0-d view rather than a NumPy scalar

    xp = array_module(x.array)
    basic, arrays = [], []  # arrays: (dim of the basic view it indexes, integer array)
    d = r = 0  # the dim of x, and of the basic view, that the next item indexes
    repeats = False
    for it in items:
        if it is Ellipsis:
            basic.append(it)
            d += len(shape) - used
            r += len(shape) - used
        elif it is None or it is True or it is False:
            basic.append(None)
            if it is not None:  # torch: True indexes a new dim of size 1 with [0], False with []
                arrays.append((r, xp.zeros(int(it), dtype=np.int64)))
            r += 1
        elif isinstance(it, int):
            if not -shape[d] <= it < shape[d]:
                raise IndexOutOfRange(f"index {it} is out of bounds for dimension {d} with size {shape[d]}")
            basic.append(it)
            d += 1
        elif isinstance(it, slice):
            basic.append(it)
            d += 1
            r += 1
        elif it.dtype.kind == "b":
            if it.shape != shape[d:d + it.ndim]:
                raise IndexError(f"The shape of the mask {list(it.shape)} does not match the shape of the "
                                 f"indexed tensor {list(shape)} at dimension {d}")
            for positions in it.nonzero():
                basic.append(slice(None))
                arrays.append((r, positions))
                r += 1
            d += it.ndim
        else:
            _check_range(it, -shape[d], shape[d], d)
            basic.append(slice(None))
            arrays.append((r, it))
            repeats = True
            d += 1
            r += 1
    if not arrays:
        return Key(tuple(basic), None, False)
    advanced = [slice(None)] * (arrays[-1][0] + 1)
    for dim, arr in arrays:
        advanced[dim] = arr
    return Key(tuple(basic), tuple(advanced), repeats)


def _items(index) -> list:
    if isinstance(index, tuple):
        return list(index)
    if isinstance(index, list) and any(
        isinstance(it, list | tuple | slice | Tensor | np.ndarray) or it is None or it is Ellipsis
        for it in index
    ):
        # torch 2.x reads such a list as a tuple (deprecated), NumPy as one array: refuse to guess
        raise IndexError(
            "a list index holding lists, tensors, slices, None or ... is ambiguous (PyTorch reads it as a "
            "tuple, NumPy as an array): write x[tuple(seq)], or x[engine.tensor(seq)] for an array"
        )
    return [index]


def _dims_used(it) -> int:
    if it is None or it is Ellipsis or it is True or it is False:
        return 0
    if isinstance(it, int | slice):
        return 1
    return it.ndim if it.dtype.kind == "b" else 1


def _convert(item, x: Tensor):
    """One index item as None, Ellipsis, bool, int, slice of ints, or an integer/bool array on x's device."""
    if isinstance(item, slice):
        return _slice(item)
    if item is None or item is Ellipsis:
        return item
    if isinstance(item, bool | np.bool_):
        return bool(item)
    if isinstance(item, Tensor):
        _check_same_device(item.array, x, "index", "index tensor", host_ok=False)
        if item.array.dtype.kind not in "biu":
            raise IndexError("tensors used as indices must be long, int or bool")
        arr = item.array
    elif isinstance(item, np.ndarray) or hasattr(item, "__cuda_array_interface__"):
        _check_same_device(item, x, "index", "index array", host_ok=True)
        arr = item
    elif isinstance(item, list):
        arr = np.asarray(item)
        if arr.size == 0:
            arr = arr.astype(np.int64)
    elif hasattr(item, "__index__"):
        return operator.index(item)
    else:
        raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and integer or bool tensors "
                         f"are valid indices (got {type(item).__name__})")
    if arr.dtype.kind not in "biu":
        raise IndexError(f"arrays used as indices must be of integer or bool type, got {arr.dtype}")
    if arr.ndim == 0:  # torch: a 0-d integer index is an int, a 0-d bool one a bool
        return bool(arr) if arr.dtype.kind == "b" else int(arr)
    # a copy: backward reads it later, so changes to the caller's index afterwards must not reach it
    return array_module(x.array).array(arr)


def _slice(s: slice) -> slice:
    bounds = [None if v is None else operator.index(v) for v in (s.start, s.stop, s.step)]
    if bounds[2] is not None and bounds[2] <= 0:
        raise ValueError("slice step cannot be zero" if bounds[2] == 0 else "step must be greater than zero")
    return slice(*bounds)


def _check_same_device(arr, x: Tensor, op: str, what: str, host_ok: bool) -> None:
    # host data (lists, numpy arrays) may index a GPU tensor; a tensor on another device may not
    if host_ok and isinstance(arr, np.ndarray):
        return
    where = device_of(arr)
    if where != x.device:
        raise RuntimeError(f"{op}: the {what} is on {where} but the tensor is on {x.device}; "
                           f"move it with .to('{x.device}')")


def _check_range(idx, lo: int, hi: int, dim: int, op: str = "", shape: tuple | None = None) -> None:
    """Raise IndexOutOfRange naming the first value of `idx` outside [lo, hi) (and the op and input shape)."""
    if idx.size == 0:
        return
    bad = (idx < lo) | (idx >= hi)
    if bool(bad.any()):  # one reduction (a single sync on the GPU) in the common, valid case
        value = int(idx[bad].ravel()[0])
        where = "" if shape is None else f" of input {tuple(shape)}"
        raise IndexOutOfRange(f"{op + ': ' if op else ''}index {value} is out of bounds for dimension {dim} "
                              f"with size {hi}{where}")


# ---- masked_fill --------------------------------------------------------------------------------
class MaskedFill(Function):
    op = "masked_fill"

    def forward(ctx, x, mask, value):
        ctx.save(mask)
        return array_module(x).where(mask, value, x).astype(x.dtype, copy=False)

    def backward(ctx, grad):
        (mask,) = ctx.saved
        need_x, _, need_value = ctx.needs_input_grad
        xp = array_module(grad)
        gx = xp.where(mask, 0, grad) if need_x else None
        gvalue = xp.where(mask, grad, 0) if need_value else None  # summed to value's 0-d shape centrally
        return gx, None, gvalue


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    """x with `value` (a number or 0-d tensor) where the bool `mask` (broadcast with x) is true."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"masked_fill(): mask must be a bool tensor, got {type(mask).__name__}")
    if mask.array.dtype != np.bool_:
        raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype {mask.dtype}")
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError("masked_fill only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s)")
    elif not isinstance(value, numbers.Number | np.generic):
        raise TypeError(f"masked_fill(): value must be a number or a 0-d tensor, got {type(value).__name__}")
    return MaskedFill.apply(x, mask, value)


# ---- masked_select --------------------------------------------------------------------------------
class MaskedSelect(Function):
    op = "masked_select"

    def forward(ctx, x, mask):
        xp = array_module(x)
        shape = np.broadcast_shapes(x.shape, mask.shape)
        ctx.save(mask)
        ctx.shape = shape
        return xp.broadcast_to(x, shape)[xp.broadcast_to(mask, shape)]

    def backward(ctx, grad):
        (mask,) = ctx.saved
        xp = array_module(grad)
        g = xp.zeros(ctx.shape, grad.dtype)
        g[xp.broadcast_to(mask, ctx.shape)] = grad  # summed back to x's shape centrally
        return g, None


def masked_select(x: Tensor, mask: Tensor) -> Tensor:
    """The entries of x where the bool `mask` (broadcast with x) is true, as a 1-D tensor."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"masked_select(): mask must be a bool tensor, got {type(mask).__name__}")
    if mask.array.dtype != np.bool_:
        raise RuntimeError(f"masked_select: expected a bool mask, got {mask.dtype}")
    try:
        np.broadcast_shapes(x.shape, mask.shape)
    except ValueError:
        raise ShapeError(f"masked_select: mask {tuple(mask.shape)} does not broadcast with input "
                         f"{tuple(x.shape)}") from None
    return MaskedSelect.apply(x, mask)
