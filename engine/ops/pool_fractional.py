"""Fractional max pooling (Graham, 2014) of 2-D and 3-D inputs, as torch.nn.functional.fractional_max_pool2d/3d.

Each output cell takes the max of a kernel-sized window whose start follows torch's pseudo-random sequence
(one uniform sample per sample, channel and spatial dim, `_random_samples`), so the same samples give the same
windows as torch. The window search is plain array work; the op itself is a gather of the winning positions,
so the gradient goes to the max positions and is differentiable again, with no backward of its own.
"""

from __future__ import annotations

import math

from engine import random as _random
from engine.autograd.function import ShapeError
from engine.backend import array_module, device_of
from engine.ops.conv import ints
from engine.ops.gather_scatter import gather
from engine.tensor import Tensor

_DIM_NAMES = {2: ("height", "width"), 3: ("time", "height", "width")}


def _intervals(xp, samples, in_size: int, out_size: int, pool: int):
    """The window starts along one dim, (..., out_size), from samples (...): torch's generate_intervals, computed
    in the samples' dtype as torch's kernel does."""
    dtype = samples.dtype.type
    starts = xp.empty((*samples.shape, out_size), dtype=xp.int64)
    if out_size > 1:
        alpha = dtype(in_size - pool) / dtype(out_size - 1)
        i = xp.arange(out_size - 1, dtype=samples.dtype)
        s = samples[..., None]
        starts[..., :-1] = ((i + s) * alpha).astype(xp.int64) - (s * alpha).astype(xp.int64)
    starts[..., -1] = in_size - pool
    return starts


def _winners(x, samples, kernel: tuple, out_size: tuple):
    """The flat in-plane position of each output cell's max, (N, C, *out_size)."""
    xp = array_module(x)
    n, c, *size = x.shape
    d = len(size)
    flat = xp.zeros((n, c, *out_size, 1), dtype=xp.int64)
    for axis in range(d):
        # torch's sample order: (W, H) for 2-D, (T, H, W) for 3-D
        sample = samples[:, :, d - 1 - axis] if d == 2 else samples[:, :, axis]
        starts = _intervals(xp, sample, size[axis], out_size[axis], kernel[axis])  # (N, C, out)
        flat = _outer(flat, size[axis], starts[..., None] + xp.arange(kernel[axis]), axis, d)
    window = math.prod(kernel)  # sizes spelled out, not -1, which an empty batch leaves undetermined
    candidates = flat.reshape(n, c, math.prod(out_size) * window)
    values = xp.take_along_axis(x.reshape(n, c, math.prod(size)), candidates, axis=2).reshape(n, c, *out_size, window)
    # the first maximum of each window, a NaN winning as in torch
    pick = xp.argmax(xp.where(xp.isnan(values), xp.inf, values), axis=-1)
    return xp.take_along_axis(flat.reshape(n, c, *out_size, window), pick[..., None], axis=-1)[..., 0]


def _outer(flat, size: int, taps, axis: int, d: int):
    """Extend the flat window positions (N, C, *out, K) by one more dim's taps (N, C, out_axis, k)."""
    n, c = flat.shape[:2]
    out = flat.shape[2:2 + d]
    k = taps.shape[-1]
    shape = [n, c] + [1] * d + [1, k]
    shape[2 + axis] = out[axis]
    combined = flat[..., :, None] * size + taps.reshape(shape)
    return combined.reshape(n, c, *out, flat.shape[-1] * k)


def _fractional(op: str, d: int, input: Tensor, kernel_size, output_size, output_ratio, return_indices: bool,
                _random_samples: Tensor | None):
    if input.ndim not in (d + 1, d + 2):
        raise ShapeError(f"{op}: expected a {d + 1}-D or {d + 2}-D input, got shape {tuple(input.shape)}")
    if not input.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype.name}")
    kernel = ints(kernel_size, d, "kernel_size", op)
    size = input.shape[-d:]
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{op} requires specifying either an output_size or an output_ratio")
        ratio = (output_ratio,) * d if isinstance(output_ratio, (int, float)) else tuple(output_ratio)
        out_size = tuple(int(s * r) for s, r in zip(size, ratio))
    else:
        out_size = ints(output_size, d, "output_size", op)
    # torch's 3-D kernel wants a spare input cell where the 2-D one does not
    spare = 1 if d == 3 else 0
    for name, s, k, o in zip(_DIM_NAMES[d], size, kernel, out_size):
        if k <= 0 or o <= 0 or o + k - 1 + spare > s:
            raise RuntimeError(f"{op}(): pool {name} {k} too large relative to input {name} {s} (output {name} "
                               f"{o}; input shape {tuple(input.shape)})")
    batched = input.ndim == d + 2
    if batched and input.shape[1] == 0:
        raise RuntimeError(f"{op}(): Expected input to have non-zero size for non-batch dimensions, but got "
                           f"{tuple(input.shape)} with dimension 1 being empty")
    x = input if batched else input.unsqueeze(0)
    n, c = x.shape[:2]
    if _random_samples is None:
        draw = _random.generator(device_of(x.array)).random((n, c, d), dtype=_random.draw_dtype(x.array.dtype))
        samples = draw.astype(x.array.dtype, copy=False)
    else:
        samples = _random_samples.array
        if samples.shape != (n, c, d):
            raise ShapeError(f"{op}: _random_samples must have shape ({n}, {c}, {d}) for an input of shape "
                             f"{tuple(input.shape)}, got {tuple(samples.shape)}")
    flat = _winners(x.array, samples, kernel, out_size)
    index = Tensor._wrap(flat.reshape(n, c, math.prod(out_size)))
    out = gather(x.reshape(n, c, math.prod(size)), 2, index).reshape(n, c, *out_size)
    indices = Tensor._wrap(flat)
    if not batched:
        out, indices = out.squeeze(0), indices.squeeze(0)
    return (out, indices) if return_indices else out


def fractional_max_pool2d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False, _random_samples: Tensor | None = None):
    """Fractional max pooling of (N, C, H, W) or (C, H, W): (output, indices), the flat H*W position of each max."""
    return _fractional("fractional_max_pool2d", 2, input, kernel_size, output_size, output_ratio, True,
                       _random_samples)


def fractional_max_pool3d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False, _random_samples: Tensor | None = None):
    """Fractional max pooling of (N, C, T, H, W) or (C, T, H, W): (output, indices), flat T*H*W positions."""
    return _fractional("fractional_max_pool3d", 3, input, kernel_size, output_size, output_ratio, True,
                       _random_samples)


def fractional_max_pool2d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples: Tensor | None = None):
    """Fractional max pooling of (N, C, H, W) or (C, H, W); with return_indices, (output, indices)."""
    return _fractional("fractional_max_pool2d", 2, input, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples)


def fractional_max_pool3d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples: Tensor | None = None):
    """Fractional max pooling of (N, C, T, H, W) or (C, T, H, W); with return_indices, (output, indices)."""
    return _fractional("fractional_max_pool3d", 3, input, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples)

