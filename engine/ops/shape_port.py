"""Shape functions ported scripts call that the core shape ops lack: stacking helpers (hstack, column_stack,
atleast_2d...), splitting by sections or indices (tensor_split, hsplit...), meshgrid, broadcast_tensors,
combinations, unravel_index, unique_consecutive, sum_to_size, Tensor.unfold and the in-place shape changes
(t_, transpose_, squeeze_, unsqueeze_...), all as torch has them.

Everything that takes a tensor is composed of differentiable shape and index ops, so gradients (and
gradients of gradients) come from those ops' own backwards (Tensor.unfold, a strided view, is in engine.ops.unfold).
"""

from __future__ import annotations

import itertools
import math
import operator

import numpy as np

from engine import user_warning
from engine.autograd.grad_mode import state as grad_state
from engine.backend import array_module
from engine.ops.shape import (
    Split,
    _as_view,
    _dim,
    _several,
    _sizes,
    _tensor_list,
    broadcast_shapes,
    cat,
    flip,
    narrow,
    squeeze,
    transpose,
    unmarked_chunk,
    unmarked_split,
    unsqueeze,
)
from engine.ops.unfold import unfold
from engine.ops.view_write import refuse_inplace
from engine.tensor import Tensor

__all__ = [
    "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_tensors", "column_stack", "combinations", "concat",
    "concatenate", "diagflat", "dsplit", "dstack", "fliplr", "flipud", "hsplit", "hstack", "meshgrid", "msort",
    "narrow_copy", "ravel", "row_stack", "split_with_sizes", "t", "tensor_split", "unique_consecutive",
    "unravel_index", "unsafe_chunk", "unsafe_split", "vsplit", "vstack",
]


def t(input: Tensor) -> Tensor:
    """A matrix transposed; 0-D and 1-D tensors as they are (torch.t)."""
    return input.t()


def ravel(input: Tensor) -> Tensor:
    """input flattened to 1-D, a view when its layout allows (torch.ravel)."""
    return input.reshape(-1)


def concat(tensors, dim: int = 0) -> Tensor:
    """torch.concat: another name of cat."""
    return cat(tensors, dim)


def concatenate(tensors, axis: int = 0) -> Tensor:
    """torch.concatenate: cat with NumPy's argument name."""
    return cat(tensors, axis)


def unsafe_split(tensor: Tensor, split_size, dim: int = 0) -> tuple[Tensor, ...]:
    """torch.unsafe_split: split, with pieces autograd lets a script change in place."""
    return unmarked_split(tensor, split_size, dim)


def unsafe_chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """torch.unsafe_chunk: chunk, with pieces autograd lets a script change in place."""
    return unmarked_chunk(input, chunks, dim)


def split_with_sizes(input: Tensor, split_sizes, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of input along `dim` of exactly the given sizes (torch.split_with_sizes)."""
    sizes = _sizes("split_with_sizes", (split_sizes,))
    d = _dim(dim, input.ndim)
    n = input.shape[d] if input.ndim else 0
    if any(s < 0 for s in sizes) or sum(sizes) != n:
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                           f"dimension {d}), but got split_sizes={list(sizes)}")
    return _several(unmarked_split(input, list(sizes), d), input, "SplitWithSizes")


# ---- tensor_split and its h/v/d forms ----------------------------------------------------------------
def _bounds(op: str, n: int, indices_or_sections) -> list[tuple[int, int]]:
    """The (start, stop) of each piece: `sections` near-equal pieces, or the cuts at the given indices."""
    if isinstance(indices_or_sections, Tensor):
        a = indices_or_sections.array
        if a.dtype.kind not in "iu":
            raise RuntimeError(f"{op} expected tensor_indices_or_sections to have integer dtype, but got "
                               f"{indices_or_sections.dtype.name}")
        if a.ndim > 1:
            raise RuntimeError(f"{op} expected tensor_indices_or_sections to be a zero-dimensional or "
                               f"one-dimensional tensor, but got a tensor with {a.ndim} dims")
        indices_or_sections = int(a) if a.ndim == 0 else [int(i) for i in a.tolist()]
    if isinstance(indices_or_sections, tuple | list):
        cuts = [min(max(operator.index(i) + (n if i < 0 else 0), 0), n) for i in indices_or_sections]
        starts = [0, *cuts]
        return [(s, max(s, e)) for s, e in zip(starts, [*cuts, n])]
    try:
        sections = operator.index(indices_or_sections)
    except TypeError:
        raise TypeError(f"{op}(): indices_or_sections must be an int, a sequence of ints or an integer tensor, "
                        f"got {type(indices_or_sections).__name__}") from None
    if sections <= 0:
        raise RuntimeError(f"number of sections must be larger than 0, got {sections}")
    size, extra = divmod(n, sections)
    lengths = [size + 1] * extra + [size] * (sections - extra)
    starts = list(itertools.accumulate(lengths, initial=0))
    return list(itertools.pairwise(starts))


def tensor_split(input: Tensor, indices_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    """Views of input along `dim`: `sections` near-equal pieces (the first n % sections one longer), or
    the pieces between the given indices (torch.tensor_split)."""
    if input.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
    d = _dim(dim, input.ndim)
    lead = (slice(None),) * d
    return tuple(_as_view(Split.apply(input, index=(*lead, slice(s, e))), input)
                 for s, e in _bounds("tensor_split", input.shape[d], indices_or_sections))


def _split_along(op: str, dim: int, min_ndim: int, input: Tensor, indices_or_sections) -> tuple[Tensor, ...]:
    if input.ndim < min_ndim:
        raise RuntimeError(f"torch.{op} requires a tensor with at least {min_ndim} dimension, but got a tensor "
                           f"with {input.ndim} dimensions!")
    if not isinstance(indices_or_sections, tuple | list | Tensor):
        sections, n = operator.index(indices_or_sections), input.shape[dim]
        if sections == 0 or n % sections:
            raise RuntimeError(f"torch.{op} attempted to split along dimension {dim}, but the size of the "
                               f"dimension {n} is not divisible by the split_size {sections}!")
    return tensor_split(input, indices_or_sections, dim)


def hsplit(input: Tensor, indices_or_sections) -> tuple[Tensor, ...]:
    """tensor_split along dim 1 (dim 0 of a 1-D tensor); equal sections only (torch.hsplit)."""
    return _split_along("hsplit", 0 if input.ndim == 1 else 1, 1, input, indices_or_sections)


def vsplit(input: Tensor, indices_or_sections) -> tuple[Tensor, ...]:
    """tensor_split along dim 0 of a tensor of at least 2 dims; equal sections only (torch.vsplit)."""
    return _split_along("vsplit", 0, 2, input, indices_or_sections)


def dsplit(input: Tensor, indices_or_sections) -> tuple[Tensor, ...]:
    """tensor_split along dim 2 of a tensor of at least 3 dims; equal sections only (torch.dsplit)."""
    return _split_along("dsplit", 2, 3, input, indices_or_sections)


# ---- atleast_nd and the stacking helpers -------------------------------------------------------------
# the shape a tensor of each smaller rank takes, from its own: atleast_3d makes (n,) -> (1, n, 1)
_ATLEAST = {
    1: {0: lambda s: (1,)},
    2: {0: lambda s: (1, 1), 1: lambda s: (1, *s)},
    3: {0: lambda s: (1, 1, 1), 1: lambda s: (1, *s, 1), 2: lambda s: (*s, 1)},
}


def _atleast(ndim: int, tensors: tuple):
    many = len(tensors) != 1 or isinstance(tensors[0], tuple | list)
    if len(tensors) == 1 and many:
        tensors = tuple(tensors[0])
    out = [x.reshape(_ATLEAST[ndim][x.ndim](x.shape)) if x.ndim < ndim else x
           for x in (_tensor_list(f"atleast_{ndim}d", tensors) if tensors else [])]
    return tuple(out) if many else out[0]


def atleast_1d(*tensors):
    """Each tensor with at least 1 dim; one tensor for one tensor, else a tuple (torch.atleast_1d)."""
    return _atleast(1, tensors)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dims, a 1-D one as a row (torch.atleast_2d)."""
    return _atleast(2, tensors)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dims: (n,) -> (1, n, 1), (m, n) -> (m, n, 1) (torch.atleast_3d)."""
    return _atleast(3, tensors)


def _nonempty(op: str, tensors) -> list[Tensor]:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{op} expects a non-empty TensorList")
    return _tensor_list(op, tensors)


def hstack(tensors) -> Tensor:
    """Join along dim 1 (dim 0 when all are 1-D), 0-D tensors counting as 1-D (torch.hstack)."""
    tensors = atleast_1d(_nonempty("hstack", tensors))
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """Join along dim 0, 1-D tensors counting as rows (torch.vstack)."""
    return cat(atleast_2d(_nonempty("vstack", tensors)), 0)


row_stack = vstack


def dstack(tensors) -> Tensor:
    """Join along dim 2, after atleast_3d (torch.dstack)."""
    return cat(atleast_3d(_nonempty("dstack", tensors)), 2)


def column_stack(tensors) -> Tensor:
    """Join along dim 1, 0-D and 1-D tensors counting as columns (torch.column_stack)."""
    tensors = _nonempty("column_stack", tensors)
    return hstack([x.reshape(-1, 1) if x.ndim <= 1 else x for x in tensors])


# ---- grids and broadcasting --------------------------------------------------------------------------
def meshgrid(*tensors, indexing: str | None = None) -> tuple[Tensor, ...]:
    """Coordinate grids of 0-D or 1-D tensors, 'ij' (matrix) or 'xy' (Cartesian) indexing (torch.meshgrid)."""
    if len(tensors) == 1 and isinstance(tensors[0], tuple | list):
        tensors = tuple(tensors[0])
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    tensors = _tensor_list("meshgrid", tensors)
    if indexing is None:
        user_warning.warn("meshgrid: pass indexing='ij' (the default used here) or indexing='xy'; torch warns that "
                          "an upcoming release will require the indexing argument")
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
    for x in tensors:
        if x.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got shape "
                               f"{tuple(x.shape)}")
        if x.dtype != tensors[0].dtype:
            raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:  # 'xy' is 'ij' with the first two grid dims swapped
        order[0], order[1] = 1, 0
    sizes = [tensors[i].numel() for i in order]
    out = []
    for i, x in enumerate(tensors):
        shape = [1] * len(tensors)
        shape[order.index(i)] = -1
        out.append(x.reshape(shape).expand(*sizes))
    return tuple(out)


def broadcast_tensors(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The tensors expanded to their common broadcast shape, as views (torch.broadcast_tensors)."""
    tensors = _tensor_list("broadcast_tensors", tensors) if tensors else []
    shape = broadcast_shapes(*(x.shape for x in tensors))
    return tuple(x.expand(shape) for x in tensors)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The length-r combinations of a 1-D tensor's entries, one per row, in itertools order (torch.combinations)."""
    if input.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    r = operator.index(r)
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    xp = array_module(input.array)
    if r == 0:
        return input[xp.zeros(0, dtype=np.int64)]
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    index = np.array(list(pick(range(input.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    return input[xp.asarray(index)]


def unravel_index(indices: Tensor, shape) -> tuple[Tensor, ...]:
    """The coordinates in an array of `shape` of each flat index, one int64 tensor per dim (torch.unravel_index)."""
    if not isinstance(indices, Tensor):
        raise TypeError(f"expected 'indices' to be a tensor, but got {type(indices).__name__}")
    if indices.array.dtype.kind not in "iu":
        raise TypeError(f"expected 'indices' to be integer dtype, but got {indices.dtype.name}")
    shape = (operator.index(shape),) if hasattr(shape, "__index__") else _sizes("unravel_index", (shape,))
    if any(n < 0 for n in shape):
        raise ValueError(f"'shape' cannot have negative values, but got {tuple(shape)}")
    rest = indices.array.astype(np.int64)
    if 0 in shape and rest.size:
        raise RuntimeError(f"unravel_index: no index lies in a shape with a 0 dim, {tuple(shape)} (torch raises "
                           "ZeroDivisionError)")
    coords = []
    for n in reversed(shape):  # floor division and modulo, as torch (an index past the end is not checked)
        coords.append(rest % n)
        rest = rest // n
    return tuple(Tensor._wrap(c) for c in reversed(coords))


# ---- diagonals, flips, sorting, copies ----------------------------------------------------------------
def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """A square matrix with input's entries (flattened) on diagonal `offset` (torch.diagflat)."""
    from engine.ops.linalg import diag

    return diag(input.reshape(-1), offset)


def fliplr(input: Tensor) -> Tensor:
    """input with dim 1 reversed (torch.fliplr)."""
    if input.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, (1,))


def flipud(input: Tensor) -> Tensor:
    """input with dim 0 reversed (torch.flipud)."""
    if input.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, (0,))


def msort(input: Tensor) -> Tensor:
    """input sorted along dim 0 (torch.msort)."""
    from engine.ops.sort import sort

    return sort(input, 0).values


def narrow_copy(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """narrow's slice as a new tensor, not a view (torch.narrow_copy)."""
    return narrow(input, dim, start, length).clone()


def unique_consecutive(input: Tensor, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """input with each run of equal consecutive entries (or slices along `dim`) kept once, with the inverse
    map and run lengths on request (torch.unique_consecutive). Not differentiable, as in torch."""
    a = input.array
    xp = array_module(a)
    if dim is None:
        rows, shape = a.reshape(-1, 1), a.shape
    else:
        d = _dim(dim, a.ndim)
        if any(n == 0 for i, n in enumerate(a.shape) if i != d):
            raise RuntimeError(f"unique_consecutive: input of shape {tuple(a.shape)} has a 0-sized dim other than dim "
                               f"{d}, so unique cannot be applied")
        moved = xp.moveaxis(a, d, 0)
        rows, shape = moved.reshape(moved.shape[0], math.prod(moved.shape[1:])), (moved.shape[0],)
    starts = xp.ones(rows.shape[0], dtype=bool)
    starts[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    first = xp.nonzero(starts)[0]
    if dim is None:
        values = a.reshape(-1)[first]
    else:
        values = xp.moveaxis(xp.take(moved, first, axis=0), 0, d)
    out = [Tensor._wrap(xp.ascontiguousarray(values))]
    if return_inverse:
        out.append(Tensor._wrap((xp.cumsum(starts) - 1).astype(np.int64).reshape(shape)))
    if return_counts:
        out.append(Tensor._wrap(xp.diff(xp.append(first, rows.shape[0])).astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


# ---- Tensor-only methods: sum_to_size, unfold and the in-place shape changes --------------------------
def sum_to_size(self: Tensor, *size) -> Tensor:
    """self summed over the dims that `size` broadcasts along, down to `size` (Tensor.sum_to_size)."""
    size = _sizes("sum_to_size", size)
    lead = self.ndim - len(size)
    if lead < 0 or any(s not in (1, n) for s, n in zip(size, self.shape[lead:])):
        raise RuntimeError(f"size {{{list(size)}}} is not expandable to size {{{list(self.shape)}}}.")
    dims = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(size) if s == 1 and self.shape[lead + i] != 1)
    return self.sum(dim=dims, keepdim=True).reshape(size) if dims else self


def _reshape_in_place(op: str, self: Tensor, compute) -> Tensor:
    """Give self the shape (and strides) of `compute(self)`, a view of its own storage, and its history.

    The storage and its elements stay; only self's view of them changes, so autograd records the change
    as the view op and bumps the version as torch does. Views taken of self before keep their own shape.
    """
    if grad_state.enabled and self.requires_grad and self.grad_fn is None:
        raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an in-place operation; "
                           "wrap it in `with engine.no_grad():` or use the out-of-place op")
    if grad_state.enabled and self._base is not None:
        refuse_inplace(self)
    out = compute(self)
    self.array = out.array
    self._vc[0] += 1
    if self._base is not None:
        self._view_v = self._vc[0]  # its history is the one just recorded, not one to take from the base
    if out.grad_fn is not None:
        self.grad_fn, self.requires_grad = out.grad_fn, True
    if out._id:
        self._id = out._id
    return self


def _t_(self: Tensor) -> Tensor:
    """In-place t(): this tensor becomes its transpose."""
    return _reshape_in_place("t_", self, Tensor.t)


def _transpose_(self: Tensor, dim0: int, dim1: int) -> Tensor:
    """In-place transpose: this tensor's dims dim0 and dim1 swap."""
    return _reshape_in_place("transpose_", self, lambda x: transpose(x, dim0, dim1))


def _squeeze_(self: Tensor, dim=None) -> Tensor:
    """In-place squeeze: this tensor loses its size-1 dims (those among `dim`)."""
    return _reshape_in_place("squeeze_", self, lambda x: squeeze(x, dim))


def _unsqueeze_(self: Tensor, dim: int) -> Tensor:
    """In-place unsqueeze: this tensor gains a size-1 dim at `dim`."""
    return _reshape_in_place("unsqueeze_", self, lambda x: unsqueeze(x, dim))


# Tensor methods torch has no function for; bound here since tensor_methods binds functions of engine.ops
TENSOR_METHODS = {"sum_to_size": sum_to_size, "unfold": unfold, "t_": _t_, "transpose_": _transpose_,
                  "swapaxes_": _transpose_, "swapdims_": _transpose_, "squeeze_": _squeeze_, "unsqueeze_": _unsqueeze_}
for _name, _method in TENSOR_METHODS.items():
    setattr(Tensor, _name, _method)

