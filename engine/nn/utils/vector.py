"""Parameters as one flat vector and back, as torch.nn.utils.parameters_to_vector."""

from __future__ import annotations

from collections.abc import Iterable

from engine.autograd.function import ShapeError
from engine.autograd.grad_mode import no_grad
from engine.ops import shape as _shape
from engine.tensor import Tensor


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """Every parameter flattened and joined, in order, into one 1-D tensor (differentiable)."""
    params = list(parameters)
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return _shape.cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D `vec` into each parameter, in order (the inverse of the above)."""
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise TypeError(f"vector_to_parameters: expected a 1-D Tensor, got "
                        f"{tuple(vec.shape) if isinstance(vec, Tensor) else type(vec).__name__}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.numel() != total:
        raise ShapeError(f"vector_to_parameters: the vector has {vec.numel()} elements, the parameters {total}")
    start = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec[start:start + n].reshape(p.shape))
            start += n

