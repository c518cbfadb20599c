"""Sliding blocks to and from columns (unfold / fold, PyTorch's im2col and col2im) and pixel_unshuffle.

unfold lays every kernel window of an (N, C, H, W) image out as a column of C*kh*kw values, with the
convolution's own window view (conv.sliding_windows); fold sums such columns back onto an image with the
convolution's col2im. Each is the other's adjoint, so each one's backward is the other.
"""

from __future__ import annotations

import math
import operator

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.ops.conv import col2im, crop, ints, pad_spatial, sliding_windows
from engine.ops.nn import require_float
from engine.tensor import Tensor


def _unfold(geo, x):
    """(N, C, H, W) -> (N, C*kh*kw, L): each window of the padded input as one column."""
    xpad = pad_spatial(x, geo.pads)
    win = sliding_windows(xpad, geo.kernel, geo.blocks, geo.stride, geo.dilation)
    n, c = x.shape[:2]  # sizes given, not -1: an empty batch has no size to infer
    return win.reshape(n, c * math.prod(geo.kernel), math.prod(geo.blocks))


def _fold(geo, cols):
    """(N, C*kh*kw, L) -> (N, C, H, W): every column added back onto the window it describes."""
    n = cols.shape[0]
    c6 = cols.reshape(n, cols.shape[1] // math.prod(geo.kernel), *geo.kernel, *geo.blocks)
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(geo.image, geo.pads))
    summed = col2im(lambda *at: c6[(slice(None), slice(None), *at)], geo.kernel, padded, geo.stride,
                    geo.dilation)
    return array_module(cols).ascontiguousarray(crop(summed, geo.pads))


class Unfold(Function):
    """Sliding blocks of a batched image as columns; backward is fold."""

    def forward(ctx, x):
        require_float(ctx.op, x)
        return _unfold(ctx, x)

    def backward(ctx, grad):
        return _fold(ctx, grad)


class Fold(Function):
    """Columns summed back into a batched image; backward is unfold."""

    def forward(ctx, cols):
        require_float(ctx.op, cols)
        return _fold(ctx, cols)

    def backward(ctx, grad):
        return _unfold(ctx, grad)


def _geometry(op: str, image, kernel_size, dilation, padding, stride) -> dict:
    """The options both ops take, as 2-tuples; `blocks` is the number of windows along each axis."""
    kernel = ints(kernel_size, 2, "kernel_size", op)
    dilation = ints(dilation, 2, "dilation", op)
    pads = ints(padding, 2, "padding", op, low=0)
    stride = ints(stride, 2, "stride", op)
    blocks = tuple((size + 2 * p - d * (k - 1) - 1) // s + 1
                   for size, p, d, k, s in zip(image, pads, dilation, kernel, stride))
    if min(blocks) < 1:
        raise ShapeError(f"{op}: kernel_size {kernel} with dilation {dilation} does not fit the padded "
                         f"{tuple(s + 2 * p for s, p in zip(image, pads))} image (size {tuple(image)}, "
                         f"padding {pads})")
    return {"kernel": kernel, "dilation": dilation, "pads": tuple((p, p) for p in pads), "stride": stride,
            "blocks": blocks, "image": tuple(image)}


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """(N, C, H, W) or (C, H, W) -> (N, C*kh*kw, L) or (C*kh*kw, L): sliding blocks as columns."""
    if input.ndim not in (3, 4):
        raise ShapeError(f"unfold: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                         f"{tuple(input.shape)}")
    x = input if input.ndim == 4 else input.unsqueeze(0)
    out = Unfold.apply(x, **_geometry("unfold", x.shape[2:], kernel_size, dilation, padding, stride))
    return out if input.ndim == 4 else out.squeeze(0)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """(N, C*kh*kw, L) or (C*kh*kw, L) -> (N, C, H, W) or (C, H, W): columns summed into an image."""
    if input.ndim not in (2, 3):
        raise ShapeError(f"fold: expected a 2-D (C*kh*kw, L) or 3-D (N, C*kh*kw, L) input, got shape "
                         f"{tuple(input.shape)}")
    image = ints(output_size, 2, "output_size", "fold")
    geo = _geometry("fold", image, kernel_size, dilation, padding, stride)
    cols = input if input.ndim == 3 else input.unsqueeze(0)
    per_block = math.prod(geo["kernel"])
    if cols.shape[1] % per_block:
        raise ShapeError(f"fold: input's dimension 1 ({cols.shape[1]}) must be divisible by the product of "
                         f"kernel_size {geo['kernel']} ({per_block}); input shape {tuple(input.shape)}")
    blocks = math.prod(geo["blocks"])
    if cols.shape[2] != blocks:
        raise ShapeError(f"fold: output_size={image}, kernel_size={geo['kernel']}, dilation={geo['dilation']}, "
                         f"padding={tuple(p for p, _ in geo['pads'])} and stride={geo['stride']} make "
                         f"{geo['blocks'][0]} * {geo['blocks'][1]} = {blocks} blocks, but the input has "
                         f"{cols.shape[2]} (input shape {tuple(input.shape)})")
    out = Fold.apply(cols, **geo)
    return out if input.ndim == 3 else out.squeeze(0)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W): space moved into channels, the inverse of pixel_shuffle."""
    r = operator.index(downscale_factor)
    if input.ndim < 3 or r <= 0:
        raise ShapeError(f"pixel_unshuffle: expected a (*, C, H*r, W*r) input with at least 3 dims and a "
                         f"positive factor, got shape {tuple(input.shape)} and downscale_factor={downscale_factor}")
    *lead, c, hr, wr = input.shape
    for name, size in (("height", hr), ("width", wr)):
        if size % r:
            raise ShapeError(f"pixel_unshuffle: the {name} {size} of input shape {tuple(input.shape)} is not "
                             f"divisible by downscale_factor={r}")
    k = len(lead)
    x = input.reshape(*lead, c, hr // r, r, wr // r, r)
    x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return x.reshape(*lead, c * r * r, hr // r, wr // r)
