"""Orthogonal matrices, weight and spectral normalisation as parametrizations, as
torch.nn.utils.parametrizations."""

from __future__ import annotations

import engine
from engine.autograd.grad_mode import no_grad
from engine.backend import array_module
from engine.nn import functional as F
from engine.nn.layers.conv import _ConvTransposeNd
from engine.nn.module import Module
from engine.nn.utils import parametrize
from engine.ops.linalg_exp import MatrixExp, householder_product, matrix_exp  # noqa: F401  (MatrixExp: its old home)
from engine.tensor import Tensor

_ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")


def _orthogonalized(q):
    """The Q of q = QR (a raw array) with R's diagonal made non-negative, as PyTorch's _make_orthogonal."""
    xp = array_module(q)
    Q, R = xp.linalg.qr(q)
    return Q * xp.sign(xp.diagonal(R, axis1=-2, axis2=-1))[..., None, :]


def _is_orthogonal(q) -> bool:
    xp = array_module(q)
    n, k = q.shape[-2], q.shape[-1]
    eps = 10.0 * n * xp.finfo(q.dtype).eps
    return bool(xp.allclose(xp.swapaxes(q, -1, -2) @ q, xp.eye(k, dtype=q.dtype), atol=eps))


class _Orthogonal(Module):
    """An orthogonal (..., n, k) matrix from an unconstrained one: orthonormal columns (rows when n < k)."""

    def __init__(self, weight: Tensor, orthogonal_map: str, *, use_trivialization: bool = True) -> None:
        super().__init__()
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)  # filled by right_inverse: Q = base @ map(original)

    def forward(self, X: Tensor) -> Tensor:
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            X = X.tril()  # n*k - k*(k-1)/2 free numbers: the skew-symmetric A below needs no more
            if n != k:
                X = engine.cat([X, X.new_zeros(n, n - k).expand(*X.shape[:-2], -1, -1)], dim=-1)
            A = X - X.mT
            if self.orthogonal_map == "matrix_exp":
                Q = matrix_exp(A)
            else:  # the Cayley map (I + A/2)(I - A/2)^-1
                eye = engine.eye(n, dtype=A.dtype, device=A.device)
                Q = engine.linalg.solve(eye - A * 0.5, eye + A * 0.5)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(-1)
            Q = householder_product(A, 2.0 / (1.0 + (A * A).sum(dim=-2)))
            # the diagonal of X holds the signs (1 or -1); like PyTorch, no gradient flows into it
            Q = Q * X.diagonal(dim1=-2, dim2=-1).int().unsqueeze(-2)
        if "base" in self._buffers:
            Q = self.base @ Q
        return Q.mT if transposed else Q

    def right_inverse(self, Q: Tensor) -> Tensor:
        """The original to store so that the parametrized matrix is `Q` (orthogonalized first if it is not)."""
        if Q.shape != self.shape:
            raise ValueError(f"Expected a matrix or batch of matrices of shape {tuple(self.shape)}. "
                             f"Got a tensor of shape {tuple(Q.shape)}.")
        q = Q.detach().array
        xp, n, k = array_module(q), q.shape[-2], q.shape[-1]
        if n < k:
            q, n, k = xp.swapaxes(q, -1, -2), k, n
        if "base" not in self._buffers:
            if self.orthogonal_map != "householder":
                raise NotImplementedError("It is not possible to assign to the matrix exponential or the Cayley "
                                          "parametrizations when use_trivialization=False.")
            h, tau = xp.linalg.qr(q, mode="raw")  # LAPACK's geqrf: reflectors below the diagonal, R above
            a = xp.swapaxes(h, -1, -2).copy()
            diag = xp.sign(xp.diagonal(a, axis1=-2, axis2=-1))
            diag = xp.where(tau == 0.0, -diag, diag)  # a reflector LAPACK skipped: the sign flip undoes ours
            cells = xp.arange(k)
            a[..., cells, cells] = diag
            return Tensor._wrap(xp.swapaxes(a, -1, -2) if Q.shape[-2] < Q.shape[-1] else a)
        if n == k:
            q = q.copy() if _is_orthogonal(q) else _orthogonalized(q)
        else:  # complete the columns to a square orthogonal matrix with random ones
            extra = engine.randn(*q.shape[:-2], n, n - k, dtype=Q.dtype, device=Q.device).array
            q = _orthogonalized(xp.concatenate([q, extra], axis=-1))
        self.base = Tensor._wrap(q)
        # -I as the original makes householder(original) the identity (matrix_exp and cayley ignore the diagonal)
        neg_eye = xp.zeros(Q.shape, dtype=q.dtype)
        cells = xp.arange(k)
        neg_eye[..., cells, cells] = -1.0
        return Tensor._wrap(neg_eye)


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Keep `module.<name>` an orthogonal matrix (or batch of them) on every access, as
    torch.nn.utils.parametrizations.orthogonal; `orthogonal_map` is "matrix_exp", "cayley" or "householder"."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{type(module).__name__}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _ORTHOGONAL_MAPS:
        raise ValueError(f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
                         f"Got: {orthogonal_map}")
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module


def norm_except_dim(v: Tensor, dim: int) -> Tensor:
    """The 2-norm of `v` over every dimension but `dim`, kept for broadcasting; the whole norm when dim == -1."""
    if dim == -1:
        return v.norm()
    dim = dim % v.ndim
    others = tuple(d for d in range(v.ndim) if d != dim)
    return v.norm(2, dim=others, keepdim=True) if others else v.abs()


def weight_normed(g: Tensor, v: Tensor, dim: int) -> Tensor:
    """g * v / ||v||, the norm over every dimension but `dim` (-1: over all of them)."""
    return v * (g / norm_except_dim(v, dim))


class _WeightNorm(Module):
    """weight = g * v / ||v||, the norm taken over every dimension but `dim` (all of them when dim is None)."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_normed(weight_g, weight_v, self.dim)

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return norm_except_dim(weight, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Split `module.<name>` into a magnitude (original0) and a direction (original1)."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


def weight_to_matrix(weight: Tensor, dim: int) -> Tensor:
    """`weight` as a matrix whose rows run along dimension `dim` (the others flattened into the columns)."""
    if dim != 0:
        weight = weight.permute(dim, *(d for d in range(weight.ndim) if d != dim))
    return weight.reshape(weight.shape[0], -1)


def power_iteration_(weight_mat: Tensor, left: Tensor, right: Tensor, n_power_iterations: int, eps: float) -> None:
    """Refine estimates of the top singular vectors of `weight_mat` in place, outside autograd: n times
    left = normalize(weight_mat @ right), then right = normalize(weight_mat.T @ left)."""
    with no_grad():
        weight_mat = weight_mat.detach()
        for _ in range(n_power_iterations):
            left.copy_(F.normalize(engine.mv(weight_mat, right), dim=0, eps=eps))
            right.copy_(F.normalize(engine.mv(weight_mat.T, left), dim=0, eps=eps))


def spectral_normalized(weight: Tensor, weight_mat: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """weight / sigma, sigma = u . (weight_mat @ v) the spectral norm the power iteration estimated."""
    return weight / engine.dot(u, engine.mv(weight_mat, v))


class _SpectralNorm(Module):
    """weight / sigma, sigma its largest singular value estimated by power iteration (one per call in training)."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"spectral_norm: dim must be in [-{ndim}, {ndim - 1}] for a {ndim}-d weight, got {dim}")
        if n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: n_power_iterations must be positive, got {n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            weight_mat = weight_to_matrix(weight, self.dim)
            h, w = weight_mat.shape
            u = weight_mat.new_empty(h).normal_(0, 1)
            v = weight_mat.new_empty(w).normal_(0, 1)
            self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
            power_iteration_(weight_mat, self._u, self._v, 15, self.eps)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        weight_mat = weight_to_matrix(weight, self.dim)
        if self.training:
            power_iteration_(weight_mat, self._u, self._v, self.n_power_iterations, self.eps)
        return spectral_normalized(weight, weight_mat, self._u.clone(), self._v.clone())

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Divide `module.<name>` by its spectral norm on every access (buffers _u and _v hold the power iteration)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{type(module).__name__}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if isinstance(module, _ConvTransposeNd) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


__all__ = ["orthogonal", "spectral_norm", "weight_norm"]
