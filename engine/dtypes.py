"""Engine dtypes and PyTorch's type-promotion rules."""

from __future__ import annotations

import numpy as np


class DType:
    """A tensor element type: a thin, comparable wrapper around a numpy dtype."""

    __slots__ = ("category", "is_floating_point", "itemsize", "name", "np")

    def __init__(self, name: str, np_dtype: type, category: int) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize
        self.category = category  # 0 bool, 1 integer, 2 floating point
        self.is_floating_point = category == 2

    def __repr__(self) -> str:
        return f"engine.{self.name}"

    def __reduce__(self):  # dtypes are singletons, also across copy/deepcopy
        return (_lookup, (self.name,))


BOOL, INT, FLOAT = 0, 1, 2

float32 = DType("float32", np.float32, FLOAT)
float64 = DType("float64", np.float64, FLOAT)
int64 = DType("int64", np.int64, INT)
int32 = DType("int32", np.int32, INT)
bool_ = DType("bool", np.bool_, BOOL)

ALL = (float32, float64, int64, int32, bool_)
_BY_NP = {d.np: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL} | {"float": float32, "double": float64, "long": int64, "int": int32}
_SUPPORTED = ", ".join(d.name for d in ALL)

default_float = float32
default_int = int64


def _lookup(name: str) -> DType:
    return _BY_NAME[name]


def from_numpy(np_dtype) -> DType:
    """The engine dtype of a numpy dtype; floats narrower than 32 bits and unsigned ints are refused."""
    d = _BY_NP.get(np_dtype)
    if d is not None:
        return d
    d = _BY_NP.get(np.dtype(np_dtype))
    if d is None:
        raise TypeError(f"unsupported dtype {np.dtype(np_dtype)}; the engine supports {_SUPPORTED}")
    return d


def as_dtype(dtype) -> DType:
    """Turn an engine dtype, a numpy dtype, a name or a Python type into an engine dtype."""
    if isinstance(dtype, DType):
        return dtype
    if dtype is float:  # a Python float is a double, in PyTorch too
        return float64
    if dtype is int:
        return default_int
    if dtype is bool:
        return bool_
    if isinstance(dtype, str) and dtype in _BY_NAME:
        return _BY_NAME[dtype]
    try:
        return from_numpy(np.dtype(dtype))
    except TypeError as err:
        raise TypeError(f"unknown dtype {dtype!r}; the engine supports {_SUPPORTED}") from err


# Lattice of the five dtypes: the smallest type holding both. Booleans sit below integers,
# integers below floats; within a category the wider type wins (as in PyTorch).
_RANK = {bool_: 0, int32: 1, int64: 2, float32: 3, float64: 4}


def wider(a: DType, b: DType) -> DType:
    """The dtype that holds both (PyTorch's `promote_types` on the engine's five dtypes)."""
    return a if _RANK[a] >= _RANK[b] else b



def scalar_category(x) -> int:
    """The category of a Python scalar (bool, int or float)."""
    if isinstance(x, bool):
        return BOOL
    if isinstance(x, int):
        return INT
    if isinstance(x, float):
        return FLOAT
    raise TypeError(f"expected a Tensor or a Python number, got {type(x).__name__}")


def result_type(dims: list[DType], zero_dims: list[DType], scalars: list) -> DType:
    """PyTorch's promotion: dimensioned tensors, then 0-dim tensors, then Python scalars.

    A lower-priority group only changes the result when its category is higher
    (an int64 0-dim tensor does not widen an int32 tensor; a float scalar makes an int tensor float32).
    """
    result = None
    for group in (dims, zero_dims):
        if not group:
            continue
        g = group[0]
        for d in group[1:]:
            g = wider(g, d)
        if result is None or g.category > result.category:
            result = g
    for s in scalars:
        cat = scalar_category(s)
        if result is None or cat > result.category:
            result = (bool_, default_int, default_float)[cat]
    return result
