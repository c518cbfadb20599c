"""TensorSummary: what a person wants to know about a tensor at a glance, computed in a few passes.

Exact up to `limit` elements (default `SUMMARY_LIMIT`). Above it, numel, the NaN/Inf counts, min, max
and the L2 norm stay exact (full passes), while mean, std and the zero count come from an evenly
strided sample of about `limit` elements; `stride` records which (1 means exact). The histogram is
always over at most HIST_LIMIT evenly spaced finite elements (its shape, not exact counts, is what a
plot needs; `counts.sum()` says how many). All work goes
through the array module of the tensor, so on a GPU the reductions run on the device and only a
handful of scalars and the 64 bin counts are copied to the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine import kernels
from engine.backend import array_module, device_of
from engine.debug.fastdata import maker

BINS = 64
SAMPLES = 8
SUMMARY_LIMIT = 1 << 14
HIST_LIMIT = 1024
TINY = 16  # up to this many elements one host copy and plain Python beat a dozen array calls

_umin, _umax = np.minimum.reduce, np.maximum.reduce
_dtype_names: dict = {}  # numpy's dtype.name is computed in Python on every access


@dataclass(frozen=True, slots=True, eq=False)
class TensorSummary:
    """Shape, dtype, device and statistics of one tensor: plain numbers, tuples and a numpy array.

    min/max/mean/std/norm/histogram are over the finite values; `counts` has `BINS` bins spanning
    [lo, hi] (the finite min and max; +-0.5 around a constant), over at most HIST_LIMIT of them.
    `stride` > 1: mean, std and zero_count come from every `stride`-th element (zero_count scaled up
    to the whole tensor).
    """

    shape: tuple[int, ...]
    dtype: str
    device: str
    numel: int
    min: float
    max: float
    mean: float
    std: float
    norm: float
    nan_count: int
    inf_count: int
    zero_count: int
    counts: np.ndarray
    lo: float
    hi: float
    samples: tuple[float, ...]
    stride: int = 1

    @property
    def bin_edges(self) -> np.ndarray:
        """The BINS + 1 edges of the histogram."""
        return np.linspace(self.lo, self.hi, BINS + 1)

    @property
    def exact(self) -> bool:
        """True when every statistic was computed from every element."""
        return self.stride == 1

    @property
    def finite(self) -> bool:
        """True when the tensor holds no NaN and no infinity."""
        return self.nan_count == 0 and self.inf_count == 0

    @property
    def abs_max(self) -> float:
        """The largest finite magnitude."""
        return max(abs(self.min), abs(self.max)) if self.numel > self.nan_count + self.inf_count else math.nan


def summarize(a, limit: int = SUMMARY_LIMIT, device: str | None = None) -> TensorSummary:
    """Summarize an array (numpy or cupy) or a Tensor; see the module docstring for what is exact."""
    if a.__class__ is not np.ndarray and hasattr(a, "grad_fn"):  # a Tensor
        a = a.data
    dev = device if device is not None else str(device_of(a))
    dt = a.dtype
    dtype = _dtype_names.get(dt) or _dtype_names.setdefault(dt, dt.name)
    shape, n = a.shape, a.size
    if n == 0:
        return _make(shape, dtype, dev, 0, *_NAN5, 0, 0, 0, _NO_COUNTS, 0.0, 0.0, (), 1)
    flat = a.reshape(-1)
    if dt.kind != "f":  # ints and bools: summarised as numbers
        flat = flat.astype(np.float64)
    elif dt.itemsize < 4:  # float16 sums overflow
        flat = flat.astype(np.float32)
    if n <= TINY:
        return _tiny(shape, dtype, dev, flat.tolist())
    xp = array_module(flat)
    fused = kernels.get("tensor_summary", xp)
    if fused is not None:  # CUDA: the same statistics in two kernels and one copy to the host
        *stats, counts, lo, hi, samples, stride = fused(flat, limit, BINS, HIST_LIMIT, SAMPLES)
        return _make(shape, dtype, dev, n, *stats, _host_counts(counts), lo, hi, samples, stride)
    if xp is np:
        mn, mx = _umin(flat), _umax(flat)
    else:
        mn, mx = xp.min(flat), xp.max(flat)
    nan = inf = 0
    if not math.isfinite(mn + mx):  # NaN propagates through min/max and infinities show up in them
        nan = int(xp.count_nonzero(xp.isnan(flat)))
        inf = int(xp.count_nonzero(xp.isinf(flat)))
        finite = flat[xp.isfinite(flat)]
        if finite.size == 0:
            return _make(shape, dtype, dev, n, *_NAN5, nan, inf, 0, _NO_COUNTS, 0.0, 0.0,
                         _samples(flat, n), 1)
        mn, mx = xp.min(finite), xp.max(finite)
    else:
        finite = flat
    stats, counts, stride = _finite_stats(xp, finite, mn, mx, limit)
    mn, mx, mean, var, norm, zeros = _host_floats(xp, (mn, mx, *stats))
    return _make(shape, dtype, dev, n, mn, mx, mean, math.sqrt(var) if var > 0 else 0.0, norm, nan, inf,
                 round(zeros), _host_counts(counts), *_hist_range(mn, mx), _samples(flat, n), stride)


def _hist_range(mn, mx) -> tuple:
    """The histogram's range: the finite min and max, or one unit around a constant (as numpy does)."""
    return (mn, mx) if mx > mn else (mn - 0.5, mn + 0.5)


def _finite_stats(xp, flat, mn, mx, limit: int):
    """(mean, var, norm, zero count), histogram counts and stride of finite values.

    Reading passes only (BLAS dots with ones and with itself, min, max, count_nonzero): a mean-centred
    copy is made only when |mean| > 10 std, where E[x^2] - mean^2 would lose the digits of the variance.
    """
    n = flat.size
    stride = -(-n // limit)
    s = flat[::stride] if stride > 1 else flat
    ns = s.size
    if xp is np:  # a dot with ones sums several times faster than the pairwise np.add.reduce
        total, sq = np.dot(s, _ONES[s.dtype.char][:ns]), np.dot(s, s)
    else:
        total, sq = s.sum(), xp.dot(s, s)
    zeros = (ns - xp.count_nonzero(s)) * (n / ns)
    mean = total / ns
    var = sq / ns - mean * mean
    if xp is not np or not var > 0.01 * mean * mean:
        d = s - mean
        var = xp.dot(d, d) / ns
    norm = xp.sqrt(xp.dot(flat, flat) if stride > 1 else sq)
    # histogram of at most HIST_LIMIT elements: bin = floor((x - lo) * BINS / (hi - lo))
    lo, hi = _hist_range(mn, mx)
    scale = BINS / (hi - lo)
    h = s[:: -(-ns // HIST_LIMIT)] * scale
    h -= lo * scale
    counts = xp.bincount(h.astype(xp.int32), minlength=BINS + 1)  # int32: a fast cast, unlike intp
    return (mean, var, norm, zeros), counts, stride


def _host_floats(xp, values) -> list[float]:
    """Device scalars as Python floats, in one transfer on a GPU."""
    if xp is np:
        return [float(v) for v in values]
    return xp.stack([xp.asarray(v, dtype=xp.float64) for v in values]).get().tolist()


def _host_counts(counts) -> np.ndarray:
    if counts.__class__ is not np.ndarray:
        counts = counts.get()
    if counts.size > BINS:
        counts[BINS - 1] += counts[BINS]  # the maximum itself lands one past the last bin
        counts = counts[:BINS]
    counts.flags.writeable = False
    return counts


def _samples(flat, n: int) -> tuple[float, ...]:
    """A few evenly spaced values (as floats), for a first look."""
    return tuple(flat[:: max(1, n // SAMPLES)][:SAMPLES].tolist())


def _tiny(shape, dtype: str, dev: str, vals: list) -> TensorSummary:
    n = len(vals)
    fin = [v for v in vals if math.isfinite(v)]
    nan = sum(1 for v in vals if v != v)
    samples = tuple(vals[:: max(1, n // SAMPLES)][:SAMPLES])
    if not fin:
        return _make(shape, dtype, dev, n, *_NAN5, nan, n - nan, 0, _NO_COUNTS, 0.0, 0.0, samples, 1)
    mn, mx = min(fin), max(fin)
    k = len(fin)
    mean = math.fsum(fin) / k
    var = math.fsum([(v - mean) ** 2 for v in fin]) / k
    counts = np.zeros(BINS, dtype=np.int64)
    lo, hi = _hist_range(float(mn), float(mx))
    scale = BINS / (hi - lo)
    for v in fin:
        counts[min(int((v - lo) * scale), BINS - 1)] += 1
    counts.flags.writeable = False
    return _make(shape, dtype, dev, n, float(mn), float(mx), mean, math.sqrt(var),
                 math.sqrt(math.fsum([v * v for v in fin])), nan, n - k - nan, fin.count(0), counts,
                 lo, hi, samples, 1)


_NO_COUNTS = np.zeros(BINS, dtype=np.int64)
_NO_COUNTS.flags.writeable = False
_NAN5 = (math.nan,) * 5
_ONES = {np.dtype(t).char: np.ones(SUMMARY_LIMIT, dtype=t) for t in (np.float32, np.float64)}
_make = maker(TensorSummary)
