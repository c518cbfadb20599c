"""The matrix exponential and products of Householder reflectors: torch.matrix_exp (also
torch.linalg.matrix_exp and Tensor.matrix_exp) and torch.linalg.householder_product.

exp(A) is scaling and squaring around a degree-18 Taylor polynomial. The number of squarings comes from the
1-norm of A, which is one number read on the host per call (PyTorch reads its scaling on the host too);
the backward reuses the forward's count instead of reading another. This file adds its torch.linalg
names to engine.ops.linalg.LINALG.
"""

from __future__ import annotations

import math

from engine import creation
from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.linalg import LINALG
from engine.tensor import Tensor

__all__ = ["matrix_exp"]

_TAYLOR = [1.0 / math.factorial(k) for k in range(19)]
# the degree-18 Taylor series is exact to float64 rounding up to this 1-norm (the rest is below 1 / 19! * e)
_THETA = 1.0


def squarings_for(a) -> int:
    """How many squarings bring the 1-norm of each matrix of `a` down to _THETA (one host read)."""
    if not a.size:
        return 0
    norm = float(array_module(a).abs(a).sum(axis=-2).max())
    return math.ceil(math.log2(norm / _THETA)) if _THETA < norm < math.inf else 0


def expm(a, squarings: int):
    """exp of each square matrix of the array `a` (..., n, n), after scaling it by 2**-squarings."""
    xp, n = array_module(a), a.shape[-1]
    a = a / 2.0 ** squarings if squarings else a
    # the degree-18 Taylor polynomial by Paterson-Stockmeyer: 7 products instead of Horner's 17
    a2 = a @ a
    powers = (xp.eye(n, dtype=a.dtype), a, a2, a2 @ a)
    a4 = a2 @ a2

    def chunk(j: int):  # sum of c_k a^(k - 4j) for k = 4j .. 4j + 3
        return sum(_TAYLOR[4 * j + i] * powers[i] for i in range(4) if 4 * j + i < len(_TAYLOR))

    out = chunk(4)
    for j in range(3, -1, -1):
        out = chunk(j) + a4 @ out
    for _ in range(squarings):
        out = out @ out
    return out


class MatrixExp(Function):
    """exp(A) of each square matrix of (..., n, n), as torch.matrix_exp."""

    op = "matrix_exp"

    def forward(ctx, a):
        if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
            raise ShapeError(f"matrix_exp: expected a square matrix or a batch of them, got shape {tuple(a.shape)}")
        if "squarings" not in ctx.__dict__:
            ctx.squarings = squarings_for(a)
        ctx.save(a)
        return expm(a, ctx.squarings)

    def backward(ctx, grad):
        # the adjoint of the Frechet derivative: exp([[A^T, G], [0, A^T]]) holds it in its top-right block;
        # that block is linear in G, so the squarings A needed serve the whole block
        (a,) = ctx.saved
        xp, n = array_module(a), a.shape[-1]
        block = xp.zeros((*grad.shape[:-2], 2 * n, 2 * n), dtype=grad.dtype)
        block[..., :n, :n] = block[..., n:, n:] = xp.swapaxes(a, -1, -2)
        block[..., :n, n:] = grad
        return expm(block, ctx.squarings)[..., :n, n:]


def matrix_exp(input: Tensor) -> Tensor:
    """The matrix exponential of each square matrix of `input` (..., n, n), as torch.matrix_exp."""
    return MatrixExp.apply(input)


def householder_product(A: Tensor, tau: Tensor) -> Tensor:
    """The first k columns of H_1 ... H_k for (..., n, k) `A`, H_i = I - tau_i v_i v_i^T with v_i column i of
    A below the diagonal and 1 on it, as torch.linalg.householder_product (composed of engine ops)."""
    if A.ndim < 2 or A.shape[-2] < A.shape[-1]:
        raise ShapeError(f"householder_product: A must have at least 2 dimensions and no more columns than rows, "
                         f"got shape {tuple(A.shape)}")
    if tau.shape[-1] > A.shape[-1]:
        raise ShapeError(f"householder_product: tau holds {tau.shape[-1]} scalars, more than A's "
                         f"{A.shape[-1]} columns")
    n, k = A.shape[-2], A.shape[-1]
    eye = creation.eye(n, k, dtype=A.dtype, device=A.device)
    V = A.tril(-1) + eye
    Q = eye
    for i in reversed(range(tau.shape[-1])):
        v = V[..., :, i:i + 1]
        Q = Q - tau[..., i:i + 1].unsqueeze(-1) * (v @ (v.mT @ Q))
    return Q


LINALG.update({"matrix_exp": matrix_exp, "householder_product": householder_product})
