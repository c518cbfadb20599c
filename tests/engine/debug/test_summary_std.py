"""A summary's std is torch's default std (n - 1 in the denominator), on every path a summary is made by, and a
tape read back gives it so, an older tape's std over n included."""

import sqlite3

import numpy as np
import pytest

import engine
from engine.debug import summary as summary_module
from engine.debug.summary import SUMMARY_LIMIT, TINY, finish, summarize

torch = pytest.importorskip("torch")


def _torch_std(a: np.ndarray) -> float:
    return float(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).std())


@pytest.mark.parametrize("n", [2, 3, TINY, TINY + 1, 300, SUMMARY_LIMIT])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64])
def test_std_is_torchs_for_every_size_and_dtype(n, dtype):
    a = (np.random.default_rng(n).standard_normal(n) * 3 + 1).astype(dtype)
    np.testing.assert_allclose(summarize(a).std, _torch_std(a), rtol=1e-6)


def test_the_testers_three_values():
    s = summarize(engine.tensor([1.0, 2.0, 2.0]))
    assert round(s.std, 3) == 0.577 and s.std == pytest.approx(_torch_std(np.array([1.0, 2.0, 2.0])))


def test_std_over_the_finite_values_is_torchs_of_those():
    a = np.random.default_rng(1).standard_normal(400)
    a[::7] = np.nan
    a[3::11] = np.inf
    fin = a[np.isfinite(a)]
    np.testing.assert_allclose(summarize(a).std, _torch_std(fin), rtol=1e-9)
    small = np.array([np.nan, 1.0, 2.0, 2.0, np.inf])  # the path of at most TINY values
    np.testing.assert_allclose(summarize(small).std, _torch_std(np.array([1.0, 2.0, 2.0])), rtol=1e-12)
    # one finite value: torch gives NaN, a summary says "no spread", as for a constant
    assert summarize(np.array([np.nan, 4.0])).std == 0.0 and summarize(np.full(500, 2.5, np.float32)).std == 0.0


def test_deferred_summaries_finished_together_give_torchs_std():
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(n).astype(np.float32) * (1 + n) for n in (17, 17, 40, 1000, 5000)]
    arrays.append((1e4 + rng.standard_normal(3000) * 1e-3).astype(np.float64))  # |mean| >> std: centred
    summaries = [summarize(a) for a in arrays]
    finish(summaries)  # the tape writer's way: all at once
    for s, a in zip(summaries, arrays):
        np.testing.assert_allclose(s.std, _torch_std(a), rtol=1e-6)


def test_above_the_limit_std_is_torchs_of_the_sample_the_summary_took():
    a = np.random.default_rng(2).standard_normal(SUMMARY_LIMIT * 3 + 5).astype(np.float32)
    s = summarize(a)
    assert s.stride > 1
    np.testing.assert_allclose(s.std, _torch_std(a[::s.stride]), rtol=1e-6)


def test_the_array_module_path_of_devices_without_a_fused_kernel_gives_torchs_std():
    a = np.random.default_rng(3).standard_normal(50_000)
    (_mean, var, _norm, _zeros), _counts, stride = summary_module._finite_stats(np, a, a.min(), a.max(), 1000)
    np.testing.assert_allclose(np.sqrt(var), _torch_std(a[::stride]), rtol=1e-9)


def _has_cuda() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("n", [2, 17, 5000, SUMMARY_LIMIT * 3 + 5])
def test_the_fused_cuda_summary_gives_torchs_std(n):
    a = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    s = summarize(engine.tensor(a, device="cuda"))
    np.testing.assert_allclose(s.std, _torch_std(a[::s.stride]), rtol=1e-5)


def _record(path, values: np.ndarray) -> int:
    x = engine.tensor(values)
    with engine.record(path, capture="summary"):
        y = x * 1.0
    return y._id


def test_a_tape_keeps_torchs_std_and_reads_an_older_tapes_std_over_n_as_torchs(tmp_path):
    values = np.random.default_rng(4).standard_normal(300).astype(np.float32)
    values[5] = np.nan
    fin = values[np.isfinite(values)]
    path = tmp_path / "run.tape"
    tid = _record(path, values)
    with engine.tape.open(path) as tape:
        assert tape.meta["std_correction"] == "1"
        np.testing.assert_allclose(tape.summary(tid).std, _torch_std(fin), rtol=1e-6)
    # a tape from before: std over n, no std_correction in meta
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE summaries SET std = ? WHERE tensor = ?", (float(fin.astype(np.float64).std()), tid))
        conn.execute("DELETE FROM meta WHERE key = 'std_correction'")
    with engine.tape.open(path) as tape:
        np.testing.assert_allclose(tape.summary(tid).std, _torch_std(fin), rtol=1e-6)
