"""TensorSummary: what a person wants to know about a tensor at a glance, computed in a few passes.

Exact up to `limit` elements (default `SUMMARY_LIMIT`). Above it, numel, the NaN/Inf counts, min, max
and the L2 norm stay exact (full passes), while mean, std and the zero count come from an evenly
strided sample of about `limit` elements; `stride` records which (1 means exact). The histogram is
always over at most HIST_LIMIT evenly spaced finite elements (its shape, not exact counts, is what a
plot needs; `counts.sum()` says how many). All work goes
through the array module of the tensor, so on a GPU the reductions run on the device and only a
handful of scalars and the 64 bin counts are copied to the host: when a statistic is first read, together
with those of every other GPU summary still waiting (one copy for them all), so that making a summary never
makes the host wait for the GPU.

On the CPU a summary is made on the engine thread inside every op, where numpy's per-call cost (not
its per-element cost) is what counts, so it computes there only what alerts and breakpoints use at
once. For a tensor of at most `limit` elements that is one sum: a finite sum proves there is no NaN
and no infinity (nan_count = inf_count = 0). The rest (min, max, mean, std, norm, zero_count, the
histogram, the samples) is computed from a copy of the values taken then, when one of them is first
read, on whichever thread reads it (in float64, so equal to computing them at once up to rounding),
and a summary nobody reads costs a copy. `finish(summaries)` computes what many summaries defer in
a few array operations for all of them (the tape writer's way). Copies waiting this way are bounded
by WAITING_BYTES (beyond it, and for any tensor with NaN or infinities, or above the limit, everything
but the histogram is computed at once; the histogram, which only a plot reads, is always counted when
`counts` is first read, from a copy of its at most HIST_LIMIT values).
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from engine import kernels
from engine.backend import array_module, device_of, host_floats

BINS = 64
SAMPLES = 8
SUMMARY_LIMIT = 1 << 14
HIST_LIMIT = 1024
TINY = 16  # up to this many elements one host copy and plain Python beat a dozen array calls

_umin, _umax = np.minimum.reduce, np.maximum.reduce
_dtype_names: dict = {}  # numpy's dtype.name is computed in Python on every access


class _DeferredCounts:
    """Where a summary keeps the values it has yet to count: the histogram's (read by `counts`), and
    a copy of the whole tensor while the statistics in _LATE are still to be computed."""

    __slots__ = ("_counts_from", "_late_from")


@dataclass(frozen=True, slots=True, eq=False)
class TensorSummary(_DeferredCounts):
    """Shape, dtype, device and statistics of one tensor: plain numbers, tuples and a numpy array.

    min/max/mean/std/norm/histogram are over the finite values; std is the sample standard deviation, with
    n - 1 in its denominator as torch's `std()` has by default (0 for one value); `counts` has `BINS` bins spanning
    [lo, hi] (the finite min and max; +-0.5 around a constant), over at most HIST_LIMIT of them: a
    value x goes in bin floor((x - lo) / ((hi - lo) / BINS)), computed in float64, and the maximum in
    the last bin. `stride` > 1: mean, std and zero_count come from every `stride`-th element
    (zero_count scaled up to the whole tensor).
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
    def scalar(self) -> float | None:
        """The value of a one-element tensor (a loss), NaN when it is not finite; None for any other size."""
        if self.numel != 1:
            return None
        return self.mean if self.finite else math.nan

    @property
    def abs_max(self) -> float:
        """The largest finite magnitude."""
        return max(abs(self.min), abs(self.max)) if self.numel > self.nan_count + self.inf_count else math.nan

    def __getattr__(self, name: str):
        # only reached while a slot is unset: a statistic of a summary that is still deferred
        if name not in (_ON_DEVICE if self.__class__ is _OnDevice else _LATE):
            raise AttributeError(f"'TensorSummary' object has no attribute '{name}'")
        finish((self,))
        return _SLOTS[name].__get__(self)


class _Waiting(TensorSummary):
    """A summary while its statistics wait for `finish` (see _deferred): it is a TensorSummary again once they are
    computed. Its finalizer gives its copy's bytes back to WAITING_BYTES when nobody read it; only these summaries
    pay for one, not every summary as it is freed (a dozen an MLP step)."""

    __slots__ = ()
    __qualname__ = "TensorSummary"  # its repr is a TensorSummary's

    def __del__(self) -> None:
        try:  # a summary dataclasses.replace() made of one has no copy
            copy = _late_from_get(self)
        except AttributeError:
            return
        _waiting[0] -= copy.nbytes


class _OnDevice(TensorSummary):
    """A GPU summary whose kernels were started and whose row (see engine.kernels.TensorSummary.launch) is still
    on the device: every statistic, the NaN and Inf counts and the stride too, comes to the host when one is
    first read, with the rows of every other summary waiting so (one copy for all: see finish)."""

    __slots__ = ()
    __qualname__ = "TensorSummary"


class _DeviceRow(NamedTuple):
    """Where an _OnDevice summary's statistics are: its kernel's row of a slab, and the array summarised (its
    finite values' statistics are counted again from it, as it is when read, where some values were not finite)."""

    kernel: object
    slab: object
    row: int
    flat: object
    limit: int


_SLOTS = {f.name: TensorSummary.__dict__[f.name] for f in fields(TensorSummary)}
_LATE = ("min", "max", "mean", "std", "norm", "zero_count", "lo", "hi", "samples", "counts")
_ON_DEVICE = frozenset((*_LATE, "nan_count", "inf_count", "stride"))
# summaries on the device not read yet: the first read copies every row of them at once; past DEVICE_WAITING
# of them, or past DEVICE_WAITING_BYTES of the arrays they hold, a new one copies them all, so that those arrays
# (kept for a second count where some values are not finite) are let go
_device_waiting: list = []
_device_bytes = [0]
DEVICE_WAITING = 1024
DEVICE_WAITING_BYTES = 64 << 20
_counts_get, _counts_set = TensorSummary.counts.__get__, TensorSummary.counts.__set__
_min_set, _max_set, _mean_set = TensorSummary.min.__set__, TensorSummary.max.__set__, TensorSummary.mean.__set__
_std_set, _norm_set, _lo_set = TensorSummary.std.__set__, TensorSummary.norm.__set__, TensorSummary.lo.__set__
_hi_set, _samples_set = TensorSummary.hi.__set__, TensorSummary.samples.__set__
_zero_count_set = TensorSummary.zero_count.__set__
_nan_count_set, _inf_count_set = TensorSummary.nan_count.__set__, TensorSummary.inf_count.__set__
_stride_set = TensorSummary.stride.__set__
_counts_from_get = _DeferredCounts._counts_from.__get__
_counts_from_del = _DeferredCounts._counts_from.__delete__
_late_from_get = _DeferredCounts._late_from.__get__
_late_from_del = _DeferredCounts._late_from.__delete__
_late_lock = threading.Lock()
_waiting = [0]  # bytes of copies that deferred summaries hold (updated without a lock: a soft bound)
# The deferral's one probe is a sum: +inf with -inf in it, or values near the float32 limit, make numpy
# warn about the sum, which is exactly how the probe tells them apart (and counts them, warning-free)
warnings.filterwarnings("ignore", "(invalid value|overflow) encountered in dot", RuntimeWarning, __name__)
WAITING_BYTES = 64 << 20  # beyond this many, a summary is computed in full at once instead


def finish(summaries) -> None:
    """Compute whatever the given summaries still defer, in a few array operations for all of them.

    One by one, a deferred summary costs about fifteen numpy calls when first read; the tape writer,
    which stores every field of every summary, finishes a whole batch with about thirty calls per
    FINISH_CHUNK elements instead. Whichever thread reads first computes; the numbers are those of
    the values a summary was made from (float64 sums; the variance from centred values where the mean
    dwarfs the spread).
    """
    with _late_lock:
        late, pending, device = {}, {}, {}  # by id: one summary may serve two tensors
        for s in summaries:
            if s.__class__ is _OnDevice:
                if not device:  # all of them: one copy brings every row
                    waiting, _device_waiting[:] = _device_waiting[:], []
                    _device_bytes[0] = 0
                    device.update((id(w), w) for w in waiting if w.__class__ is _OnDevice)
                device[id(s)] = s
                continue
            try:
                _counts_get(s)  # counted: nothing of it is deferred (most calls, and no exception raised)
                continue
            except AttributeError:
                pass
            try:
                pending[id(s)] = s, _counts_from_get(s)
            except AttributeError:
                late[id(s)] = s, _late_from_get(s)
        # by size, so that a chunk holds copies of one size (a strided view gives their histogram values)
        for chunk in _chunks(sorted(late.values(), key=_copy_size)):
            _finish_statistics(chunk)
        for chunk in _chunks(list(pending.values())):
            _finish_counts(chunk)
        if device:
            _finish_on_device(list(device.values()))


FINISH_CHUNK = 1 << 16  # elements finished in one go: its float64 passes stay in a core's cache


def _copy_size(pair: tuple) -> int:
    return len(pair[1])


def _chunks(pairs: list) -> list[list]:
    """(summary, values) pairs cut into runs of about FINISH_CHUNK values."""
    chunks, run, size = [], [], 0
    for pair in pairs:
        run.append(pair)
        size += len(pair[1])
        if size >= FINISH_CHUNK:
            chunks.append(run)
            run, size = [], 0
    if run:
        chunks.append(run)
    return chunks


def _segments(arrays: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat arrays (or tuples of floats) end to end, each one's length, and where each starts; in their
    common dtype (float32 stays float32: every pass below reads half the bytes)."""
    sizes = np.fromiter(map(len, arrays), np.intp, len(arrays))
    starts = np.zeros_like(sizes)
    np.cumsum(sizes[:-1], out=starts[1:])
    return np.concatenate(arrays), sizes, starts


def _finish_statistics(late: list) -> None:
    """Fill in the _LATE fields of deferred summaries from their copies (finite, at most the limit).

    Every statistic is computed for all the copies end to end, in float64: whole-array passes, which
    numpy runs without the GIL, so a tape writer finishing them leaves the engine thread running. A
    copy whose mean dwarfs its spread (|mean| > 10 std) gets its variance again from centred values.
    """
    copies = [copy for _, copy in late]
    x, n, starts = _segments(copies)
    mn = np.minimum.reduceat(x, starts).astype(np.float64)  # exact in any float dtype: half the bytes
    mx = np.maximum.reduceat(x, starts).astype(np.float64)
    zeros = np.add.reduceat(x == 0, starts, dtype=np.int32)  # a copy holds at most SUMMARY_LIMIT values
    x64 = x.astype(np.float64)  # one cast, then float64 passes: cheaper than reduceat casting as it goes
    total = np.add.reduceat(x64, starts)
    np.multiply(x64, x64, out=x64)  # a float32 value squared is exact in float64
    sq = np.add.reduceat(x64, starts)
    mean = total / n
    var = sq / n - mean * mean
    for i in np.flatnonzero(~(var > 0.01 * mean * mean) & (mx > mn)).tolist():
        d = copies[i].astype(np.float64) - mean[i]  # E[x^2] - mean^2 lost the variance's digits: centre
        dmean = d.mean()
        mean[i] += dmean
        var[i] = float(d.dot(d)) / n[i] - dmean * dmean
    norm = np.sqrt(sq)
    constant = mx == mn
    mean = np.where(constant, mn, mean)
    std = np.where(constant | ~(var > 0), 0.0, np.sqrt(np.maximum(var, 0.0) * (n / np.maximum(n - 1, 1))))
    lo = np.where(constant, mn - 0.5, mn)  # as _hist_range
    hi = np.where(constant, mn + 0.5, mx)
    # the histogram's values: every ceil(n / HIST_LIMIT)-th, as a single summary takes them
    step = -(-n // HIST_LIMIT)
    if n[0] == n[-1]:  # copies of one size (finish sorts them by size: most chunks): a strided view
        counts = _bin_counts(np, x.reshape(len(late), -1)[:, ::int(step[0])], lo[:, None], hi[:, None],
                             rows=len(late))
    else:
        taken = -(-n // step)
        first = np.zeros_like(taken)
        np.cumsum(taken[:-1], out=first[1:])
        seg = np.repeat(np.arange(len(late)), taken)
        index = np.repeat(starts - first * step, taken) + np.arange(int(taken.sum())) * np.repeat(step, taken)
        counts = _bin_counts(np, x[index], lo, hi, seg, len(late))
    counts.flags.writeable = False
    columns = zip(late, mn.tolist(), mx.tolist(), mean.tolist(), std.tolist(), norm.tolist(), zeros.tolist(),
                  lo.tolist(), hi.tolist(), counts)
    # slot stores past the frozen guard, the summary staying a TensorSummary all along: a thread reading
    # one meanwhile finds a statistic either set or deferred (and waits for the lock), never missing
    for (s, copy), s_min, s_max, s_mean, s_std, s_norm, s_zeros, s_lo, s_hi, s_counts in columns:
        _min_set(s, s_min)
        _max_set(s, s_max)
        _mean_set(s, s_mean)
        _std_set(s, s_std)
        _norm_set(s, s_norm)
        _zero_count_set(s, s_zeros)
        _lo_set(s, s_lo)
        _hi_set(s, s_hi)
        _samples_set(s, _samples(copy, copy.size))
        _counts_set(s, s_counts)  # the last statistic set: see finish
        _late_from_del(s)
        _setattr(s, "__class__", TensorSummary)  # computed: no finalizer needed any more
        _waiting[0] -= copy.nbytes


def _finish_on_device(summaries: list) -> None:
    """Fill in every field _OnDevice summaries defer: their slabs' rows in one copy per slab, then decoded."""
    by_slab: dict[int, tuple] = {}  # id of a slab -> (slab, [(summary, where), ...])
    for s in summaries:
        where = _late_from_get(s)
        by_slab.setdefault(id(where.slab), (where.slab, []))[1].append((s, where))
    for slab, waiting in by_slab.values():
        first = min(where.row for _, where in waiting)
        with slab.device:
            host = slab[first:1 + max(where.row for _, where in waiting)].get()
        for s, where in waiting:
            _fill_from_row(s, where, host[where.row - first])


def _fill_from_row(s: TensorSummary, where: _DeviceRow, row: np.ndarray) -> None:
    """Set every field an _OnDevice summary defers from its row on the host; it is a TensorSummary then."""
    (mn, mx, mean, std, norm, nan, inf, zeros, counts, lo, hi, samples,
     stride) = where.kernel.decode(row, where.flat, where.limit, BINS, HIST_LIMIT, SAMPLES)
    _min_set(s, mn)
    _max_set(s, mx)
    _mean_set(s, mean)
    _std_set(s, std)
    _norm_set(s, norm)
    _nan_count_set(s, nan)
    _inf_count_set(s, inf)
    _zero_count_set(s, zeros)
    _lo_set(s, lo)
    _hi_set(s, hi)
    _samples_set(s, samples)
    _stride_set(s, stride)
    _counts_set(s, _host_counts(counts))  # the last statistic set: see finish
    _late_from_del(s)
    _setattr(s, "__class__", TensorSummary)


def _on_device(shape: tuple, dtype: str, dev: str, n: int, where: _DeviceRow) -> TensorSummary:
    """A GPU summary whose statistics are read from `where` when first asked for (see _OnDevice)."""
    s = _new(_Unfrozen)
    s.shape, s.dtype, s.device, s.numel = shape, dtype, dev, n
    s._late_from = where
    s.__class__ = _OnDevice
    if _device_waiting and (len(_device_waiting) >= DEVICE_WAITING or _device_bytes[0] >= DEVICE_WAITING_BYTES):
        finish(_device_waiting[:1])
    _device_waiting.append(s)
    _device_bytes[0] += where.flat.nbytes
    return s


def on_device(s: TensorSummary | None) -> bool:
    """Whether summary `s` still waits on the GPU for its statistics (reading one copies them to the host)."""
    return s.__class__ is _OnDevice


def _finish_counts(pending: list) -> None:
    """Count the histograms of summaries whose statistics are known and whose counts are deferred."""
    x, n, _ = _segments([values for _, values in pending])
    lo = np.array([s.lo for s, _ in pending], dtype=np.float64)
    hi = np.array([s.hi for s, _ in pending], dtype=np.float64)
    block = _bin_counts(np, x, lo, hi, np.repeat(np.arange(len(pending)), n), len(pending))
    block.flags.writeable = False
    for (s, _), counts in zip(pending, block):
        _counts_set(s, counts)
        _counts_from_del(s)


class _Unfrozen(_DeferredCounts):
    """TensorSummary's slot layout without its frozen __setattr__.

    A summary is filled in as one of these and then becomes a TensorSummary by __class__ assignment:
    seventeen plain slot stores cost a fifth of seventeen calls past the frozen guard, on every op.
    """

    __slots__ = tuple(f.name for f in fields(TensorSummary))  # the same slots, in the same order


def _make(shape, dtype, device, numel, min, max, mean, std, norm, nan_count, inf_count, zero_count, counts, lo,
          hi, samples, stride, counts_from=None) -> TensorSummary:
    """A TensorSummary from all of its fields in order (counts None: deferred, counted from `counts_from`)."""
    s = _new(_Unfrozen)
    s.shape, s.dtype, s.device, s.numel = shape, dtype, device, numel
    s.min, s.max, s.mean, s.std, s.norm = min, max, mean, std, norm
    s.nan_count, s.inf_count, s.zero_count = nan_count, inf_count, zero_count
    if counts is not None:
        s.counts = counts
    else:
        s._counts_from = counts_from
    s.lo, s.hi, s.samples, s.stride = lo, hi, samples, stride
    s.__class__ = TensorSummary
    return s


_new = object.__new__
_setattr = object.__setattr__  # past TensorSummary's frozen guard
_FIELDS = tuple(f.name for f in fields(TensorSummary))
if _make.__code__.co_varnames[:len(_FIELDS)] != _FIELDS:  # a field added to one and not the other
    raise TypeError("engine.debug.summary._make must take TensorSummary's fields, in order")


def summarize(a, limit: int = SUMMARY_LIMIT, device: str | None = None) -> TensorSummary:
    """Summarize an array (numpy or cupy) or a Tensor; see the module docstring for what is exact."""
    if a.__class__ is not np.ndarray and hasattr(a, "grad_fn"):  # a Tensor
        a = a.array
    dev = device if device is not None else "cpu" if a.__class__ is np.ndarray else str(device_of(a))
    dt = a.dtype
    dtype = _dtype_names.get(dt) or _dtype_names.setdefault(dt, dt.name)
    shape, n = a.shape, a.size
    if n == 0:
        return _make(shape, dtype, dev, 0, *_NAN5, 0, 0, 0, _NO_COUNTS, 0.0, 0.0, (), 1)
    flat = a.reshape(-1)
    private = dt.kind != "f" or dt.itemsize < 4  # a converted copy that nothing else refers to
    if dt.kind != "f":  # ints and bools: summarised as numbers
        flat = flat.astype(np.float64)
    elif dt.itemsize < 4:  # float16 sums overflow
        flat = flat.astype(np.float32)
    if flat.__class__ is not np.ndarray:
        fused = kernels.get("tensor_summary", array_module(flat))
        if fused is not None:  # CUDA: the same statistics in two kernels, copied to the host when first read
            return _on_device(shape, dtype, dev, n, _DeviceRow(fused, *fused.launch(flat, limit, BINS, HIST_LIMIT,
                                                                                      SAMPLES), flat, limit))
    if n <= TINY:
        return _tiny(shape, dtype, dev, flat.tolist())
    if flat.__class__ is np.ndarray:
        return _numpy_summary(flat, shape, dtype, dev, n, limit, private=private)
    xp = array_module(flat)
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
    mn, mx, mean, var, norm, zeros = host_floats([mn, mx, *stats])
    return _make(shape, dtype, dev, n, mn, mx, mean, math.sqrt(var) if var > 0 else 0.0, norm, nan, inf,
                 round(zeros), _host_counts(counts), *_hist_range(mn, mx), _samples(flat, n), stride)


def _deferred(shape: tuple, dtype: str, dev: str, n: int, copy: np.ndarray) -> TensorSummary:
    """A summary of a finite tensor whose _LATE statistics will be computed from `copy` when first read."""
    s = _new(_Unfrozen)
    s.shape, s.dtype, s.device, s.numel = shape, dtype, dev, n
    s.nan_count, s.inf_count, s.stride = 0, 0, 1
    s._late_from = copy
    s.__class__ = _Waiting
    _waiting[0] += copy.nbytes
    return s


def _numpy_summary(flat: np.ndarray, shape: tuple, dtype: str, dev: str, n: int, limit: int,
                   private: bool = False) -> TensorSummary:
    """The summary of a flat float32/float64 numpy array, in about ten array calls.

    argmin/argmax stop at the first NaN, so a NaN or an infinity shows in the extremes and the exact
    NaN/Inf counts run only then; two BLAS dots give the sum and the sum of squares (mean, std, norm);
    zeros are counted only when zero lies between min and max; the histogram is deferred.

    A tensor of at most `limit` elements gets only the sum now (a finite one proves every element
    finite), and the rest from a copy when first read, see `finish` (`private`: `flat` is a conversion
    nobody else holds, so it is that copy).
    """
    if n <= limit and _waiting[0] < WAITING_BYTES:
        total = float(flat.dot(_ones(flat.dtype, n)))
        if total - total == 0.0:  # NaN and the infinities make a sum NaN or infinite
            return _deferred(shape, dtype, dev, n, flat if private else flat.copy())
    if n <= limit:  # argmin/argmax cost less per call; min/max reductions less per element
        mn, mx = flat.item(flat.argmin()), flat.item(flat.argmax())
    else:
        mn, mx = float(_umin(flat)), float(_umax(flat))
    nan = inf = 0
    fin = flat
    if mn - mn != 0.0 or mx - mx != 0.0:  # x - x is NaN for NaN and for both infinities
        nan = int(np.count_nonzero(np.isnan(flat)))
        inf = int(np.count_nonzero(np.isinf(flat)))
        fin = flat[np.isfinite(flat)]
        if fin.size == 0:
            return _make(shape, dtype, dev, n, *_NAN5, nan, inf, 0, _NO_COUNTS, 0.0, 0.0, _samples(flat, n), 1)
        mn, mx = fin.item(fin.argmin()), fin.item(fin.argmax())
    k = fin.size
    amax = mx if mx > -mn else -mn
    if amax * amax * k > _F32_SQUARES and fin.dtype == np.float32:  # its sum of squares would overflow
        fin = fin.astype(np.float64)
    stride = -(-k // limit)
    if stride > 1:
        sq = float(fin.dot(fin))  # the norm stays exact: one pass over every finite element
        s = fin[::stride].copy()  # contiguous: BLAS and the casts run several times faster on it
    else:
        s = fin
    ns = s.size
    total, ssq = float(s.dot(_ones(s.dtype, ns))), float(s.dot(s))
    if stride == 1:
        sq = ssq
    mean = total / ns
    var = ssq / ns - mean * mean
    if mx == mn:
        mean, var = mn, 0.0
    elif not var > 0.01 * mean * mean:  # |mean| > 10 std: E[x^2] - mean^2 lost the variance's digits
        d = s - mean  # centred again, with the rounding of the mean itself taken back out
        dsum = float(d.dot(_ones(d.dtype, ns))) / ns
        mean += dsum
        var = float(d.dot(d)) / ns - dsum * dsum
    zeros = 0
    if mn <= 0.0 <= mx:
        zeros = int(np.count_nonzero(s == 0))  # == is vectorised; -0.0 counts as zero
        if stride > 1:
            zeros = round(zeros * k / ns)
    lo, hi = _hist_range(mn, mx)
    # a copy: the deferred histogram counts the values of now, even if the array changes later
    return _make(shape, dtype, dev, n, mn, mx, mean, sample_std(var, ns), math.sqrt(sq), nan, inf,
                 zeros, None, lo, hi, _samples(flat, n), stride, s[:: -(-ns // HIST_LIMIT)].copy())


def sample_std(var: float, n: int) -> float:
    """The standard deviation of n values whose variance over n is `var`, with n - 1 in its denominator as
    torch's `std()` by default (Bessel's correction: what a person compares a summary with); 0 for one value."""
    return math.sqrt(var * n / (n - 1)) if var > 0 and n > 1 else 0.0


def _bin_counts(xp, values, lo, hi, seg=None, rows: int = 1):
    """BINS counts per row, on the values' device: a value of row r goes in bin
    floor((x - lo[r]) / ((hi[r] - lo[r]) / BINS)), computed in float64, and the maximum in the last bin.
    One row: values, and numbers lo and hi. Many: values of row r where seg is r, with lo and hi arrays;
    or 2-D values (a row each) with lo and hi as columns."""
    width = (hi - lo) / BINS
    # a constant beyond 2**53 in size has lo == hi (c - 0.5 == c): its values all go in the first bin,
    # as on a GPU, where 0 / 0 had made negative bin numbers here
    width = (width or 1.0) if isinstance(width, float) else np.where(width > 0, width, 1.0)
    if seg is not None:
        lo, width = lo[seg], width[seg]
    h = xp.subtract(values, lo, dtype=xp.float64)
    h /= width  # divided by the width, not multiplied by its inverse: a value on an edge goes in the bin above
    bins = h.astype(xp.intp)
    if seg is not None:
        bins += seg * (BINS + 1)
    elif bins.ndim == 2:
        bins += xp.arange(0, rows * (BINS + 1), BINS + 1)[:, None]
        bins = bins.reshape(-1)
    counts = xp.bincount(bins, minlength=rows * (BINS + 1)).reshape(rows, BINS + 1)
    counts[:, BINS - 1] += counts[:, BINS]  # the maximum itself lands one past the last bin
    return counts[:, :BINS]


def _hist_range(mn, mx) -> tuple:
    """The histogram's range: the finite min and max, or one unit around a constant (as numpy does)."""
    return (mn, mx) if mx > mn else (mn - 0.5, mn + 0.5)


def _finite_stats(xp, flat, mn, mx, limit: int):
    """(mean, sample variance, norm, zero count), histogram counts and stride of finite values.

    Reading passes only (BLAS dots with ones and with itself, min, max, count_nonzero): a mean-centred
    copy is made only when |mean| > 10 std, where E[x^2] - mean^2 would lose the digits of the variance.
    """
    n = flat.size
    stride = -(-n // limit)
    s = flat[::stride] if stride > 1 else flat
    ns = s.size
    if xp is np:  # a dot with ones sums several times faster than the pairwise np.add.reduce
        total, sq = np.dot(s, _ones(s.dtype, ns)), np.dot(s, s)
    else:
        total, sq = s.sum(), xp.dot(s, s)
    zeros = (ns - xp.count_nonzero(s)) * (n / ns)
    mean = total / ns
    var = sq / ns - mean * mean
    if xp is not np or not var > 0.01 * mean * mean:
        d = s - mean
        var = xp.dot(d, d) / ns
    var = var * (ns / (ns - 1)) if ns > 1 else var * 0.0  # the sample variance, as sample_std
    norm = xp.sqrt(xp.dot(flat, flat) if stride > 1 else sq)
    lo, hi = _hist_range(mn, mx)  # the histogram: of at most HIST_LIMIT elements
    return (mean, var, norm, zeros), _bin_counts(xp, s[:: -(-ns // HIST_LIMIT)], lo, hi)[0], stride


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
    """The summary of at most TINY values, as Python floats: exact sums, no array calls."""
    n = len(vals)
    samples = tuple(vals[:: max(1, n // SAMPLES)][:SAMPLES])
    fin = [v for v in vals if v - v == 0.0]  # v - v is NaN for NaN and for both infinities
    k = len(fin)
    nan = sum(1 for v in vals if v != v) if k < n else 0
    if not k:
        return _make(shape, dtype, dev, n, *_NAN5, nan, n - nan, 0, _NO_COUNTS, 0.0, 0.0, samples, 1)
    mn, mx = min(fin), max(fin)
    if mx > mn:
        mean = math.fsum(fin) / k
        var = math.fsum([(v - mean) * (v - mean) for v in fin]) / (k - 1)  # k > 1 values: see sample_std
    else:
        mean, var = mn, 0.0
    lo, hi = _hist_range(mn, mx)
    zeros = fin.count(0) if mn <= 0.0 <= mx else 0
    return _make(shape, dtype, dev, n, mn, mx, mean, math.sqrt(var), math.sqrt(math.fsum([v * v for v in fin])),
                 nan, n - k - nan, zeros, None, lo, hi, samples, 1, tuple(fin))


_NO_COUNTS = np.zeros(BINS, dtype=np.int64)
_NO_COUNTS.flags.writeable = False
_NAN5 = (math.nan,) * 5
_F32_SQUARES = 1e37  # a float32 sum of squares above this is near overflow (float32 max: 3.4e38)
_ONES = {np.dtype(t): np.ones(SUMMARY_LIMIT, dtype=t) for t in (np.float32, np.float64)}


def _ones(dtype, n: int) -> np.ndarray:
    """n ones of `dtype` (a view of a shared array, grown when a larger summary limit needs it)."""
    ones = _ONES[dtype]
    if ones.size < n:
        ones = _ONES[dtype] = np.ones(n, dtype=dtype)
    return ones[:n]

