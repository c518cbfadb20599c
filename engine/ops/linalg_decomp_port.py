"""The SVD, QR and pseudo-inverse with torch's old and linalg names: torch.svd (U, S, V) and linalg.svd (U, S, Vh),
torch.qr and linalg.qr, torch.pinverse and linalg.pinv.

The SVD and QR are ops of their own, each packing its factors into one array ([U; S; V] and [Q; R^T]) that
differentiable slices unpack, as linalg_more's LU does: their backwards are PyTorch's svd_backward and
linalg_qr_backward (engine/autograd/higher_linalg_port.py records them for create_graph). The pseudo-inverse
is composed from the SVD. This file adds its torch.linalg names to engine.ops.linalg.LINALG.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.elementwise import where
from engine.ops.linalg import LINALG, _solve, _t
from engine.ops.linalg_eig import Pinv
from engine.ops.linalg_more import _shape
from engine.ops.shape import cat
from engine.tensor import Tensor

__all__ = ["pinverse", "qr", "svd"]

SvdResult = namedtuple("svd", ["U", "S", "V"])  # as torch.return_types
LinalgSvdResult = namedtuple("linalg_svd", ["U", "S", "Vh"])
QRResult = namedtuple("qr", ["Q", "R"])
LinalgQRResult = namedtuple("linalg_qr", ["Q", "R"])


class Svd(Function):
    """The thin SVD A = U diag(S) V^T, packed as [U; S; V] of shape (..., m + 1 + n, k); backward is PyTorch's
    svd_backward: U [skew(U^T gU)/E S + S skew(V^T gV)/E + diag(gS)] V^T + the parts of gU, gV outside U, V."""

    def forward(ctx, a):
        xp = array_module(a)
        try:
            u, s, vh = xp.linalg.svd(a, full_matrices=False)
        except np.linalg.LinAlgError as err:
            raise RuntimeError(f"linalg.svd: the algorithm failed to converge ({err})") from None
        packed = xp.concatenate([u, s[..., None, :], _t(vh)], -2)
        ctx.save(packed)
        return packed

    def backward(ctx, grad):
        (packed,) = ctx.saved
        xp = array_module(grad)
        m = ctx.m
        u, s, v = packed[..., :m, :], packed[..., m, :], packed[..., m + 1:, :]
        gu, gs, gv = grad[..., :m, :], grad[..., m, :], grad[..., m + 1:, :]
        eye = xp.eye(s.shape[-1], dtype=bool)
        e = xp.where(eye, 1, s[..., None, :] ** 2 - s[..., :, None] ** 2)
        utgu, vtgv = _t(u) @ gu, _t(v) @ gv
        inner = (utgu - _t(utgu)) / e * s[..., None, :] + s[..., :, None] * (vtgv - _t(vtgv)) / e
        ga = u @ (inner + eye * gs[..., None, :]) @ _t(v)
        if u.shape[-2] > s.shape[-1]:  # the part of gU outside U's span
            ga = ga + (gu - u @ utgu) / s[..., None, :] @ _t(v)
        if v.shape[-2] > s.shape[-1]:
            ga = ga + (u / s[..., None, :]) @ _t(gv - v @ vtgv)
        return ga


def _svd_parts(op: str, A: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    if A.ndim < 2:
        raise ShapeError(f"{op}: input should have at least 2 dimensions, but has {A.ndim} dimensions instead")
    if not A.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating point tensor, got {A.dtype.name}")
    m = A.shape[-2]
    packed = Svd.apply(A, m=m)
    return packed[..., :m, :], packed[..., m, :], packed[..., m + 1:, :]


def _completed(q: Tensor, full: int) -> Tensor:
    """q (..., n, k) with columns appended to an orthonormal basis of n columns; they take no gradient, as in
    torch, whose backward reads only the first k."""
    n, k = q.shape[-2:]
    if full == k:
        return q
    xp = array_module(q.array)
    basis = xp.linalg.qr(xp.concatenate([q.array, xp.broadcast_to(xp.eye(n, dtype=q.array.dtype),
                                                                  (*q.shape[:-1], n))], -1))[0]
    return cat([q, Tensor._wrap(xp.ascontiguousarray(basis[..., :, k:n]))], -1)


def svd(input: Tensor, some: bool = True, compute_uv: bool = True) -> SvdResult:
    """(U, S, V) with input = U diag(S) V^T, as torch.svd (V, not Vh); not `some`: square U and V."""
    u, s, v = _svd_parts("linalg.svd", input)
    m, n = input.shape[-2:]
    if not compute_uv:
        xp = array_module(input.array)
        u, v = (Tensor._wrap(xp.zeros((*input.shape[:-2], k, k), input.array.dtype)) for k in (m, n))
        return SvdResult(u, s, v)
    if not some:
        u, v = _completed(u, m), _completed(v, n)
    return SvdResult(u, s, v)


def linalg_svd(A: Tensor, full_matrices: bool = True) -> LinalgSvdResult:
    """(U, S, Vh) with A = U diag(S) Vh, as torch.linalg.svd."""
    u, s, v = svd(A, some=not full_matrices)
    return LinalgSvdResult(u, s, v.mT)


class QR(Function):
    """A = Q R by Householder reflections (LAPACK's signs), packed as [Q; R^T] of shape (..., m + n, k); backward
    is PyTorch's linalg_qr_backward: for m >= n, [gQ + Q copyltu(R gR^T - gQ^T Q)] R^-T; wider A's trailing
    columns Y = Q V pass gV back as Q gV and Y gV^T into gQ."""

    def forward(ctx, a):
        xp = array_module(a)
        q, r = xp.linalg.qr(a, mode="reduced" if ctx.mode == "r" else ctx.mode)
        packed = xp.concatenate([q, _t(r)], -2)
        ctx.save(packed)
        return packed

    def backward(ctx, grad):
        (packed,) = ctx.saved
        xp = array_module(grad)
        m, n = ctx.m, packed.shape[-2] - ctx.m
        _check_differentiable(ctx.mode, m, n)
        q, r = packed[..., :m, :], _t(packed[..., m:, :])
        gq, gr = grad[..., :m, :], _t(grad[..., m:, :])
        k = q.shape[-1]
        gy = None
        if n > k:  # A = [X | Y], R = [R1 | V]: Y = Q V
            gv = gr[..., :, k:]
            gy, gq = q @ gv, gq + q @ r[..., :, k:] @ _t(gv)
            r, gr = r[..., :, :k], gr[..., :, :k]
        m_ = r @ _t(gr) - _t(gq) @ q
        sym = xp.tril(m_) + _t(xp.tril(m_, -1))
        gx = _t(_solve(xp, r, _t(gq + q @ sym)))  # (...) R^-T
        return gx if gy is None else xp.concatenate([gx, gy], -1)


def _check_differentiable(mode: str, m: int, n: int) -> None:
    if mode == "r":
        raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please use "
                           "linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr.")
    if mode == "complete" and m > n:
        raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")


def _qr_parts(A: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    if A.ndim < 2:
        raise ShapeError(f"linalg.qr: The input tensor A must have at least 2 dimensions, got shape {_shape(A)}")
    if not A.dtype.is_floating_point:
        raise TypeError(f"linalg.qr: expected a floating point tensor, got {A.dtype.name}")
    m = A.shape[-2]
    packed = QR.apply(A, m=m, mode=mode)
    return packed[..., :m, :], packed[..., m:, :].mT


def qr(input: Tensor, some: bool = True) -> QRResult:
    """(Q, R) with input = Q R, Q orthonormal columns, R upper triangular, as torch.qr; not `some`: square Q."""
    return QRResult(*_qr_parts(input, "reduced" if some else "complete"))


def linalg_qr(A: Tensor, mode: str = "reduced") -> LinalgQRResult:
    """(Q, R) as torch.linalg.qr: mode 'reduced', 'complete' or 'r' (Q empty)."""
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', "
                         "or 'complete'")
    q, r = _qr_parts(A, mode)
    if mode == "r":
        q = Tensor._wrap(array_module(A.array).zeros(0, A.array.dtype))
    return LinalgQRResult(q, r)


def linalg_pinv(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    """The Moore-Penrose pseudo-inverse from the SVD, singular values below max(atol, rtol * largest) dropped,
    as torch.linalg.pinv (hermitian matrices take the same path)."""
    if A.ndim < 2 or not A.dtype.is_floating_point:
        raise ShapeError(f"linalg.pinv: expected a floating point tensor with 2 or more dimensions, got "
                         f"{A.dtype.name} of shape {_shape(A)}")
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else max(A.shape[-2:]) * float(np.finfo(A.array.dtype).eps)
    if not isinstance(atol, Tensor) and not isinstance(rtol, Tensor):
        # one op with torch's gradient, which needs no gap between singular values (composed from the SVD, the
        # gradient was NaN at the identity or any orthogonal matrix)
        return Pinv.apply(A, rcond=float(rtol), atol=0.0 if atol is None else float(atol), box=None)
    u, s, v = _svd_parts("linalg.pinv", A)
    largest = s.detach().amax(-1, keepdim=True) if s.shape[-1] else s.detach()
    cutoff = (largest * rtol).clamp_min(0.0 if atol is None else atol)
    keep = s > cutoff
    inverse = where(keep, 1.0 / where(keep, s, 1.0), 0.0)  # the inner where keeps 1/0 out of the gradient
    return (v * inverse.unsqueeze(-2)) @ u.mT


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    """The pseudo-inverse, singular values below rcond * the largest dropped, as torch.pinverse."""
    return linalg_pinv(input, rtol=rcond)


LINALG.update({"svd": linalg_svd, "qr": linalg_qr, "pinv": linalg_pinv})
