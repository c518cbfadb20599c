"""TensorSummary: exact statistics below the size limit, documented sampling above it."""

import dataclasses
import math
import threading
import warnings

import numpy as np
import pytest

import engine
from engine.debug import TensorSummary, summarize
from engine.debug import summary as summary_module
from engine.debug.summary import BINS, HIST_LIMIT, SUMMARY_LIMIT


def _std(f: np.ndarray) -> float:
    """torch's default std (n - 1), 0 for one value as a summary has it."""
    return f.std(ddof=1) if f.size > 1 else 0.0


def _expect_exact(s: TensorSummary, a: np.ndarray) -> None:
    fin = a[np.isfinite(a)].astype(np.float64)
    assert s.numel == a.size and s.shape == a.shape
    assert s.nan_count == np.isnan(a).sum() and s.inf_count == np.isinf(a).sum()
    assert s.zero_count == (a == 0).sum()
    np.testing.assert_allclose([s.min, s.max], [fin.min(), fin.max()])
    np.testing.assert_allclose([s.mean, s.std, s.norm], [fin.mean(), _std(fin), np.sqrt((fin * fin).sum())],
                               rtol=1e-5, atol=1e-6)
    expected, edges = np.histogram(fin, BINS)
    np.testing.assert_array_equal(s.counts, expected)
    np.testing.assert_allclose(s.bin_edges, edges)


@pytest.mark.parametrize("n", [1, 7, 16, 17, 300, HIST_LIMIT])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_statistics_match_numpy(n, dtype):
    a = np.random.default_rng(n).standard_normal(n).astype(dtype) * 3 + 1
    s = summarize(a)
    _expect_exact(s, a)
    assert s.exact and s.finite and s.dtype == np.dtype(dtype).name and s.device == "cpu"


def test_integer_bool_and_multidimensional_tensors():
    a = np.arange(-6, 18).reshape(2, 3, 4)
    s = summarize(engine.tensor(a))
    _expect_exact(s, a)
    assert s.dtype == "int64" and s.shape == (2, 3, 4)
    b = summarize(np.array([True, False, True, True]))
    assert (b.min, b.max, b.mean, b.zero_count) == (0.0, 1.0, 0.75, 1)


@pytest.mark.parametrize("n", [10, 1000])
def test_nan_and_inf_are_counted_and_left_out_of_the_statistics(n):
    a = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    a[::7] = np.nan
    a[1::11] = np.inf
    a[2::13] = -np.inf
    s = summarize(a)
    assert not s.finite
    _expect_exact(s, a)


def test_all_nan_empty_and_zero_dim():
    s = summarize(np.full(40, np.nan, np.float32))
    assert s.nan_count == 40 and math.isnan(s.mean) and s.counts.sum() == 0
    e = summarize(np.zeros((0, 3), np.float32))
    assert e.numel == 0 and e.shape == (0, 3) and e.counts.sum() == 0
    z = summarize(np.array(2.5, np.float32))
    assert z.shape == () and z.min == z.max == z.mean == 2.5 and z.std == 0.0


def test_large_tensor_keeps_extremes_norm_and_nonfinite_counts_exact():
    n = SUMMARY_LIMIT * 6 + 5
    a = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    a[12345] = 40.0  # a spike a strided sample would miss
    a[777] = np.nan
    s = summarize(a)
    fin = a[np.isfinite(a)].astype(np.float64)
    assert s.stride > 1 and not s.exact
    assert s.nan_count == 1 and s.inf_count == 0 and s.max == 40.0 and s.min == fin.min()
    np.testing.assert_allclose(s.norm, np.sqrt((fin * fin).sum()), rtol=1e-5)
    assert abs(s.mean - fin.mean()) < 0.05 and abs(s.std - fin.std()) < 0.05
    assert 0 < s.counts.sum() <= HIST_LIMIT


def test_variance_survives_a_large_mean():
    a = (1000 + 0.01 * np.random.default_rng(2).standard_normal(5000)).astype(np.float32)
    s = summarize(a)
    np.testing.assert_allclose(s.std, a.astype(np.float64).std(ddof=1), rtol=1e-3)


def test_summary_is_frozen_plain_data():
    s = summarize(np.ones(50, np.float32))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mean = 3.0
    with pytest.raises(ValueError):
        s.counts[0] = 5
    assert not hasattr(s, "__dict__")
    assert all(isinstance(getattr(s, f.name), int | float | str | tuple | np.ndarray)
               for f in dataclasses.fields(s))


def _bins(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The documented binning, written out plainly: floor((x - lo) / width) in float64, max in the last bin."""
    width = (hi - lo) / BINS
    idx = [min(int((float(v) - lo) / width), BINS - 1) for v in values]
    return np.bincount(np.array(idx, dtype=np.int64), minlength=BINS)


@pytest.mark.parametrize("n", [5, 16, 40, 1000, HIST_LIMIT])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_on_bin_edges_land_in_the_bin_above(n, dtype):
    # integers spread over a range whose bin width is not a binary fraction: many values sit on edges
    a = np.random.default_rng(n).integers(-350, 351, n).astype(dtype)
    a[:2] = -350, 350
    s = summarize(a)
    np.testing.assert_array_equal(s.counts, _bins(a, -350.0, 350.0))
    assert s.counts.sum() == n and s.zero_count == (a == 0).sum()


def test_constant_tensors_have_zero_spread_and_one_spike():
    for a in (np.full(300, 0.1, np.float32), np.full(7, -3.0), np.full(900, 5, np.int64)):
        s = summarize(a)
        value = float(a.flat[0])
        assert s.min == s.max == s.mean == value and s.std == 0.0
        assert (s.lo, s.hi) == (value - 0.5, value + 0.5)
        assert s.counts.sum() == a.size and np.count_nonzero(s.counts) == 1
        np.testing.assert_allclose(s.norm, np.sqrt(a.size) * abs(value), rtol=1e-6)


def test_negative_zero_counts_as_zero():
    a = np.array([-0.0, 0.0, 1.0, -2.0] * 10, np.float32)
    assert summarize(a).zero_count == 20
    assert summarize(a[:4]).zero_count == 2  # the plain-Python path for tiny tensors


@pytest.mark.parametrize("n", [17, 500, SUMMARY_LIMIT])
def test_float16_int_and_bool_tensors_match_numpy(n):
    rng = np.random.default_rng(n)
    half = rng.standard_normal(n).astype(np.float16)
    _expect_exact_loose(summarize(half), half)
    ints = rng.integers(-5, 6, n)
    _expect_exact_loose(summarize(ints), ints)
    flags = rng.random(n) < 0.3
    s = summarize(flags)
    assert (s.min, s.max, s.zero_count) == (0.0, 1.0, n - flags.sum())
    np.testing.assert_allclose(s.mean, flags.mean())


def _expect_exact_loose(s: TensorSummary, a: np.ndarray) -> None:
    """Exact counts and extremes; sums to float32 accuracy; histogram by the documented binning."""
    f = a.astype(np.float64)
    assert s.numel == a.size and s.zero_count == (a == 0).sum() and (s.min, s.max) == (f.min(), f.max())
    np.testing.assert_allclose([s.mean, s.std, s.norm], [f.mean(), _std(f), np.sqrt((f * f).sum())], rtol=1e-5,
                               atol=1e-6)
    lo, hi = (f.min(), f.max()) if f.max() > f.min() else (f.min() - 0.5, f.min() + 0.5)
    np.testing.assert_array_equal(s.counts, _bins(f[:: -(-a.size // HIST_LIMIT)], lo, hi))


def test_nan_and_inf_counts_stay_exact_above_the_limit():
    n = SUMMARY_LIMIT * 5 + 3
    a = np.random.default_rng(3).standard_normal(n).astype(np.float32)
    a[1::97] = np.nan  # most of them are not in the strided sample
    a[5::101] = np.inf
    a[8::103] = -np.inf
    a[4] = -0.0
    s = summarize(a)
    fin = a[np.isfinite(a)].astype(np.float64)
    assert s.nan_count == np.isnan(a).sum() and s.inf_count == np.isinf(a).sum() and not s.finite
    assert s.stride > 1 and (s.min, s.max) == (fin.min(), fin.max())
    np.testing.assert_allclose(s.norm, np.sqrt((fin * fin).sum()), rtol=1e-5)
    assert abs(s.mean - fin.mean()) < 0.05 and abs(s.std - fin.std()) < 0.05


def test_squares_beyond_float32_are_summed_in_float64_without_warnings():
    a = np.full(100, 3e20, np.float32)
    a[::2] = -3e20
    big = np.tile(a, SUMMARY_LIMIT // 50)  # above the limit: the exact norm pass would overflow too
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, b = summarize(a), summarize(big)
    np.testing.assert_allclose([s.norm, s.std, s.mean], [3e20 * 10, 3e20 * np.sqrt(100 / 99), 0.0], rtol=1e-6,
                               atol=1.0)
    np.testing.assert_allclose(b.norm, 3e20 * np.sqrt(big.size), rtol=1e-6)


def test_statistics_are_of_the_values_the_tensor_had_when_summarised():
    a = np.linspace(-1, 1, 3000).astype(np.float32)
    small = np.array([1.0, 2.0, 3.0], np.float32)
    before = a.copy()
    s, t = summarize(a), summarize(small)
    a[:] = 7.0  # changed in place after the summaries were made, before anything was read from them
    small[:] = 0.0
    _expect_exact_loose(s, before)  # which checks the histogram of every third value too
    assert s.counts is s.counts and not s.counts.flags.writeable  # counted once, read-only
    assert (t.min, t.max, t.mean) == (1.0, 3.0, 2.0)
    np.testing.assert_array_equal(t.counts, _bins(np.array([1.0, 2.0, 3.0]), 1.0, 3.0))


@pytest.mark.parametrize("n", [40, 3000])
def test_summaries_computed_at_once_when_too_many_copies_wait(n, monkeypatch):
    monkeypatch.setattr(summary_module, "WAITING_BYTES", 0)
    a = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 2 - 1
    s = summarize(a)
    a[:] = 0.0
    _expect_exact_loose(s, np.random.default_rng(n).standard_normal(n).astype(np.float32) * 2 - 1)


def test_summaries_read_from_several_threads_agree():
    arrays = [np.random.default_rng(i).standard_normal(5000 + i) for i in range(30)]
    summaries = [summarize(a) for a in arrays]
    names = ("mean", "counts", "norm", "min", "zero_count", "std")
    seen = [[], [], []]

    def read(out, first):
        for s in summaries:  # each thread reads the fields in another order
            out.append({name: getattr(s, name) for name in names[first:] + names[:first]})

    threads = [threading.Thread(target=read, args=(out, k * 2)) for k, out in enumerate(seen)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for a, s, *views in zip(arrays, summaries, *seen):
        _expect_exact_loose(s, a)
        for view in views:
            for name in names:
                np.testing.assert_array_equal(view[name], getattr(s, name))


@pytest.mark.parametrize("chunk", [1, 5000, 1 << 20])
def test_finishing_many_summaries_at_once_gives_each_its_own_numbers(chunk, monkeypatch):
    """The tape writer's batch: deferred, constant, tiny, NaN-holding and large summaries mixed, one of
    them twice, in chunks of any size; each equals its values' statistics and documented histogram."""
    monkeypatch.setattr(summary_module, "FINISH_CHUNK", chunk)
    rng = np.random.default_rng(11)
    arrays = [rng.standard_normal(n).astype(dt) * scale + shift
              for n, dt, scale, shift in [(40, np.float32, 3, 1), (3000, np.float64, 0.01, 100), (17, np.float32, 1, 0),
                                          (SUMMARY_LIMIT, np.float32, 2, -5), (5, np.float64, 1, 0)]]
    arrays.append(np.full(300, 2.5, np.float32))  # constant: one spike in the middle bin
    arrays.append(np.where(rng.random(200) < 0.2, 0.0, rng.standard_normal(200)).astype(np.float32))  # zeros
    with_nan = rng.standard_normal(500).astype(np.float32)
    with_nan[::50] = np.nan  # computed at once, only its histogram waits
    summaries = [summarize(a) for a in arrays] + [summarize(with_nan)]
    kept = [a.copy() for a in arrays]
    for a in arrays:
        a[:] = -1.0  # finished from the copies taken when summarised
    summary_module.finish(summaries + summaries[:2])
    for s, a in zip(summaries, kept):
        _expect_exact_loose(s, a)
    finite = with_nan[np.isfinite(with_nan)].astype(np.float64)
    np.testing.assert_array_equal(summaries[-1].counts, _bins(finite, finite.min(), finite.max()))
    assert summaries[5].std == 0.0 and summaries[5].mean == 2.5 and summaries[5].counts[BINS // 2] == 300
    assert all(not s.counts.flags.writeable for s in summaries)
    assert summary_module._waiting[0] >= 0


def test_a_finished_batch_equals_summaries_read_one_by_one():
    arrays = [np.random.default_rng(i).standard_normal(100 + 97 * i).astype(np.float32) for i in range(12)]
    batch, single = [summarize(a) for a in arrays], [summarize(a) for a in arrays]
    summary_module.finish(batch)
    names = ("min", "max", "mean", "std", "norm", "zero_count", "lo", "hi", "samples")
    for b, s in zip(batch, single):
        assert [getattr(b, n) for n in names] == [getattr(s, n) for n in names]
        np.testing.assert_array_equal(b.counts, s.counts)


@pytest.mark.parametrize("n", [SUMMARY_LIMIT // 4, 5000, 700])
def test_a_batch_of_one_size_equals_summaries_read_one_by_one(n):
    """Copies of one size (a layer's outputs step after step) take a strided path to their histograms."""
    rng = np.random.default_rng(n)
    arrays = [(rng.standard_normal(n) * (i + 1) + i).astype(np.float32) for i in range(6)]
    arrays += [np.full(n, -3.0, np.float32), np.maximum(arrays[0], 0)]  # constant; half zeros
    batch, single = [summarize(a) for a in arrays], [summarize(a) for a in arrays]
    summary_module.finish(batch)
    names = ("min", "max", "mean", "std", "norm", "zero_count", "lo", "hi", "samples")
    for b, s, a in zip(batch, single, arrays):
        assert [getattr(b, n) for n in names] == [getattr(s, n) for n in names]
        np.testing.assert_array_equal(b.counts, s.counts)
        _expect_exact_loose(b, a)


def test_the_scalar_of_a_one_element_tensor():
    assert summarize(np.array([2.5], np.float32)).scalar == 2.5
    assert math.isnan(summarize(np.array(np.inf)).scalar)  # a loss that is not finite reads as NaN
    assert summarize(np.ones(2)).scalar is None
