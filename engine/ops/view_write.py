"""In-place changes of a view, recorded on its base (PyTorch's CopySlices): `y[:, :2].sigmoid_()`.

A view's elements are found in its base by their offset and strides, so every view the engine makes
(slices, rows, transposes, narrow, split, unfold's windows) is handled the same way, on numpy and cupy alike.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.autograd.function import Function, RegionGrad
from engine.autograd.grad_mode import state as _grad_state
from engine.backend import array_module
from engine.ops.index import scatter_add_into
from engine.tensor import Tensor


class Region(NamedTuple):
    """Where a view's elements lie in its C-contiguous base: offset, shape and strides, in elements."""

    base_shape: tuple
    offset: int
    shape: tuple
    strides: tuple


def _address(a) -> int:
    return a.data.ptr if hasattr(a.data, "ptr") else a.ctypes.data  # a cupy or a numpy array


def region_of(view, base) -> Region | None:
    """The region `view` covers in `base`; None when base is not C-contiguous or view overlaps itself."""
    size = base.itemsize
    if not base.flags.c_contiguous or any(s % size or s <= 0 for s, n in zip(view.strides, view.shape) if n > 1):
        return None
    offset, rest = divmod(_address(view) - _address(base), size)
    return Region(base.shape, offset, view.shape, tuple(s // size for s in view.strides)) if not rest else None


def _at(a, where: Region):
    """The elements of the C-contiguous array `a` (shaped as the base) that the region names, as a view."""
    flat = a.reshape(-1)[where.offset:]
    strides = tuple(s * a.itemsize for s in where.strides)
    return array_module(a).lib.stride_tricks.as_strided(flat, where.shape, strides)


class WriteView(Function):
    """base with the region replaced by value: the gradient goes to base outside it, to value inside."""

    op = "write_view"

    def forward(ctx, base, value):
        out = base.copy()
        _at(out, ctx.where)[...] = value
        return out

    def backward(ctx, grad):
        gbase = grad.copy()
        region = _at(gbase, ctx.where)
        gvalue = region.copy()
        region[...] = 0
        return gbase, gvalue


class ViewOf(Function):
    """The region of base, as a view: what a written view becomes in the graph."""

    op = "view_of"
    view = True

    def forward(ctx, base):
        return _at(base, ctx.where)

    def backward(ctx, grad):
        return _RegionOfBase(ctx.where.base_shape, ctx.where, grad)


class _RegionOfBase(RegionGrad):
    """A view's gradient: zero outside its region of the base (added in place by the scheduler)."""

    __slots__ = ()

    def add_to(self, out) -> None:
        if not out.flags.c_contiguous:  # the scheduler's buffers are: _at needs the base's layout
            out += self.dense()
        elif overlaps(self.index.shape, self.index.strides):  # windows sharing elements: each adds its share
            xp = array_module(out)
            scatter_add_into(xp)(out.reshape(-1), _positions(xp, self.index), self.values)
        else:
            _at(out, self.index)[...] += self.values


def overlaps(shape: tuple, strides: tuple) -> bool:
    """True when elements of an array of this shape and these strides may share memory (unfold's overlapping
    windows, expand's zero strides); False says they never do."""
    extent = 0  # the farthest element the dims of smaller stride reach
    for stride, n in sorted((abs(s), n) for s, n in zip(strides, shape) if n > 1):
        if stride <= extent:
            return True
        extent += stride * (n - 1)
    return False


def _positions(xp, where: Region):
    """The flat index in the base of each element of the region, shaped as the region."""
    index = xp.full(where.shape, where.offset, dtype=np.int64)
    for axis, (n, stride) in enumerate(zip(where.shape, where.strides)):
        index += xp.arange(n, dtype=np.int64).reshape((-1,) + (1,) * (len(where.shape) - axis - 1)) * stride
    return index


def setitem_shared(view: Tensor, index, value) -> None:
    """`view[index] = value` for a view whose elements share memory (unfold's windows): written at the elements'
    places in the base, so each is written once, as torch does (a write of the whole view would let another
    window's old value land last)."""
    base = view._base
    where = region_of(view.array, base.array)
    if where is None:
        raise RuntimeError(f"writing into this view of a tensor of shape {tuple(base.shape)} is not supported by "
                           "the engine (its memory layout is not a plain strided region); clone() it first")
    places = Tensor._wrap(_positions(array_module(view.array), where))[index]
    base.view(-1)[places] = value


def write_through_view(view: Tensor, value: Tensor) -> None:
    """Store `value` in `view` and record the change on its base, whose other elements keep their history."""
    base = view._base
    if base.requires_grad and base.grad_fn is None:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation; "
                           "wrap it in `with engine.no_grad():`, or clone() the leaf first")
    where = region_of(view.array, base.array)
    if where is None:
        raise RuntimeError(f"in-place change of this view of a tensor of shape {tuple(base.shape)} is not supported "
                           "by the engine (its memory layout is not a plain strided region); clone() the view first")
    if overlaps(where.shape, where.strides):  # each shared element would take its gradient once per window
        raise RuntimeError("in-place change of windows that share elements (unfold with step < size) as a whole is "
                           "not supported while recording gradients; write into single windows (u[i] = ...) or "
                           "change the tensor the windows were taken from")
    new_base = WriteView.apply(base, value, where=where)
    view.array[...] = value.array  # the base's memory, so base and view both hold the result
    view._vc[0] += 1
    base.grad_fn, base.requires_grad = new_base.grad_fn, True
    if new_base._id:  # an event named the new value of the base
        base._id = new_base._id
    _become_region(view, base, where)


def _become_region(view: Tensor, base: Tensor, where: Region) -> None:
    """Give `view` the history of its region of base as base is now."""
    new_view = ViewOf.apply(base, where=where)
    view.grad_fn, view.requires_grad = new_view.grad_fn, True
    view._view_v = view._vc[0]
    if new_view._id:
        view._id = new_view._id


def take_view_history(view: Tensor) -> None:
    """A view made before an in-place change of its storage (through the base or another view) still
    holds the history from before it; as in PyTorch, it becomes its region of the base as the base is now,
    so gradients reach whatever the change wrote into it. Called when such a view is next used."""
    base = view._base
    if not base.requires_grad:
        view._view_v = view._vc[0]  # nothing to take: the base has no history
        return
    if not _grad_state.enabled:
        return  # taken at the first use that records
    where = region_of(view.array, base.array)
    if where is None:
        raise RuntimeError(f"this view of a tensor of shape {tuple(base.shape)} was made before an in-place change "
                           "of that tensor, and its memory layout is not a plain strided region the engine can "
                           "follow; clone() the view before the change, or take the view again after it")
    _become_region(view, base, where)
