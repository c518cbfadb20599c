"""Functions that make tensors: from data, filled, ranges, random."""

from __future__ import annotations

import math
import numbers

import numpy as np

from engine import backend, dtypes
from engine import random as _random
from engine.random_cpu import libm
from engine.tensor import Tensor


def _shape(size) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], tuple | list):
        size = tuple(size[0])
    for n in size:
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
            raise ValueError(f"sizes must be non-negative integers, got {tuple(size)}")
    return tuple(int(n) for n in size)


def _finish(arr, dtype, device, requires_grad: bool) -> Tensor:
    if dtype is not None:
        arr = arr.astype(dtypes.as_dtype(dtype).np, copy=False)
    dev = backend.device(device)
    if dev.type != "cpu":
        arr = backend.to_device(arr, dev)
    return Tensor._of(arr, requires_grad=requires_grad)


def _infer_dtype(data) -> dtypes.DType | None:
    """The widest element type, as PyTorch infers it: Python bool < int (int64) < float (float32);
    numpy scalars and tensors count with their own dtype."""
    found = None
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, list | tuple):
            stack.extend(x)
            continue
        if isinstance(x, np.generic | np.ndarray):  # a list of arrays (a replay buffer's rows) keeps their dtype
            d = dtypes.from_numpy(x.dtype)
        elif isinstance(x, Tensor):
            d = x.dtype
        elif isinstance(x, bool):
            d = dtypes.bool_
        elif isinstance(x, numbers.Integral):
            d = dtypes.default_int
        elif isinstance(x, numbers.Real):
            d = dtypes.default_float
        else:
            raise TypeError(f"tensor(): could not infer dtype of {type(x).__name__}; expected numbers")
        found = d if found is None else dtypes.wider(found, d)
    return found or dtypes.default_float


def _ragged(data) -> str:
    """Where nested sequences stop being rectangular, in PyTorch's words."""
    level, dim = [data], 0
    while any(isinstance(x, list | tuple) for x in level):
        if not all(isinstance(x, list | tuple) for x in level):
            return f"numbers and sequences are mixed at dim {dim}"
        n = len(level[0])
        for x in level:
            if len(x) != n:
                return f"expected a sequence of length {n} at dim {dim} (got {len(x)})"
        level, dim = [y for x in level for y in x], dim + 1
    return "the sequences do not form an array"


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (nested lists, numbers, numpy/cupy arrays, tensors)."""
    if isinstance(data, Tensor):
        arr = data.array.copy()
    elif hasattr(data, "__cuda_array_interface__") and not isinstance(data, np.ndarray):
        arr = data.copy()
    elif isinstance(data, np.ndarray | np.generic):
        arr = np.array(data)
    else:
        inferred = _infer_dtype(data)
        try:
            arr = np.array(data, dtype=(dtype and dtypes.as_dtype(dtype).np) or inferred.np)
        except ValueError:
            raise ValueError(f"tensor(): nested lists must be rectangular: {_ragged(data)}") from None
        except TypeError as err:
            raise TypeError(f"tensor(): {err}") from None
    if arr.dtype.kind == "O":
        raise TypeError("tensor(): data holds objects that are not numbers")
    return _finish(arr, dtype, device, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like `tensor`, but shares memory with a tensor or array of the right dtype and device."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtypes.as_dtype(dtype)) \
            and (device is None or data.device == backend.device(device)):
        return data
    if isinstance(data, np.ndarray) and dtype is None and device is None:
        return Tensor._of(data)
    return tensor(data, dtype, device)


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing memory with a numpy array."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(arr).__name__}")
    if any(s < 0 for s in arr.strides):  # as torch: a tensor's strides are never negative
        raise ValueError("from_numpy: at least one stride of the numpy array is negative (a reversed view such as "
                         "a[::-1]), which tensors do not support: pass a copy, a[::-1].copy()")
    return Tensor._of(arr)


_DLPACK_CPU, _DLPACK_CUDA, _DLPACK_CUDA_HOST = 1, 2, 3  # DLPack's device types


def from_dlpack(x) -> Tensor:
    """A tensor sharing memory with any DLPack producer (a PyTorch, CuPy or numpy array): no copy."""
    if not hasattr(x, "__dlpack__") or not hasattr(x, "__dlpack_device__"):
        raise TypeError(f"from_dlpack expects an object with __dlpack__ and __dlpack_device__ (a PyTorch, "
                        f"CuPy or numpy array), got {type(x).__name__}")
    kind, index = x.__dlpack_device__()
    if kind in (_DLPACK_CPU, _DLPACK_CUDA_HOST):
        return Tensor._of(np.from_dlpack(x))
    if kind == _DLPACK_CUDA:
        cp = backend.require_cuda(backend.Device("cuda", int(index)))
        with cp.cuda.Device(int(index)):
            return Tensor._of(cp.from_dlpack(x))
    raise RuntimeError(f"from_dlpack: DLPack device type {int(kind)} is neither the CPU (1) nor CUDA (2); "
                       "the engine holds arrays on those two only")


def _filled(fill, size, dtype, device, requires_grad) -> Tensor:
    shape = _shape(size)
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
    xp = backend.module_for(backend.device(device))
    if device is not None and backend.device(device).type == "cuda":
        with xp.cuda.Device(backend.device(device).index):
            arr = xp.full(shape, fill, dtype=dt.np) if fill is not None else xp.empty(shape, dtype=dt.np)
        return Tensor._of(arr, requires_grad=requires_grad)
    arr = np.full(shape, fill, dtype=dt.np) if fill is not None else np.empty(shape, dtype=dt.np)
    return Tensor._of(arr, requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _filled(0, size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _filled(1, size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _filled(None, size, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if dtype is None and not isinstance(fill_value, float):
        dtype = dtypes.bool_ if isinstance(fill_value, bool) else dtypes.default_int
    return _filled(fill_value, tuple(size) if isinstance(size, list | tuple) else (size,), dtype, device,
                   requires_grad)


def _like(x: Tensor, dtype, device):
    return dtype if dtype is not None else x.dtype, device if device is not None else x.device


def zeros_like(x: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return zeros(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def ones_like(x: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return ones(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def full_like(x: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return _filled(fill_value, x.shape, dt, dev, requires_grad)


def empty_like(x: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return empty(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from `start` to `end` (exclusive) by `step`; integers unless any argument is a float."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: end ({end}) is on the wrong side of start ({start}) for step {step}")
    if dtype is None:
        is_float = any(isinstance(v, float) for v in (start, end, step))
        dtype = dtypes.default_float if is_float else dtypes.default_int
    n = max(0, math.ceil((end - start) / step))
    arr = (start + step * np.arange(n, dtype=np.float64)) if isinstance(step, float) or isinstance(start, float) \
        else np.arange(start, end, step)
    return _finish(arr, dtype, device, requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """`steps` evenly spaced values from `start` to `end`, both included."""
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative integer, got {steps!r}")
    dt = dtypes.as_dtype(dtype or dtypes.default_float)
    values = _torch_linspace(start, end, steps, dt.np) if dt.is_floating_point else np.linspace(start, end, steps)
    return _finish(values, dt, device, requires_grad)


def _torch_linspace(start, end, steps: int, dtype) -> np.ndarray:
    """torch's linspace to the bit: in the dtype, start + i * step up to halfway and end - (steps - 1 - i) * step
    after, each a fused multiply-add (one rounding: done wider, then rounded). np.linspace differed from it in the
    last place at 46 of 64 float32 points, which sin(400 x) of Fourier features made visible."""
    if steps <= 1:
        return np.full(steps, start, dtype)
    wide = np.float64 if np.dtype(dtype).itemsize < 8 else np.longdouble
    first, last = dtype.type(start), dtype.type(end)
    step = dtype.type((last - first) / dtype.type(steps - 1))
    i = np.arange(steps).astype(wide)
    low, high = wide(step) * i + wide(first), wide(last) - wide(step) * (steps - 1 - i)
    return np.where(np.arange(steps) < steps // 2, low, high).astype(dtype)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The identity matrix of n rows and m (default n) columns."""
    return _finish(np.eye(n, m), dtype or dtypes.default_float, device, requires_grad)


def _float_dtype(op: str, dtype) -> dtypes.DType:
    dt = dtypes.as_dtype(dtype or dtypes.default_float)
    if not dt.is_floating_point:
        raise TypeError(f"{op}: dtype must be a floating point type, got {dt.name}; use randint for integers")
    return dt


def _random_array(device, fn, generator=None, op: str = ""):
    """`fn(rng)` drawn on `device` with `generator` (or the device's global generator)."""
    dev = backend.device(device)
    rng = _random.resolve(generator, dev, op)
    if dev.type == "cuda":  # CuPy draws onto the current device: make it the one asked for
        with backend.require_cuda(dev).cuda.Device(dev.index):
            return fn(rng), dev
    return fn(rng), dev


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    dt = _float_dtype("rand", dtype)
    arr, _ = _random_array(device, lambda g: g.random(_shape(size), dtype=dt.np), generator, "rand")
    return Tensor._of(arr, requires_grad=requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    dt = _float_dtype("randn", dtype)
    arr, _ = _random_array(device, lambda g: g.standard_normal(_shape(size), dtype=dt.np), generator, "randn")
    return Tensor._of(arr, requires_grad=requires_grad)


def _integers(op: str, low, high):
    """(low, high) checked as torch.randint's bounds."""
    if high <= low:
        raise ValueError(f"{op}: high ({high}) must be greater than low ({low})")
    return low, high


def randint(low, high=None, size=(), dtype=None, device=None, requires_grad: bool = False, *,
            generator=None) -> Tensor:
    """Integers uniformly from [low, high); `randint(high, size)` starts at 0."""
    if isinstance(high, tuple | list):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    low, high = _integers("randint", low, high)
    dt = dtypes.as_dtype(dtype or dtypes.default_int)
    arr, _ = _random_array(device, lambda g: g.integers(low, high, size=_shape(tuple(size)), dtype=np.int64),
                           generator, "randint")
    return Tensor._of(arr.astype(dt.np, copy=False), requires_grad=requires_grad)


def randn_like(x: Tensor, dtype=None, device=None, requires_grad: bool = False, *, generator=None) -> Tensor:
    """Standard normal samples in x's shape, dtype and device (unless given); laid out as x, as torch's
    empty_like is, so a transposed x gets its draws in its memory order (a pair at a time)."""
    dt, dev = _like(x, dtype, device)
    if _random.memory_order(x.array) is None or dev != x.device:
        return randn(x.shape, generator=generator, dtype=dt, device=dev, requires_grad=requires_grad)
    return _drawn_as(x, "randn_like", dt, requires_grad, generator,
                     lambda g, shape, np_dt: _random.normal(g, 0.0, 1.0, shape, np_dt, serial=True))


def rand_like(x: Tensor, dtype=None, device=None, requires_grad: bool = False, *, generator=None) -> Tensor:
    """Uniform samples in [0, 1) in x's shape, dtype and device (unless given), laid out as x (see randn_like)."""
    dt, dev = _like(x, dtype, device)
    if _random.memory_order(x.array) is None or dev != x.device:
        return rand(x.shape, generator=generator, dtype=dt, device=dev, requires_grad=requires_grad)
    return _drawn_as(x, "rand_like", dt, requires_grad, generator,
                     lambda g, shape, np_dt: g.random(shape, dtype=np_dt))


def _drawn_as(x: Tensor, op: str, dtype, requires_grad: bool, generator, draw) -> Tensor:
    """`draw(rng, shape, numpy dtype)` on x's device laid onto x's elements in x's memory order (a transposed x:
    the order torch fills its empty_like in)."""
    dt = _float_dtype(op, dtype)
    arr, _ = _random_array(x.device, lambda g: _random.in_memory_order(
        x.array, lambda shape: draw(g, shape, dt.np)), generator, op)
    return Tensor._of(arr, requires_grad=requires_grad)


def randint_like(x: Tensor, low=0, high=None, *, generator=None, dtype=None, device=None,
                 requires_grad: bool = False) -> Tensor:
    """Integers from [low, high) in x's shape, dtype and device (unless given); `randint_like(x, high)`."""
    if high is None:
        low, high = 0, low
    dt, dev = _like(x, dtype, device)
    return randint(low, high, x.shape, generator=generator, dtype=dt, device=dev, requires_grad=requires_grad)


def randperm(n: int, dtype=None, device=None, *, generator=None) -> Tensor:
    """A random permutation of 0..n-1."""
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
        raise ValueError(f"randperm: n must be a non-negative integer, got {n!r}")
    arr, _ = _random_array(device, lambda g: _random.permutation(g, int(n)), generator, "randperm")
    return Tensor._of(arr.astype((dtype and dtypes.as_dtype(dtype).np) or np.int64, copy=False))


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Normal samples of the given means and standard deviations (tensors broadcast together, or numbers
    with `size`), as torch.normal; a sample, not differentiable in mean and std."""
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if not tensors and size is None:
        raise TypeError("normal: with a number for both mean and std, pass size=(...) for the output's shape")
    if tensors and (size, dtype, device) != (None, None, None):
        raise TypeError("normal: size, dtype and device are taken only when mean and std are both numbers; "
                        "with tensors the output takes their shape, dtype and device")
    lowest = (float(std.array.min()) if std.numel() else 0.0) if isinstance(std, Tensor) else std
    if lowest < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {lowest}")
    std_values = std.array if isinstance(std, Tensor) else std
    if not tensors:
        dt = _float_dtype("normal", dtype)
        shape = _shape(size if isinstance(size, tuple | list) else (size,))
        arr, dev = _random_array(device, lambda g: _random.normal(g, mean, std, shape, dt.np), generator, "normal")
        return _finish(arr, None, dev, requires_grad)
    like = tensors[0]
    if not like.dtype.is_floating_point:
        raise RuntimeError(f"normal expects floating-point mean and std, got {like.dtype.name}")
    xp = backend.array_module(like.array)
    shape = np.broadcast_shapes(*(t.shape for t in tensors))
    ft = like.array.dtype
    arr, _ = _random_array(like.device, lambda g: g.standard_normal(shape, dtype=ft), generator, "normal")
    m = mean.array if isinstance(mean, Tensor) else mean
    s = xp.asarray(std_values, dtype=ft) if isinstance(std, Tensor) else std
    return Tensor._of((arr * s + m).astype(ft, copy=False), requires_grad=requires_grad)


def poisson(input: Tensor, generator=None) -> Tensor:
    """Poisson counts with the rates in `input`, in its shape and dtype, as torch.poisson."""
    if (input.array < 0).any():
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    arr, _ = _random_array(input.device, lambda g: _random.poisson(g, input.array), generator, "poisson")
    return Tensor._of(arr.astype(input.array.dtype, copy=False))


# ---- Tensor.new_*: a new tensor with this tensor's dtype and device unless told otherwise -------------
def new_tensor(x: Tensor, data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A copy of `data` as a tensor with x's dtype and device (or the given ones); not part of x's graph."""
    dt, dev = _like(x, dtype, device)
    return tensor(data, dtype=dt, device=dev, requires_grad=requires_grad)


def new_full(x: Tensor, size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape `size` filled with `fill_value`, with x's dtype and device unless given."""
    dt, dev = _like(x, dtype, device)
    return full(size, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


def new_zeros(x: Tensor, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Zeros of shape `size`, with x's dtype and device unless given."""
    dt, dev = _like(x, dtype, device)
    return zeros(*size, dtype=dt, device=dev, requires_grad=requires_grad)


def new_empty(x: Tensor, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of shape `size`, with x's dtype and device unless given."""
    dt, dev = _like(x, dtype, device)
    return empty(*size, dtype=dt, device=dev, requires_grad=requires_grad)


def new_ones(x: Tensor, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Ones of shape `size`, with x's dtype and device unless given."""
    dt, dev = _like(x, dtype, device)
    return ones(*size, dtype=dt, device=dev, requires_grad=requires_grad)


# ---- samples shaped like a tensor: torch.bernoulli, multinomial and Tensor.bernoulli_ and friends ---------
def _sample_like(x: Tensor, op: str, draw, floating: bool = True, generator=None, ordered: bool = True) -> Tensor:
    """A tensor of x's shape, dtype and device holding `draw(xp, rng, shape, float dtype)`, drawn in the order
    torch fills x (`ordered`: its memory order, for a transposed view; else C order)."""
    if floating and not x.dtype.is_floating_point:
        raise RuntimeError(f"{op}: samples a continuous distribution, so the tensor must be floating point, "
                        f"not {x.dtype.name}")
    ft = x.array.dtype if x.array.dtype.kind == "f" else np.float64
    xp = backend.array_module(x.array)
    if ordered:
        def fn(g):
            return _random.in_memory_order(x.array, lambda shape: draw(xp, g, shape, ft))
    else:
        def fn(g):
            return draw(xp, g, x.shape, ft)
    arr, _ = _random_array(x.device, fn, generator, op)
    return Tensor._wrap(arr.astype(x.array.dtype, copy=False))


def _probability(op: str, p):
    """p as a number or an array, checked to lie in [0, 1]."""
    if isinstance(p, Tensor):
        bad = ((p.array < 0) | (p.array > 1)).any()
        p = p.array
    else:
        bad = not 0 <= p <= 1
    if bad:
        raise RuntimeError(f"{op}: probabilities must lie in [0, 1]" + ("" if hasattr(p, "shape") else f", got p={p}"))
    return p


def bernoulli_like(x: Tensor, p=0.5, *, generator=None) -> Tensor:
    """1 with probability p (a number or a tensor broadcast to x) and 0 otherwise, in x's shape and dtype."""
    p = _probability("bernoulli_", p)
    if hasattr(p, "shape"):  # a probability each: a uniform of the dtype each, as torch draws
        return _sample_like(x, "bernoulli_", lambda xp, g, shape, ft: g.random(shape, dtype=_random.draw_dtype(ft))
                            < p, False, generator, ordered=False)
    return _sample_like(x, "bernoulli_", lambda xp, g, shape, ft: _random.below(g, p, shape), False, generator)


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    """Samples 0/1 with the probabilities in `input` (or `p`), as torch.bernoulli; not differentiable."""
    return bernoulli_like(input, input if p is None else p, generator=generator)


def normal_like(x: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """N(mean, std**2) samples in x's shape and dtype, as Tensor.normal_ draws them."""
    serial = not x.array.flags.c_contiguous  # torch draws such a tensor a pair at a time
    return _sample_like(x, "normal_", lambda xp, g, shape, ft: _random.normal(g, mean, std, shape, ft, serial),
                        generator=generator)


def uniform_like(x: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    """U(a, b) samples in x's shape and dtype, as Tensor.uniform_ draws them."""
    return _sample_like(x, "uniform_", lambda xp, g, shape, ft: _random.uniform(g, a, b, shape, ft),
                        generator=generator)


def exponential_like(x: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    """Samples of the exponential distribution of rate `lambd`, in x's shape."""
    if lambd <= 0:
        raise RuntimeError(f"exponential_ expects lambd > 0.0, but found lambd={lambd}")
    return _sample_like(x, "exponential_", lambda xp, g, shape, ft: -libm(
        xp, "log1p", -_random.uniform64(g, shape)) / lambd, generator=generator)


def geometric_like(x: Tensor, p: float, *, generator=None) -> Tensor:
    """Samples of the geometric distribution (trials until the first success, from 1), in x's shape."""
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), got p={p}")
    return _sample_like(x, "geometric_", lambda xp, g, shape, ft: xp.ceil(
        xp.log(_random.uniform64(g, shape)) / math.log1p(-p)).clip(1, None), False, generator)


def log_normal_like(x: Tensor, mean: float = 1.0, std: float = 2.0, *, generator=None) -> Tensor:
    """exp of normal samples of the given mean and std, in x's shape."""
    return _sample_like(x, "log_normal_", lambda xp, g, shape, ft: libm(
        xp, "exp", _random.scalar_normals(g, shape) * std + mean), generator=generator)


def cauchy_like(x: Tensor, median: float = 0.0, sigma: float = 1.0, *, generator=None) -> Tensor:
    """Samples of the Cauchy distribution, in x's shape."""
    return _sample_like(x, "cauchy_", lambda xp, g, shape, ft: median + sigma * libm(
        xp, "tan", math.pi * (_random.uniform64(g, shape) - 0.5)), generator=generator)


def random_like(x: Tensor, start: int = 0, to: int | None = None, *, generator=None) -> Tensor:
    """Integers uniformly from [start, to) in x's dtype, as Tensor.random_; `random_(to)` starts at 0, and
    `random_()` spans what the dtype holds exactly (0 to 2**mantissa for floats)."""
    if to is None and start != 0:
        start, to = 0, start
    if to is None:
        dt = x.array.dtype
        to = (2 ** (np.finfo(dt).nmant + 1) + 1 if dt.kind == "f" else 2 if dt.kind == "b"
              else int(np.iinfo(dt).max) + 1)
    if to <= start:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={start} >= to={to}")
    return _sample_like(x, "random_", lambda xp, g, shape, ft: g.integers(start, to, size=shape, dtype=np.int64),
                        False, generator)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Indices drawn with the (unnormalised) weights in each row of `input`, as torch.multinomial."""
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {input.ndim}-d")
    if not isinstance(num_samples, numbers.Integral) or isinstance(num_samples, bool) or num_samples <= 0:
        raise RuntimeError(f"multinomial: num_samples must be a positive integer, got {num_samples!r}")
    xp = backend.array_module(input.array)
    w = input.array.astype(np.float64).reshape(-1, input.shape[-1])  # checked where it is: no host copy
    if bool((w < 0).any() | ~xp.isfinite(w).all() | (w.sum(1) <= 0).any()):
        raise RuntimeError("multinomial: the weights must be finite and non-negative, with a positive sum per row")
    if not replacement and num_samples > (nonzero := int((w > 0).sum(1).min())):
        raise RuntimeError(f"multinomial: cannot sample {num_samples} samples without replacement from a row "
                           f"with {nonzero} non-zero weights")
    rows, k = w.shape

    def draw(g):
        if replacement and num_samples > 1:  # inverse CDF, all rows in one search: row r's in [r, r + 1]
            cdf = xp.cumsum(w, axis=1)
            cdf = cdf / cdf[:, -1:] + xp.arange(rows)[:, None]  # the last entry exactly r + 1: u < 1 stays in row
            u = g.random((rows, num_samples)) + xp.arange(rows)[:, None]
            return xp.searchsorted(cdf.ravel(), u.ravel(), side="right").reshape(rows, num_samples) \
                - k * xp.arange(rows)[:, None]
        # without replacement, or one sample: the num_samples largest of log w - log E (E exponential), as torch
        keys = xp.log(xp.where(w > 0, w, 1.0)) - xp.log(-xp.log1p(-g.random((rows, k))))
        keys = xp.where(w > 0, keys, -xp.inf)
        return xp.argsort(-keys, axis=1)[:, :num_samples]

    out, _ = _random_array(input.device, draw, generator, "multinomial")
    return Tensor._of(out.reshape(*input.shape[:-1], num_samples).astype(np.int64, copy=False))
