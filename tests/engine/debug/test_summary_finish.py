"""finish(): deferred statistics computed in batches equal float64 references, on any thread, any number of times."""

import gc
import threading

import numpy as np
import pytest

from engine.debug import summarize
from engine.debug import summary as summary_module
from engine.debug.summary import BINS, HIST_LIMIT, SUMMARY_LIMIT, TensorSummary

F32_MAX = float(np.finfo(np.float32).max)


def _reference(a: np.ndarray) -> dict:
    """Every deferred statistic of `a`, computed plainly in float64 (the centred variance, exact squares)."""
    f = a.astype(np.float64)
    mn, mx = f.min(), f.max()
    lo, hi = (mn, mx) if mx > mn else (mn - 0.5, mn + 0.5)
    width = (hi - lo) / BINS
    taken = f[:: -(-a.size // HIST_LIMIT)]
    bins = np.minimum(((taken - lo) / width).astype(np.int64), BINS - 1) if width > 0 else np.zeros(taken.size, int)
    return {"min": mn, "max": mx, "mean": f.mean(), "std": f.std(ddof=1) if f.size > 1 else 0.0,  # torch's std
            "norm": np.sqrt(np.dot(f, f)), "zero_count": int((f == 0).sum()),
            "counts": np.bincount(bins, minlength=BINS)}


def _expect_reference(s, a: np.ndarray) -> None:
    ref = _reference(a)
    assert (s.min, s.max, s.zero_count) == (ref["min"], ref["max"], ref["zero_count"])
    scale = max(abs(ref["min"]), abs(ref["max"]))
    np.testing.assert_allclose(s.mean, ref["mean"], rtol=1e-12, atol=1e-15 * scale)
    np.testing.assert_allclose(s.norm, ref["norm"], rtol=1e-12)
    # the variance from E[x^2] - mean^2 keeps its digits while the mean is within 10 std; centred beyond
    np.testing.assert_allclose(s.std, ref["std"], rtol=1e-6, atol=1e-15 * scale)
    np.testing.assert_array_equal(s.counts, ref["counts"])


def _mixed_arrays(rng) -> list[np.ndarray]:
    """Copies a live run defers: both float dtypes, sizes from TINY + 1 to the limit, awkward values."""
    arrays = []
    for n in (17, 48, 512, 1000, 1024, 3001, 4096, 4096, 4096, SUMMARY_LIMIT, SUMMARY_LIMIT):
        for dtype in (np.float32, np.float64):
            arrays.append((rng.standard_normal(n) * rng.uniform(0.01, 10) + rng.uniform(-3, 3)).astype(dtype))
    big = rng.uniform(-1, 1, 4096) * 1e19  # squares near 1e38: a float32 square of 2e19 overflows
    big[:3] = 1.8e19, -1.8e19, F32_MAX ** 0.5 * 0.999
    arrays += [big.astype(np.float32), big.astype(np.float64)]
    arrays += [np.full(3000, 1e19, np.float32), np.full(3000, -7.25, np.float32), np.full(500, 0.0)]  # constants
    arrays += [(1e4 + rng.standard_normal(5000) * 1e-3).astype(np.float64),  # |mean| >> std
               (300 + rng.standard_normal(4096) * 0.01).astype(np.float32)]
    arrays += [np.maximum(rng.standard_normal(4096), 0).astype(np.float32),  # relu: half zeros
               np.where(rng.random(2000) < 0.3, -0.0, rng.standard_normal(2000)).astype(np.float64)]
    return arrays


@pytest.mark.parametrize("chunk", [1, 5000, 1 << 16, 1 << 22])
def test_finished_statistics_equal_float64_references(chunk, monkeypatch):
    monkeypatch.setattr(summary_module, "FINISH_CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    arrays = _mixed_arrays(rng)
    arrays = [arrays[i] for i in rng.permutation(len(arrays))]  # sizes and dtypes interleaved
    summaries = [summarize(a) for a in arrays]
    summary_module.finish(summaries)
    for s, a in zip(summaries, arrays):
        _expect_reference(s, a)
        assert s.samples == tuple(a[:: max(1, a.size // 8)][:8].astype(np.float64).tolist())
        assert not s.counts.flags.writeable


def test_many_summaries_in_one_batch_each_get_their_own_numbers():
    rng = np.random.default_rng(5)
    arrays = [(rng.standard_normal(n) * (i % 7 + 1) + i).astype(np.float32)
              for i, n in enumerate(rng.choice([48, 640, 1024, 4096, 8192, SUMMARY_LIMIT], 600))]
    summaries = [summarize(a) for a in arrays]
    summary_module.finish(summaries[::-1] + summaries[:50])  # any order, some twice
    for s, a in zip(summaries, arrays):
        _expect_reference(s, a)
    assert summary_module._waiting[0] >= 0


def test_only_a_summary_still_waiting_runs_code_when_freed(monkeypatch):
    """A training step frees a dozen summaries: those computed at once (a few values, past the limit) and those
    read since free as plain objects; one whose statistics still wait gives its copy's bytes back when freed,
    once, read or not."""
    gc.collect()  # what earlier tests left to the collector gives its bytes back now, not while this test counts
    monkeypatch.setattr(summary_module, "_waiting", [0])
    rng = np.random.default_rng(11)
    small, large = rng.standard_normal(8).astype(np.float32), rng.standard_normal(SUMMARY_LIMIT + 1)
    for eager in (summarize(small), summarize(large)):
        assert isinstance(eager, TensorSummary) and not hasattr(type(eager), "__del__")
        assert eager.min == float(np.min(small if eager.numel == 8 else large))
    values = rng.standard_normal(640).astype(np.float32)
    read, unread = summarize(values), summarize(values)
    assert hasattr(type(read), "__del__") and summary_module._waiting[0] == 2 * values.nbytes
    _expect_reference(read, values)  # computed: a plain TensorSummary from now on
    assert type(read) is TensorSummary and summary_module._waiting[0] == values.nbytes
    assert repr(unread).startswith("TensorSummary(shape=(640,)")  # its repr computes it too
    assert type(unread) is TensorSummary and summary_module._waiting[0] == 0
    waiting = summarize(values)
    assert summary_module._waiting[0] == values.nbytes
    del read, unread, waiting  # no cycles: freed here
    assert summary_module._waiting[0] == 0


def test_a_summary_finished_twice_or_read_after_finishing_keeps_its_numbers():
    rng = np.random.default_rng(9)
    arrays = _mixed_arrays(rng)
    summaries = [summarize(a) for a in arrays]
    summary_module.finish(summaries[:10])
    first = [(s.min, s.max, s.mean, s.std, s.norm, s.zero_count, s.samples, s.counts.tolist()) for s in summaries]
    summary_module.finish(summaries)  # the tape writer and the GUI both finish every record
    summary_module.finish(summaries[5:])
    for s, a, seen in zip(summaries, arrays, first):
        assert (s.min, s.max, s.mean, s.std, s.norm, s.zero_count, s.samples, s.counts.tolist()) == seen
        _expect_reference(s, a)


def test_a_statistic_read_from_another_thread_while_finish_fills_it_in(monkeypatch):
    """A thread that reads a summary while another thread is filling it in waits for the numbers: it
    neither sees one missing nor a half-finished summary."""
    a = np.random.default_rng(2).standard_normal(3000).astype(np.float32)
    s = summarize(a)
    seen, errors = [], []

    def read():
        try:
            seen.append((s.samples, s.std, s.norm, s.counts.tolist()))
        except Exception as e:  # reported by the assertion below
            errors.append(e)

    samples = summary_module._samples
    reader = threading.Thread(target=read)

    def samples_while_another_thread_reads(flat, n):
        if not reader.is_alive() and not seen and not errors:  # in the middle of filling `s` in
            reader.start()
            reader.join(0.5)  # the reader either fails at once or waits for the lock that finish holds
        return samples(flat, n)

    monkeypatch.setattr(summary_module, "_samples", samples_while_another_thread_reads)
    summary_module.finish([s])
    reader.join(10)
    assert not errors
    assert seen == [(s.samples, s.std, s.norm, s.counts.tolist())]
    _expect_reference(s, a)


def test_summaries_read_from_two_threads_while_finishing_batches_agree():
    rng = np.random.default_rng(4)
    arrays = [(rng.standard_normal(n) + i).astype(np.float32) for i, n in enumerate(rng.choice([100, 4096], 400))]
    summaries = [summarize(a) for a in arrays]
    errors = []

    def finish_all():
        try:
            for i in range(0, len(summaries), 32):
                summary_module.finish(summaries[i:i + 32])
        except Exception as e:  # reported by the assertion below
            errors.append(e)

    def read_all():
        try:
            for s in reversed(summaries):
                errors.extend(e for e in (s.std, s.counts, s.samples) if e is None)
        except Exception as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=finish_all), threading.Thread(target=read_all)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for s, a in zip(summaries, arrays):
        _expect_reference(s, a)
