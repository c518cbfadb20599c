"""Fake quantization for quantisation-aware training, as torch's: fake_quantize_per_tensor_affine,
fake_quantize_per_channel_affine and _fake_quantize_learnable_per_tensor_affine (LSQ: learnable scale and
zero point).

y = (clamp(round(x / scale + zero_point), quant_min, quant_max) - zero_point) * scale, rounding half to even. The
gradient to x is torch's straight-through estimator: 1 where x / scale + zero_point rounds inside
[quant_min, quant_max], 0 outside. Arithmetic follows torch's CPU kernels bit for bit: x is multiplied by the float32
reciprocal of a float32 scale, an integer zero point is added after rounding and a floating one before, NaN counts as
below quant_min; per tensor the dequantized product is a float32 even for float64 input, per channel a float64.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.autograd.grad_mode import is_grad_enabled
from engine.autograd.higher import differentiable
from engine.backend import array_module
from engine.ops.shape import _dim
from engine.tensor import Tensor

__all__ = ["fake_quantize_per_channel_affine", "fake_quantize_per_tensor_affine"]


# ---- the kernel, on raw arrays ---------------------------------------------------------------------------------
def _rounded(xp, x, scale, zero_point, zp_first: bool):
    """(round(x * (1 / scale)) + zero_point, or round(x * (1 / scale) + zero_point) when `zp_first`, and 1 / scale)
    with torch's kernels' precision; NaN becomes -inf, below any quant_min."""
    inv = 1 / scale.astype(np.float32)
    if zp_first:  # torch's kernel adds in one fused step (as an FMA) and rounds to float32, whatever x's dtype
        r = xp.rint((x.astype(np.float64) * inv.astype(np.float64) + zero_point.astype(np.float64)).astype(np.float32))
    else:
        work = np.result_type(x.dtype, np.float32)
        r = xp.rint(x.astype(work, copy=False) * inv.astype(work)) + zero_point.astype(work)
    return xp.where(xp.isnan(r), -np.inf, r), inv


def _dequantized(xp, r, scale, zero_point, qmin: int, qmax: int, product, dtype):
    """(clamp(r, qmin, qmax) - zero_point) * scale, multiplied in dtype `product`, returned as `dtype`."""
    q = xp.clip(r, qmin, qmax).astype(np.float64) - zero_point.astype(np.float64)  # exact, as torch's int64
    return (q.astype(product) * scale.astype(np.float32).astype(product)).astype(dtype, copy=False)


class FakeQuantize(Function):
    """Fake quantization with a fixed scale and zero point (arrays in ctx, broadcast against x); the gradient to x is
    the straight-through mask, kept from forward."""

    op = "fake_quantize"

    def forward(ctx, x):
        xp = array_module(x)
        scale, zp = xp.asarray(ctx.scale), xp.asarray(ctx.zero_point)
        r, _ = _rounded(xp, x, scale, zp, ctx.zp_first)
        ctx.save((r >= ctx.qmin) & (r <= ctx.qmax))
        return _dequantized(xp, r, scale, zp, ctx.qmin, ctx.qmax, ctx.product, x.dtype)

    def backward(ctx, grad):
        (inside,) = ctx.saved
        return grad * inside


@differentiable(FakeQuantize)
def _fake_quantize_backward(ctx, g: Tensor) -> Tensor:
    (inside,) = ctx.saved
    return g * Tensor._wrap(inside)  # the mask is constant in x: the second derivative is 0, as torch's


class FakeQuantizeLearnable(Function):
    """LSQ fake quantization: scale and zero point are inputs whose gradients follow torch's kernel (which rounds
    the zero point half-to-even in forward but as floor(z + 0.5) in backward)."""

    op = "fake_quantize_learnable"

    def forward(ctx, x, scale, zero_point):
        xp = array_module(x)
        ctx.save(x, scale, zero_point)
        scale = scale.reshape(-1).astype(np.float32)
        zp = xp.clip(xp.rint(zero_point.reshape(-1).astype(np.float32)), ctx.qmin, ctx.qmax)
        r, _ = _rounded(xp, x, scale, zp, False)
        return _dequantized(xp, r, scale, zp, ctx.qmin, ctx.qmax, np.float32, x.dtype)

    def backward(ctx, grad):
        x, scale, zero_point = ctx.saved
        xp = array_module(grad)
        if not ctx.qmin <= 0 <= ctx.qmax:
            raise RuntimeError("_fake_quantize_learnable_per_tensor_affine: `quant_min` should be less than or equal "
                               "to `quant_max`, and the quantization range should include 0.")
        scale = scale.reshape(-1).astype(np.float32)
        zp = xp.trunc(xp.clip(zero_point.reshape(-1).astype(np.float32) + np.float32(0.5), ctx.qmin, ctx.qmax))
        r, inv = _rounded(xp, x, scale, zp, True)
        inside = (r >= ctx.qmin) & (r <= ctx.qmax)
        fq = _dequantized(xp, r, scale, zp, ctx.qmin, ctx.qmax, np.float32, np.float32)
        edge = xp.where(r < ctx.qmin, ctx.qmin - zp, ctx.qmax - zp).astype(grad.dtype)
        d_scale = grad * xp.where(inside, (fq - x) * inv, edge) * ctx.grad_factor
        d_zp = xp.where(inside, 0, -grad * scale.astype(grad.dtype) * ctx.grad_factor)
        need_x, need_scale, need_zp = ctx.needs_input_grad
        return (grad * inside if need_x else None,
                d_scale.sum().reshape(ctx.scale_shape) if need_scale else None,
                d_zp.sum().reshape(ctx.zp_shape) if need_zp else None)


# ---- argument checks, in torch's words ---------------------------------------------------------------------------
def _floating(op: str, input: Tensor) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"{op}: not implemented for '{input.dtype.name}'; fake quantization needs a floating "
                                  "point input, convert it with .float()")


def _range(op: str, quant_min, quant_max) -> tuple[int, int]:
    for name, value in (("quant_min", quant_min), ("quant_max", quant_max)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{op}(): argument '{name}' must be int, not {type(value).__name__}")
    if quant_min > quant_max:
        raise RuntimeError(f"{op}: `quant_min` should be less than or equal to `quant_max` "
                           f"(got {quant_min} and {quant_max}).")
    return int(quant_min), int(quant_max)


def _no_grad_for(op: str, **params) -> None:
    for name, value in params.items():
        if isinstance(value, Tensor) and value.requires_grad and is_grad_enabled():
            raise RuntimeError(f"The function '{op}' is not differentiable with respect to argument '{name}'. This "
                               "input cannot have requires_grad True (detach it, or use "
                               "_fake_quantize_learnable_per_tensor_affine to learn it).")


def _single(op: str, name: str, value: Tensor):
    """A one-element tensor's array as a 0-d array (torch's .item(), without a device sync)."""
    if value.numel() != 1:
        raise RuntimeError(f"{op}: {name} must have one element, got a Tensor with {value.numel()} elements "
                           f"(shape {tuple(value.shape)}); use fake_quantize_per_channel_affine for one per channel")
    return value.array.reshape(())


# ---- the public functions ------------------------------------------------------------------------------------------
def fake_quantize_per_tensor_affine(input: Tensor, scale, zero_point, quant_min: int, quant_max: int) -> Tensor:
    """input quantized to integers in [quant_min, quant_max] with one scale and zero point and back, as
    torch.fake_quantize_per_tensor_affine (scale and zero_point as numbers or one-element tensors)."""
    op = "fake_quantize_per_tensor_affine"
    _floating(op, input)
    qmin, qmax = _range(op, quant_min, quant_max)
    _no_grad_for(op, scale=scale, zero_point=zero_point)
    if isinstance(scale, Tensor) != isinstance(zero_point, Tensor):
        raise TypeError(f"{op}(): pass scale and zero_point both as numbers or both as tensors, got "
                        f"{type(scale).__name__} and {type(zero_point).__name__}")
    if isinstance(scale, Tensor):  # as torch, a tensor zero point is truncated to an integer and not range-checked
        scale = _single(op, "scale", scale)
        zero_point = array_module(scale).trunc(_single(op, "zero_point", zero_point).astype(np.float64))
    else:
        if isinstance(zero_point, bool) or not isinstance(zero_point, int | np.integer):
            raise TypeError(f"{op}(): argument 'zero_point' must be int, not {type(zero_point).__name__}")
        if not qmin <= zero_point <= qmax:
            raise RuntimeError(f"{op}: `zero_point` must be between `quant_min` and `quant_max` "
                               f"(got {zero_point}, not in [{qmin}, {qmax}]).")
        scale, zero_point = np.asarray(float(scale)), np.asarray(float(zero_point))
    return FakeQuantize.apply(input, scale=scale, zero_point=zero_point, qmin=qmin, qmax=qmax, zp_first=False,
                              product=np.float32)


def fake_quantize_per_channel_affine(input: Tensor, scale: Tensor, zero_point: Tensor, axis: int, quant_min: int,
                                     quant_max: int) -> Tensor:
    """input quantized to integers in [quant_min, quant_max] with one scale and zero point per slice along `axis`
    and back, as torch.fake_quantize_per_channel_affine (scale float32; zero_point int32, float32 or float16)."""
    op = "fake_quantize_per_channel_affine"
    _floating(op, input)
    for name, value in (("scale", scale), ("zero_point", zero_point)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(value).__name__}")
    if scale.dtype.name not in ("float32", "bfloat16"):
        raise RuntimeError(f"{op}: Scale must be Float or BFloat16, found {scale.dtype.name}")
    if zero_point.dtype.name not in ("int32", "float32", "float16"):
        raise RuntimeError(f"{op}: Zero-point must be Int32, Float or Half, found {zero_point.dtype.name}")
    if scale.ndim != 1 or zero_point.ndim != 1:
        raise RuntimeError(f"{op}: scale and zero point should be 1-D tensors, got shapes {tuple(scale.shape)} and "
                           f"{tuple(zero_point.shape)}")
    if scale.shape[0] != zero_point.shape[0]:
        raise RuntimeError(f"{op}: scale and zero-point need to have the same dimensions, got {scale.shape[0]} and "
                           f"{zero_point.shape[0]} elements")
    d = _dim(axis, input.ndim)
    if axis < 0:
        raise RuntimeError(f"{op}: `axis` must be between 0 and number of dimensions of input, got {axis}")
    if scale.shape[0] != input.shape[d]:
        raise RuntimeError(f"{op}: dimensions of scale and zero-point are not consistent with input tensor: "
                           f"{scale.shape[0]} values for axis {d} of size {input.shape[d]}, shape {tuple(input.shape)}")
    qmin, qmax = _range(op, quant_min, quant_max)
    zp_first = zero_point.dtype.is_floating_point
    if not zp_first and scale.shape[0] and not (int(zero_point.array.min()) >= qmin and
                                                int(zero_point.array.max()) <= qmax):
        raise RuntimeError(f"{op}: `zero_point` must be between `quant_min` and `quant_max` ([{qmin}, {qmax}]).")
    _no_grad_for(op, scale=scale, zero_point=zero_point)
    along = (-1,) + (1,) * (input.ndim - d - 1)
    return FakeQuantize.apply(input, scale=scale.array.reshape(along), zero_point=zero_point.array.reshape(along),
                              qmin=qmin, qmax=qmax, zp_first=zp_first, product=np.float64)


def _fake_quantize_learnable_per_tensor_affine(input: Tensor, scale: Tensor, zero_point: Tensor, quant_min: int,
                                               quant_max: int, grad_factor: float = 1.0) -> Tensor:
    """Fake quantization whose one-element scale and zero_point tensors get gradients (LSQ, scaled by grad_factor),
    as torch._fake_quantize_learnable_per_tensor_affine."""
    op = "_fake_quantize_learnable_per_tensor_affine"
    _floating(op, input)
    qmin, qmax = _range(op, quant_min, quant_max)
    for name, value in (("scale", scale), ("zero_point", zero_point)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(value).__name__}")
        if value.ndim == 0:
            raise IndexError(f"{op}: {name} must be a 1-element, 1-D tensor (select() cannot be applied to a 0-dim "
                             "tensor); reshape it with .reshape(1)")
        _single(op, name, value)
        if not value.dtype.is_floating_point:
            raise RuntimeError(f"{op}: {name} must be a floating point tensor to learn it, got {value.dtype.name}")
    return FakeQuantizeLearnable.apply(input, scale, zero_point, qmin=qmin, qmax=qmax, grad_factor=float(grad_factor),
                                       scale_shape=tuple(scale.shape), zp_shape=tuple(zero_point.shape))
