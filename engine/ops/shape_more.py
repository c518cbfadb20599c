"""More shape functions as torch has them: cartesian_prod, tril_indices, triu_indices and rot90 (composed of
differentiable shape ops where they take a tensor)."""

from __future__ import annotations

import operator

import numpy as np

from engine import backend, dtypes
from engine.autograd.function import ShapeError
from engine.ops.shape import _dim, flip, stack, transpose
from engine.tensor import Tensor

__all__ = ["cartesian_prod", "rot90", "tril_indices", "triu_indices"]


def cartesian_prod(*tensors: Tensor) -> Tensor:
    """Every combination of one element from each 1-D input, one per row (itertools.product order), as torch."""
    if not tensors:
        raise ValueError("cartesian_prod: expects at least one tensor")
    for i, t in enumerate(tensors):
        if t.ndim != 1:
            raise ShapeError(f"cartesian_prod: expects 1-D tensors, but input {i} has shape {tuple(t.shape)}")
        if t.dtype != tensors[0].dtype:
            raise TypeError(f"cartesian_prod: expects all tensors to have the same dtype, got "
                            f"{tensors[0].dtype.name} and {t.dtype.name}")
    if len(tensors) == 1:
        return tensors[0]
    sizes = [t.shape[0] for t in tensors]
    columns = []
    for i, t in enumerate(tensors):
        along = [n if j == i else 1 for j, n in enumerate(sizes)]
        columns.append(t.reshape(along).expand(*sizes).reshape(-1))
    return stack(columns, 1)


def _triangle_indices(op: str, row: int, col: int, offset: int, dtype, device, lower: bool) -> Tensor:
    row, col, offset = operator.index(row), operator.index(col), operator.index(offset)
    if row < 0 or col < 0:
        raise ValueError(f"{op}: row and col must be non-negative, got row={row}, col={col}")
    dt = dtypes.as_dtype(dtype or dtypes.int64)
    if dt.category != dtypes.INT:
        raise TypeError(f"{op}: dtype must be an integer type, got {dt.name}")
    pair = (np.tril_indices if lower else np.triu_indices)(row, offset, col)
    out = np.stack(pair).astype(dt.np, copy=False).reshape(2, -1)
    dev = backend.device(device)
    return Tensor._wrap(backend.to_device(out, dev) if dev.type != "cpu" else out)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row and column indices of the lower triangle of a row x col matrix, as torch.tril_indices."""
    return _triangle_indices("tril_indices", row, col, offset, dtype, device, lower=True)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row and column indices of the upper triangle of a row x col matrix, as torch.triu_indices."""
    return _triangle_indices("triu_indices", row, col, offset, dtype, device, lower=False)


def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """input rotated by 90 degrees k times, from the first of `dims` towards the second, as torch.rot90."""
    k = operator.index(k)
    dims = tuple(dims)
    if len(dims) != 2:
        raise ValueError(f"rot90: expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise ShapeError(f"rot90: expected total dims >= 2, but got total dims = {input.ndim} "
                         f"(shape {tuple(input.shape)})")
    d0, d1 = _dim(dims[0], input.ndim), _dim(dims[1], input.ndim)
    if d0 == d1:
        raise ValueError(f"rot90: expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    k %= 4
    if k == 1:
        return transpose(flip(input, (d1,)), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return flip(transpose(input, d0, d1), (d1,))
    return input.clone()
