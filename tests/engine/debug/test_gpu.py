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
