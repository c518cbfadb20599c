"""torch's older and top-level linear algebra that ported scripts call: inner, vdot, addr/addmv/addbmm/baddbmm,
chain_matmul (and linalg.multi_dot), matrix_power, cholesky_solve, cholesky_inverse, triangular_solve, the old
torch.lu / torch.lu_solve, nuclear_norm and frobenius_norm; the SVD, QR and pseudo-inverse are in
linalg_decomp_port.py.

All are composed of differentiable ops, so their gradients differentiate again. This file adds its torch.linalg
names to engine.ops.linalg.LINALG.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from engine.autograd.function import ShapeError
from engine.backend import array_module
from engine.ops.elementwise import where
from engine.ops.linalg import LINALG, _square, matmul, matrix_norm, mm, solve_triangular, vector_norm
from engine.ops.linalg import inv as _inv
from engine.ops.linalg_more import _factor, _shape, tensordot
from engine.ops.linalg_more import lu_solve as _lu_solve
from engine.tensor import Tensor

__all__ = ["addbmm", "addmv", "addr", "baddbmm", "chain_matmul", "cholesky_inverse", "cholesky_solve",
           "frobenius_norm", "inner", "lu", "lu_solve", "matrix_power", "nuclear_norm", "triangular_solve", "vdot"]

TriangularSolveResult = namedtuple("triangular_solve", ["solution", "cloned_coefficient"])  # as torch.return_types


# ---- products -------------------------------------------------------------------------------------------
def inner(input: Tensor, other: Tensor) -> Tensor:
    """Sum of products over the last dim of both (a product with a 0-d tensor), as torch.inner."""
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise ShapeError(f"inner() the last dimension must match on both input tensors but got shapes "
                         f"{list(input.shape)} and {list(other.shape)}")
    return tensordot(input, other, ([input.ndim - 1], [other.ndim - 1]))


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """The dot product of two 1-D tensors (conjugating the first, a no-op for real dtypes), as torch.vdot."""
    if input.ndim != 1 or other.ndim != 1:
        raise ShapeError(f"vdot: 1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    if input.shape != other.shape:
        raise ShapeError(f"vdot: expected tensors of the same size, got {input.shape[0]} and {other.shape[0]}")
    if input.dtype != other.dtype:
        raise TypeError(f"vdot: expected both vectors to have same dtype, but found {input.dtype.name} and "
                        f"{other.dtype.name}")
    return matmul(input, other)


def _vectors(op: str, *named) -> None:
    for name, t, ndim in named:
        if t.ndim != ndim:
            raise ShapeError(f"{op}: Expected {ndim}-D argument {name}, but got {t.ndim}-D")


def _outer(vec1: Tensor, vec2: Tensor) -> Tensor:
    _vectors("addr", ("vec1", vec1, 1), ("vec2", vec2, 1))
    return vec1.unsqueeze(1) * vec2.unsqueeze(0)


def _mv(mat: Tensor, vec: Tensor) -> Tensor:
    _vectors("addmv", ("mat", mat, 2), ("vec", vec, 1))
    if mat.shape[1] != vec.shape[0]:
        raise ShapeError(f"addmv: size mismatch, got mat ({mat.shape[0]}x{mat.shape[1]}), vec ({vec.shape[0]})")
    return matmul(mat, vec)


def _bmm(op: str):
    def product(batch1: Tensor, batch2: Tensor) -> Tensor:
        _vectors(op, ("batch1", batch1, 3), ("batch2", batch2, 3))
        b, _, k = batch1.shape
        if tuple(batch2.shape[:2]) != (b, k):
            raise ShapeError(f"{op}: Expected size for first two dimensions of batch2 tensor to be: [{b}, {k}] but "
                             f"got: {list(batch2.shape[:2])}.")
        out = matmul(batch1, batch2)
        return out.sum(0) if op == "addbmm" else out
    return product


def _nowhere(t: Tensor) -> Tensor:
    """An all-False mask: where(_nowhere(t), t, other) is `other`, with t's gradient zero (t's NaN kept out)."""
    return Tensor._wrap(array_module(t.array).zeros(1, bool))


# beta * input + alpha * product: the four ops differ only in the product
_PRODUCTS = {"addr": _outer, "addmv": _mv, "addbmm": _bmm("addbmm"), "baddbmm": _bmm("baddbmm")}


_SAME_DTYPE = ("addmv", "addbmm", "baddbmm")  # torch refuses mixed dtypes for these; addr promotes


def _scaled_add(op: str, input: Tensor, a: Tensor, b: Tensor, beta, alpha) -> Tensor:
    if op in _SAME_DTYPE and not input.dtype == a.dtype == b.dtype:
        raise RuntimeError(f"{op} input tensors must have the same dtype, but got {input.dtype.name}, "
                           f"{a.dtype.name} and {b.dtype.name}; convert them with .to()")
    product = _PRODUCTS[op](a, b)
    try:
        fits = np.broadcast_shapes(_shape(input), _shape(product)) == _shape(product)
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(f"{op}: input of shape {_shape(input)} cannot be expanded to the product's shape "
                         f"{_shape(product)}")
    scaled = product if alpha == 1 else product * alpha
    if beta == 0:  # torch ignores input then: its NaN and inf do not reach the result
        return where(_nowhere(input), input, 0.0) + scaled
    return (input if beta == 1 else input * beta) + scaled


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * outer(vec1, vec2), as torch.addr."""
    return _scaled_add("addr", input, vec1, vec2, beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat @ vec), as torch.addmv."""
    return _scaled_add("addmv", input, mat, vec, beta, alpha)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * the sum over the batch of batch1[i] @ batch2[i], as torch.addbmm."""
    return _scaled_add("addbmm", input, batch1, batch2, beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * bmm(batch1, batch2), as torch.baddbmm."""
    return _scaled_add("baddbmm", input, batch1, batch2, beta, alpha)


def multi_dot(tensors) -> Tensor:
    """The product of a chain of matrices (the first and last may be 1-D) in the cheapest order, as
    torch.linalg.multi_dot."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise ValueError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    first, last = tensors[0].ndim == 1, tensors[-1].ndim == 1
    mats = [tensors[0].unsqueeze(0) if first else tensors[0], *tensors[1:-1],
            tensors[-1].unsqueeze(1) if last else tensors[-1]]
    for i, t in enumerate(mats):
        if t.ndim != 2:
            raise ShapeError(f"multi_dot(): tensor {i} must be 2D but got {tensors[i].ndim}D")
        if t.dtype != mats[0].dtype:
            raise RuntimeError(f"multi_dot(): all tensors must have the same dtype but tensor 0 is "
                               f"{mats[0].dtype.name} and tensor {i} {t.dtype.name}")
    for i in range(len(mats) - 1):
        if mats[i].shape[1] != mats[i + 1].shape[0]:
            raise ShapeError(f"multi_dot(): tensors {i} and {i + 1} with shapes {list(mats[i].shape)} and "
                             f"{list(mats[i + 1].shape)} cannot be multiplied")
    out = _chain(mats, _order([m.shape[0] for m in mats] + [mats[-1].shape[1]]), 0, len(mats) - 1)
    if first:
        out = out.squeeze(0)
    return out.squeeze(-1) if last else out


def _order(dims: list[int]) -> list[list[int]]:
    """The matrix-chain split points: split[i][j] is where the cheapest product of matrices i..j splits."""
    n = len(dims) - 1
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j], split[i][j] = min((cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1], k)
                                          for k in range(i, j))
    return split


def _chain(mats: list[Tensor], split, i: int, j: int) -> Tensor:
    if i == j:
        return mats[i]
    k = split[i][j]
    return mm(_chain(mats, split, i, k), _chain(mats, split, k + 1, j))


def chain_matmul(*matrices: Tensor) -> Tensor:
    """The product of 2-D matrices in the cheapest order, as torch.chain_matmul (linalg.multi_dot's elder)."""
    if not matrices:
        raise ValueError("chain_matmul(): Expected one or more matrices")
    for t in matrices:
        if t.ndim != 2:
            raise ShapeError(f"chain_matmul: Tensor dimension is {t.ndim}, expected 2 instead.")
    return matrices[0].clone() if len(matrices) == 1 else multi_dot(matrices)


def matrix_power(input: Tensor, n: int) -> Tensor:
    """The n-th power of each square matrix (n < 0: of its inverse), by repeated squaring, as torch.matrix_power."""
    if input.ndim < 2 or input.shape[-1] != input.shape[-2]:
        shown = f"{input.shape[-2]} by {input.shape[-1]} matrices" if input.ndim >= 2 else f"{input.ndim}-D"
        raise ShapeError(f"linalg.matrix_power: A must be batches of square matrices, but they are {shown}")
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"linalg.matrix_power: n must be an int, got {type(n).__name__}")
    if n == 0:
        eye = Tensor._wrap(array_module(input.array).eye(input.shape[-1], dtype=input.array.dtype))
        return where(_nowhere(input), input, eye)  # the identity, linked to input (zero gradients, no NaN)
    base = _inv(input) if n < 0 else input
    result, n = None, abs(n)
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result.clone() if result is input else result  # a new tensor, as torch: writes into it spare input


# ---- solves from factors -------------------------------------------------------------------------------------
def _factor_and_rhs(op: str, B: Tensor, A: Tensor, name: str = "b") -> None:
    if B.ndim < 2:
        raise ShapeError(f"{op}: {name} should have at least 2 dimensions, but has {B.ndim} dimensions instead")
    _square(op, A)
    if B.shape[-2] != A.shape[-1]:
        raise ShapeError(f"Incompatible matrix sizes for {op}: each A matrix is {A.shape[-1]} by {A.shape[-1]} but "
                         f"each b matrix is {B.shape[-2]} by {B.shape[-1]}")
    if B.dtype != A.dtype:
        raise TypeError(f"{op}: expected b and A to have the same dtype, but got b {B.dtype.name} and A "
                        f"{A.dtype.name}")


def _broadcast(B: Tensor, A: Tensor) -> tuple[Tensor, Tensor]:
    batch = np.broadcast_shapes(_shape(B)[:-2], _shape(A)[:-2])
    return B.expand(*batch, *B.shape[-2:]), A.expand(*batch, *A.shape[-2:])


def cholesky_solve(B: Tensor, L: Tensor, upper: bool = False) -> Tensor:
    """X with A X = B for A = L L^T (U^T U if `upper`) given its Cholesky factor, as torch.cholesky_solve."""
    _factor_and_rhs("cholesky_solve", B, L)
    B, L = _broadcast(B, L)
    low = L.mT if upper else L
    return solve_triangular(low.mT, solve_triangular(low, B, upper=False), upper=True)


def cholesky_inverse(L: Tensor, upper: bool = False) -> Tensor:
    """(L L^T)^-1 (or (U^T U)^-1) from a Cholesky factor, as torch.cholesky_inverse."""
    _square("cholesky_inverse", L)
    eye = Tensor._wrap(array_module(L.array).eye(L.shape[-1], dtype=L.array.dtype))
    return cholesky_solve(eye.expand(*L.shape), L, upper)


def triangular_solve(b: Tensor, A: Tensor, upper: bool = True, transpose: bool = False,
                     unitriangular: bool = False) -> TriangularSolveResult:
    """(X, A's copy) with A X = b (A^T X = b if `transpose`) for triangular A, as torch.triangular_solve."""
    if b.ndim < 2:
        raise ShapeError(f"torch.triangular_solve: Expected b to have at least 2 dimensions, but it has {b.ndim} "
                         "dimensions instead")
    _factor_and_rhs("triangular_solve", b, A)
    b, A2 = _broadcast(b, A)
    coefficient = A2.mT if transpose else A2
    x = solve_triangular(coefficient, b, upper=bool(upper) != bool(transpose), unitriangular=unitriangular)
    return TriangularSolveResult(x, A2.clone())


# ---- torch.lu and torch.lu_solve: the older API of linalg.lu_factor and linalg.lu_solve ----------------------
def lu(A: Tensor, pivot: bool = True, get_infos: bool = False):
    """(LU, pivots), with infos if `get_infos` (k > 0: U[k-1, k-1] is zero), as torch.lu; never raises for a
    singular matrix."""
    packed, pivots, _ = _factor("lu", A, pivot)
    if not get_infos:
        return packed, pivots
    xp = array_module(packed.array)
    zero = xp.diagonal(packed.array, 0, -2, -1) == 0
    infos = xp.where(zero.any(-1), xp.argmax(zero, -1) + 1, 0).astype(np.int32) if zero.shape[-1] else \
        xp.zeros(zero.shape[:-1], np.int32)
    return packed, pivots, Tensor._wrap(infos)


def lu_solve(b: Tensor, LU_data: Tensor, LU_pivots: Tensor) -> Tensor:
    """X with A X = b from torch.lu's factors, as torch.lu_solve (linalg.lu_solve with b last)."""
    return _lu_solve(LU_data, LU_pivots, b)


# ---- norms with old names -----------------------------------------------------------------------------------
def nuclear_norm(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """The sum of singular values over the two dims `dim` (the last two by default), as torch.nuclear_norm."""
    if isinstance(dim, bool):  # nuclear_norm(input, keepdim)
        dim, keepdim = None, dim
    return matrix_norm(input, "nuc", (-2, -1) if dim is None else tuple(dim), keepdim)


def frobenius_norm(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    """The square root of the sum of squares over `dim`, as torch.frobenius_norm."""
    if isinstance(dim, int):
        dim = (dim,)
    if len(dim) > 2:
        raise ValueError(f"frobenius_norm: expected dim to have at most 2 dims, got {len(dim)}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"frobenius_norm: expected a floating point tensor, got {input.dtype.name}")
    return vector_norm(input, 2, tuple(dim), keepdim)


LINALG.update({"matrix_power": matrix_power, "multi_dot": multi_dot})
