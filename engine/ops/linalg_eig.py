"""torch.linalg's symmetric eigendecomposition and the functions ported scripts reach for around it: eigh, eigvalsh,
lstsq, matrix_rank, cond, solve_ex and vecdot (torch has them in torch.linalg only, not as Tensor methods).

eigh is two nodes over one decomposition: the eigenvalues (gradient V diag(gL) V^T) and the eigenvectors (gradient
V (skew(V^T gV) / E) V^T, E_ij = L_j - L_i), so a loss that reads the eigenvalues alone never divides by a gap
between repeated eigenvalues, as in torch. lstsq is the pseudo-inverse (by the SVD, with torch's pinv_backward,
which needs no gap between singular values) times B. The backward formulas are written once for arrays and
Tensors, so create_graph=True records them. This file adds its names to engine.ops.linalg.LINALG.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from engine import dtypes
from engine.autograd.function import Function, ShapeError
from engine.autograd.higher import derived, differentiable, saved_input, saved_output
from engine.backend import array_module
from engine.ops.elementwise import where
from engine.ops.linalg import LINALG, LinAlgError, _t, inv, matrix_norm, solve, svdvals
from engine.ops.linalg_more import _lu
from engine.ops.shape import _dim
from engine.tensor import Tensor

__all__: list[str] = []  # engine.linalg only, as torch.linalg

EighResult = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])  # as torch.return_types
LstsqResult = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])
SolveExResult = namedtuple("linalg_solve_ex", ["result", "info"])

_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")
_COND_ORDERS = (None, 2, -2, "fro", "nuc", 1, -1, math.inf, -math.inf)


def _mT(x: Tensor) -> Tensor:
    return x.mT


def _matrices(op: str, A: Tensor, square: bool = True, int_error: type = RuntimeError) -> None:
    """torch's errors for an A that is not a stack of float32/float64 (square, if `square`) matrices."""
    if A.ndim < 2:
        raise ShapeError(f"{op}: The input tensor A must have at least 2 dimensions, got shape {tuple(A.shape)}")
    if square and A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"{op}: A must be batches of square matrices, but they are {A.shape[-2]} by {A.shape[-1]} "
                         "matrices")
    if A.dtype not in (dtypes.float32, dtypes.float64):
        error = NotImplementedError if A.dtype is dtypes.float16 else int_error
        raise error(f"{op}: expected a float32 or float64 tensor, got {A.dtype.name}; convert with .float()")


def _same_dtype(op: str, A: Tensor, B: Tensor, names: tuple[str, str] = ("A", "B")) -> None:
    if A.dtype != B.dtype:
        raise RuntimeError(f"{op}: Expected {names[0]} and {names[1]} to have the same dtype, but found {names[0]} of "
                           f"type {A.dtype.name} and {names[1]} of type {B.dtype.name} instead")


# ---- eigh and eigvalsh -------------------------------------------------------------------------------------
def _values_grad(g, v, t):
    """V diag(g) V^T: the gradient of the eigenvalues (arrays, or Tensors with t transposing)."""
    return (v * g[..., None, :]) @ t(v)


def _vectors_grad(g, w, v, t, eye):
    """V (skew(V^T g) / E) V^T, E_ij = w_j - w_i off the diagonal (whose entries are 0): torch's eigh backward."""
    vtg = t(v) @ g
    gaps = w[..., None, :] - w[..., :, None] + eye
    return v @ ((vtg - t(vtg)) * 0.5 / gaps) @ t(v)


class EighValues(Function):
    """The eigenvalues of each symmetric matrix (the triangle `uplo` read), ascending; the eigenvectors go to
    ctx.box for eigh's EighVectors node."""

    op = "eigvalsh"

    def forward(ctx, a):
        xp = array_module(a)
        if ctx.needs_input_grad is None and ctx.box is None:
            return xp.linalg.eigvalsh(a, UPLO=ctx.uplo)
        w, v = xp.linalg.eigh(a, UPLO=ctx.uplo)
        if ctx.box is not None:
            ctx.box["factors"] = w, v
        ctx.save(w, v)
        return w

    def backward(ctx, grad):
        return _values_grad(grad, ctx.saved[1], _t)


class EighVectors(Function):
    """The eigenvectors of the matrices whose eigenvalues the EighValues node of the same eigh call found."""

    op = "eigh"

    def forward(ctx, a):
        w, v = ctx.__dict__.pop("box")["factors"]
        ctx.save(w, v)
        return v

    def backward(ctx, grad):
        w, v = ctx.saved
        return _vectors_grad(grad, w, v, _t, array_module(v).eye(v.shape[-1], dtype=v.dtype))


@differentiable(EighValues)
def _eigh_values(ctx, g):
    v = derived(ctx, EighVectors, ctx.saved[1], (0,), saved=ctx.saved)
    return _values_grad(g, v, _mT)


@differentiable(EighVectors)
def _eigh_vectors(ctx, g):
    w_arr, v_arr = ctx.saved
    w = derived(ctx, EighValues, w_arr, (0,), saved=ctx.saved)
    eye = Tensor._wrap(array_module(v_arr).eye(v_arr.shape[-1], dtype=v_arr.dtype))
    return _vectors_grad(g, w, saved_output(ctx, v_arr), _mT, eye)


def _uplo(UPLO) -> str:
    if not isinstance(UPLO, str):
        raise TypeError(f"linalg.eigh: argument 'UPLO' must be str, not {type(UPLO).__name__}")
    if UPLO.upper() not in ("L", "U"):
        raise RuntimeError(f"linalg.eigh: Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO.upper()


def eigh(A: Tensor, UPLO: str = "L") -> EighResult:
    """(eigenvalues ascending, eigenvectors as columns) of each symmetric matrix, reading its lower (UPLO='L') or
    upper triangle, as torch.linalg.eigh; gradients through the eigenvectors need distinct eigenvalues."""
    uplo = _uplo(UPLO)
    _matrices("linalg.eigh", A, int_error=NotImplementedError)
    box = {}
    values = EighValues.apply(A, uplo=uplo, box=box)
    return EighResult(values, EighVectors.apply(A, box=box))


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    """The eigenvalues of each symmetric matrix, ascending, as torch.linalg.eigvalsh."""
    uplo = _uplo(UPLO)
    _matrices("linalg.eigh", A, int_error=NotImplementedError)
    return EighValues.apply(A, uplo=uplo, box=None)


# ---- lstsq and matrix_rank -------------------------------------------------------------------------------
def _pinv_grad(g, p, a, t):
    """torch's pinv_backward: the gradient of A for a gradient g of P = pinv(A) (exact while the rank stays)."""
    m, n = a.shape[-2:]
    ph, gh = t(p), t(g)
    if m <= n:
        k = gh @ p
        kph = k @ ph
        return -t(p @ k) + kph - (a @ p) @ kph + (ph @ p) @ (gh - k @ a)
    k = p @ gh
    phk = ph @ k
    return -t(k @ p) + (gh - a @ k) @ p @ ph + phk - phk @ p @ a


class Pinv(Function):
    """pinv(A) from the SVD, singular values at or below max(`atol`, `rcond` times the largest) dropped; the
    singular values go to ctx.box (lstsq's rank and singular_values; None: not wanted)."""

    atol = 0.0

    op = "pinv"

    def forward(ctx, a):
        xp = array_module(a)
        *batch, m, n = a.shape
        if not min(m, n):  # nothing to decompose (and not every library's SVD takes an empty matrix)
            s, p = xp.zeros((*batch, 0), a.dtype), xp.zeros((*batch, n, m), a.dtype)
        else:
            u, s, vh = xp.linalg.svd(a, full_matrices=False)
            keep = s > xp.maximum(ctx.atol, ctx.rcond * s[..., :1])
            inverse = xp.where(keep, 1 / xp.where(keep, s, 1), 0)
            p = (_t(vh) * inverse[..., None, :]) @ _t(u)
        if ctx.box is not None:
            ctx.box["s"] = s
        ctx.save(a, p)
        return p

    def backward(ctx, grad):
        a, p = ctx.saved
        return _pinv_grad(grad, p, a, _t)


@differentiable(Pinv)
def _pinv(ctx, g):
    a_arr, p_arr = ctx.saved
    return _pinv_grad(g, saved_output(ctx, p_arr), saved_input(ctx, 0, a_arr), _mT)


def _rank(xp, s, atol, rtol):
    """How many entries of each row of singular values `s` exceed max(atol, rtol * the row's largest), as int64."""
    largest = s.max(-1, keepdims=True) if s.shape[-1] else xp.zeros((*s.shape[:-1], 1), s.dtype)
    tol = xp.maximum(xp.asarray(atol)[..., None], xp.asarray(rtol)[..., None] * largest)
    return (s > tol).sum(-1).astype(np.int64)


def _eps(A: Tensor) -> float:
    """torch's default relative tolerance: the dtype's epsilon times the larger matrix dimension."""
    return float(np.finfo(A.array.dtype).eps) * max(A.shape[-2:])


def lstsq(A: Tensor, B: Tensor, rcond: float | None = None, *, driver: str | None = None) -> LstsqResult:
    """(solution, residuals, rank, singular_values) of min ||A X - B|| per matrix, as torch.linalg.lstsq: the
    minimum-norm solution from the SVD whatever the driver, with torch's CPU rules for the empty fields (gels: no
    rank; gelsy, the CPU default: no residuals; singular values from gelsd and gelss only; residuals when A is tall
    and of full rank). On a GPU the default driver is gels, as torch's."""
    op = "linalg.lstsq"
    if A.ndim < 2:
        raise ShapeError(f"{op}: input must have at least 2 dimensions, got shape {tuple(A.shape)}")
    if B.ndim < 1:
        raise ShapeError(f"{op}: other must have at least 1 dimension, got a 0-d tensor")
    _matrices(op, A, square=False)
    _same_dtype(op, A, B, ("input", "other"))
    if driver is None:
        driver = "gelsy" if A.device.type == "cpu" else "gels"
    if driver not in _DRIVERS:
        raise RuntimeError(f"{op}: parameter `driver` should be one of (gels, gelsy, gelsd, gelss), got {driver!r}")
    if not (B.ndim <= A.ndim <= B.ndim + 1):
        raise ShapeError(f"{op}: input.dim() must be greater or equal to other.dim() and (input.dim() - other.dim()) "
                         f"<= 1, got shapes {tuple(A.shape)} and {tuple(B.shape)}")
    vector = B.ndim == A.ndim - 1
    m, n = A.shape[-2:]
    if B.shape[-1 if vector else -2] != m:
        raise ShapeError(f"{op}: input.size(-2) should match other.size({-1 if vector else -2}), got shapes "
                         f"{tuple(A.shape)} and {tuple(B.shape)}")
    B2 = B.unsqueeze(-1) if vector else B
    try:
        np.broadcast_shapes(tuple(A.shape[:-2]), tuple(B2.shape[:-2]))
    except ValueError:
        raise ShapeError(f"{op}: the batch dims of input {tuple(A.shape)} and other {tuple(B.shape)} do not "
                         "broadcast") from None
    if rcond is None or driver == "gels":  # gels is a QR solve: no rank to cut at
        rcond = _eps(A)
    box = {}
    X = Pinv.apply(A, rcond=float(rcond), box=box) @ B2
    xp = array_module(A.array)
    s = box["s"]
    rank = _rank(xp, s, 0.0, rcond)
    full = driver == "gels" or bool((rank == n).all())
    empty = Tensor._wrap(xp.zeros(0, A.array.dtype))
    residuals = ((A @ X - B2) ** 2).sum(-2) if m > n and driver != "gelsy" and full else empty
    return LstsqResult(X.squeeze(-1) if vector else X, residuals,
                       Tensor._wrap(xp.zeros(0, np.int64) if driver == "gels" else rank),
                       Tensor._wrap(s) if driver in ("gelsd", "gelss") else empty)


def _array(value, xp):
    return value.array if isinstance(value, Tensor) else xp.asarray(value, dtype=np.float64)


def matrix_rank(A: Tensor, tol=None, hermitian: bool = False, *, atol=None, rtol=None) -> Tensor:
    """The number of singular values (|eigenvalues| if `hermitian`) above max(atol, rtol * the largest) per matrix,
    int64, as torch.linalg.matrix_rank; rtol defaults to eps * max(m, n), or to 0 where atol > 0. The deprecated
    `tol` is atol with rtol 0."""
    op = "linalg.matrix_rank"
    if tol is not None:
        if atol is not None or rtol is not None:
            raise TypeError(f"{op}: pass either tol or atol/rtol, not both")
        atol, rtol = tol, 0.0
    _matrices(op, A, square=False)
    xp = array_module(A.array)
    if hermitian:
        _matrices("linalg.eigh", A, int_error=NotImplementedError)
        s = xp.abs(xp.linalg.eigvalsh(A.array)) if A.numel() else xp.zeros((*A.shape[:-1],), A.array.dtype)
    else:
        s = xp.linalg.svd(A.array, compute_uv=False) if A.numel() else xp.zeros((*A.shape[:-2], 0), A.array.dtype)
    atol_ = xp.zeros(()) if atol is None else _array(atol, xp)
    if rtol is None:
        rtol = xp.where(atol_ > 0, 0.0, _eps(A)) if atol is not None else _eps(A)
    return Tensor._wrap(_rank(xp, s, atol_, _array(rtol, xp)))


# ---- cond and solve_ex -----------------------------------------------------------------------------------
def _zero_pivots(a):
    """Per matrix, LAPACK getrf's info: the 1-based index of the first zero on U's diagonal, 0 where none (int32)."""
    xp = array_module(a)
    packed = _lu(xp, a, True)[0]
    zero = xp.diagonal(packed, 0, -2, -1) == 0
    return xp.where(zero.any(-1), zero.argmax(-1) + 1, 0).astype(np.int32)


def _stand_in(A: Tensor, singular) -> Tensor:
    """A with the identity where `singular` (a bool array over A's batch): what still has an inverse."""
    xp = array_module(singular)
    eye = Tensor._wrap(xp.eye(A.shape[-1], dtype=A.array.dtype))
    return where(Tensor._wrap(singular[..., None, None]), eye, A)


def cond(A: Tensor, p=None) -> Tensor:
    """The condition number of each matrix in norm p, as torch.linalg.cond: s_max / s_min for p None or 2 (s_min /
    s_max for -2, any shape); ||A||_p ||A^-1||_p for 'fro', 'nuc', 1, -1, inf, -inf (square A, inf where singular)."""
    if A.ndim < 2:
        raise ShapeError(f"linalg.cond: The input tensor must have at least 2 dimensions, got shape {tuple(A.shape)}")
    if isinstance(p, bool) or p not in _COND_ORDERS:
        raise RuntimeError(f"linalg.cond got an invalid norm type: {p}")
    by_svd = p in (None, 2, -2)
    _matrices("linalg.cond" if by_svd else f"linalg.cond(ord={p})", A, square=not by_svd)
    xp = array_module(A.array)
    if not A.numel():
        return Tensor._wrap(xp.zeros(A.shape[:-2], A.array.dtype))
    if by_svd:
        s = svdvals(A)
        ratio = s[..., -1] / s[..., 0] if p == -2 else s[..., 0] / s[..., -1]
        if A.shape[-1] != A.shape[-2]:
            return ratio
        # an exactly singular matrix's smallest singular value is LAPACK's rounding (2e-48 for a matrix of ones, or
        # 0, by build): where elimination finds an exact zero pivot it is 0, as torch's gives (not for the zero
        # matrix, whose 0 / 0 stays NaN)
        # (an elimination only where the smallest is at rounding level: an O(n^3) pass no well-posed matrix needs)
        sv = s.array
        if not bool((sv[..., -1] <= A.shape[-1] * xp.finfo(sv.dtype).eps * sv[..., 0]).any()):
            return ratio
        exact = (_zero_pivots(A.array) > 0) & (sv[..., 0] > 0)
        return where(Tensor._wrap(exact), 0.0 if p == -2 else math.inf, ratio) if bool(exact.any()) else ratio
    if xp is np:
        try:
            return matrix_norm(A, p) * matrix_norm(inv(A), p)
        except LinAlgError:  # some matrix is singular: its condition number is inf, as torch's
            singular = _zero_pivots(A.array) > 0
            if not bool(singular.any()):  # our factorization found no exact zero where LAPACK's did
                raise
    else:  # CuPy inverts a singular matrix into huge numbers without an error: look for zero pivots first
        singular = _zero_pivots(A.array) > 0
        if not bool(singular.any()):
            return matrix_norm(A, p) * matrix_norm(inv(A), p)
    fit = _stand_in(A, singular)
    return where(Tensor._wrap(singular), math.inf, matrix_norm(fit, p) * matrix_norm(inv(fit), p))


def solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False) -> SolveExResult:
    """(X with A X = B, or X A = B if not `left`; info) as torch.linalg.solve_ex: info is LAPACK getrf's per matrix
    (0, or the 1-based index of U's first zero pivot); a singular matrix's X is NaN, unless check_errors raises."""
    op = "linalg.solve"
    _matrices(op, A)
    if B.ndim < 1:
        raise ShapeError(f"{op}: B must have at least 1 dimension, got a 0-d tensor")
    _same_dtype(op, A, B)
    n = A.shape[-1]
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    rows, cols = (B.shape[-1], 1) if vector else tuple(B.shape[-2:])
    if (rows if left else cols) != n or (vector and not left):
        raise ShapeError(f"{op}: Incompatible shapes of A and B for the equation {'AX' if left else 'XA'} = B "
                         f"({n}x{n} and {rows}x{cols})")
    xp = array_module(A.array)
    try:
        X = solve(A, B) if left else solve(A.mT, B.mT).mT
        return SolveExResult(X, Tensor._wrap(xp.zeros(A.shape[:-2], np.int32)))
    except LinAlgError:  # some matrix is singular: find which (the factorization runs again only then)
        info = _zero_pivots(A.array)
        if not bool(info.any()):
            raise
    singular = info > 0
    if check_errors:
        first = int(xp.argmax(singular.reshape(-1)))
        where_ = f"(Batch element {first}): " if A.ndim > 2 else ""
        raise LinAlgError(f"linalg.solve_ex: {where_}The solver failed because the input matrix is singular.")
    fit = _stand_in(A, singular)
    X = solve(fit, B) if left else solve(fit.mT, B.mT).mT
    X = where(Tensor._wrap(singular[..., None] if vector else singular[..., None, None]), math.nan, X)
    return SolveExResult(X, Tensor._wrap(info))


# ---- vecdot ----------------------------------------------------------------------------------------------
def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """sum(x * y) over `dim` of the broadcast inputs, as torch.linalg.vecdot (which, for two 1-D inputs, takes
    their dot product whatever `dim` says)."""
    op = "linalg.vecdot"
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. Got {x.dtype.name}")
    _same_dtype(op, x, y, ("x", "y"))
    if x.ndim == 1 and y.ndim == 1:
        dim = -1
    product = x * y
    return product.sum(_dim(dim, product.ndim))


LINALG.update({"eigh": eigh, "eigvalsh": eigvalsh, "lstsq": lstsq, "matrix_rank": matrix_rank, "cond": cond,
               "solve_ex": solve_ex, "vecdot": vecdot})
