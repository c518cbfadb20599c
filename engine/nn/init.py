"""Parameter initialisation in place, with torch.nn.init's names, formulas and defaults.

Every function fills the tensor's storage without recording a graph, bumps its version and returns
it. Random numbers come from `generator=` or else the global generator of the tensor's device
(`engine.manual_seed`).
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
import weakref

import numpy as np

from engine import random as _random
from engine.autograd.grad_mode import no_grad
from engine.backend import array_module
from engine.tensor import Tensor
from engine.user_warning import in_engine, warn

_LINEAR_GAIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (std scale that keeps activations' variance)."""
    if nonlinearity in _LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out): dims 1 and 0 times the receptive field (the product of dims 2 onwards)."""
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# id of a storage an init function filled -> (weak reference to it, file, line of the script's call of that function),
# by storage so that `init.constant_(m.weight.data, 0.05)` counts for the weight; a debugger points its alerts there
_filled_at: dict[int, tuple] = {}


def filled_at(tensor: Tensor) -> tuple[str, int] | None:
    """(file, line) of the script's own call of an engine.nn.init function that last filled `tensor`'s storage; None
    when none did (a layer's default init)."""
    entry = _filled_at.get(id(tensor.array))
    return entry[1:] if entry is not None and entry[0]() is tensor.array else None


def _note_caller(array) -> None:
    """Keep where the script called the init function filling `array` (forget it for a layer's own init)."""
    f = sys._getframe(2)  # the caller of _fill: an init function of this file, whose caller may be another
    while f is not None and f.f_globals is _fill.__globals__:
        f = f.f_back
    key = id(array)
    if f is None or in_engine(f):
        _filled_at.pop(key, None)  # reset_parameters(): the engine's default init, no line of the script's
        return
    try:
        ref = weakref.ref(array, lambda _, key=key: _filled_at.pop(key, None))
    except TypeError:  # an array type without weak references: its id may come back for another one
        return
    _filled_at[key] = (ref, f.f_code.co_filename, f.f_lineno)


def _fill(tensor: Tensor, sample, generator=None) -> Tensor:
    """Write `sample(rng, shape, float dtype)` into the tensor's storage, drawn with `generator` (or the
    global generator of the tensor's device; False for no draws, so a constant makes no GPU generator)."""
    dtype = tensor.array.dtype if tensor.array.dtype.kind == "f" else np.dtype(np.float64)
    rng = _random.resolve(generator, tensor.device) if generator is not False else None
    with no_grad():
        values = sample(rng, tensor.shape, dtype)
        tensor.array[...] = values
        tensor._vc[0] += 1
    _note_caller(tensor.array)
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with samples from U(a, b)."""
    return _fill(tensor, lambda g, shape, dt: _random.uniform(g, a, b, shape, dt), generator)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with samples from N(mean, std**2)."""
    return _fill(tensor, lambda g, shape, dt: _random.normal(g, mean, std, shape, dt), generator)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None) -> Tensor:
    """Fill with N(mean, std**2) samples truncated to [a, b], drawn as torch 2.13 draws them: when [a, b] holds more
    than 0.3 of the mass, normal draws of the whole tensor until each element has one inside; else uniform
    proposals on [a, b], each accepted with the normal density's ratio to its peak there."""
    if not a < b:
        raise ValueError(f"trunc_normal_: the interval [a, b] = [{a}, {b}] is empty")
    if mean < a - 2 * std or mean > b + 2 * std:
        warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The distribution of values may be "
             "incorrect.")

    def cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    def sample(g, shape, dt):
        xp = array_module(tensor.array)
        if cdf((b - mean) / std) - cdf((a - mean) / std) > 0.3:
            lo, hi = dt.type(a), dt.type(b)  # the bounds as the tensor holds them
            x = _random.normal(g, mean, std, shape, dt)
            for _ in range(_ROUNDS):
                out = (x < lo) | (x > hi)
                if not out.any():
                    return x
                x = xp.where(out, _random.normal(g, mean, std, shape, dt), x)
        else:
            peak = -0.5 * ((max(a, min(mean, b)) - mean) / std) ** 2

            def log_ratio(x):
                return ((x - dt.type(mean)) / dt.type(std)) ** 2 * dt.type(-0.5) - dt.type(peak)

            x = _random.uniform(g, a, b, shape, dt)
            pending = xp.log(_random.uniform(g, 0.0, 1.0, shape, dt)) > log_ratio(x)
            for _ in range(_ROUNDS):
                if not pending.any():
                    return x
                proposal = _random.uniform(g, a, b, shape, dt)
                x = xp.where(pending, proposal, x)
                pending = pending & (xp.log(_random.uniform(g, 0.0, 1.0, shape, dt)) > log_ratio(proposal))
        raise ValueError(f"trunc_normal_: [{a}, {b}] lies too far out in N({mean}, {std}**2) to sample")

    return _fill(tensor, sample, generator)


_ROUNDS = 10_000  # rounds of redraws before trunc_normal_ gives up (each keeps every accepted element)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with `val`."""
    return _fill(tensor, lambda g, shape, dt: val, False)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only 2-D tensors are supported, got shape {tuple(tensor.shape)}")
    return _fill(tensor, lambda g, shape, dt: array_module(tensor.array).eye(*shape, dtype=dt), False)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot normal: N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float | None:
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None) -> Tensor:
    """He uniform: U(-b, b) with b = gain(nonlinearity, a) * sqrt(3 / fan)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None) -> Tensor:
    """He normal: N(0, std**2) with std = gain(nonlinearity, a) / sqrt(fan)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    return tensor if std is None else normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix, the tensor seen as (size(0), rest), times `gain`."""
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows

    def sample(g, shape, dt):
        flat = g.standard_normal((rows, cols), dtype=dt)
        if rows < cols:
            flat = flat.T
        xp = array_module(flat)
        q, r = xp.linalg.qr(flat)
        q = q * xp.sign(xp.diagonal(r))  # makes the result uniformly distributed (Mezzadri 2007)
        if rows < cols:
            q = q.T
        return (q * gain).reshape(shape)

    return _fill(tensor, sample, generator)


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3-, 4- or 5-D conv weight with the Dirac delta: each group passes its input channels through."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tensor.shape
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    per_group = sizes[0] // groups
    centre = tuple(n // 2 for n in sizes[2:])

    def sample(g, shape, dt):
        out = array_module(tensor.array).zeros(shape, dtype=dt)
        for grp in range(groups):
            for d in range(min(per_group, sizes[1])):
                out[(grp * per_group + d, d, *centre)] = 1
        return out

    return _fill(tensor, sample, False)


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator=None) -> Tensor:
    """Fill a 2-D tensor with N(0, std**2) samples, then zero ceil(sparsity * rows) of each column."""
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)

    def sample(g, shape, dt):
        out = _random.normal(g, 0.0, std, shape, dt)
        # as torch: each column's zeros from a permutation of the rows, drawn from the global generator
        shuffle = _random.generator(tensor.device)
        for col in range(cols):
            out[_random.permutation(shuffle, rows)[:num_zeros], col] = 0
        return out

    return _fill(tensor, sample, generator)
