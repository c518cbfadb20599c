"""More of torch's linear algebra: kron, tensordot, cross, trace, block_diag, vander, and the LU family
(linalg.lu_factor, linalg.lu, linalg.lu_solve, lu_unpack).

The LU factorization is written on the array module of its input (numpy has none, and CuPy none without cupyx):
partial pivoting as LAPACK's getrf does it (the first largest |entry| of a column wins, pivots 1-based int32),
in panels whose trailing update is one matrix product, batched over leading dims. Its backward is torch's
(linalg_lu_backward). The unpacked factors, lu_solve and the other functions are composed of differentiable ops.
This file adds its torch.linalg names to engine.ops.linalg.LINALG.
"""

from __future__ import annotations

import math
import operator
from collections import namedtuple

import numpy as np

from engine import dtypes
from engine.autograd.function import Function, ShapeError, promoted_dtype
from engine.backend import array_module
from engine.ops import lu_gpu
from engine.ops.elementwise import where
from engine.ops.linalg import LINALG, LinAlgError, _solve, _t, solve_triangular
from engine.ops.lu_gpu import swap_rows
from engine.ops.shape import _dim, cat, pad
from engine.tensor import Tensor

__all__ = ["block_diag", "cross", "kron", "lu_unpack", "tensordot", "trace", "vander"]

LUFactorResult = namedtuple("linalg_lu_factor", ["LU", "pivots"])  # as torch.return_types
LUResult = namedtuple("linalg_lu", ["P", "L", "U"])
LUUnpackResult = namedtuple("lu_unpack", ["P", "L", "U"])


def _shape(t: Tensor) -> tuple[int, ...]:
    """t's shape as a plain tuple, for messages and numpy's shape functions."""
    return tuple(t.shape)


# ---- products --------------------------------------------------------------------------------------------
def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: each element of input times the whole of other, as torch.kron."""
    nd = max(input.ndim, other.ndim)
    sa = (1,) * (nd - input.ndim) + _shape(input)
    sb = (1,) * (nd - other.ndim) + _shape(other)
    a = input.reshape([v for n in sa for v in (n, 1)])  # a[i0, 1, i1, 1, ...] * b[1, j0, 1, j1, ...]
    b = other.reshape([v for n in sb for v in (1, n)])
    return (a * b).reshape([m * n for m, n in zip(sa, sb)])


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Sum of products over the last `dims` dims of a and the first of b, or over the listed pairs, as torch."""
    if a.dtype != b.dtype:
        raise TypeError(f"tensordot: both inputs should have the same dtype, got {a.dtype.name} and {b.dtype.name}")
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0:
            raise ValueError(f"tensordot: dims must be >= 0, got {dims}")
        if dims > a.ndim or dims > b.ndim:
            raise ShapeError(f"tensordot: dims={dims} is more than the dimensions of {_shape(a)} or {_shape(b)}")
        dims_a, dims_b = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        try:
            dims_a, dims_b = ([d] if isinstance(d, int) else list(d) for d in dims)
        except (TypeError, ValueError):
            raise TypeError(f"tensordot: dims must be an int or a pair of dim lists, got {dims!r}") from None
        if len(dims_a) != len(dims_b):
            raise ValueError(f"tensordot: both dimension lists should have the same length, got {dims_a} and {dims_b}")
        dims_a, dims_b = [_dim(d, a.ndim) for d in dims_a], [_dim(d, b.ndim) for d in dims_b]
        for given in (dims_a, dims_b):
            twice = next((d for i, d in enumerate(given) if d in given[:i]), None)
            if twice is not None:
                raise RuntimeError(f"tensordot: dim {twice} appears more than once in dims {given}")
    for da, db in zip(dims_a, dims_b):
        if a.shape[da] != b.shape[db]:
            raise ShapeError(f"tensordot: contracted dimensions need to match, but a has size {a.shape[da]} in dim "
                             f"{da} and b has size {b.shape[db]} in dim {db} (shapes {_shape(a)} and {_shape(b)})")
    free_a = [d for d in range(a.ndim) if d not in dims_a]
    free_b = [d for d in range(b.ndim) if d not in dims_b]
    k = math.prod(a.shape[d] for d in dims_a)
    rows, cols = [a.shape[d] for d in free_a], [b.shape[d] for d in free_b]
    left = a.permute(*free_a, *dims_a).reshape(math.prod(rows), k)
    right = b.permute(*dims_b, *free_b).reshape(k, math.prod(cols))
    return (left @ right).reshape(rows + cols)


def _cross(xp, a, b, axis: int):
    a, b = xp.moveaxis(a, axis, -1), xp.moveaxis(b, axis, -1)
    a0, a1, a2, b0, b1, b2 = a[..., 0], a[..., 1], a[..., 2], b[..., 0], b[..., 1], b[..., 2]
    return xp.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis)


class Cross(Function):
    """The cross product of 3-vectors along `dim` (other dims broadcast); the gradients are b x g and g x a."""

    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad or (False, False)
        ctx.save(a if need_b else None, b if need_a else None)
        return _cross(array_module(a), a, b, ctx.dim)

    def backward(ctx, grad):
        a, b = ctx.saved
        xp = array_module(grad)
        need_a, need_b = ctx.needs_input_grad
        return (_cross(xp, b, grad, ctx.dim) if need_a else None), (_cross(xp, grad, a, ctx.dim) if need_b else None)


def linalg_cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along `dim`, other dims broadcast, as torch.linalg.cross."""
    if input.ndim != other.ndim:
        raise ShapeError(f"linalg.cross: inputs must have the same number of dimensions, got shapes {_shape(input)} "
                         f"and {_shape(other)}")
    if input.dtype != other.dtype:
        raise TypeError(f"linalg.cross: both inputs must have the same dtype, got {input.dtype.name} and "
                        f"{other.dtype.name}")
    d = _dim(dim, input.ndim)
    if input.ndim == 0 or input.shape[d] != 3 or other.shape[d] != 3:
        got = f"{input.shape[d]} and {other.shape[d]}" if input.ndim else "0-d tensors"
        raise ShapeError(f"linalg.cross: inputs dimension {dim} must have length 3, got {got}")
    return Cross.apply(input, other, dim=d - input.ndim)  # counted from the end: broadcasting keeps it


def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """The cross product along `dim`, by default the first dim of input of size 3, as torch.cross."""
    if dim is None:
        dim = next((i for i, n in enumerate(input.shape) if n == 3), None)
        if dim is None:
            raise ShapeError(f"cross: no dimension of size 3 in input (shape {_shape(input)}); pass dim")
    return linalg_cross(input, other, dim=dim)


def trace(input: Tensor) -> Tensor:
    """The sum of the main diagonal of a matrix, as torch.trace (integers sum to int64)."""
    if input.ndim != 2:
        raise ShapeError(f"trace: expected a matrix, but got a tensor with {input.ndim} dims "
                         f"(shape {_shape(input)})")
    rows, cols = input.shape
    # row-major, the diagonal is every (cols + 1)-th element of the flattened matrix
    return input.reshape(-1)[:min(rows, cols) * (cols + 1):cols + 1].sum()


def block_diag(*tensors: Tensor) -> Tensor:
    """A block-diagonal matrix of the inputs (0-, 1- or 2-D; 1-D is one row), as torch.block_diag."""
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise ShapeError(f"block_diag: input tensors must have 2 or fewer dimensions; input {i} has "
                             f"{t.ndim} (shape {_shape(t)})")
    if not tensors:
        from engine.creation import zeros

        return zeros(1, 0)
    dtype = promoted_dtype(*tensors)
    blocks = [t.reshape(1, t.numel()) if t.ndim < 2 else t for t in tensors]
    width = sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        # each block's rows: zeros to its left and right, by padding
        rows.append(pad(b.to(dtype), (left, width - left - b.shape[1])))
        left += b.shape[1]
    return cat([r for r in rows if r.shape[0]] or [rows[0].new_zeros(0, width)], 0)


def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:
    """The Vandermonde matrix x**(N-1), ..., x**0 as columns (reversed if `increasing`), as torch.vander."""
    if x.ndim != 1:
        raise ShapeError(f"vander: x must be a one-dimensional tensor, got shape {_shape(x)}")
    n = x.shape[0] if N is None else operator.index(N)
    if n < 0:
        raise ValueError(f"vander: N must be non-negative, got {n}")
    powers = array_module(x.array).arange(n)
    return _powers(x, powers if increasing else powers[::-1])


def linalg_vander(x: Tensor, *, N: int | None = None) -> Tensor:
    """x**0, x**1, ..., x**(N-1) along a new last dim, for x of shape (*, n), as torch.linalg.vander."""
    if x.ndim == 0:
        raise ShapeError("linalg.vander: x must have at least one dimension, got a 0-d tensor")
    n = x.shape[-1] if N is None else operator.index(N)
    if n <= 1:
        raise ValueError(f"linalg.vander: N must be greater than 1, got {n}")
    return _powers(x, array_module(x.array).arange(n))


def _powers(x: Tensor, powers) -> Tensor:
    if not x.dtype.is_floating_point:
        x = x.to(dtypes.int64)  # torch gives int64 for integer and bool x
    return x.unsqueeze(-1) ** Tensor._wrap(powers.astype(np.int64, copy=False))


# ---- LU -------------------------------------------------------------------------------------------------
_PANEL = 32  # columns factored one at a time before the trailing matrix takes one product


def _lu(xp, a, pivot: bool):
    """(packed L\\U, 1-based int32 pivots, row permutation) of each (m, n) matrix in a, as LAPACK's getrf."""
    if xp is not np:
        factored = lu_gpu.factor(xp, a, pivot)  # cuBLAS/cuSOLVER: this loop's launches per column are slow there
        if factored is not None:
            return factored
    *batch, m, n = a.shape
    k = min(m, n)
    lu = a.reshape(math.prod(batch), m, n).copy()
    count = lu.shape[0]
    rows = xp.arange(count)
    perm = xp.broadcast_to(xp.arange(m), (count, m)).copy()
    pivots = xp.broadcast_to(xp.arange(1, k + 1, dtype=np.int32), (count, k)).copy()
    for start in range(0, k, _PANEL):
        stop = min(start + _PANEL, k)
        for j in range(start, stop):
            if pivot:
                p = j + xp.argmax(xp.abs(lu[:, j:, j]), axis=1)
                pivots[:, j] = p + 1
                swap_rows(lu, rows, j, p)
                swap_rows(perm, rows, j, p)
            head = lu[:, j, j]
            # a zero pivot leaves its column as it is (getrf's choice): the matrix is singular there
            lu[:, j + 1:, j] /= xp.where(head == 0, 1, head)[:, None]
            lu[:, j + 1:, j + 1:stop] -= lu[:, j + 1:, j:j + 1] * lu[:, j:j + 1, j + 1:stop]
        # once the panel's rows are final: its rows of the columns to its right (U), then the trailing matrix
        for j in range(start, stop - 1):
            lu[:, j + 1:stop, stop:] -= lu[:, j + 1:stop, j:j + 1] * lu[:, j:j + 1, stop:]
        lu[:, stop:, stop:] -= lu[:, stop:, start:stop] @ lu[:, start:stop, stop:]
    return lu.reshape(a.shape), pivots.reshape(*batch, k), perm.reshape(*batch, m)


def _tri_solve_t(xp, t, rhs, right: bool = False):
    """t^-T rhs, or rhs t^-T with `right` (t a triangular stack; solved as general systems, as engine.linalg)."""
    return _t(_solve(xp, t, _t(rhs))) if right else _solve(xp, _t(t), rhs)


def _unit_lower(xp, lu, k: int):
    m = lu.shape[-2]
    return xp.tril(lu[..., :, :k], -1) + xp.eye(m, k, dtype=lu.dtype)


class LUFactor(Function):
    """The packed LU factorization A = P L U; pivots and the permutation go to ctx.box. Backward as torch's
    linalg_lu_backward, for square, wide and tall matrices."""

    op = "lu_factor"

    def forward(ctx, a):
        xp = array_module(a)
        lu, pivots, perm = _lu(xp, a, ctx.pivot)
        ctx.box.update(pivots=pivots, perm=perm)
        ctx.save(lu, perm)
        return lu

    def backward(ctx, grad):
        lu, perm = ctx.saved
        xp = array_module(grad)
        m, n = lu.shape[-2:]
        k = min(m, n)
        low, up = _unit_lower(xp, lu, k), xp.triu(lu[..., :k, :])
        g_low, g_up = xp.tril(grad[..., :, :k], -1), xp.triu(grad[..., :k, :])
        low1, up1 = low[..., :k, :], up[..., :, :k]
        inner = xp.tril(low1.swapaxes(-1, -2) @ g_low[..., :k, :] - g_up[..., :, k:] @ up[..., :, k:].swapaxes(-1, -2),
                        -1) + xp.triu(g_up[..., :, :k] @ up1.swapaxes(-1, -2)
                                      - low[..., k:, :].swapaxes(-1, -2) @ g_low[..., k:, :])
        top = _tri_solve_t(xp, low1, xp.concatenate([_tri_solve_t(xp, up1, inner, right=True), g_up[..., :, k:]], -1))
        if m > k:  # tall: the rows of L below its square part
            top = xp.concatenate([top, _tri_solve_t(xp, up1, g_low[..., k:, :], right=True)], -2)
        return _rows(top, xp.argsort(perm, axis=-1))  # P x: row perm[j] of the result is row j of x


def _rows(x, order):
    """x[..., order[..., i], :] for each i: the rows of each matrix in x (an array, or a Tensor differentiably)
    reordered; order's batch dims broadcast to x's."""
    xp = array_module(order)
    index = xp.broadcast_to(order[..., None], tuple(x.shape))
    return x.gather(-2, Tensor._wrap(index)) if isinstance(x, Tensor) else xp.take_along_axis(x, index, -2)


def _check_lu_input(op: str, A: Tensor) -> None:
    if A.ndim < 2:
        raise ShapeError(f"{op}: expected a tensor with 2 or more dimensions, got shape {_shape(A)}")
    if not A.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating point tensor, got {A.dtype.name}")


def _factor(op: str, A: Tensor, pivot: bool) -> tuple[Tensor, Tensor, object]:
    _check_lu_input(op, A)
    box = {}
    lu = LUFactor.apply(A, pivot=bool(pivot), box=box)
    return lu, Tensor._wrap(box["pivots"]), box["perm"]


def lu_factor(A: Tensor, *, pivot: bool = True) -> LUFactorResult:
    """(LU, pivots) of each matrix in A, A = P L U packed as LAPACK's getrf, as torch.linalg.lu_factor;
    a zero on U's diagonal raises LinAlgError, as in torch (linalg.lu factors those)."""
    lu, pivots, _ = _factor("linalg.lu_factor", A, pivot)
    k = min(A.shape[-2:])
    if k:
        xp = array_module(lu.array)
        zero = xp.diagonal(lu.array, 0, -2, -1) == 0
        if bool(zero.any()):
            flat = int(xp.argmax(zero.reshape(-1, k).any(-1)))
            j = int(xp.argmax(zero.reshape(-1, k)[flat]))
            where_ = f" (batch element {flat})" if A.ndim > 2 else ""
            raise LinAlgError(f"linalg.lu_factor{where_}: U[{j},{j}] is zero and using it on lu_solve would "
                              "divide by zero; use linalg.lu(A) to factor a singular matrix")
    return LUFactorResult(lu, pivots)


def _permutation_matrix(xp, perm, dtype, m: int):
    """P with P[perm[j], j] = 1: A = P L U."""
    eye = xp.eye(m, dtype=dtype)
    return xp.moveaxis(eye[perm], -1, -2)


def _unpack(lu: Tensor, k: int) -> tuple[Tensor, Tensor]:
    xp = array_module(lu.array)
    m, n = lu.shape[-2:]
    lower = Tensor._wrap(xp.tri(m, k, -1, dtype=bool))
    upper = Tensor._wrap(~xp.tri(k, n, -1, dtype=bool))
    eye = Tensor._wrap(xp.eye(m, k, dtype=lu.array.dtype))
    return where(lower, lu[..., :, :k], eye), where(upper, lu[..., :k, :], 0.0)


def lu(A: Tensor, *, pivot: bool = True) -> LUResult:
    """(P, L, U) with A = P L U for each matrix in A, as torch.linalg.lu; P is empty when not `pivot`."""
    packed, _, perm = _factor("linalg.lu", A, pivot)
    m, n = A.shape[-2:]
    low, up = _unpack(packed, min(m, n))
    xp = array_module(packed.array)
    p = _permutation_matrix(xp, perm, packed.array.dtype, m) if pivot else xp.zeros((*A.shape[:-2], 0, 0),
                                                                                      packed.array.dtype)
    return LUResult(Tensor._wrap(p), low, up)


def _perm_of(op: str, pivots: Tensor, m: int):
    """The row permutation that 1-based LAPACK pivots make: rows swapped j <-> pivots[j] - 1 in order."""
    if pivots.dtype != dtypes.int32:
        raise TypeError(f"{op}: pivots must be an int32 tensor as linalg.lu_factor returns, got {pivots.dtype.name}")
    xp = array_module(pivots.array)
    piv = pivots.array.reshape(math.prod(pivots.shape[:-1]), pivots.shape[-1])
    if piv.size and (bool((piv < 1).any()) or bool((piv > m).any())):
        raise ValueError(f"{op}: pivots must be between 1 and {m} (LU.size(-2)) inclusive; pass the pivots "
                         "linalg.lu_factor returned")
    return lu_gpu.permutation(xp, piv, m).reshape(*pivots.shape[:-1], m)


def lu_unpack(LU_data: Tensor, LU_pivots: Tensor, unpack_data: bool = True,
              unpack_pivots: bool = True) -> LUUnpackResult:
    """(P, L, U) from lu_factor's packed LU and pivots, as torch.lu_unpack; what is not unpacked is empty."""
    _check_lu_input("lu_unpack", LU_data)
    m, n = LU_data.shape[-2:]
    k = min(m, n)
    if tuple(LU_pivots.shape) != (*LU_data.shape[:-2], k):
        raise ShapeError(f"lu_unpack: pivots of shape {_shape(LU_pivots)} do not fit LU of shape {_shape(LU_data)}; "
                         f"expected {(*LU_data.shape[:-2], k)}")
    xp = array_module(LU_data.array)
    empty = Tensor._wrap(xp.zeros(0, LU_data.array.dtype))
    low, up = _unpack(LU_data, k) if unpack_data else (empty, empty)
    p = empty
    if unpack_pivots:
        perm = _perm_of("lu_unpack", LU_pivots, m)
        p = Tensor._wrap(_permutation_matrix(xp, perm, LU_data.array.dtype, m))
    return LUUnpackResult(p, low, up)


def lu_solve(LU: Tensor, pivots: Tensor, B: Tensor, *, left: bool = True, adjoint: bool = False) -> Tensor:
    """X with A X = B (A^T X = B if `adjoint`; X A = B if not `left`) from A's lu_factor, as torch.linalg.lu_solve."""
    op = "linalg.lu_solve"
    if LU.ndim < 2 or LU.shape[-1] != LU.shape[-2]:
        raise ShapeError(f"{op}: LU must be batches of square matrices, got shape {_shape(LU)}")
    if B.ndim < 2:
        raise ShapeError(f"{op}: B must have at least 2 dimensions, got shape {_shape(B)}")
    if B.dtype != LU.dtype:
        raise TypeError(f"{op}: LU and B must have the same dtype, got {LU.dtype.name} and {B.dtype.name}")
    n = LU.shape[-1]
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise ShapeError(f"{op}: incompatible shapes of A and B for the equation {'AX' if left else 'XA'} = B "
                         f"({n}x{n} and {B.shape[-2]}x{B.shape[-1]})")
    if tuple(pivots.shape) != (*LU.shape[:-2], n):
        raise ShapeError(f"{op}: pivots of shape {_shape(pivots)} do not fit LU of shape {_shape(LU)}")
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return lu_solve(LU, pivots, B.mT, adjoint=not adjoint).mT
    perm = _perm_of(op, pivots, n)
    xp = array_module(perm)
    batch = np.broadcast_shapes(_shape(LU)[:-2], _shape(B)[:-2])
    B = B.expand(*batch, *B.shape[-2:])
    if not adjoint:  # A = P L U:  X = U^-1 L^-1 P^T B, and P^T B is B[perm]
        y = solve_triangular(LU, _rows(B, perm), upper=False, unitriangular=True)
        return solve_triangular(LU, y, upper=True)
    # A^T = U^T L^T P^T:  X = P L^-T U^-T B, and P y is y[perm^-1]
    y = solve_triangular(LU.mT, B, upper=False)
    y = solve_triangular(LU.mT, y, upper=True, unitriangular=True)
    return _rows(y, xp.argsort(perm, axis=-1))


LINALG.update({"cross": linalg_cross, "vander": linalg_vander, "lu_factor": lu_factor, "lu": lu,
               "lu_solve": lu_solve})
