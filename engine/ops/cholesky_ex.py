"""torch.linalg.cholesky_ex: the Cholesky factor without raising, and per matrix the order of the first leading
minor that is not positive-definite (a Gaussian process's jitter-retry loop reads it). Where a matrix fails, its
factor is zeros (torch leaves LAPACK's partial work there, documented as undefined) and the factor carries no
gradient; a stack that factors whole is `cholesky`'s, differentiable. This file adds the name to engine.linalg.
"""

from __future__ import annotations

from collections import namedtuple

from engine.autograd.grad_mode import no_grad
from engine.backend import array_module
from engine.ops.linalg import LINALG, _square, cholesky, failing_minors, not_positive_definite
from engine.tensor import Tensor

__all__: list[str] = []  # engine.linalg only, as torch.linalg.cholesky_ex

CholeskyEx = namedtuple("linalg_cholesky_ex", ["L", "info"])


def cholesky_ex(input: Tensor, *, upper: bool = False, check_errors: bool = False) -> CholeskyEx:
    """(L, info) as torch.linalg.cholesky_ex: info 0 where a matrix factored, else its failing minor's order."""
    _square("linalg.cholesky_ex", input)
    info = failing_minors(input.array)
    if not info.any():
        return CholeskyEx(cholesky(input, upper=upper), Tensor._wrap(array_module(input.array).asarray(info)))
    if check_errors:
        raise not_positive_definite("linalg.cholesky_ex", info)
    xp = array_module(input.array)
    ok = xp.asarray(info == 0)
    with no_grad():  # factor what factors, with the identity standing in for what does not
        eye = xp.eye(input.shape[-1], dtype=input.array.dtype)
        stand_in = xp.where(ok[..., None, None], input.array, eye)
        low = xp.where(ok[..., None, None], xp.linalg.cholesky(stand_in), 0)
    low = Tensor._wrap(low.swapaxes(-1, -2) if upper else low)
    return CholeskyEx(low, Tensor._wrap(xp.asarray(info)))


LINALG["cholesky_ex"] = cholesky_ex
