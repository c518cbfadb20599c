"""Tensor-level backwards of the moments (var, std), prod and einsum (see higher_ops.py for the rest)."""

from __future__ import annotations

import math

from engine import ops
from engine.autograd.higher import derived, differentiable, saved_input, saved_output
from engine.autograd.higher_nn import LinearMap, _Geometry
from engine.autograd.higher_ops import _kept, _sum_to, const
from engine.backend import array_module
from engine.ops import linalg, reduce
from engine.tensor import Tensor


# ---- var and std: the centred input is a projection of x -----------------------------------------------
def _center(geo, a):
    """x minus its mean over the reduced dims: a projection, so its own adjoint."""
    return a - a.mean(axis=geo.dims, keepdims=True)


@differentiable(reduce.Var, reduce.Std)
def _var(ctx, g):
    centered_a = ctx.saved[0]
    if isinstance(ctx, reduce.Std):
        y = ctx.saved[1]
        g = ops.where(const(y == 0), 0.0, g / (2 * saved_output(ctx, y)))
    dof = ctx.count() - ctx.correction  # as Var.backward: unclamped, and inf (NaN at the mean) over a whole tensor
    if dof <= 0 and ctx.whole:
        return g * const(array_module(centered_a).where(centered_a == 0, math.nan, math.inf).astype(centered_a.dtype))
    centered = derived(ctx, LinearMap, centered_a, (0,), fn=_center, adjoint=_center, geo=_Geometry(ctx))
    return _kept(ctx, g) * centered * 2 / dof


# ---- prod: the product of the others ------------------------------------------------------------------------
def _others(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Each element's product of the other elements of its slice, without dividing (so zeros are exact)."""
    if len(dims) == x.ndim:
        moved = x.reshape(-1)
    else:
        moved = x.movedim(dims[0], -1)
    n = moved.shape[-1]
    eye = const(array_module(x.array).eye(n, dtype=bool))
    others = ops.where(eye, 1.0, moved.unsqueeze(-2).expand(*moved.shape[:-1], n, n)).prod(dim=-1)
    return others.reshape(x.shape) if len(dims) == x.ndim else others.movedim(-1, dims[0])


@differentiable(reduce.Prod)
def _prod(ctx, g):
    (xa,) = ctx.saved
    if xa.ndim == 0:  # as the array backward
        return g
    x = saved_input(ctx, 0, xa)
    if not (xa == 0).any():  # prod / x_i, as cheap as the forward
        total = x.prod(dim=ctx.dims[0], keepdim=True) if len(ctx.dims) < x.ndim else x.prod().reshape((1,) * x.ndim)
        return _kept(ctx, g) * total / x
    return _kept(ctx, g) * _others(x, ctx.dims)


# ---- einsum: each operand's gradient is another einsum ---------------------------------------------------
@differentiable(linalg.Einsum)
def _einsum(ctx, g):
    inputs, output = ctx.inputs, ctx.output
    operands = [saved_input(ctx, i, a) for i, a in enumerate(ctx.saved)]
    grads = []
    for i, (need, x) in enumerate(zip(ctx.needs_input_grad, ctx.saved)):
        if not need:
            grads.append(None)
            continue
        others = [s for j, s in enumerate(inputs) if j != i]
        kept = "".join(c for c in inputs[i] if c in output or any(c in s for s in others))
        gi = ops.einsum(",".join([output, *others]) + "->" + kept, g, *[o for j, o in enumerate(operands) if j != i])
        gi = _sum_to(gi, tuple(x.shape[k] for k, c in enumerate(inputs[i]) if c in kept))
        size = dict(zip(kept, gi.shape))  # as the array backward: a size 1 the others broadcast gives, expanded
        grads.append(gi.reshape([size.get(c, 1) for c in inputs[i]]).expand(*x.shape))
    return tuple(grads)
