"""affine_grid and grid_sample: sampling an (N, C, [D,] H, W) input at the points of a sampling grid, as
PyTorch's F.affine_grid and F.grid_sample (spatial transformer networks).

Along each spatial axis a grid coordinate becomes a source position (unnormalised, then clipped or
reflected by the padding mode), and the position becomes taps: input indices with weights (nearest one,
linear two, bicubic four) and the weights' derivatives in the position. The output is the sum over all
combinations of one tap per axis of the gathered input times the product of the weights; backward
scatters the gradient back along the same taps into the input, and into the grid through the weights'
derivatives and the chain rule of the padding (zero where a coordinate was clipped).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from engine.autograd.function import Function, ShapeError
from engine.autograd.higher import differentiable, saved_input
from engine.backend import array_module
from engine.creation import zeros
from engine.ops.elementwise import where
from engine.ops.index import scatter_add_into
from engine.ops.shape import stack
from engine.tensor import Tensor

__all__ = ["affine_grid", "grid_sample"]

_MODES = ("bilinear", "nearest", "bicubic")
_PADDINGS = ("zeros", "border", "reflection")
_CUBIC_A = -0.75  # PyTorch's cubic convolution constant
_FAR = 2.0 ** 40  # source positions are clamped here before becoming integer indices (no int64 overflow)
_ALIGN_WARNING = ("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. "
                  "Please specify align_corners=True if the old behavior is desired. See the documentation of "
                  "grid_sample for details.")


# ---- a grid coordinate -> a source position, and d(position)/d(coordinate) ---------------------------------
def _unnormalize(coord, size: int, align_corners: bool):
    if align_corners:
        return (coord + 1) / 2 * (size - 1), (size - 1) / 2
    return ((coord + 1) * size - 1) / 2, size / 2


def _clip(xp, pos, size: int):
    """pos clamped to [0, size - 1] and its derivative (zero at and past either end, as PyTorch)."""
    return xp.clip(pos, 0, size - 1), ((pos > 0) & (pos < size - 1)).astype(pos.dtype)


def _reflect(xp, pos, twice_low: int, twice_high: int):
    """pos reflected off the bounds twice_low / 2 and twice_high / 2 until it lies between them, and its
    derivative (+1 or -1)."""
    if twice_low == twice_high:
        return xp.zeros_like(pos), xp.zeros_like(pos)
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    d = pos - low
    sign = xp.where(d < 0, -1, 1).astype(pos.dtype)
    d = xp.abs(d)
    extra = xp.fmod(d, span)
    even = xp.floor(d / span) % 2 == 0
    return xp.where(even, extra + low, span - extra + low), xp.where(even, sign, -sign)


def _padded(xp, pos, size: int, padding: str, align_corners: bool):
    """Where a source position reads under the padding mode, and the derivative of that."""
    if padding == "zeros":
        return pos, xp.ones_like(pos)
    mult = 1
    if padding == "reflection":
        pos, mult = _reflect(xp, pos, 0, 2 * (size - 1)) if align_corners else _reflect(xp, pos, -1, 2 * size - 1)
    pos, clip_mult = _clip(xp, pos, size)
    return pos, mult * clip_mult


# ---- a source position -> taps (index, in bounds), and their weights as functions of its fraction t ----------
def _cubic_near(x):
    return ((_CUBIC_A + 2) * x - (_CUBIC_A + 3)) * x * x + 1


def _cubic_far(x):
    return ((_CUBIC_A * x - 5 * _CUBIC_A) * x + 8 * _CUBIC_A) * x - 4 * _CUBIC_A


def _cubic_near_slope(x):
    return (3 * (_CUBIC_A + 2) * x - 2 * (_CUBIC_A + 3)) * x


def _cubic_far_slope(x):
    return (3 * _CUBIC_A * x - 10 * _CUBIC_A) * x + 8 * _CUBIC_A


def _weights(mode: str, t) -> tuple[list, list]:
    """The taps' weights and their derivatives in t, from arithmetic alone: t is an array, or a Tensor when
    the backward is recorded (create_graph)."""
    if mode == "nearest":
        return [None], [None]
    if mode == "bilinear":
        return [1 - t, t], [-1, 1]
    return ([_cubic_far(t + 1), _cubic_near(t), _cubic_near(1 - t), _cubic_far(2 - t)],
            [_cubic_far_slope(t + 1), _cubic_near_slope(t), -_cubic_near_slope(1 - t), -_cubic_far_slope(2 - t)])


def _index(xp, pos, rounding):
    """rounding(pos) as int64, NaN read as far outside (PyTorch's CUDA kernels do the same)."""
    return rounding(xp.clip(xp.nan_to_num(pos, nan=-100.0), -_FAR, _FAR)).astype(np.int64)


def _axis_taps(xp, coord, size: int, mode: str, padding: str, align_corners: bool):
    """One spatial axis: its taps [(index, valid)], the fraction t their weights depend on (None for
    nearest), and dt/d(grid coordinate)."""
    pos, mult = _unnormalize(coord, size, align_corners)
    if mode == "bicubic":  # the padding applies to each tap's index, not to the position
        i0 = _index(xp, pos, xp.floor)
        taps = []
        for k in range(-1, 3):
            i = i0 + k
            if padding != "zeros":
                i = _padded(xp, i.astype(pos.dtype), size, padding, align_corners)[0].astype(np.int64)
            taps.append((i, (i >= 0) & (i < size)))
        return taps, pos - xp.floor(pos), xp.full_like(pos, mult)
    pos, pad_mult = _padded(xp, pos, size, padding, align_corners)
    if mode == "nearest":
        i = _index(xp, pos, xp.rint)
        return [(i, (i >= 0) & (i < size))], None, pad_mult * mult
    i0 = _index(xp, pos, xp.floor)
    i1 = i0 + 1
    return [(i0, (i0 >= 0) & (i0 < size)), (i1, (i1 >= 0) & (i1 < size))], pos - i0, pad_mult * mult


class _Taps:
    """Every combination of one tap per spatial axis of sampling an input of `x_shape` at `grid`."""

    def __init__(self, xp, x_shape: tuple, grid, mode: str, padding: str, align_corners: bool) -> None:
        spatial = x_shape[2:]
        n_axes = len(spatial)
        coords = grid.reshape(grid.shape[0], -1, n_axes)
        per_axis, self.fractions, self.mults = [], [], []
        for axis, size in enumerate(spatial):  # grid's last dim lists x (the last axis) first
            taps, t, mult = _axis_taps(xp, coords[..., n_axes - 1 - axis], size, mode, padding, align_corners)
            per_axis.append(list(enumerate(taps)))
            self.fractions.append(t)
            self.mults.append(mult)
        strides = [int(np.prod(spatial[a + 1:])) for a in range(n_axes)]
        self.combos = []  # (flat index (N, Q), valid (N, Q), which tap of each axis)
        for combo in itertools.product(*per_axis):
            index = sum(i * s for (_, (i, _)), s in zip(combo, strides))
            valid = combo[0][1][1]
            for _, (_, v) in combo[1:]:
                valid = valid & v
            self.combos.append((xp.where(valid, index, 0), valid, [k for k, _ in combo]))

    def weights(self, mode: str, fractions=None) -> list:
        """Per axis, (weights, slopes) of its taps, from `fractions` (default: this grid's own)."""
        return [_weights(mode, t) for t in (fractions or self.fractions)]


def _product(weights: list, skip: int | None = None):
    """The product of the weights (None counts as 1), leaving out axis `skip`."""
    out = None
    for a, w in enumerate(weights):
        if a != skip and w is not None:
            out = w if out is None else out * w
    return out


class GridSampler2D(Function):
    """input sampled at the points of grid (N, H_out, W_out, 2), as torch.grid_sampler_2d."""

    op = "grid_sampler_2d"

    def forward(ctx, x, grid):
        xp = array_module(x)
        n, c = x.shape[:2]
        source = x.reshape(n, c, -1)
        out = xp.zeros((n, c, int(np.prod(grid.shape[1:-1]))), x.dtype)
        taps = _Taps(xp, x.shape, grid, ctx.mode, ctx.padding_mode, ctx.align_corners)
        weights = taps.weights(ctx.mode)
        needs = ctx.needs_input_grad
        gathered = [] if needs is not None and needs[1] and ctx.mode != "nearest" else None
        for index, valid, which in taps.combos:
            values = xp.take_along_axis(source, index[:, None, :], axis=2)
            if gathered is not None:
                gathered.append(values)
            w = _product([weights[a][0][k] for a, k in enumerate(which)])
            # masked, not multiplied by a zero weight: an Inf at index 0 must not turn a skipped tap into NaN
            out += xp.where(valid[:, None, :], values if w is None else values * w[:, None, :], 0)
        # backward (and its recorded form) reuses the taps, and the gathered values for the grid's gradient
        ctx.save(x, grid, taps, gathered)
        return out.reshape(n, c, *grid.shape[1:-1])

    def backward(ctx, grad):
        x, grid, taps, gathered = ctx.saved
        xp = array_module(grad)
        n, c = x.shape[:2]
        cells = int(np.prod(x.shape[2:]))
        g = grad.reshape(n, c, -1)
        weights = taps.weights(ctx.mode)
        want_x, want_grid = ctx.needs_input_grad[0], ctx.needs_input_grad[1] and ctx.mode != "nearest"
        gx = xp.zeros(n * c * cells, x.dtype) if want_x else None
        base = (xp.arange(n * c, dtype=np.int64) * cells).reshape(n, c, 1)
        gpos = [xp.zeros(g.shape[::2], grad.dtype) for _ in taps.mults]
        for combo, (index, valid, which) in enumerate(taps.combos):
            w_axes = [weights[a][0][k] for a, k in enumerate(which)]
            if want_x:
                w = _product(w_axes)
                contrib = xp.where(valid[:, None, :], g if w is None else g * w[:, None, :], 0)
                scatter_add_into(xp)(gx, (base + index[:, None, :]).ravel(), contrib.ravel())
            if want_grid:
                values = gathered[combo]
                dot = xp.where(valid, (xp.where(valid[:, None, :], values, 0) * g).sum(axis=1), 0)
                for a, k in enumerate(which):
                    rest = _product(w_axes, skip=a)
                    slope = weights[a][1][k]
                    gpos[a] += dot * slope if rest is None else dot * slope * rest
        grad_x = gx.reshape(x.shape) if want_x else None
        if not ctx.needs_input_grad[1]:
            return grad_x, None
        n_axes = len(taps.mults)
        grad_grid = xp.stack([gpos[n_axes - 1 - k] * taps.mults[n_axes - 1 - k] for k in range(n_axes)], axis=-1)
        return grad_x, grad_grid.reshape(grid.shape).astype(grid.dtype, copy=False)


class GridSampler3D(GridSampler2D):
    """input sampled at the points of grid (N, D_out, H_out, W_out, 3), as torch.grid_sampler_3d."""

    op = "grid_sampler_3d"


@differentiable(GridSampler2D, GridSampler3D)
def _recorded_backward(ctx, grad: Tensor):
    """The backward above as engine ops (create_graph=True): gathers and scatter_adds of the taps, weighted by
    Tensor functions of the grid. Each fraction t is rebuilt as t + dt/dgrid * (grid - grid), exact in value
    and first derivative; the padding is piecewise linear, so its second derivative is zero."""
    x, grid, taps, _ = ctx.saved
    xt, gt = saved_input(ctx, 0, x), saved_input(ctx, 1, grid)
    xp = array_module(x)
    n, c = x.shape[:2]
    n_axes = x.ndim - 2
    coords = gt.reshape(n, -1, n_axes)
    flat_grid = grid.reshape(n, -1, n_axes)
    fractions = []
    for a, (t, mult) in enumerate(zip(taps.fractions, taps.mults)):
        k = n_axes - 1 - a
        moved = coords[..., k] - Tensor._wrap(flat_grid[..., k])  # zero, with the grid's gradient
        fractions.append(None if t is None else Tensor._wrap(t) + Tensor._wrap(mult) * moved)
    weights = taps.weights(ctx.mode, fractions)
    g = grad.reshape(n, c, -1)
    source = xt.reshape(n, c, -1)
    want_x, want_grid = ctx.needs_input_grad[0], ctx.needs_input_grad[1] and ctx.mode != "nearest"
    gx, gpos = None, [None] * n_axes
    for index, valid, which in taps.combos:
        idx = Tensor._wrap(xp.ascontiguousarray(xp.broadcast_to(index[:, None, :], g.shape)))
        mask = Tensor._wrap(xp.broadcast_to(valid[:, None, :], g.shape))
        w_axes = [weights[a][0][k] for a, k in enumerate(which)]
        if want_x:
            w = _product(w_axes)
            src = where(mask, g if w is None else g * w.unsqueeze(1), 0.0)
            part = zeros(source.shape, dtype=xt.dtype, device=xt.device).scatter_add(2, idx, src)
            gx = part if gx is None else gx + part
        if want_grid:
            dot = (where(mask, source.gather(2, idx), 0.0) * g).sum(1)
            for a, k in enumerate(which):
                rest = _product(w_axes, skip=a)
                term = dot * weights[a][1][k] if rest is None else dot * weights[a][1][k] * rest
                gpos[a] = term if gpos[a] is None else gpos[a] + term
    grad_x = gx.reshape(x.shape) if want_x else None
    if not ctx.needs_input_grad[1]:
        return grad_x, None
    if not want_grid:  # nearest: the output is flat in the grid
        return grad_x, zeros(grid.shape, dtype=gt.dtype, device=gt.device)
    parts = [gpos[n_axes - 1 - k] * Tensor._wrap(taps.mults[n_axes - 1 - k]) for k in range(n_axes)]
    return grad_x, stack(parts, dim=-1).reshape(grid.shape)


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> Tensor:
    """Sample input (N, C, H, W) or (N, C, D, H, W) at grid (N, H_out, W_out, 2) or (N, D_out, H_out, W_out, 3)
    of coordinates in [-1, 1] (x first), as F.grid_sample."""
    if mode not in _MODES:
        raise ValueError(f"grid_sample: mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
    if padding_mode not in _PADDINGS:
        raise ValueError(f"grid_sample: padding_mode must be one of {', '.join(map(repr, _PADDINGS))}, "
                         f"got {padding_mode!r}")
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, UserWarning, stacklevel=2)
        align_corners = False
    shape, gshape = tuple(input.shape), tuple(grid.shape)
    if input.ndim not in (4, 5):
        raise ShapeError(f"grid_sample: input must be 4-D (N, C, H, W) or 5-D (N, C, D, H, W), got shape {shape}")
    if mode == "bicubic" and input.ndim != 4:
        raise ShapeError(f"grid_sample: bicubic mode needs a 4-D input, got shape {shape}")
    if grid.ndim != input.ndim or gshape[-1] != input.ndim - 2 or gshape[0] != shape[0]:
        want = "(N, H_out, W_out, 2)" if input.ndim == 4 else "(N, D_out, H_out, W_out, 3)"
        raise ShapeError(f"grid_sample: for input of shape {shape} the grid must be {want} with N = {shape[0]}, "
                         f"got grid of shape {gshape}")
    if any(s == 0 for s in shape[2:]):
        raise ShapeError(f"grid_sample: input has a spatial size of 0: shape {shape}")
    if not input.dtype.is_floating_point or input.dtype != grid.dtype:
        raise TypeError(f"grid_sample: input and grid must have the same floating point dtype, got "
                        f"{input.dtype.name} and {grid.dtype.name}")
    op = GridSampler2D if input.ndim == 4 else GridSampler3D
    return op.apply(input, grid, mode=mode, padding_mode=padding_mode, align_corners=bool(align_corners))


# ---- affine_grid: composed of engine ops, so theta's gradient (and its create_graph) comes for free ----------
def _base_axis(xp, steps: int, align_corners: bool, dtype):
    """The normalised coordinates of `steps` pixel centres (or corners) along one axis, as PyTorch."""
    if steps <= 1:
        return xp.zeros(steps, dtype)
    line = xp.linspace(-1, 1, steps, dtype=dtype)
    return line if align_corners else line * ((steps - 1) / steps)


def affine_grid(theta: Tensor, size, align_corners: bool | None = None) -> Tensor:
    """The sampling grid (N, H, W, 2) or (N, D, H, W, 3) of the affine maps theta (N, 2, 3) or (N, 3, 4) for an
    output of `size` (N, C, H, W) or (N, C, D, H, W), as F.affine_grid."""
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, UserWarning, stacklevel=2)
        align_corners = False
    try:
        size = tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"affine_grid: size must be a sequence of ints (N, C, H, W) or (N, C, D, H, W), "
                        f"got {size!r}") from None
    if not theta.dtype.is_floating_point:
        raise TypeError(f"affine_grid: expected theta to have a floating point dtype, got {theta.dtype.name}")
    if len(size) not in (4, 5):
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {list(size)}.")
    rows = len(size) - 2
    if tuple(theta.shape) != (size[0], rows, rows + 1):
        raise ShapeError(f"affine_grid: Expected a batch of {rows}D affine matrices of shape "
                         f"Nx{rows}x{rows + 1} for size {list(size)}. Got {list(theta.shape)}.")
    if min(size) <= 0:
        raise ValueError(f"affine_grid: Expected non-zero, positive output size. Got {list(size)}")
    if align_corners and min(size[2:]) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation "
                      "of affine_grid for details.", UserWarning, stacklevel=2)
    xp = array_module(theta.array)
    spatial = size[2:]
    axes = [_base_axis(xp, s, bool(align_corners), theta.array.dtype) for s in spatial]
    mesh = xp.meshgrid(*axes, indexing="ij")  # (D,) H, W
    base = xp.stack([*mesh[::-1], xp.ones(spatial, theta.array.dtype)], axis=-1).reshape(1, -1, rows + 1)
    base_t = Tensor._wrap(base)
    if theta.device != base_t.device:
        base_t = base_t.to(theta.device)
    grid = base_t @ theta.transpose(1, 2)
    return grid.reshape(size[0], *spatial, rows)
