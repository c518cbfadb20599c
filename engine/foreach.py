"""torch._foreach_*: one op over each tensor of a list, as exponential moving averages of weights are written
(`torch._foreach_lerp_(ema, params, 1 - decay)`) and as optimizers build their updates.

The engine applies the ordinary op to each tensor in turn (each is recorded as the op it is), so the results,
gradients and errors are those of the op; torch fuses the list into fewer kernels, which is where its speed
comes from. The second operand may be a scalar, a 0-d tensor, or a list (of scalars or tensors) as long as the
first; `alpha` and `value` as torch takes them.
"""

from __future__ import annotations

from collections.abc import Callable

from engine import ops
from engine.tensor import Tensor

UNARY = ("abs", "acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "exp", "expm1", "floor", "frac",
         "lgamma", "log", "log10", "log1p", "log2", "neg", "reciprocal", "round", "rsqrt", "sigmoid", "sign", "sin",
         "sinh", "sqrt", "tan", "tanh", "trunc")
BINARY = ("add", "sub", "mul", "div", "maximum", "minimum", "pow", "clamp_min", "clamp_max")
TERNARY = ("addcmul", "addcdiv", "lerp")


def _tensors(name: str, tensors) -> list[Tensor]:
    if not isinstance(tensors, list | tuple) or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError(f"{name}: expected a list of tensors, got {type(tensors).__name__}")
    return list(tensors)


def _each(name: str, other, n: int) -> list:
    """`other` for each of n tensors: a list as long as theirs, or one scalar / 0-d tensor for all."""
    if isinstance(other, list | tuple):
        if len(other) != n:
            raise RuntimeError(f"{name}: tensor lists must have the same number of tensors, got {n} and {len(other)}")
        return list(other)
    return [other] * n


def _write(x: Tensor, op: str, *args, **kwargs) -> None:
    """x.op_(*args) where the tensor has that in-place method (its direct path under no_grad: no copy), else the
    op's result written into x."""
    method = getattr(x, op + "_", None)
    if method is not None:
        method(*args, **kwargs)
    else:
        x._write(lambda t: getattr(ops, op)(t, *args, **kwargs))


def _unary(op: str, inplace: bool) -> Callable:
    name = f"_foreach_{op}{'_' * inplace}"

    def fn(self):
        xs = _tensors(name, self)
        if inplace:
            for x in xs:
                _write(x, op)
            return xs
        return [getattr(ops, op)(x) for x in xs]

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"{op} of each tensor{', in place' if inplace else ''}, as torch.{name}."
    return fn


def _binary(op: str, inplace: bool) -> Callable:
    name = f"_foreach_{op}{'_' * inplace}"
    scaled = op in ("add", "sub")

    def fn(self, other, *, alpha=None):
        xs = _tensors(name, self)
        others = _each(name, other, len(xs))
        kwargs = {"alpha": alpha} if scaled and alpha is not None else {}  # add/sub check torch's alpha rules
        if inplace:
            for x, o in zip(xs, others):
                _write(x, op, o, **kwargs)
            return xs
        return [getattr(ops, op)(x, o, **kwargs) for x, o in zip(xs, others)]

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"{op} of each tensor with its operand{', in place' if inplace else ''}, as torch.{name}."
    return fn


def _ternary(op: str, inplace: bool) -> Callable:
    name = f"_foreach_{op}{'_' * inplace}"

    def fn(self, tensors1, tensors2=None, value=None, weight=None):
        xs = _tensors(name, self)
        firsts = _tensors(name, tensors1)
        if len(firsts) != len(xs):
            raise RuntimeError(f"{name}: tensor lists must have the same number of tensors, got {len(xs)} and "
                               f"{len(firsts)}")
        if op == "lerp":  # lerp(self, end, weight): the weight comes third, by position or by name
            weights = _each(name, weight if weight is not None else tensors2, len(xs))
            calls = [(f, w) for f, w in zip(firsts, weights)]
            kwargs = [{} for _ in xs]
        else:  # addcmul / addcdiv(self, t1, t2, value=1)
            seconds = _tensors(name, tensors2)
            calls = list(zip(firsts, seconds))
            kwargs = [{"value": v} for v in _each(name, 1 if value is None else value, len(xs))]
        if inplace:
            for x, args, kw in zip(xs, calls, kwargs):
                _write(x, op, *args, **kw)
            return xs
        return [getattr(ops, op)(x, *args, **kw) for x, args, kw in zip(xs, calls, kwargs)]

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"{op} of each tensor{', in place' if inplace else ''}, as torch.{name}."
    return fn


def _foreach_norm(self, ord=2, dtype=None) -> list[Tensor]:
    """The `ord`-norm of each tensor (flattened), as torch._foreach_norm."""
    return [ops.norm(x.flatten() if dtype is None else x.flatten().to(dtype), ord) for x in _tensors(
        "_foreach_norm", self)]


def _foreach_zero_(self) -> list[Tensor]:
    """Fill each tensor with zeros, as torch._foreach_zero_."""
    xs = _tensors("_foreach_zero_", self)
    for x in xs:
        x.zero_()
    return xs


def _foreach_copy_(self, src, non_blocking: bool = False) -> list[Tensor]:
    """Copy each tensor of `src` into its counterpart, as torch._foreach_copy_."""
    xs = _tensors("_foreach_copy_", self)
    for x, s in zip(xs, _each("_foreach_copy_", _tensors("_foreach_copy_", src), len(xs))):
        x.copy_(s)
    return xs


def _foreach_clone(self) -> list[Tensor]:
    """A clone of each tensor, as torch._foreach_clone."""
    return [x.clone() for x in _tensors("_foreach_clone", self)]


FOREACH = {f.__name__: f for f in (_foreach_norm, _foreach_zero_, _foreach_copy_, _foreach_clone)}
for _op in UNARY:
    for _inplace in (False, True):
        FOREACH[f"_foreach_{_op}{'_' * _inplace}"] = _unary(_op, _inplace)
for _make, _names in ((_binary, BINARY), (_ternary, TERNARY)):
    for _op in _names:
        for _inplace in (False, True):
            FOREACH[f"_foreach_{_op}{'_' * _inplace}"] = _make(_op, _inplace)
