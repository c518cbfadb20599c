"""Binds the op functions to Tensor as methods and operators (one table, no wrappers)."""

from __future__ import annotations

from engine import ops

# Functions whose first argument is the tensor: bound as `tensor.name(...)` unchanged.
METHODS = (
    "add", "sub", "mul", "div", "pow", "matmul", "maximum", "minimum", "neg", "exp", "log", "log1p", "sqrt",
    "rsqrt", "abs", "sign", "sin", "cos", "tanh", "sigmoid", "relu", "square", "reciprocal", "clamp",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "isnan", "isinf", "isfinite",
    "sum", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin", "logsumexp", "prod",
    "norm", "all", "any", "softmax", "log_softmax", "cumsum",
    "reshape", "view", "transpose", "permute", "flatten", "unflatten", "squeeze", "unsqueeze", "expand",
    "expand_as", "view_as", "reshape_as", "repeat", "split", "chunk", "flip", "roll", "swapaxes", "movedim",
    "gather", "scatter_add", "index_select", "masked_fill",
)
ALIASES = {"clip": "clamp", "multiply": "mul", "subtract": "sub", "divide": "div", "true_divide": "div",
           "negative": "neg", "absolute": "abs", "swapdims": "transpose", "moveaxis": "movedim",
           "greater": "gt", "less": "lt", "greater_equal": "ge", "less_equal": "le", "not_equal": "ne"}
# In-place variants `name_`: computed out of place, then written into the tensor's storage.
INPLACE = ("add", "sub", "mul", "div", "pow", "clamp", "neg", "exp", "log", "sqrt", "abs", "sigmoid", "tanh",
           "relu", "masked_fill", "scatter_add", "sign", "sin", "cos", "square", "reciprocal")
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
    ("__and__", "logical_and", "__rand__", None),
    ("__or__", "logical_or", "__ror__", None),
    ("__xor__", "logical_xor", "__rxor__", None),
)


def _reflected(fn):
    return lambda self, other: fn(other, self)


def _inplace(fn):
    def method(self, *args, **kwargs):
        return self._write(lambda t: fn(t, *args, **kwargs))

    method.__doc__ = f"In-place {fn.__name__}: changes this tensor and bumps its version."
    return method


def install() -> None:
    """Attach every method, alias and operator to the Tensor class."""
    from engine import tensor as tensor_module

    tensor_module._ops = ops
    cls = tensor_module.Tensor
    for name in METHODS:
        if hasattr(ops, name):  # INTEGRATION-TODO: strict once all op files exist
            setattr(cls, name, getattr(ops, name))
    for alias, name in ALIASES.items():
        if hasattr(ops, name):
            setattr(cls, alias, getattr(ops, name))
    for name in INPLACE:
        if not hasattr(ops, name):  # INTEGRATION-TODO
            continue
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
    cls.__invert__ = ops.logical_not
    cls.__getitem__ = getattr(ops, "getitem", None)  # INTEGRATION-TODO
    cls.__hash__ = lambda self: id(self)
    cls.fill_ = lambda self, value: self._write(lambda t: ops.full_like(t, value), check_leaf=True)
    cls.copy_ = lambda self, src: self._write(
        lambda t: ops.expand(ops.cast(ops.to_device(src, t.device), t.dtype), t.shape))
    cls.normal_ = lambda self, mean=0.0, std=1.0: self._write(lambda t: ops.randn_like(t) * std + mean)
    cls.uniform_ = lambda self, a=0.0, b=1.0: self._write(lambda t: ops.rand_like(t) * (b - a) + a)
