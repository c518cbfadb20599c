"""TensorSummary: exact statistics below the size limit, documented sampling above it."""

import dataclasses
import math

import numpy as np
import pytest

import engine
from engine.debug import TensorSummary, summarize
from engine.debug.summary import BINS, HIST_LIMIT, SUMMARY_LIMIT


def _expect_exact(s: TensorSummary, a: np.ndarray) -> None:
    fin = a[np.isfinite(a)].astype(np.float64)
    assert s.numel == a.size and s.shape == a.shape
    assert s.nan_count == np.isnan(a).sum() and s.inf_count == np.isinf(a).sum()
    assert s.zero_count == (a == 0).sum()
    np.testing.assert_allclose([s.min, s.max], [fin.min(), fin.max()])
    np.testing.assert_allclose([s.mean, s.std, s.norm], [fin.mean(), fin.std(), np.sqrt((fin * fin).sum())],
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
    np.testing.assert_allclose(s.std, a.astype(np.float64).std(), rtol=1e-3)


def test_summary_is_frozen_plain_data():
    s = summarize(np.ones(50, np.float32))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mean = 3.0
    with pytest.raises(ValueError):
        s.counts[0] = 5
    assert not hasattr(s, "__dict__")
    assert all(isinstance(getattr(s, f.name), int | float | str | tuple | np.ndarray)
               for f in dataclasses.fields(s))
