"""torch's legacy tensor constructors: `Tensor(2, 3)`, `Tensor([1, 2])`, `FloatTensor(...)`, `LongTensor(...)`.

Old scripts and many reinforcement-learning ports build tensors this way: `torch.Tensor(obs)` turns a float64
observation into float32, `torch.LongTensor([a])` makes an index, `torch.FloatTensor(3)` three uninitialised
values. Each form here gives what torch gives; the typed classes also answer `isinstance(x, FloatTensor)`.
"""

from __future__ import annotations

import numbers

import numpy as np

from engine import backend, dtypes

# the typed constructors torch has, by name, and their dtypes
TYPED = {"FloatTensor": dtypes.float32, "DoubleTensor": dtypes.float64, "HalfTensor": dtypes.float16,
         "LongTensor": dtypes.int64, "IntTensor": dtypes.int32, "ShortTensor": dtypes.int16,
         "CharTensor": dtypes.int8, "ByteTensor": dtypes.uint8, "BoolTensor": dtypes.bool_}


def legacy_array(args: tuple, device, dtype: dtypes.DType, name: str):
    """The array `name(*args, device=device)` holds: zeros of a shape given as integers (or an engine.Size), the
    values of one sequence or array converted to `dtype`, or an empty one for no arguments."""
    from engine.creation import tensor, zeros
    from engine.tensor import Size, Tensor

    dev = backend.device(device if device is not None else "cpu")
    if not args:
        return zeros(0, dtype=dtype, device=dev).array
    if (len(args) == 1 and isinstance(args[0], Size)) or all(_is_size(a) for a in args):
        shape = tuple(args[0]) if isinstance(args[0], Size) else args
        if any(n < 0 for n in shape):
            raise ValueError(f"{name}(): sizes must be non-negative, got {tuple(shape)}")
        return zeros(shape, dtype=dtype, device=dev).array  # "uninitialised": zeros, so nothing random leaks in
    if len(args) > 1:
        raise TypeError(f"{name}(): expected sizes (ints) or one sequence of data, got "
                        f"({', '.join(type(a).__name__ for a in args)})")
    data = args[0]
    if isinstance(data, numbers.Number | np.generic):
        raise TypeError(f"{name}(): data must be a sequence (got {type(data).__name__}); for a scalar use "
                        f"engine.tensor({data!r})")
    if isinstance(data, str | bytes) or not (isinstance(data, list | tuple | Tensor | np.ndarray)
                                             or hasattr(data, "__cuda_array_interface__")):
        raise TypeError(f"{name}(): data must be a sequence or an array, got {type(data).__name__}")
    return tensor(data, dtype=dtype, device=dev).array


def _is_size(a) -> bool:
    return isinstance(a, numbers.Integral) and not isinstance(a, bool | np.bool_)


class _LegacyType(type):
    """The type of the typed constructors: `isinstance(t, engine.FloatTensor)` asks for t's dtype and device."""

    def __instancecheck__(cls, obj) -> bool:
        from engine.tensor import Tensor

        return isinstance(obj, Tensor) and obj.dtype is cls.dtype and obj.device.type == cls.device_type

    def __repr__(cls) -> str:
        return f"<class '{cls.__qualname__}'>"


def _typed(name: str, dtype: dtypes.DType, device_type: str) -> type:
    def __new__(cls, *args, device=None):
        from engine.tensor import Tensor

        if len(args) == 1 and isinstance(args[0], Tensor):  # shares the tensor, of the right type only
            t = args[0]
            if t.dtype is not cls.dtype or t.device.type != cls.device_type:
                raise TypeError(f"{cls.__qualname__}(): expected a tensor of dtype {cls.dtype.name} on "
                                f"{cls.device_type}, got {t.dtype.name} on {t.device}; convert it with .to()")
            return t
        return Tensor._of(legacy_array(args, device if device is not None else device_type, cls.dtype,
                                       cls.__qualname__))

    qualname = name if device_type == "cpu" else f"cuda.{name}"
    return _LegacyType(name, (), {"__new__": __new__, "__qualname__": qualname, "__module__": "engine",
                                  "dtype": dtype, "device_type": device_type,
                                  "__doc__": f"torch.{qualname}: a {dtype.name} tensor on {device_type} "
                                             "(sizes, or data converted)."})


CPU_TYPES = {name: _typed(name, dtype, "cpu") for name, dtype in TYPED.items()}
CUDA_TYPES = {name: _typed(name, dtype, "cuda") for name, dtype in TYPED.items()}


def type_name(t) -> str:
    """A tensor's legacy type name, as Tensor.type() gives it: 'engine.FloatTensor', 'engine.cuda.LongTensor'."""
    for name, dtype in TYPED.items():
        if dtype is t.dtype:
            return f"engine.{'' if t.device.type == 'cpu' else 'cuda.'}{name}"
    return f"engine.{t.dtype.name}"


def converted(t, to):
    """`t.type(to)`: cast to a dtype, a typed constructor (engine.LongTensor, engine.cuda.FloatTensor) or its name
    ('torch.LongTensor', 'engine.cuda.FloatTensor')."""
    if isinstance(to, str):
        parts = to.split(".")
        if parts[0] in ("torch", "engine") and parts[-1] in TYPED and len(parts) in (2, 3):
            to = (CUDA_TYPES if len(parts) == 3 and parts[1] == "cuda" else CPU_TYPES)[parts[-1]]
        elif len(parts) != 2 or parts[0] not in ("torch", "engine"):
            raise ValueError(f"invalid type: {to!r}; expected a name such as 'torch.FloatTensor'")
        else:
            to = dtypes.as_dtype(parts[1])
    if isinstance(to, _LegacyType):
        device = t.device if t.device.type == to.device_type else to.device_type
        return t.to(device=device, dtype=to.dtype)
    return t.to(to)
