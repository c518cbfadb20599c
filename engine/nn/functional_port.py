"""The rest of torch.nn.functional that ported scripts call: in-place activations (relu_, elu_, leaky_relu_,
hardtanh_), the pools that always return indices (max_pool*d_with_indices, adaptive_max_pool*d_with_indices),
fractional max pooling, bilinear, channel_shuffle, conv_tbc, and the deprecated upsample aliases of interpolate.

Everything here is a thin front of an op in engine.ops; engine.nn.functional re-exports it all.
"""

from __future__ import annotations

import inspect
import warnings

from engine.ops.activation import elu, hardtanh, leaky_relu
from engine.ops.interpolate import interpolate
from engine.ops.pool import (
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
)
from engine.ops.pool_fractional import (
    fractional_max_pool2d,
    fractional_max_pool2d_with_indices,
    fractional_max_pool3d,
    fractional_max_pool3d_with_indices,
)
from engine.ops.torch_level import bilinear, channel_shuffle, conv_tbc, native_channel_shuffle, relu_
from engine.tensor import Tensor

__all__ = [
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d_with_indices",
    "bilinear", "channel_shuffle", "conv_tbc", "elu_", "fractional_max_pool2d", "fractional_max_pool2d_with_indices",
    "fractional_max_pool3d", "fractional_max_pool3d_with_indices", "hardtanh_", "leaky_relu_",
    "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices", "native_channel_shuffle",
    "relu_", "upsample", "upsample_bilinear", "upsample_nearest",
]


# ---- in place ------------------------------------------------------------------------------------------------
def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place elu."""
    return elu(input, alpha, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """In-place leaky_relu."""
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """In-place hardtanh."""
    return hardtanh(input, min_val, max_val, inplace=True)


# ---- pools that always return indices ---------------------------------------------------------------------------
def _with_indices(pool):
    """`pool` with return_indices always True: (output, indices), whatever return_indices says, as torch's."""
    signature = inspect.signature(pool)

    def pooled(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.arguments["return_indices"] = True
        return pool(*bound.args, **bound.kwargs)

    pooled.__name__ = pooled.__qualname__ = f"{pool.__name__}_with_indices"
    pooled.__doc__ = f"{pool.__name__} returning (output, indices)."
    pooled.__signature__ = signature
    return pooled


max_pool1d_with_indices, max_pool2d_with_indices, max_pool3d_with_indices = map(
    _with_indices, (max_pool1d, max_pool2d, max_pool3d))
adaptive_max_pool1d_with_indices, adaptive_max_pool2d_with_indices, adaptive_max_pool3d_with_indices = map(
    _with_indices, (adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d))


# ---- deprecated aliases of interpolate --------------------------------------------------------------------------
def _deprecated(name: str) -> None:
    warnings.warn(f"`nn.functional.{name}` is deprecated. Use `nn.functional.interpolate` instead.", UserWarning,
                  stacklevel=3)


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None):
    """interpolate, under its old name (warns, as torch does)."""
    _deprecated("upsample")
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """interpolate(mode='nearest'), under its old name (warns, as torch does)."""
    _deprecated("upsample_nearest")
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """interpolate(mode='bilinear', align_corners=True), under its old name (warns, as torch does)."""
    _deprecated("upsample_bilinear")
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
