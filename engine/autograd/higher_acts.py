"""Tensor-level backwards (for create_graph=True) of engine/ops/activation_more.py's activations.

Each mirrors its op's array derivative in that file's ACTIVATIONS table, in engine ops; masks stay constants.
"""

from __future__ import annotations

from engine import ops
from engine.autograd.higher import differentiable
from engine.autograd.higher_ops import const, kept_or_zero, register_activations, where_positive
from engine.ops import activation as act
from engine.ops import activation_more as more


def _mish(x, g, c):
    tsp = ops.tanh(act.softplus(x))
    return g * (tsp + x * ops.sigmoid(x) * (1 - tsp * tsp))


def _masked(mask):
    return lambda x, g, c: kept_or_zero(mask(x.array, c), g)


# class -> d(output)/d(input) times g, from the input Tensor x, g and the node's options c
ACTIVATIONS = {
    more.Mish: _mish,
    more.Hardswish: lambda x, g, c: ops.where(const(x.array <= -3), 0.0,
                                              ops.where(const(x.array < 3), g * (x / 3 + 0.5), g)),
    more.Hardsigmoid: lambda x, g, c: kept_or_zero((x.array > -3) & (x.array < 3), g) / 6,
    more.Selu: lambda x, g, c: where_positive(x, g, g * more.SELU_ALPHA * ops.exp(ops.clamp(x, max=0.0)))
    * more.SELU_SCALE,
    more.Celu: lambda x, g, c: where_positive(x, g, g * ops.exp(ops.clamp(x, max=0.0) / c.alpha)),
    more.Softsign: lambda x, g, c: g / (1 + ops.abs(x)) ** 2,
    more.Tanhshrink: lambda x, g, c: g * ops.tanh(x) ** 2,
    more.Threshold: _masked(more._above_threshold),
    more.Hardshrink: _masked(more._shrink_mask),
    more.Softshrink: _masked(more._shrink_mask),
}


register_activations(ACTIVATIONS)


@differentiable(more.RReLU)
def _rrelu(ctx, g):
    return g * const(ctx.saved[0])
