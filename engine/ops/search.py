"""Ops whose output shape depends on the values: nonzero, argwhere, count_nonzero, unique and bincount.

None is differentiable (their results are indices and counts), so each works on the arrays directly.
"""

from __future__ import annotations

from engine.backend import array_module
from engine.ops.shape import _dim
from engine.tensor import Tensor

__all__ = ["argwhere", "bincount", "count_nonzero", "nonzero", "unique"]


def nonzero(x: Tensor, *, as_tuple: bool = False):
    """The indices of the non-zero elements: an (n, ndim) int64 tensor, or one index vector per dim."""
    a = x.array if x.ndim else x.array.reshape(1)
    idx = array_module(a).nonzero(a)
    if as_tuple:
        return tuple(Tensor._wrap(i.astype("int64", copy=False)) for i in idx)
    return Tensor._wrap(array_module(a).stack(idx, axis=1).astype("int64", copy=False)[:, :x.ndim])


def argwhere(x: Tensor) -> Tensor:
    """The indices of the non-zero elements as an (n, ndim) tensor (nonzero)."""
    return nonzero(x)


def count_nonzero(x: Tensor, dim=None) -> Tensor:
    """How many elements are non-zero, over all elements or along `dim` (an int or a tuple)."""
    return Tensor._wrap(array_module(x.array).count_nonzero(x.array, axis=dim).astype("int64"))


def unique(x: Tensor, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,
           dim: int | None = None):
    """The distinct values in ascending order, with where each element went and how often each appears; with
    `dim`, the distinct slices along it (rows of an edge list), in lexicographic order."""
    xp = array_module(x.array)
    if dim is not None:
        if x.ndim == 0:
            raise IndexError("unique: dim given for a 0-d tensor; call it without dim")
        dim = _dim(dim, x.ndim)
        if any(n == 0 for i, n in enumerate(x.shape) if i != dim):
            raise RuntimeError(f"unique: shape {tuple(x.shape)} has 0-sized dimensions besides dim {dim}: there are "
                               "no slices to compare")
        values, inverse, counts = xp.unique(x.array, return_inverse=True, return_counts=True, axis=dim)
        inverse = inverse.reshape(-1)
    else:
        values, inverse, counts = xp.unique(x.array, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(x.shape)
    out = [Tensor._wrap(values)]
    if return_inverse:
        out.append(Tensor._wrap(inverse.astype("int64", copy=False)))
    if return_counts:
        out.append(Tensor._wrap(counts.astype("int64", copy=False)))
    return out[0] if len(out) == 1 else tuple(out)


def bincount(x: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How often each value 0..max appears in a 1-D non-negative integer tensor (summing `weights` instead)."""
    if x.ndim != 1 or x.array.dtype.kind not in "iu":
        raise RuntimeError(f"bincount: input must be a 1-D integer tensor, got {x.ndim}-D {x.dtype.name}")
    if x.numel() and int(x.array.min()) < 0:
        raise RuntimeError("bincount: input must be non-negative")
    w = None if weights is None else weights.array
    out = array_module(x.array).bincount(x.array, weights=w, minlength=minlength)
    if w is None:
        return Tensor._wrap(out.astype("int64", copy=False))
    # numpy sums weights in float64; torch keeps float32 (and float16) weights' dtype, and gives float64 otherwise
    return Tensor._wrap(out.astype(w.dtype if w.dtype.kind == "f" else "float64", copy=False))
