"""Convolutions with PyTorch's semantics and weight layouts: conv1d/2d/3d, conv_transpose1d/2d/3d.

conv2d is im2col + one matmul: a strided view lays every kernel window out without copying, one copy
turns it into an (N, groups, C/groups*kh*kw, Ho*Wo) stack of matrices, and one matmul with the weight,
broadcast over the samples, gives the output already in (N, O, Ho, Wo) order. The input gradient is
col2im, the adjoint of that view: for each of the kh*kw kernel offsets, one (C x O) @ (O x Ho*Wo) product
per sample added at that offset with one strided add. Samples lead every matrix so that no step transposes
a whole batch (channels leading, the 3x3 conv2d of a (32, 8, 28, 28) batch in benchmarks/ops_cpu.py took
1.6 ms of CPU time forward and 6.2 forward and backward, against 1.1 and 4.2 now). A transposed
convolution is exactly the input gradient of a convolution, so both ops run on the same kernels with
forward and backward swapped. The helpers work on any number of spatial axes, so 3-D ops are the 2-D
code with one more axis (prod(kernel) offsets); 1-D ops run the 2-D code on images of height 1.

The parameter helper `ints` is shared with the pooling ops (pool.py and its pool_*.py), which have
their own N-d window code (pool_windows.py).
"""

from __future__ import annotations

import itertools
import math
import operator

from engine.autograd.function import Function, ShapeError
from engine.backend import array_module
from engine.tensor import Tensor

Pads = tuple[tuple[int, int], ...]  # (before, after) of each spatial axis


# ---- window helpers on (N, C, *spatial) arrays ----------------------------------------------
def sliding_windows(xpad, kernel, out_size, stride, dilation):
    """View (N, C, *padded) as (N, C, *kernel, *out) windows, without copying.

    In 2-D, element [n, c, i, j, y, x] is xpad[n, c, y*sh + i*dh, x*sw + j*dw]; 3-D adds a depth axis.
    """
    xp = array_module(xpad)
    lead, axes = xpad.strides[:2], xpad.strides[2:]
    return xp.lib.stride_tricks.as_strided(
        xpad, shape=(*xpad.shape[:2], *kernel, *out_size),
        strides=(*lead, *(a * d for a, d in zip(axes, dilation)), *(a * s for a, s in zip(axes, stride))))


def col2im(part, kernel, padded, stride, dilation):
    """Adjoint of `sliding_windows`: sum `part(*offset)`, the (A, B, *out) window values at one kernel
    offset, back onto (A, B, *padded).

    Parts are made one at a time, so the prod(kernel) times larger array of all window values never
    exists: allocating it fresh on every call cost more than the arithmetic (conv2d forward+backward:
    ~30% faster).
    """
    out = None
    for offset in itertools.product(*map(range, kernel)):  # windows overlap, so one strided add per offset
        values = part(*offset)
        if out is None:
            out = array_module(values).zeros((*values.shape[:2], *padded), dtype=values.dtype)
        out[(slice(None), slice(None), *(slice(i * d, i * d + s * (o - 1) + 1, s) for i, d, s, o in
                                         zip(offset, dilation, stride, values.shape[2:])))] += values
    return out


def pad_spatial(x, pads: Pads, value: float = 0.0):
    """(N, C, *spatial) inside a frame of `value`, `pads` wide on each side."""
    if not any(lo or hi for lo, hi in pads):
        return x
    sizes = x.shape[2:]
    out = array_module(x).full((*x.shape[:2], *(n + lo + hi for n, (lo, hi) in zip(sizes, pads))), value,
                               dtype=x.dtype)
    out[(..., *(slice(lo, lo + n) for n, (lo, _) in zip(sizes, pads)))] = x
    return out


def crop(x, pads: Pads):
    """Adjoint of `pad_spatial`: the inside of the frame."""
    return x[(..., *(slice(lo, n - hi) for n, (lo, hi) in zip(x.shape[2:], pads)))]


def as_nd(a, spatial: int):
    """An (N, C, *spatial) or unbatched (C, *spatial) array as (N, C, *spatial); 1-D gets height 1, so
    1-D ops run the 2-D code."""
    lead = a.shape[:-spatial]
    if len(lead) == 1:
        lead = (1, *lead)
    return a.reshape(*lead, *(1,) * (2 - spatial), *a.shape[-spatial:])


def from_nd(an, ndim: int, spatial: int):
    """Undo `as_nd` for an output: drop the batch axis of unbatched inputs and the height of 1-D ops."""
    lead = an.shape[:2] if ndim == spatial + 2 else an.shape[1:2]
    return an.reshape(*lead, *an.shape[an.ndim - spatial:])


def ints(value, n: int, name: str, op: str, low: int = 1) -> tuple[int, ...]:
    """An int or a sequence of n ints as an n-tuple, each at least `low`; a clear error otherwise."""
    try:
        if hasattr(value, "__len__"):
            vals = tuple(map(operator.index, value))
        else:
            vals = (operator.index(value),) * n
    except TypeError:
        vals = ()
    if len(vals) != n:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if min(vals) < low:
        raise ValueError(f"{op}: {name} must be {'positive' if low else 'non-negative'}, got {value!r}")
    return vals


def lift(vals: tuple[int, ...], fill: int) -> tuple[int, ...]:
    """A 1-D op's parameter as the 2-D one over a height-1 image; 2-D and 3-D ones as they are."""
    return vals if len(vals) >= 2 else (fill, vals[0])


def last(vals: tuple, spatial: int) -> tuple:
    """The user's view of a (lifted) parameter: its last `spatial` entries."""
    return tuple(vals[len(vals) - spatial:])


# ---- the matrices the matmuls work on -----------------------------------------------------------
def _im2col(xpad, kernel, out_size, stride, dilation, groups: int):
    """(N, G, C/G*prod(kernel), prod(out)): the windows' own order, so the one copy reads rows of x."""
    win = sliding_windows(xpad, kernel, out_size, stride, dilation)
    # sizes given, not -1: an empty batch has no size to infer
    return win.reshape(xpad.shape[0], groups, xpad.shape[1] // groups * math.prod(kernel), math.prod(out_size))


def _col2im(wn, gm, n: int, out_size, padded, pads, stride, dilation, groups: int):
    """Adjoint of the forward's `weight @ _im2col(pad(x))` for an (A, B, *kernel) weight: rows
    (N, G, A/G, prod(out)) back to a contiguous (N, B*G, *spatial)."""
    wg = wn.reshape(groups, -1, *wn.shape[1:])  # (G, A/G, B, *kernel)
    c = wn.shape[1] * groups

    def part(*offset):
        return _matmul(wg[(..., *offset)].swapaxes(-1, -2), gm).reshape(n, c, *out_size)

    return array_module(gm).ascontiguousarray(crop(col2im(part, wn.shape[2:], padded, stride, dilation), pads))


def _group_rows(y, groups: int):
    """(N, O, *spatial) as (N, G, O/G, prod(spatial)), the layout of a matmul result (a view)."""
    n, o = y.shape[:2]
    return y.reshape(n, groups, o // groups, math.prod(y.shape[2:]))


def _ungroup_rows(m, n: int, size):
    """Adjoint of `_group_rows`: (N, G, O/G, prod(size)) as (N, O, *size)."""
    return m.reshape(n, m.shape[1] * m.shape[2], *size)


def _weight_grad(rows, cols, shape):
    """The weight gradient: each sample's (G, A/G, P) rows times its (G, K, P) columns, summed over the samples."""
    return (rows @ cols.swapaxes(-1, -2)).sum(axis=0).reshape(shape)


def _weight_rows(wn, groups: int):
    """(A, B, *kernel) weight as (G, A/G, B*prod(kernel))."""
    return wn.reshape(groups, wn.shape[0] // groups, -1)


def _matmul(a, b):
    """a @ b over stacks of matrices; where the inner size is 1 (a depthwise weight's single column) as the outer
    product it is, which numpy's matmul is slow to make (a depthwise conv2d's forward and backward in
    benchmarks/ops_cpu.py: 1.9 -> 1.1 ms)."""
    return a * b if a.shape[-1] == 1 else a @ b


def _add_bias(out, b):
    if b is not None:
        out += b.reshape(-1, *(1,) * (out.ndim - 2))
    return out


def _channel_sum(g):
    """The bias gradient: `g` summed over every axis but the channels."""
    return g.sum(axis=(0, *range(2, g.ndim)))


# ---- ops ----------------------------------------------------------------------------------------
class Conv2d(Function):
    """Convolution of (N, C, H, W) with an (O, C/groups, kh, kw) weight, plus an (O,) bias."""

    spatial = 2

    def forward(ctx, x, w, b):
        _check(ctx, x, w, b, transposed=False)
        xn, wn = as_nd(x, ctx.spatial), as_nd(w, ctx.spatial)
        kernel = wn.shape[2:]
        xpad = pad_spatial(xn, ctx.padding)
        out_size = _conv_out_size(ctx, x, xpad.shape[2:], kernel)
        cols = _im2col(xpad, kernel, out_size, ctx.stride, ctx.dilation, ctx.groups)
        out = _add_bias(_ungroup_rows(_matmul(_weight_rows(wn, ctx.groups), cols), xn.shape[0], out_size), b)
        if ctx.needs_input_grad:
            if ctx.needs_input_grad[1] and array_module(x).may_share_memory(cols, x):
                cols = cols.copy()  # a 1x1 kernel's windows are x itself: an in-place change to x must not reach dw
            ctx.save(w, cols if ctx.needs_input_grad[1] else None)  # cols: prod(kernel) copies of x, for dw
            ctx.x_shape, ctx.padded_hw = x.shape, xpad.shape[2:]
        return from_nd(out, x.ndim, ctx.spatial)

    def backward(ctx, grad):
        w, cols = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        wn, gn = as_nd(w, ctx.spatial), as_nd(grad, ctx.spatial)
        gm = _group_rows(gn, ctx.groups) if need_x or need_w else None
        dx = dw = db = None
        if need_w:
            dw = _weight_grad(gm, cols, w.shape)
        if need_x:
            dx = _col2im(wn, gm, gn.shape[0], gn.shape[2:], ctx.padded_hw, ctx.padding, ctx.stride,
                         ctx.dilation, ctx.groups).reshape(ctx.x_shape)
        if need_b:
            db = _channel_sum(gn)
        return dx, dw, db


class Conv1d(Conv2d):
    """Convolution of (N, C, L) with an (O, C/groups, k) weight: conv2d on height-1 images."""

    op = "conv1d"
    spatial = 1


class Conv3d(Conv2d):
    """Convolution of (N, C, D, H, W) with an (O, C/groups, kd, kh, kw) weight: the same code, one more axis."""

    op = "conv3d"
    spatial = 3


class ConvTranspose2d(Function):
    """Transposed convolution (the adjoint of conv2d) with an (C, O/groups, kh, kw) weight."""

    op = "conv_transpose2d"
    spatial = 2

    def forward(ctx, x, w, b):
        _check(ctx, x, w, b, transposed=True)
        xn, wn = as_nd(x, ctx.spatial), as_nd(w, ctx.spatial)
        kernel, in_size = wn.shape[2:], xn.shape[2:]
        padded = tuple((size - 1) * s + d * (k - 1) + 1 + extra for size, s, d, k, extra in
                       zip(in_size, ctx.stride, ctx.dilation, kernel, ctx.output_padding))
        out_size = tuple(p - lo - hi for p, (lo, hi) in zip(padded, ctx.padding))
        if min(out_size) < 1:
            raise ShapeError(
                f"{ctx.op}: output size {last(out_size, ctx.spatial)} is not positive for input shape "
                f"{tuple(x.shape)}, weight shape {tuple(w.shape)} and padding {_user_pads(ctx)}")
        xm = _group_rows(xn, ctx.groups)
        y = _col2im(wn, xm, xn.shape[0], in_size, padded, ctx.padding, ctx.stride, ctx.dilation, ctx.groups)
        out = _add_bias(y, b)
        if ctx.needs_input_grad:
            ctx.save(w, x if ctx.needs_input_grad[1] else None)  # x itself, so an in-place change to it is caught
            ctx.x_shape, ctx.in_hw = x.shape, in_size
        return from_nd(out, x.ndim, ctx.spatial)

    def backward(ctx, grad):
        w, x = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        wn, gn = as_nd(w, ctx.spatial), as_nd(grad, ctx.spatial)
        in_size = ctx.in_hw
        dx = dw = db = None
        if need_x or need_w:  # the adjoint of col2im is im2col: the convolution's matrix, of grad
            cols = _im2col(pad_spatial(gn, ctx.padding), wn.shape[2:], in_size, ctx.stride, ctx.dilation,
                           ctx.groups)
            if need_x:
                dx = _ungroup_rows(_matmul(_weight_rows(wn, ctx.groups), cols), gn.shape[0], in_size)
                dx = dx.reshape(ctx.x_shape)
            if need_w:
                dw = _weight_grad(_group_rows(as_nd(x, ctx.spatial), ctx.groups), cols, w.shape)
        if need_b:
            db = _channel_sum(gn)
        return dx, dw, db


class ConvTranspose1d(ConvTranspose2d):
    """Transposed 1-D convolution: conv_transpose2d on height-1 images."""

    op = "conv_transpose1d"
    spatial = 1


class ConvTranspose3d(ConvTranspose2d):
    """Transposed 3-D convolution with an (C, O/groups, kd, kh, kw) weight."""

    op = "conv_transpose3d"
    spatial = 3


# ---- checks -------------------------------------------------------------------------------------
def _user_pads(ctx) -> tuple:
    pads = last(ctx.padding, ctx.spatial)
    return tuple(lo if lo == hi else (lo, hi) for lo, hi in pads)


def _check(ctx, x, w, b, transposed: bool) -> None:
    op, spatial, groups = ctx.op, ctx.spatial, ctx.groups
    if x.ndim not in (spatial + 1, spatial + 2):
        raise ShapeError(f"{op}: expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D (batched) input, "
                         f"got input of shape {tuple(x.shape)}")
    if w.ndim != spatial + 2:
        layout = "(in, out/groups, *kernel)" if transposed else "(out, in/groups, *kernel)"
        raise ShapeError(f"{op}: expected a {spatial + 2}-D weight {layout}, "
                         f"got weight of shape {tuple(w.shape)}")
    dts = {a.dtype for a in (x, w, b) if a is not None}
    if len(dts) > 1 or x.dtype.kind != "f":
        named = (("input", x), ("weight", w), ("bias", b))
        names = ", ".join(f"{k} {a.dtype}" for k, a in named if a is not None)
        raise TypeError(f"{op}: input, weight and bias must share one floating-point dtype, got {names}")
    channels = x.shape[-spatial - 1]
    expects = w.shape[0] if transposed else w.shape[1] * groups
    if channels != expects:
        raise ShapeError(f"{op}: input has {channels} channels but weight expects {expects} "
                         f"(groups={groups}, weight shape {tuple(w.shape)})")
    if w.shape[0] % groups:
        role = "input" if transposed else "output"
        raise ShapeError(f"{op}: groups={groups} does not divide the weight's {w.shape[0]} {role} channels "
                         f"(weight shape {tuple(w.shape)})")
    out_channels = w.shape[1] * groups if transposed else w.shape[0]
    if b is not None and tuple(b.shape) != (out_channels,):
        raise ShapeError(f"{op}: bias of shape {tuple(b.shape)} does not match the {out_channels} output "
                         f"channels (weight shape {tuple(w.shape)}); expected ({out_channels},)")


def _conv_out_size(ctx, x, padded_hw, kernel) -> tuple[int, ...]:
    spans = tuple(d * (k - 1) + 1 for d, k in zip(ctx.dilation, kernel))
    if any(s > p for s, p in zip(spans, padded_hw)):
        what = f"kernel size {last(kernel, ctx.spatial)}"
        if spans != tuple(kernel):
            what += f" dilated to {last(spans, ctx.spatial)}"
        raise ShapeError(f"{ctx.op}: {what} is larger than the padded input {last(padded_hw, ctx.spatial)} "
                         f"(input shape {tuple(x.shape)}, padding {_user_pads(ctx)})")
    return tuple((p - s) // st + 1 for p, s, st in zip(padded_hw, spans, ctx.stride))


# ---- functions ----------------------------------------------------------------------------------
def _options(op: str, spatial: int, weight: Tensor, stride, padding, dilation, groups) -> dict:
    """Normalize user parameters to the ones the kernels take (a 1-D op's lifted to 2-D)."""
    stride = ints(stride, spatial, "stride", op)
    dilation = ints(dilation, spatial, "dilation", op)
    groups = ints(groups, 1, "groups", op)[0]
    kernel = weight.array.shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * spatial
        elif padding == "same":
            if max(stride) > 1:
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(stride {stride})")
            # as in PyTorch, an odd total puts the extra row/column at the bottom/right
            totals = [d * (k - 1) for d, k in zip(dilation, kernel[-spatial:])]
            pads = tuple((t // 2, t - t // 2) for t in totals)
        else:
            raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a tuple, got {padding!r}")
    else:
        pads = tuple((p, p) for p in ints(padding, spatial, "padding", op, low=0))
    if spatial == 1:
        pads = ((0, 0), *pads)
    return {"stride": lift(stride, 1), "padding": pads, "dilation": lift(dilation, 1), "groups": groups}


def _conv(cls, input, weight, bias, stride, padding, dilation, groups) -> Tensor:
    opts = _options(cls.op, cls.spatial, weight, stride, padding, dilation, groups)
    return cls.apply(input, weight, bias, **opts)


def _conv_transpose(cls, input, weight, bias, stride, padding, output_padding, groups, dilation) -> Tensor:
    op, spatial = cls.op, cls.spatial
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of ints, got {padding!r}")
    opts = _options(op, spatial, weight, stride, padding, dilation, groups)
    out_pad = lift(ints(output_padding, spatial, "output_padding", op, low=0), 0)
    if any(p >= s and p >= d for p, s, d in zip(out_pad, opts["stride"], opts["dilation"])):
        raise ValueError(f"{op}: output_padding must be smaller than either stride or dilation, got "
                         f"output_padding={last(out_pad, spatial)}, stride={last(opts['stride'], spatial)}, "
                         f"dilation={last(opts['dilation'], spatial)}")
    return cls.apply(input, weight, bias, output_padding=out_pad, **opts)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution of (N, C, H, W) or (C, H, W) input, as torch.nn.functional.conv2d."""
    return _conv(Conv2d, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D convolution of (N, C, L) or (C, L) input, as torch.nn.functional.conv1d."""
    return _conv(Conv1d, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """3-D convolution of (N, C, D, H, W) or (C, D, H, W) input, as torch.nn.functional.conv3d."""
    return _conv(Conv3d, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-D convolution with an (in, out/groups, kh, kw) weight, as in PyTorch."""
    return _conv_transpose(ConvTranspose2d, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 1-D convolution with an (in, out/groups, k) weight, as in PyTorch."""
    return _conv_transpose(ConvTranspose1d, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 3-D convolution with an (in, out/groups, kd, kh, kw) weight, as in PyTorch."""
    return _conv_transpose(ConvTranspose3d, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)
