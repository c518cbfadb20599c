"""Signal windows and logspace, as torch makes them: hann, hamming, blackman, bartlett and kaiser windows
(periodic by default: the first L of L + 1 symmetric points, as spectral analysis wants) and logspace.

Each window is a formula of x = n / (N - 1) in [0, 1] (the WINDOWS table), computed in float64 on the host and
cast to the asked floating dtype, as linspace is.
"""

from __future__ import annotations

import numpy as np

from engine import dtypes
from engine.creation import _finish
from engine.tensor import Tensor

__all__ = ["bartlett_window", "blackman_window", "hamming_window", "hann_window", "kaiser_window", "logspace"]


def _cosine_sum(*coefficients):
    """a0 - a1 cos(2 pi x) + a2 cos(4 pi x) - ...: the generalized cosine windows."""
    return lambda x: sum((-1) ** k * a * np.cos(2 * np.pi * k * x) for k, a in enumerate(coefficients))


WINDOWS = {
    "hann": _cosine_sum(0.5, 0.5),
    "hamming": lambda x, alpha=0.54, beta=0.46: _cosine_sum(alpha, beta)(x),
    "blackman": _cosine_sum(0.42, 0.5, 0.08),
    "bartlett": lambda x: 1 - np.abs(2 * x - 1),
    "kaiser": lambda x, beta=12.0: np.i0(beta * np.sqrt(np.clip(1 - (2 * x - 1) ** 2, 0, None))) / np.i0(beta),
}


def _window(name: str, window_length: int, periodic: bool, dtype, device, requires_grad: bool, **params) -> Tensor:
    op = f"{name}_window"
    dt = dtypes.as_dtype(dtype or dtypes.default_float)
    if not dt.is_floating_point:
        raise TypeError(f"{op} expects floating point dtypes, got: {dt.name}")
    if not isinstance(window_length, int) or window_length < 0:
        raise ValueError(f"{op} requires non-negative window_length, got window_length={window_length}")
    if window_length <= 1:
        return _finish(np.ones(window_length), dt, device, requires_grad)
    n = window_length + 1 if periodic else window_length
    values = WINDOWS[name](np.arange(n) / (n - 1), **params)
    return _finish(values[:window_length], dt, device, requires_grad)


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, device=None,
                requires_grad: bool = False) -> Tensor:
    """The Hann window 0.5 - 0.5 cos(2 pi n / (N - 1)), as torch.hann_window."""
    return _window("hann", window_length, periodic, dtype, device, requires_grad)


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54, beta: float = 0.46, *,
                   dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The Hamming window alpha - beta cos(2 pi n / (N - 1)), as torch.hamming_window."""
    return _window("hamming", window_length, periodic, dtype, device, requires_grad, alpha=alpha, beta=beta)


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, device=None,
                    requires_grad: bool = False) -> Tensor:
    """The Blackman window 0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1)), as torch.blackman_window."""
    return _window("blackman", window_length, periodic, dtype, device, requires_grad)


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, device=None,
                    requires_grad: bool = False) -> Tensor:
    """The triangular Bartlett window 1 - |2n / (N - 1) - 1|, as torch.bartlett_window."""
    return _window("bartlett", window_length, periodic, dtype, device, requires_grad)


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *, dtype=None, device=None,
                  requires_grad: bool = False) -> Tensor:
    """The Kaiser window I0(beta sqrt(1 - (2n / (N - 1) - 1)^2)) / I0(beta), as torch.kaiser_window."""
    return _window("kaiser", window_length, periodic, dtype, device, requires_grad, beta=beta)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """`steps` values base**t for t evenly spaced from start to end, both included, as torch.logspace."""
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"logspace: number of steps must be non-negative, got {steps!r}")
    return _finish(np.power(float(base), np.linspace(float(start), float(end), steps)),
                   dtype or dtypes.default_float, device, requires_grad)
