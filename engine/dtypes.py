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

float16 = DType("float16", np.float16, FLOAT)
float32 = DType("float32", np.float32, FLOAT)
float64 = DType("float64", np.float64, FLOAT)
uint8 = DType("uint8", np.uint8, INT)
int8 = DType("int8", np.int8, INT)
int16 = DType("int16", np.int16, INT)
int32 = DType("int32", np.int32, INT)
int64 = DType("int64", np.int64, INT)
bool_ = DType("bool", np.bool_, BOOL)



class _Absent(DType):
    """A dtype torch has that the engine does not: numpy, its CPU array library, has no bfloat16. It can be named,
    so `autocast(..., dtype=engine.bfloat16)` turns itself off with torch's warning and `finfo` answers, but no
    tensor holds it: asking for one says so."""

    __slots__ = ()

    def __init__(self, name: str, itemsize: int) -> None:
        self.name, self.np, self.itemsize, self.category, self.is_floating_point = name, None, itemsize, FLOAT, True

    def __reduce__(self):
        return (_absent, (self.name,))


bfloat16 = _Absent("bfloat16", 2)
_ABSENT = {"bfloat16": bfloat16}


def _absent(name: str) -> DType:
    return _ABSENT[name]


def refuse_absent(dtype: DType):
    raise TypeError(f"{dtype!r} is not supported: numpy, which holds the engine's values, has no {dtype.name}; use "
                    "engine.float16 or engine.float32")


ALL = (float16, float32, float64, uint8, int8, int16, int32, int64, bool_)
_BY_NP = {d.np: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL} | {"half": float16, "float": float32, "double": float64, "short": int16,
                                       "int": int32, "long": int64}
_SUPPORTED = ", ".join(d.name for d in ALL)

default_float = float32
default_int = int64


def _lookup(name: str) -> DType:
    return _BY_NAME[name]


def from_numpy(np_dtype) -> DType:
    """The engine dtype of a numpy dtype; one the engine lacks (uint16, complex, bfloat16...) is refused."""
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
        return dtype if dtype.np is not None else refuse_absent(dtype)
    if dtype is float:  # a Python float is a double, in PyTorch too
        return float64
    if dtype is int:
        return default_int
    if dtype is bool:
        return bool_
    if isinstance(dtype, str) and dtype in _BY_NAME:
        return _BY_NAME[dtype]
    if isinstance(dtype, str) and dtype in _ABSENT:
        refuse_absent(_ABSENT[dtype])
    try:
        return from_numpy(np.dtype(dtype))
    except TypeError as err:
        raise TypeError(f"unknown dtype {dtype!r}; the engine supports {_SUPPORTED}") from err


def wider(a: DType, b: DType) -> DType:
    """The smallest dtype that holds both, as PyTorch's `promote_types` gives it.

    Booleans sit below integers and integers below floats; within a category the wider type wins,
    except that uint8 and int8 hold each other's values only in int16."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    if a.category == INT and uint8 in (a, b):
        signed = b if a is uint8 else a
        return int16 if signed is int8 else signed
    return a if a.itemsize >= b.itemsize else b


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
