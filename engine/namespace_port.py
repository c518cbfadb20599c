"""torch's namespace utilities that ported scripts use: constants, dtype facts and promotion, small tensor
queries, `asarray`, `scalar_tensor`, `empty_strided`, the deprecated `range`, and the default dtype.

The process-wide switches (threads, determinism, anomaly mode, print options...) are in engine.switches;
both reach the engine namespace through `from engine.namespace_port import *`.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from engine import backend, creation, dtypes, legacy
from engine.autograd.function import promoted_dtype
from engine.dtypes import DType
from engine.switches import *  # noqa: F403
from engine.switches import __all__ as _SWITCHES
from engine.tensor import Tensor
from engine.tensor_props import check_strided

pi = math.pi
e = math.e
inf = math.inf
nan = math.nan
newaxis = None


def _tensor_arg(op: str, name: str, position: int, value) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}(): argument '{name}' (position {position}) must be Tensor, not {type(value).__name__}")
    return value


def _dtype_arg(op: str, name: str, position: int, value) -> DType:
    """An engine dtype, or a Python type torch also takes for one (float is float64, int is int64)."""
    if isinstance(value, DType) or value in (float, int, bool):
        return dtypes.as_dtype(value)
    raise TypeError(f"{op}(): argument '{name}' (position {position}) must be engine.dtype, "
                    f"not {type(value).__name__}")


# ---- dtype facts -----------------------------------------------------------------------------------------
# bfloat16's limits (8 bits of significand), as torch.finfo(torch.bfloat16) gives them
_BFLOAT16 = {"bits": 16, "eps": 2.0 ** -7, "max": 3.3895313892515355e38, "min": -3.3895313892515355e38,
             "tiny": 1.1754943508222875e-38, "smallest_normal": 1.1754943508222875e-38, "resolution": 0.01,
             "dtype": "bfloat16"}


class finfo:
    """Machine limits of a floating-point dtype (the default dtype when none is given), as torch.finfo."""

    def __init__(self, type: DType | None = None) -> None:
        if type is dtypes.bfloat16:  # no tensor holds it, but masks are built from its limits (finfo(dtype).min)
            self.__dict__.update(_BFLOAT16)
            return
        d = dtypes.default_float if type is None else _dtype_arg("finfo", "type", 1, type)
        if not d.is_floating_point:
            raise TypeError(f"engine.finfo() requires a floating point dtype, got {d}; use engine.iinfo for it")
        info = np.finfo(d.np)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = float(info.tiny)
        self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)  # a Python float: numpy keeps it in the dtype
        self.dtype = d.name

    def __eq__(self, other) -> bool:
        return isinstance(other, finfo) and self.dtype == other.dtype

    def __hash__(self) -> int:
        return hash(("finfo", self.dtype))

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype, as torch.iinfo."""

    def __init__(self, type: DType) -> None:
        d = _dtype_arg("iinfo", "type", 1, type)
        if d is dtypes.bool_:
            raise TypeError("engine.bool is not supported by engine.iinfo")
        if d.is_floating_point:
            raise TypeError(f"engine.iinfo() requires an integer dtype, got {d}; use engine.finfo for it")
        info = np.iinfo(d.np)
        self.bits = int(info.bits)
        self.max = int(info.max)
        self.min = int(info.min)
        self.dtype = d.name

    def __eq__(self, other) -> bool:
        return isinstance(other, iinfo) and self.dtype == other.dtype

    def __hash__(self) -> int:
        return hash(("iinfo", self.dtype))

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


def result_type(tensor1, tensor2) -> DType:
    """The dtype an arithmetic op on these two (tensors or Python numbers) gives, as torch.result_type."""
    args = []
    for a in (tensor1, tensor2):
        if isinstance(a, np.generic):
            a = a.item()
        if not isinstance(a, Tensor | numbers.Real):
            raise TypeError(f"result_type(): expected a Tensor or a Number for each argument, got "
                            f"({type(tensor1).__name__}, {type(tensor2).__name__})")
        args.append(a)
    return promoted_dtype(*args)


def promote_types(type1: DType, type2: DType) -> DType:
    """The smallest dtype of the higher kind that holds both, as torch.promote_types."""
    return dtypes.wider(_dtype_arg("promote_types", "type1", 1, type1), _dtype_arg("promote_types", "type2", 2, type2))


def can_cast(from_: DType, to: DType) -> bool:
    """Whether torch's casting rules allow `from_` to `to`: never to a lower kind (float to int, int to bool)."""
    return _dtype_arg("can_cast", "from_", 1, from_).category <= _dtype_arg("can_cast", "to", 2, to).category


def get_default_dtype() -> DType:
    """The dtype of floating tensors made from Python floats, random draws and new layers' parameters."""
    return dtypes.default_float


def set_default_dtype(d: DType, /) -> None:
    """Make `d` (engine.float32 or engine.float64) the default floating dtype, as torch.set_default_dtype."""
    if not isinstance(d, DType) or not d.is_floating_point:
        raise TypeError("invalid dtype object: only floating-point types are supported as the default type"
                        if not isinstance(d, DType) else "only floating-point types are supported as the default type")
    if d not in (dtypes.float32, dtypes.float64):
        raise TypeError(f"only float32 and float64 are supported as the engine's default type, not {d.name} "
                        "(PyTorch also takes float16); pass dtype= where half precision is wanted")
    dtypes.default_float = d


# ---- queries on tensors ----------------------------------------------------------------------------------
def is_signed(input: Tensor) -> bool:
    """True unless the dtype is bool or uint8, as torch.is_signed."""
    return _tensor_arg("is_signed", "input", 1, input).is_signed()


def is_complex(input: Tensor) -> bool:
    """False: the engine has no complex dtypes."""
    return _tensor_arg("is_complex", "input", 1, input).is_complex()


def is_inference(input: Tensor) -> bool:
    """Whether `input` was made in engine.inference_mode (or is a view of such a tensor), as torch.is_inference."""
    return _tensor_arg("is_inference", "input", 1, input).is_inference()


def is_nonzero(input: Tensor) -> bool:
    """Whether a one-element tensor is nonzero (NaN counts as nonzero), as torch.is_nonzero."""
    n = _tensor_arg("is_nonzero", "input", 1, input).numel()
    if n != 1:
        raise RuntimeError(f"Boolean value of Tensor with {'no values' if n == 0 else 'more than one value'} "
                           "is ambiguous")
    return bool(input.item())


def is_same_size(input: Tensor, other: Tensor) -> bool:
    """Whether two tensors have the same shape."""
    return _tensor_arg("is_same_size", "input", 1, input).shape == _tensor_arg("is_same_size", "other", 2, other).shape


def typename(obj, /) -> str:
    """A tensor's legacy type name ('engine.FloatTensor', 'engine.cuda.LongTensor') or an object's dotted name."""
    if isinstance(obj, Tensor):
        return legacy.type_name(obj)
    module = getattr(obj, "__module__", "") or ""
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if qualname is None:
        module, qualname = obj.__class__.__module__ or "", obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"


def detach(input: Tensor) -> Tensor:
    """input.detach(): the same data, cut from the graph."""
    return _tensor_arg("detach", "input", 1, input).detach()


def detach_(input: Tensor) -> Tensor:
    """input.detach_(): cut `input` itself from the graph."""
    return _tensor_arg("detach_", "input", 1, input).detach_()


# ---- making tensors --------------------------------------------------------------------------------------
def scalar_tensor(s, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                  pin_memory: bool = False) -> Tensor:
    """A 0-d tensor holding the number `s`, in the default floating dtype unless `dtype` is given."""
    if isinstance(s, Tensor) and s.ndim == 0:  # a one-element tensor of more dims is refused, as by torch
        s = s.item()
    if not isinstance(s, numbers.Number) or isinstance(s, complex):
        raise TypeError(f"scalar_tensor(): argument 's' (position 1) must be Number, not {type(s).__name__}")
    return creation.tensor(s, dtype=dtype or dtypes.default_float, device=device, requires_grad=requires_grad)


def asarray(obj, *, dtype=None, device=None, copy: bool | None = None, requires_grad: bool | None = None) -> Tensor:
    """`obj` as a tensor, sharing memory with a tensor or array when dtype and device allow (copy=False insists,
    copy=True never shares), as torch.asarray; a tensor keeps its graph and, by default, its requires_grad."""
    dt = None if dtype is None else dtypes.as_dtype(dtype)
    dev = None if device is None else backend.device(device)
    if isinstance(obj, Tensor):
        out = obj
        if dt is not None and dt is not obj.dtype:
            _refuse_alias(copy, f"can't alias tensor with dtype {obj.dtype.name} into dtype {dt.name}")
            out = out.to(dt)
        if dev is not None and dev != out.device:
            _refuse_alias(copy, f"can't alias tensor on {out.device} into a tensor on {dev}")
            out = out.to(dev)
        if copy and out is obj:
            out = obj.clone()
    elif isinstance(obj, np.ndarray) or hasattr(obj, "__cuda_array_interface__"):
        same = (dt is None or dt.np == obj.dtype) and (dev is None or dev == backend.device_of(obj))
        if same and not copy:
            out = Tensor._of(obj)
        else:
            _refuse_alias(copy, f"can't alias an array of dtype {obj.dtype} on {backend.device_of(obj)} into "
                                f"dtype {(dt or dtypes.from_numpy(obj.dtype)).name} on {dev or backend.device_of(obj)}")
            out = creation.tensor(obj, dtype=dt, device=dev)
    else:
        if copy is False:
            raise (RuntimeError if isinstance(obj, np.generic) else ValueError)(
                "can't alias NumPy scalars; remove copy=False or pass an ndarray" if isinstance(obj, np.generic)
                else "can't alias arbitrary sequence into a tensor.")
        out = creation.tensor(obj, dtype=dt, device=dev)
    if requires_grad is not None and bool(requires_grad) != out.requires_grad:
        if requires_grad or out.grad_fn is None:
            out.requires_grad_(bool(requires_grad))  # a leaf changes in place, the argument itself too (as torch)
        else:
            out = out.detach()
    return out


def _refuse_alias(copy, message: str) -> None:
    if copy is False:
        raise ValueError(message)


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                  pin_memory: bool = False) -> Tensor:
    """An uninitialised tensor of `size`, as torch.empty_strided; the engine's arrays are C-ordered, so the
    strides are checked and then ignored (stride() gives the contiguous ones)."""
    shape = check_strided("empty_strided", size, stride)
    return creation.empty(shape, dtype=dtype, device=device, requires_grad=requires_grad)


_RANGE_WARNING = ("engine.range is deprecated and will be removed in a future release because its behavior is "
                  "inconsistent with Python's range builtin. Instead, use engine.arange, which produces values in "
                  "[start, end).")


def range(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from `start` to `end` INCLUDED by `step`, in the default floating dtype: torch's deprecated range."""
    if end is None:
        raise TypeError('range() missing 1 required positional arguments: "end"')
    warnings.warn(_RANGE_WARNING, UserWarning, stacklevel=2)
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    n = math.floor((end - start) / step) + 1
    values = start + step * np.arange(n, dtype=np.float64)
    return creation.tensor(values, dtype=dtype or dtypes.default_float, device=device, requires_grad=requires_grad)


def compile(model=None, **options):
    """torch.compile, as the engine runs it: `model` itself, unchanged (also as `@engine.compile(...)`). The engine
    runs every op eagerly so that the debugger sees each one; the options (mode, backend, fullgraph...) are
    accepted and change nothing."""
    if model is None:
        return lambda fn: fn
    if not callable(model):
        raise TypeError(f"compile: expected a module or a function, got {type(model).__name__}")
    return model


__all__ = [
    "compile", "pi", "e", "inf", "nan", "newaxis", "finfo", "iinfo", "result_type", "promote_types", "can_cast",
    "get_default_dtype", "set_default_dtype", "is_signed", "is_complex", "is_inference", "is_nonzero",
    "is_same_size", "typename", "detach", "detach_", "scalar_tensor", "asarray", "empty_strided", "range",
    *_SWITCHES,
]
