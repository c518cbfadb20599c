"""The Tensor-level backwards of the ops: each op's gradient formula again, written in engine ops.

Each function mirrors its op's array `backward` (same saved arrays, same formula), so a reader can put
the two side by side; `saved_input`/`saved_output` turn saved arrays back into Tensors on the graph.
Masks and other values with no gradient (a relu's `x > 0`, a max's winners) stay constants.
A few helper ops live here: identity (Alias), the adjoint of indexing (ScatterGrad) and the normal CDF
of gelu. Convolution, pooling and normalization are in higher_nn.py, losses in higher_losses.py, ops whose
backward is a fixed linear map (gather, scatter, padding, ...) in higher_index.py, var/std/prod/einsum in
higher_math.py.
"""

from __future__ import annotations

import itertools
import math

from engine import ops
from engine.autograd.function import Function
from engine.autograd.higher import differentiable, saved_input, saved_inputs, saved_output
from engine.backend import array_module
from engine.ops import activation as act
from engine.ops import convert, elementwise, index, linalg, pointwise, reduce, shape, special
from engine.tensor import Tensor


def const(a) -> Tensor:
    """An array with no gradient (a mask, a count) as a Tensor."""
    return Tensor._wrap(a)


# ---- helper ops --------------------------------------------------------------------------------------
class Alias(Function):
    """The identity: a saved array standing for an input (cast back to its dtype centrally)."""

    def forward(ctx, x):
        return x

    def backward(ctx, grad):
        return grad


@differentiable(Alias, convert.Clone, convert.Cast, elementwise.Add, shape.Expand)
def _identity(ctx, g):
    return (g,) * len(ctx._next)


class ScatterGrad(Function):
    """The adjoint of `source[key]` (an Index or Split op): `grad` placed at key in zeros of `shape`."""

    op = "getitem_backward"

    def forward(ctx, g):
        out = array_module(g).zeros(ctx.shape, g.dtype)
        if ctx.source is shape.Split:
            out[ctx.index] = g
        else:
            index._accumulate(out, ctx.key, g)
        return out

    def backward(ctx, grad):
        return grad[ctx.index] if ctx.source is shape.Split else index._region(grad, ctx.key)


@differentiable(index.Index, index.Slice, shape.Split, shape.Unbind, shape.Narrow, shape.Select)
def _getitem(ctx, g):
    if isinstance(ctx, shape.Split):
        return ScatterGrad.apply(g, shape=ctx.in_shape, index=ctx.index, source=shape.Split)
    return ScatterGrad.apply(g, shape=ctx.shape, key=ctx.key, source=index.Index)


@differentiable(ScatterGrad)
def _scatter_grad(ctx, g):
    if ctx.source is shape.Split:
        return shape.Split.apply(g, index=ctx.index)
    return index.Index.apply(g, key=ctx.key)


# ---- elementwise arithmetic ---------------------------------------------------------------------------
@differentiable(elementwise.Sub)
def _sub(ctx, g):
    return g, -g


@differentiable(elementwise.Mul)
def _mul(ctx, g):
    a, b = saved_inputs(ctx, *ctx.saved)
    need_a, need_b = ctx.needs_input_grad
    return (g * b if need_a else None), (g * a if need_b else None)


@differentiable(elementwise.Div)
def _div(ctx, g):
    a, b = saved_inputs(ctx, *ctx.saved)
    need_a, need_b = ctx.needs_input_grad
    return (g / b if need_a else None), (-g * a / (b * b) if need_b else None)


@differentiable(elementwise.Pow)
def _pow(ctx, g):
    a_arr, b_arr, y = ctx.saved
    a, b = saved_inputs(ctx, a_arr, b_arr)
    need_a, need_b = ctx.needs_input_grad
    ga = gb = None
    if need_a:  # b * a^(b-1), and exactly 0 where b == 0
        if isinstance(b, Tensor):
            ga = g * ops.where(const(b_arr == 0), 0.0, b * a ** (b - 1))
        else:
            ga = g * (b * a ** (b - 1)) if b != 0 else g * 0
    if need_b:  # a^b * log(a), taken as 0 where a <= 0
        if isinstance(a, Tensor):
            safe_log = ops.log(ops.where(const(a_arr > 0), a, 1.0))
        else:
            safe_log = math.log(a) if a > 0 else 0.0
        gb = g * saved_output(ctx, y) * safe_log
    return ga, gb


def kept_or_zero(keep, g):
    """g where the bool array `keep` is true, exactly 0 elsewhere (even for an inf g), as the ops' keep_where."""
    return ops.where(const(keep), g, 0.0)


@differentiable(elementwise.Maximum, elementwise.Minimum)
def _extreme(ctx, g):
    a, b = ctx.saved
    need_a, need_b = ctx.needs_input_grad
    if isinstance(ctx, elementwise.Minimum):
        a, b = b, a
    g = ops.where(const(a == b), g * 0.5, g)  # as elementwise._split_by_winner
    return (kept_or_zero(~(a < b), g) if need_a else None), (kept_or_zero(~(a > b), g) if need_b else None)


@differentiable(elementwise.Clamp)
def _clamp(ctx, g):
    x, lo, hi = ctx.saved
    need_x, need_lo, need_hi = ctx.needs_input_grad
    keep = array_module(x).ones(x.shape, bool)
    if lo is not None:
        keep = keep & (x >= lo)
    if hi is not None:
        keep = keep & (x <= hi)
    return (kept_or_zero(keep, g) if need_x else None), \
        (kept_or_zero(x < lo if hi is None else (x < lo) & (lo < hi), g) if need_lo else None), \
        (kept_or_zero(x > hi if lo is None else (x > hi) | (hi < lo), g) if need_hi else None)


@differentiable(elementwise.Where)
def _where(ctx, g):
    (cond,) = ctx.saved
    _, need_a, need_b = ctx.needs_input_grad
    return None, (ops.where(const(cond), g, 0.0) if need_a else None), \
        (ops.where(const(cond), 0.0, g) if need_b else None)


# unary math: name -> gradient given x (input Tensor), y (output Tensor), g, and the raw saved arrays
_LOG2, _LOG10, _TWO_OVER_SQRT_PI = math.log(2), math.log(10), 2 / math.sqrt(math.pi)
UNARY = {
    "neg": lambda x, y, g, xa, ya: -g,
    "exp": lambda x, y, g, xa, ya: g * y,
    "log": lambda x, y, g, xa, ya: g / x,
    "log1p": lambda x, y, g, xa, ya: g / (1 + x),
    "sqrt": lambda x, y, g, xa, ya: g / (2 * y),
    "rsqrt": lambda x, y, g, xa, ya: -0.5 * g * y * y * y,
    "abs": lambda x, y, g, xa, ya: g * const(array_module(xa).sign(xa)),
    "sign": lambda x, y, g, xa, ya: g * 0,
    "sin": lambda x, y, g, xa, ya: g * ops.cos(x),
    "cos": lambda x, y, g, xa, ya: -g * ops.sin(x),
    "tanh": lambda x, y, g, xa, ya: g * (1 - y * y),
    "sigmoid": lambda x, y, g, xa, ya: g * y * (1 - y),
    "relu": lambda x, y, g, xa, ya: kept_or_zero(~(ya <= 0), g),
    "square": lambda x, y, g, xa, ya: 2 * g * x,
    "reciprocal": lambda x, y, g, xa, ya: -g * y * y,
    "expm1": lambda x, y, g, xa, ya: g * (y + 1),
    "log2": lambda x, y, g, xa, ya: g / (x * _LOG2),
    "log10": lambda x, y, g, xa, ya: g / (x * _LOG10),
    "sinh": lambda x, y, g, xa, ya: g * ops.cosh(x),
    "cosh": lambda x, y, g, xa, ya: g * ops.sinh(x),
    "asin": lambda x, y, g, xa, ya: g / ops.sqrt(1 - x * x),
    "acos": lambda x, y, g, xa, ya: -g / ops.sqrt(1 - x * x),
    "atan": lambda x, y, g, xa, ya: g / (1 + x * x),
    "floor": lambda x, y, g, xa, ya: g * 0,
    "ceil": lambda x, y, g, xa, ya: g * 0,
    "trunc": lambda x, y, g, xa, ya: g * 0,
    "erf": lambda x, y, g, xa, ya: g * _TWO_OVER_SQRT_PI * ops.exp(-x * x),
    "erfc": lambda x, y, g, xa, ya: -g * _TWO_OVER_SQRT_PI * ops.exp(-x * x),
    "erfinv": lambda x, y, g, xa, ya: g * (0.5 * math.sqrt(math.pi)) * ops.exp(ops.erfinv(x) ** 2),
    "lgamma": lambda x, y, g, xa, ya: g * ops.digamma(x),
    "digamma": lambda x, y, g, xa, ya: g * ops.polygamma(1, x),
    "entr": lambda x, y, g, xa, ya: -g * (1 + ops.log(x)),
}


def _unary(ctx, g):
    xa, ya = ctx.saved
    x = None if xa is None else saved_input(ctx, 0, xa)
    y = None if ya is None else saved_output(ctx, ya)
    return UNARY[ctx.op](x, y, g, xa, ya)


_UNARY_CLASSES = {**elementwise.UNARY_OPS, **pointwise.POINTWISE_OPS, **special.SPECIAL_OPS}
for _name in UNARY:
    differentiable(_UNARY_CLASSES[_name][0])(_unary)


@differentiable(special.Polygamma)
def _polygamma(ctx, g):
    return g * ops.polygamma(ctx.n + 1, saved_input(ctx, 0, ctx.saved[0]))


# ---- activations: each from the input alone (a fused CUDA kernel saves only that) --------------------
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class NormalCdf(Function):
    """P(N(0, 1) <= x): the gelu's gate, whose derivative is the normal density."""

    def forward(ctx, x):
        ctx.save(x)
        return act._normal_cdf(array_module(x), x)

    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * _INV_SQRT_2PI * array_module(x).exp(-0.5 * x * x)


@differentiable(NormalCdf)
def _normal_cdf(ctx, g):
    (x,) = saved_inputs(ctx, *ctx.saved)
    return g * _INV_SQRT_2PI * ops.exp(-0.5 * x * x)


def _gelu(x, g, c):
    return g * (NormalCdf.apply(x) + x * _INV_SQRT_2PI * ops.exp(-0.5 * x * x))


def _gelu_tanh(x, g, c):
    th = ops.tanh(act._GELU_K * (x + act._GELU_C * x * x * x))
    return g * (0.5 * (1 + th) + 0.5 * act._GELU_K * x * (1 - th * th) * (1 + 3 * act._GELU_C * x * x))


def _silu(x, g, c):
    s = ops.sigmoid(x)
    return g * s * (1 + x * (1 - s))


def where_positive(x, g, other):
    """g where the input x is positive, else `other` (x's sign a constant of the graph)."""
    return ops.where(const(x.array > 0), g, other)


ACTIVATIONS = {
    act.Gelu: _gelu,
    act.GeluTanh: _gelu_tanh,
    act.Silu: _silu,
    act.LeakyRelu: lambda x, g, c: where_positive(x, g, g * c.negative_slope),
    act.Elu: lambda x, g, c: where_positive(x, g, g * c.alpha * ops.exp(ops.clamp(x, max=0.0))),
    act.Softplus: lambda x, g, c: ops.where(const(x.array * c.beta > c.threshold), g, g * ops.sigmoid(x * c.beta)),
    act.Hardtanh: lambda x, g, c: kept_or_zero(~((x.array <= c.min_val) | (x.array >= c.max_val)), g),
    act.Relu6: lambda x, g, c: kept_or_zero(~((x.array <= c.min_val) | (x.array >= c.max_val)), g),
}


def register_activations(table: dict) -> None:
    """Register the backwards of `table`'s activations: class -> fn(x, g, c), d(output)/d(input) times g, from the
    saved input Tensor x, g and the node's options c."""
    @differentiable(*table)
    def _activation(ctx, g):
        return table[type(ctx)](saved_input(ctx, 0, ctx.saved[0]), g, ctx)


register_activations(ACTIVATIONS)


@differentiable(act.Softmax)
def _softmax(ctx, g):
    y = saved_output(ctx, ctx.saved[0])
    gy = g * y
    return gy - y * gy.sum(dim=ctx.dim, keepdim=True)


differentiable(act.AttentionSoftmax)(_softmax)  # the same backward: a dead row's y is 0


@differentiable(act.LogSoftmax)
def _log_softmax(ctx, g):
    y = saved_output(ctx, ctx.saved[0])
    return g - ops.exp(y) * g.sum(dim=ctx.dim, keepdim=True)


@differentiable(act.Dropout)
def _dropout(ctx, g):
    return g * const(ctx.saved[0])


# ---- reductions ------------------------------------------------------------------------------------------
def _kept(ctx, t: Tensor) -> Tensor:
    """`t`, shaped like the reduction's output, with the reduced dims back as size 1."""
    if ctx.keepdim:
        return t
    return t.reshape(tuple(1 if i in ctx.dims else n for i, n in enumerate(ctx.shape)))


@differentiable(reduce.Sum)
def _sum(ctx, g):
    return _kept(ctx, g).expand(*ctx.shape)


@differentiable(reduce.Mean)
def _mean(ctx, g):
    return (_kept(ctx, g) / ctx.count()).expand(*ctx.shape)


@differentiable(reduce.Amax, reduce.Amin)
def _amax(ctx, g):
    x, y = ctx.saved
    hit = x == ctx.kept(y)
    share = hit / hit.sum(axis=ctx.dims, keepdims=True, dtype=g.array.dtype)
    return _kept(ctx, g) * const(share)


@differentiable(reduce.Max, reduce.Min)
def evenly_distributed(ctx, g):
    """As reduce.evenly_distributed: g split evenly among the elements equal to the result, 0 elsewhere."""
    hit = reduce.hits(*ctx.saved)
    return kept_or_zero(hit, g / const(hit.sum(dtype=g.array.dtype)))


@differentiable(reduce.MaxDim, reduce.MinDim)
def _max_dim(ctx, g):
    if not ctx.shape:
        return g
    d = ctx.dims[0]
    xp = array_module(g.array)
    positions = xp.arange(ctx.shape[d]).reshape((-1,) + (1,) * (len(ctx.shape) - d - 1))
    return kept_or_zero(positions == ctx.index, _kept(ctx, g))


@differentiable(reduce.LogSumExp)
def _logsumexp(ctx, g):
    x, y = ctx.saved
    return _kept(ctx, g) * ops.exp(saved_input(ctx, 0, x) - _kept(ctx, saved_output(ctx, y)))


@differentiable(reduce.Norm)
def _norm(ctx, g):
    xa, ya = ctx.saved
    xp, p = array_module(xa), ctx.p
    a, yk, gk = xp.abs(xa), ctx.kept(ya), _kept(ctx, g)
    sign = const(xp.sign(xa))
    if math.isinf(p):
        hit = a == yk
        return gk * sign * const(hit / hit.sum(axis=ctx.dims, keepdims=True, dtype=xa.dtype))
    if p == 0:
        return g.new_zeros(xa.shape)
    x, y = saved_input(ctx, 0, xa), _kept(ctx, saved_output(ctx, ya))
    if p == 2:  # x / y, and 0 where the whole slice is 0
        return gk * x / ops.where(const(yk > 0), y, 1.0)
    return gk * sign * ops.where(const(a > 0), ops.abs(x), 1.0) ** (p - 1) * \
        ops.where(const(yk > 0), y, 1.0) ** (1 - p)


# ---- shapes ------------------------------------------------------------------------------------------------
@differentiable(shape.Reshape, shape.View, shape.Flatten, shape.Unflatten, shape.Squeeze, shape.Unsqueeze)
def _reshape(ctx, g):
    return g.reshape(ctx.in_shape)


@differentiable(shape.Permute, shape.Transpose, shape.Movedim)
def _permute(ctx, g):
    return g.permute(*sorted(range(len(ctx.perm)), key=ctx.perm.__getitem__))


@differentiable(shape.Repeat)
def _repeat(ctx, g):
    padded = (1,) * (len(ctx.reps) - len(ctx.in_shape)) + tuple(ctx.in_shape)
    interleaved = [v for pair in zip(ctx.reps, padded) for v in pair]
    return g.reshape(interleaved).sum(dim=tuple(range(0, len(interleaved), 2))).reshape(ctx.in_shape)


@differentiable(shape.Cat)
def _cat(ctx, g):
    lead = (slice(None),) * ctx.dim
    bounds = [0, *ctx.offsets, g.shape[ctx.dim]]
    pieces = iter(g[(*lead, slice(lo, hi))] for lo, hi in itertools.pairwise(bounds))
    return tuple(next(pieces) if keep else None for keep in ctx.keep)


@differentiable(shape.Stack)
def _stack(ctx, g):
    lead = (slice(None),) * ctx.dim
    return tuple(g[(*lead, i)] for i in range(g.shape[ctx.dim]))


@differentiable(shape.Flip)
def _flip(ctx, g):
    return ops.flip(g, ctx.dims)


@differentiable(index.MaskedFill)
def _masked_fill(ctx, g):
    (mask,) = ctx.saved
    need_x, _, need_value = ctx.needs_input_grad
    return (ops.where(const(mask), 0.0, g) if need_x else None), None, \
        (ops.where(const(mask), g, 0.0) if need_value else None)


# ---- matrix products ---------------------------------------------------------------------------------
def _sum_to(t: Tensor, shape_: tuple) -> Tensor:
    from engine.autograd.higher import fit

    return fit(t, (tuple(shape_), t.array.dtype))


@differentiable(linalg.Matmul)
def _matmul(ctx, g):
    a, b = saved_inputs(ctx, *ctx.saved)
    need_a, need_b = ctx.needs_input_grad
    sa, sb = ctx.shapes
    if len(sa) == 1 and len(sb) == 1:
        return (g * b if need_a else None), (g * a if need_b else None)
    sa2, sb2 = ((1, *sa) if len(sa) == 1 else sa), ((*sb, 1) if len(sb) == 1 else sb)
    g2 = g
    if len(sa) == 1:
        g2 = g2.unsqueeze(-2)
    if len(sb) == 1:
        g2 = g2.unsqueeze(-1)
    ga = gb = None
    if need_a:
        ga = _sum_to(g2 @ b.reshape(sb2).transpose(-1, -2), sa2).reshape(sa)
    if need_b:
        gb = _sum_to(a.reshape(sa2).transpose(-1, -2) @ g2, sb2).reshape(sb)
    return ga, gb
