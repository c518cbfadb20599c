"""Binds the op functions to Tensor as methods and operators (one table, no wrappers)."""

from __future__ import annotations

from engine import creation, ops
from engine.autograd.function import ShapeError
from engine.autograd.function import _emit_op as emit_op
from engine.autograd.grad_mode import state as grad_state
from engine.backend import array_module, to_device
from engine.events import hub, next_tensor_id
from engine.ops import elementwise, view_write
from engine.tensor_props import install as install_props

# Functions whose first argument is the tensor: bound as `tensor.name(...)` unchanged.
METHODS = (
    "add", "sub", "mul", "div", "pow", "matmul", "maximum", "minimum", "neg", "exp", "log", "log1p", "sqrt",
    "rsqrt", "abs", "sign", "sin", "cos", "tanh", "sigmoid", "relu", "square", "reciprocal", "clamp",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "isnan", "isinf", "isfinite",
    "sum", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin", "logsumexp", "prod",
    "norm", "all", "any", "softmax", "log_softmax", "cumsum",
    "reshape", "view", "transpose", "permute", "flatten", "unflatten", "squeeze", "unsqueeze", "expand",
    "expand_as", "view_as", "reshape_as", "repeat", "split", "chunk", "flip", "roll", "swapaxes", "movedim",
    "gather", "scatter", "scatter_add", "scatter_reduce", "index_add", "index_fill", "index_select", "masked_fill",
    "masked_select", "unbind", "select", "narrow", "sort", "argsort", "topk", "tril", "triu", "mm", "bmm",
    "remainder", "lerp", "addcmul", "addcdiv",
    "round", "floor", "ceil", "trunc", "fix", "erf", "nan_to_num", "atan2", "fmod", "outer", "addmm",
    "repeat_interleave", "diff", "median", "isclose", "allclose", "equal", "nonzero", "argwhere", "count_nonzero",
    "unique", "bincount", "floor_divide", "logical_and", "logical_or", "logical_xor", "clamp_min", "clamp_max",
    "expm1", "log2", "log10", "sinh", "cosh", "asin", "acos", "atan", "dot", "mv", "broadcast_to", "tile",
    "erfc", "erfinv", "lgamma", "digamma", "xlogy", "logit", "mvlgamma", "diagonal", "diag", "diag_embed",
    "inverse", "det", "slogdet", "logdet", "cholesky", "nansum", "nanmean", "nanmedian", "i0",
    "cumprod", "cummax", "cummin", "logcumsumexp", "take_along_dim", "histc", "kthvalue", "mode", "quantile",
    "nanquantile",
    "kron", "cross", "trace", "rot90", "logaddexp", "logaddexp2", "hypot", "copysign", "nextafter", "frexp", "ldexp",
    "renorm",
    "matrix_exp",
    "tan", "asinh", "acosh", "atanh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "exp2", "frac",
    "sgn", "signbit", "sinc", "rad2deg", "deg2rad", "float_power", "positive", "heaviside", "fmax", "fmin", "gcd",
    "lcm", "isposinf", "isneginf", "isreal", "igamma", "igammac", "bitwise_and", "bitwise_or", "bitwise_xor",
    "bitwise_not", "bitwise_left_shift", "bitwise_right_shift",
    "aminmax", "cov", "corrcoef", "dist", "inner", "vdot", "addr", "addmv", "addbmm", "baddbmm", "matrix_power",
    "pinverse", "svd", "qr", "cholesky_solve", "cholesky_inverse", "triangular_solve", "histogram", "lu", "lu_solve",
    "hsplit", "vsplit", "dsplit", "tensor_split", "split_with_sizes", "unsafe_chunk", "unsafe_split", "ravel",
    "take", "put", "diagflat", "fliplr", "flipud", "msort", "unique_consecutive", "narrow_copy", "select_scatter",
    "slice_scatter", "diagonal_scatter", "index_copy", "index_put", "index_put_", "index_reduce", "masked_scatter",
)
ALIASES = {"clip": "clamp", "multiply": "mul", "subtract": "sub", "divide": "div", "true_divide": "div",
           "negative": "neg", "absolute": "abs", "swapdims": "transpose", "moveaxis": "movedim",
           "greater": "gt", "less": "lt", "greater_equal": "ge", "less_equal": "le", "not_equal": "ne",
           "arctan2": "atan2", "ger": "outer"}
# In-place variants `name_`: computed out of place, then written into the tensor's storage.
INPLACE = ("add", "sub", "mul", "div", "pow", "clamp", "neg", "exp", "log", "sqrt", "abs", "sigmoid", "tanh",
           "relu", "masked_fill", "scatter", "scatter_add", "scatter_reduce", "index_add", "index_fill", "tril",
           "triu", "sign", "sin", "cos", "square", "reciprocal", "remainder", "lerp", "addcmul", "addcdiv",
           "round", "floor", "ceil", "trunc", "fix", "erf", "nan_to_num", "atan2", "fmod", "addmm", "clamp_min",
           "clamp_max", "expm1", "log2", "log10", "erfc", "erfinv", "lgamma", "digamma", "xlogy", "logit", "i0",
           "cumprod",
           "sinh", "cosh", "asin", "acos", "atan", "rsqrt", "log1p", "tan", "asinh", "acosh", "atanh", "arcsin",
           "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "arctan2", "exp2", "frac", "sgn", "sinc", "deg2rad",
           "rad2deg",
           "eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal",
           "logical_and", "logical_or", "logical_xor", "logical_not", "clip", "absolute", "negative", "multiply",
           "subtract", "divide", "true_divide", "heaviside", "gcd", "lcm", "igamma", "igammac", "bitwise_and",
           "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift", "bitwise_right_shift", "floor_divide",
           "cumsum", "mvlgamma",
           "put", "index_copy", "index_reduce", "masked_scatter",
           "hypot", "copysign", "nextafter", "ldexp", "renorm",
           "addr", "addmv", "addbmm", "baddbmm")
# Operators: (dunder, function, reflected dunder or None, in-place dunder or None)
OPERATORS = (
    ("__add__", "add", "__radd__", "__iadd__"),
    ("__sub__", "sub", "__rsub__", "__isub__"),
    ("__mul__", "mul", "__rmul__", "__imul__"),
    ("__truediv__", "div", "__rtruediv__", "__itruediv__"),
    ("__pow__", "pow", "__rpow__", "__ipow__"),
    ("__matmul__", "matmul", "__rmatmul__", None),
    ("__floordiv__", "floor_divide", "__rfloordiv__", None),
    ("__mod__", "remainder", "__rmod__", None),
    ("__eq__", "eq", None, None),
    ("__ne__", "ne", None, None),
    ("__lt__", "lt", None, None),
    ("__le__", "le", None, None),
    ("__gt__", "gt", None, None),
    ("__ge__", "ge", None, None),
    ("__and__", "bitwise_and", "__rand__", "__iand__"),
    ("__or__", "bitwise_or", "__ror__", "__ior__"),
    ("__xor__", "bitwise_xor", "__rxor__", "__ixor__"),
    ("__lshift__", "bitwise_left_shift", "__rlshift__", "__ilshift__"),
    ("__rshift__", "bitwise_right_shift", "__rrshift__", "__irshift__"),
)


def _reflected(fn):
    return lambda self, other: fn(other, self)


# Arithmetic that may run straight into the tensor's storage when nothing is recorded.
_UFUNCS = {"add": ("add", elementwise.Add), "sub": ("subtract", elementwise.Sub),
           "mul": ("multiply", elementwise.Mul), "div": ("true_divide", elementwise.Div)}


def _inplace(fn):
    ufunc, op_class = _UFUNCS.get(fn.__name__, (None, None))

    def method(self, *args, **kwargs):
        if ufunc is not None and not kwargs and len(args) == 1 and _direct(self, args[0]):
            # optimizer-style updates (`p -= lr * g` under no_grad): no temporary, no copy
            other = args[0]
            is_tensor = isinstance(other, Tensor)
            xp = array_module(self.array)
            getattr(xp, ufunc)(self.array, other.array if is_tensor else other, out=self.array)
            self._vc[0] += 1
            if hub.active:  # the written value is a new tensor value: it gets a new id
                inputs = (self, other) if is_tensor else (self,)
                ids = tuple(t.id for t in inputs)
                self._id = next_tensor_id()
                emit_op(op_class, inputs, self, None, ids)
            return self
        return self._write(lambda t: fn(t, *args, **kwargs))

    method.__doc__ = f"In-place {fn.__name__}: changes this tensor and bumps its version."
    return method


def _direct(self, other) -> bool:
    """True when an in-place op can skip the graph: nothing recorded, nobody listening, same dtype."""
    if self.array.dtype.kind != "f" or 0 in self.array.strides:  # an expanded view: _write says what is wrong
        return False
    if isinstance(other, Tensor):
        if other.array.dtype != self.array.dtype or other.array.__class__ is not self.array.__class__ \
                or other.array.shape != self.array.shape:
            return False
        if grad_state.enabled and other.requires_grad:
            return False
        if view_write.shares_elements(self.array):
            return False  # unfold's windows, each changed by its own value: _write keeps the changes, not old values
    elif not isinstance(other, int | float) or isinstance(other, bool):
        return False
    return not (grad_state.enabled and self.requires_grad)


def _copy(self, src) -> Tensor:
    """Copy `src` into this tensor (moved to its device, cast to its dtype, broadcast to its shape)."""
    if self.requires_grad and self.grad_fn is None and not grad_state.enabled and isinstance(src, Tensor):
        # a parameter set under no_grad: torch's graph keeps it a leaf, with no node for the copy, so no op event
        # names the new value either (an "expand" of the source did, and the graph drew the parameter as that
        # op's output, with no gradient to show): it stays the parameter, with a new id as after fill_
        return self._write(lambda t: Tensor._of(_copied(src, t)))
    return self._write(lambda t: _written(src, t), replaces=True)


def _fill(self, value) -> Tensor:
    """Fill this tensor with `value`: a number, or a 0-d tensor (which gets the sum of the gradient)."""
    if not isinstance(value, Tensor):
        return self._write(lambda t: ops.full_like(t, value))
    if value.ndim:
        raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} "
                           "dimensions.")
    return self._write(lambda t: _written(value, t), replaces=True)


def _written(src: Tensor, t: Tensor) -> Tensor:
    """`src` as copy_ and fill_ write it into `t`, differentiably: on t's device, in its dtype, in its shape."""
    return ops.expand(ops.cast(ops.to_device(src, t.device), t.dtype), t.shape)


def _copied(src: Tensor, t: Tensor):
    """`src`'s array as copy_ writes it into `t`: on t's device, in its dtype, broadcast to its shape."""
    a = to_device(src.array, t.device).astype(t.array.dtype, copy=False)
    try:
        return array_module(a).broadcast_to(a, t.shape)
    except ValueError:
        raise ShapeError(f"copy_: a source of shape {tuple(src.shape)} cannot be broadcast to the shape "
                         f"{tuple(t.shape)} of the tensor copied into") from None


from engine import tensor as tensor_module  # noqa: E402
from engine.tensor import Tensor  # noqa: E402


def install() -> None:
    """Attach every method, alias and operator to the Tensor class."""
    tensor_module._ops = ops
    tensor_module._view_write = view_write
    cls = tensor_module.Tensor
    for name in METHODS:
        setattr(cls, name, getattr(ops, name))
    for alias, name in ALIASES.items():
        if hasattr(ops, name):
            setattr(cls, alias, getattr(ops, name))
    for name in INPLACE:
        setattr(cls, name + "_", _inplace(getattr(ops, name)))
    for dunder, name, reflected, inplace in OPERATORS:
        fn = getattr(ops, name)
        setattr(cls, dunder, fn)
        if reflected:
            setattr(cls, reflected, _reflected(fn))
        if inplace:
            setattr(cls, inplace, _inplace(fn))
    cls.__neg__ = ops.neg
    cls.__abs__ = ops.abs
    cls.__invert__ = ops.bitwise.invert
    cls.__pos__ = ops.positive
    cls.float_power_ = ops.pointwise_port.float_power_inplace
    cls.__getitem__ = ops.getitem
    cls.__hash__ = lambda self: id(self)
    for name in ("new_tensor", "new_full", "new_zeros", "new_ones", "new_empty"):
        setattr(cls, name, getattr(creation, name))
    cls.type_as = lambda self, other: self.to(dtype=other.dtype)
    cls.where = lambda self, condition, other: ops.where(condition, self, other)
    cls.polygamma = lambda self, n: ops.polygamma(n, self)
    cls.polygamma_ = lambda self, n: self._write(lambda t: ops.polygamma(n, t))
    cls.fill_ = _fill
    cls.copy_ = _copy
    for name in ("normal", "uniform", "bernoulli", "exponential", "geometric", "log_normal", "cauchy", "random"):
        setattr(cls, name + "_", _sampler(getattr(creation, name + "_like")))
    cls.bernoulli = lambda self, p=None, *, generator=None: creation.bernoulli(self, p, generator=generator)
    cls.multinomial = creation.multinomial
    install_props(cls)


def _sampler(draw):
    def method(self, *args, generator=None, **kwargs):
        return self._write(lambda t: draw(t, *args, generator=generator, **kwargs))

    method.__doc__ = f"Fill this tensor with samples ({draw.__doc__})"
    return method
