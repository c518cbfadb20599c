"""The debugger on CUDA tensors: summaries computed on the device, values fetched to the host."""

import numpy as np
import pytest

import engine
from engine.debug import Debugger, EditParam, OpRecord, summarize
from tests.engine.debug.helpers import MLP, batch


def _has_cuda() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # not installed, or no working driver
        return False


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _has_cuda(), reason="needs CuPy and a CUDA GPU")]


@pytest.mark.parametrize("n", [5, 3000, 100_000])
def test_device_summaries_match_host_summaries(n):
    a = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    a[::97] = np.nan
    host, dev = summarize(a), summarize(engine.tensor(a, device="cuda"))
    assert dev.device == "cuda:0" and host.device == "cpu"
    counts = ("nan_count", "inf_count", "numel", "stride")
    assert [getattr(dev, c) for c in counts] == [getattr(host, c) for c in counts]
    np.testing.assert_allclose([dev.min, dev.max, dev.mean, dev.std, dev.norm],
                               [host.min, host.max, host.mean, host.std, host.norm], rtol=1e-4)
    assert isinstance(dev.counts, np.ndarray)
    np.testing.assert_array_equal(dev.counts, host.counts)


def _on_edges(rng):
    # lo -16, hi 16, bin width 0.5: every value lies on a bin edge, where rounding decides the bin
    return (np.arange(-64, 65) * 0.25).astype(np.float32)


HISTOGRAM_CASES = {
    "normal": lambda rng: rng.standard_normal(5000).astype(np.float32) * 3 + 1,
    "on bin edges": _on_edges,
    "quantized": lambda rng: (rng.integers(-1000, 1000, 5000) / 8).astype(np.float32),
    "awkward range": lambda rng: (rng.integers(0, 7, 3000) * 0.1 + 0.3).astype(np.float32),
    "constant": lambda rng: np.full(300, 2.5, np.float32),
    "float64": lambda rng: rng.integers(-77, 77, 4000) / 3.0,
    "sampled, with nan": lambda rng: np.where(np.arange(300_001) % 97 == 0, np.nan,
                                                 rng.integers(-500, 500, 300_001) / 4).astype(np.float32),
}


@pytest.mark.parametrize("case", HISTOGRAM_CASES)
def test_device_histograms_equal_host_histograms_bin_for_bin(case):
    a = HISTOGRAM_CASES[case](np.random.default_rng(3))
    host, dev = summarize(a), summarize(engine.tensor(a, device="cuda"))
    assert (dev.lo, dev.hi, dev.stride) == (host.lo, host.hi, host.stride)
    np.testing.assert_array_equal(dev.counts, host.counts)


def test_tracing_a_cuda_training_step():
    model = MLP().to("cuda")
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    x, y = x.to("cuda"), y.to("cuda")
    with Debugger("values", model=model, optimizer=opt) as dbg:
        opt.zero_grad()
        engine.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        assert dbg.edit(EditParam("fc2.bias", "fill", (1.0, 2.0), ((0,), (2,)))) is not None
        dbg.apply_edits()
    relu = next(r for r in dbg.history if isinstance(r, OpRecord) and r.event.op == "relu")
    assert relu.event.device == "cuda:0" and relu.summary.device == "cuda:0"
    assert isinstance(relu.value, np.ndarray)
    fetched = dbg.fetch(relu.event.output)
    assert isinstance(fetched, np.ndarray) and fetched.shape == (5, 6)
    np.testing.assert_array_equal(fetched, relu.value)
    np.testing.assert_array_equal(model.fc2.bias.array.get()[[0, 2]], [1.0, 2.0])


def test_summaries_read_late_come_to_the_host_together_and_equal_the_hosts():
    # a traced step makes a summary per op and gradient without the host waiting for the GPU: the rows of all
    # those not read yet come over in one copy when one is read (some with NaN and infinities, tiny ones, ints,
    # float16, more than a slab of them), and each equals the CPU's summary of the same values
    from engine.debug import summary as summary_module

    rng = np.random.default_rng(3)
    arrays = []
    for i in range(300):
        n = (3, 16, 17, 5000, 40_000)[i % 5]
        a = rng.standard_normal(n).astype((np.float32, np.float64, np.float16)[i % 3])
        if i % 7 == 0:
            a[:: 11] = (np.nan, np.inf, -np.inf)[i % 3]
        arrays.append(a)
    arrays += [np.arange(12, dtype=np.int64), np.array([True, False, True]), np.full(20, np.nan, np.float32)]
    dev = [summarize(engine.tensor(a, device="cuda")) for a in arrays]
    assert sum(summary_module.on_device(s) for s in dev) == len(dev)  # nothing was copied yet
    first = dev[-1].nan_count  # one read brings every row
    assert first == 20 and not any(summary_module.on_device(s) for s in dev)
    for a, d in zip(arrays, dev):
        h = summarize(a)
        fields = ("numel", "nan_count", "inf_count", "stride", "zero_count", "shape", "dtype")
        assert [getattr(d, f) for f in fields] == [getattr(h, f) for f in fields], a.dtype
        np.testing.assert_allclose([d.min, d.max, d.mean, d.std, d.norm], [h.min, h.max, h.mean, h.std, h.norm],
                                   rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(d.counts, h.counts)
        np.testing.assert_allclose(d.samples, h.samples, rtol=1e-6)


def test_a_summary_on_the_device_is_read_from_another_thread():
    import threading

    a = np.random.default_rng(4).standard_normal(1000).astype(np.float32)
    dev = summarize(engine.tensor(a, device="cuda"))
    seen = []
    worker = threading.Thread(target=lambda: seen.append((dev.mean, dev.counts.sum())))
    worker.start()
    worker.join()
    host = summarize(a)
    assert seen[0][1] == host.counts.sum()
    np.testing.assert_allclose(seen[0][0], host.mean, rtol=1e-5)


def test_square_sums_on_the_device_come_back_right_in_one_call():
    # the optimizer's norms: one kernel each, side by side in a slab, host_floats copies the span of them;
    # mixed with other 0-d arrays and numbers, across slabs, of every float width, empty, complex
    import cupy

    from engine.backend import host_floats, square_sum

    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(n).astype(dt) for n in (0, 1, 7, 1000, 300_000)
              for dt in (np.float16, np.float32, np.float64)]
    arrays.append((rng.standard_normal(50) + 1j * rng.standard_normal(50)).astype(np.complex64))
    expected = [float(np.sum(np.abs(a.astype(np.complex128)) ** 2)) for a in arrays]
    for _ in range(3):  # past a slab's 1024 slots
        sums = [square_sum(cupy.asarray(a)) for a in arrays for _ in range(25)]
        got = host_floats([*sums, 2.5, cupy.asarray(3.0)])
        assert got[-2:] == [2.5, 3.0]
        np.testing.assert_allclose(got[:-2], [e for e in expected for _ in range(25)], rtol=2e-6)
    assert float(square_sum(cupy.asarray(arrays[4]))) == pytest.approx(expected[4], rel=1e-6)


def test_summaries_waiting_on_the_device_hold_a_bounded_number_of_bytes(monkeypatch):
    # each holds its array until read (a second count where values are not finite): past the bound, the next
    # summary brings them all over, so a run whose summaries nobody reads keeps no activations alive
    from engine.debug import summary as summary_module

    monkeypatch.setattr(summary_module, "DEVICE_WAITING_BYTES", 1 << 20)
    big = [engine.tensor(np.ones(100_000, np.float32), device="cuda") for _ in range(6)]
    made = [summarize(t) for t in big]
    assert sum(summary_module.on_device(s) for s in made) < 4  # 400 kB each: at most three waited at once
    assert all(s.max == 1.0 for s in made)
