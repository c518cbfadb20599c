"""In-place changes of a view, recorded on its base (PyTorch's CopySlices): `y[:, :2].sigmoid_()`.

A view's elements are found in its base's memory by their offset and strides, so every view the engine makes
(slices, rows, transposes, narrow, split, unfold's windows) is handled the same way, on numpy and cupy alike.
A base need not be C-ordered (an elementwise op on a transpose gives a column-major result): arrays that stand
for the base in the graph (its new value, its gradient) are laid out as it is, so the offsets hold in them too.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from engine.autograd.function import Function, RegionGrad
from engine.autograd.grad_mode import state as _grad_state
from engine.autograd.inplace import note_write
from engine.backend import array_module
from engine.events import hub
from engine.ops.index import scatter_add_into
from engine.tensor import Tensor


class Region(NamedTuple):
    """Where a view's elements lie in its base's memory: offset, shape and strides, in elements. `order` is the
    order of the base's axes in memory, outermost first (None: C order), so that base.transpose(order) is
    C-contiguous."""

    base_shape: tuple
    offset: int
    shape: tuple
    strides: tuple
    order: tuple | None = None


def _address(a) -> int:
    return a.data.ptr if hasattr(a.data, "ptr") else a.ctypes.data  # a cupy or a numpy array


def _memory_order(base) -> tuple | None:
    """The order of base's axes in memory, outermost first, when base is not C-contiguous (None); () when its
    elements are not one dense block in any order of the axes (a strided slice, negative strides)."""
    order = tuple(sorted(range(base.ndim), key=lambda axis: -base.strides[axis]))
    return order if base.transpose(order).flags.c_contiguous else ()


def region_of(view, base) -> Region | None:
    """The region `view` covers in `base` (its elements may repeat: an expand); None when base is not one dense
    block, or a stride of view is negative or not a whole number of elements."""
    size = base.itemsize
    order = None if base.flags.c_contiguous else _memory_order(base)
    if not view.size and order != ():  # no elements: nowhere in particular
        return Region(base.shape, 0, view.shape, (0,) * view.ndim, order)
    if order == () or any(s % size or s < 0 for s, n in zip(view.strides, view.shape) if n > 1):
        return None
    offset, rest = divmod(_address(view) - _address(base), size)  # a dense block starts at base's first element
    return None if rest else Region(base.shape, offset, view.shape, tuple(s // size for s in view.strides), order)


def _inverse(order: tuple) -> tuple:
    return tuple(sorted(range(len(order)), key=order.__getitem__))


def _in_memory_order(a, where: Region):
    """`a`'s axes in the order of the base's memory: C-contiguous when `a` is laid out as the base."""
    return a if where.order is None else a.transpose(where.order)


def laid_out(a, where: Region, copy: bool = False):
    """Array `a` (shaped as the base) laid out in memory as the base is: `a` itself when it is and no copy is
    asked for. Only such an array has the region's elements at the region's offsets."""
    memory = _in_memory_order(a, where)
    if not copy and memory.flags.c_contiguous:
        return a
    # a C-ordered copy; an array too where a 0-d gradient came as a NumPy scalar, which no region can be written into
    memory = array_module(a).array(memory, order="C")
    return memory if where.order is None else memory.transpose(_inverse(where.order))


def _flat(a, where: Region):
    """The memory of `a`, laid out as the base, as a 1-d view."""
    return _in_memory_order(a, where).reshape(-1)


def _at(a, where: Region):
    """The elements of array `a` (shaped and laid out as the base: see laid_out) that the region names, as a
    view."""
    flat = _flat(a, where)[where.offset:]
    strides = tuple(s * a.itemsize for s in where.strides)
    return array_module(a).lib.stride_tricks.as_strided(flat, where.shape, strides)


class WriteView(Function):
    """base with the region replaced by value: the gradient goes to base outside it, to value inside."""

    op = "write_view"

    def forward(ctx, base, value):
        out = laid_out(base, ctx.where, copy=True)
        _at(out, ctx.where)[...] = value
        return out

    def backward(ctx, grad):
        gbase = laid_out(grad, ctx.where, copy=True)
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
        where = self.index
        if not _in_memory_order(out, where).flags.c_contiguous:  # the scheduler's buffers are C-ordered; bases need not
            out += self.dense()
        elif overlaps(where.shape, where.strides):  # windows sharing elements: each adds its share
            xp = array_module(out)
            scatter_add_into(xp)(_flat(out, where), _positions(xp, where), self.values)
        else:
            _at(out, where)[...] += self.values

    def dense(self):
        """The gradient as a full array laid out as the base: zeros with the region added in."""
        out = laid_out(array_module(self.values).zeros(self.shape, self.values.dtype), self.index)
        self.add_to(out)
        return out


@functools.lru_cache(maxsize=1024)  # asked on every in-place op of a non-contiguous tensor: a lookup, not a sort
def overlaps(shape: tuple, strides: tuple) -> bool:
    """True when elements of an array of this shape and these strides may share memory (unfold's overlapping
    windows, expand's zero strides); False says they never do."""
    extent = 0  # the farthest element the dims of smaller stride reach
    for stride, n in sorted(zip(map(abs, strides), shape)):
        if n > 1:
            if stride <= extent:
                return True
            extent += stride * (n - 1)
    return False


def shares_elements(a) -> bool:
    """Whether elements of array `a` may share memory (unfold's windows, expand's zero strides): never for a
    C-contiguous array, so the common case costs one flag."""
    return not a.flags.c_contiguous and overlaps(a.shape, a.strides)


def _positions(xp, where: Region):
    """The flat index in the base of each element of the region, shaped as the region."""
    index = xp.full(where.shape, where.offset, dtype=np.int64)
    for axis, (n, stride) in enumerate(zip(where.shape, where.strides)):
        index += xp.arange(n, dtype=np.int64).reshape((-1,) + (1,) * (len(where.shape) - axis - 1)) * stride
    return index


def _memory(a) -> tuple:
    """The memory `a`'s elements lie in, as a 1-d array from the lowest of them to the highest, and their region in
    it: any strides, so the windows of a transpose or of a strided slice are found as well."""
    size = a.itemsize
    if not a.size:  # nothing to write, and no memory to reach
        return a.reshape(-1), Region((0,), 0, a.shape, (0,) * a.ndim)
    if any(s % size for s in a.strides):
        raise RuntimeError(f"writing into a tensor of shape {tuple(a.shape)} whose elements share memory and whose "
                           "strides are not whole elements is not supported by the engine; clone() it first")
    strides = tuple(s // size for s in a.strides)
    low = sum(s * (n - 1) for s, n in zip(strides, a.shape) if s < 0)
    high = sum(s * (n - 1) for s, n in zip(strides, a.shape) if s > 0)
    lowest = a[tuple(slice(n - 1, n) if s < 0 else slice(0, 1) for s, n in zip(strides, a.shape))]
    memory = array_module(a).lib.stride_tricks.as_strided(lowest, (high - low + 1,), (size,))
    return memory, Region((high - low + 1,), -low, a.shape, strides)


def _target(t: Tensor, grads: bool) -> tuple:
    """Where t's elements lie, as a flat tensor, and their region in it: the flat view of t's base when the write is
    recorded (the base's other elements keep their history), else the memory itself."""
    if not grads:
        memory, where = _memory(t.array)
        target = Tensor._wrap(memory)
        target._vc = t._vc  # a write through it is a new version of t, of its base and of their views
        return target, where
    base = t._base
    if base is None:
        raise RuntimeError("writing into a tensor whose elements share memory (windows of a detached unfold()) is "
                           "not supported by the engine while recording gradients; write into the tensor the "
                           "windows were taken from, or clone() the windows first")
    where = region_of(t.array, base.array)
    if where is None:
        raise RuntimeError(f"writing into windows that share elements while recording gradients is not supported by "
                           f"the engine when the tensor they come from (shape {tuple(base.shape)}) is not one dense "
                           "block; take the windows of its contiguous() copy, or clone() the windows first")
    return (base if where.order is None else base.permute(where.order)).view(-1), where


def _recorded(t: Tensor, value) -> bool:
    """True when a write of `value` into t is recorded by autograd."""
    return _grad_state.enabled and (t.requires_grad or (isinstance(value, Tensor) and value.requires_grad)
                                    or (t._base is not None and t._base.requires_grad))


def setitem_shared(t: Tensor, index, value) -> None:
    """`t[index] = value` for a tensor whose elements share memory (unfold's windows): written at the elements'
    places in memory, in the index's order, as torch does (a write of the whole of t would let another window's
    old value land last)."""
    target, where = _target(t, _recorded(t, value))
    xp = array_module(t.array)
    places = Tensor._wrap(_positions(xp, where))[index]
    flat = places.array.reshape(-1)
    keep = _last_of_each(xp, flat)
    if keep is None:  # every place once: as indexed
        target[places] = value
        return
    # a place indexed twice takes the last value, as numpy's assignment gives and CuPy's does not promise
    if not isinstance(value, Tensor):
        value = Tensor._wrap(xp.asarray(value, dtype=t.array.dtype))
    values = value.expand(*places.shape).reshape(-1)[Tensor._wrap(keep)]
    target[Tensor._wrap(flat[keep])] = values


def _last_of_each(xp, flat):
    """The indices into `flat` of each value's last occurrence, in order; None when no value occurs twice."""
    rev = flat[::-1]
    _, first = xp.unique(rev, return_index=True)
    if first.size == flat.size:
        return None
    return xp.sort(flat.size - 1 - first)


def write_shared(t: Tensor, out: Tensor) -> None:
    """Store `out` in t, whose elements share memory (unfold's windows): each place takes the value of the last
    element, in t's element order, that `out` changed (of the last element when none did), so a change of one window
    is not undone by the windows sharing its elements (torch's result for index_fill_, masked_fill_, clamp_, ...).
    Where elements of one place change to different values (u.add_(other)), torch documents the result as undefined;
    the last one wins here."""
    grads = _recorded(t, out)
    target, where = _target(t, grads)
    xp = array_module(t.array)
    places = _positions(xp, where).reshape(-1)
    chosen = _last_changes(xp, t.array, out.array, places)
    target[Tensor._wrap(places[chosen])] = out.reshape(-1)[Tensor._wrap(chosen)]
    if out._id and not grads:  # an event named the written value (when recorded, the base takes it)
        t._id = out._id


def _last_changes(xp, old, new, places):
    """For each place, the flat index of the element whose value in `new` it takes: the last one in element order
    that `new` changes (bit for bit, so NaN stays NaN and -0.0 is a change), else the last one (the same value, and
    with it the gradient of what was written, as torch's)."""
    n = old.size

    def as_bytes(a):
        return xp.ascontiguousarray(a).reshape(n, 1).view(np.uint8)

    changed = (as_bytes(old) != as_bytes(new.astype(old.dtype, copy=False))).any(axis=1)
    order = xp.concatenate([xp.flatnonzero(~changed), xp.flatnonzero(changed)])  # later: taken first
    hit = places[order][::-1]
    _, last = xp.unique(hit, return_index=True)  # the first in reverse order: the last of each place
    return order[hit.size - 1 - last]


_MULTI_OUT = ("This view is the output of a function that returns multiple views. Such functions do not allow the "
              "output views to be modified inplace. You should replace the inplace operation by an out-of-place one.")


def refuse_inplace(view: Tensor) -> None:
    """Raise torch's error when autograd cannot record an in-place change of `view`: an output of split, chunk or
    unbind that requires grad (or a view of one), or a view of a leaf that requires grad."""
    mark = getattr(view, "_multi_out", None)
    if mark is not None and view.requires_grad:
        raise RuntimeError(f"{mark} is a view and is being modified inplace. {_MULTI_OUT}")
    base = view._base
    if base.requires_grad and base.grad_fn is None:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation; "
                           "wrap it in `with engine.no_grad():`, or clone() the leaf first")


def write_through_view(view: Tensor, value: Tensor) -> None:
    """Store `value` in `view` and record the change on its base, whose other elements keep their history."""
    base = view._base
    where = region_of(view.array, base.array)
    if where is None:
        raise RuntimeError(f"in-place change of this view of a tensor of shape {tuple(base.shape)} is not supported "
                           "by the engine (its memory layout is not a plain strided region); clone() the view first")
    new_base = WriteView.apply(base, value, where=where)
    view.array[...] = value.array  # the base's memory, so base and view both hold the result
    view._vc[0] += 1
    base.grad_fn, base.requires_grad = new_base.grad_fn, True
    if new_base._id:  # an event named the new value of the base
        base._id = new_base._id
    if hub.active:
        note_write(base)
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
    mark = getattr(view, "_multi_out", None)
    if mark is not None:
        raise RuntimeError(f"{mark} is a view and its base or another view of its base has been modified inplace. "
                           f"{_MULTI_OUT}")
    where = region_of(view.array, base.array)
    if where is None:
        raise RuntimeError(f"this view of a tensor of shape {tuple(base.shape)} was made before an in-place change "
                           "of that tensor, and its memory layout is not a plain strided region the engine can "
                           "follow; clone() the view before the change, or take the view again after it")
    _become_region(view, base, where)
