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
    assert isinstance(dev.counts, np.ndarray) and abs(int(dev.counts.sum()) - int(host.counts.sum())) <= 1


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
    np.testing.assert_array_equal(model.fc2.bias.data.get()[[0, 2]], [1.0, 2.0])
