"""What a twelfth round of ported programs met: loading a batch is not the model's computation, numpy(force=True),
and from_numpy of a reversed view."""

import warnings

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.data import DataLoader, Dataset, TensorDataset
from engine.debug import Debugger
from engine.debug.records import OpRecord


class Augmented(Dataset):
    """Samples made with engine ops (an augmentation): indexing, noise, a scale."""

    def __init__(self) -> None:
        self.x = engine.randn(16, 3)

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return self.x[i] * 1.5 + engine.randn(3) * 0.1


@pytest.mark.parametrize("workers", [0, 2])
def test_loading_a_batch_records_no_ops_only_the_models(workers):
    # in torch the loading runs in worker processes no debugger sees; here 96 indexing ops crowded each iteration
    model = nn.Linear(3, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # num_workers in the main process: told once
        loaders = [DataLoader(Augmented(), batch_size=4, num_workers=workers),
                   DataLoader(TensorDataset(engine.randn(8, 3)), batch_size=4)]
    for loader in loaders:
        with Debugger("structure") as dbg:
            for batch in loader:
                batch = batch[0] if isinstance(batch, list | tuple) else batch
                model(batch).sum().backward()
        ops = [r.event.op for r in dbg.history if isinstance(r, OpRecord)]
        assert ops and set(ops) == {"linear", "sum"}, ops
    assert engine.hub.active is False  # silenced and restored


def test_a_nan_made_while_loading_is_caught_where_the_model_takes_it():
    data = engine.ones(4, 3)
    data[2, 1] = float("nan")
    model = nn.Linear(3, 1)
    with Debugger("summary") as dbg:
        for (batch,) in DataLoader(TensorDataset(data), batch_size=2):
            model(batch).sum()
    kinds = [a.kind for a in dbg.alerts]
    assert kinds == ["nonfinite_input"] and dbg.alerts[0].op == "linear"


def test_numpy_force_and_from_numpy_of_a_reversed_view():
    t = engine.ones(2, requires_grad=True)
    assert t.numpy(force=True).tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="requires grad"):
        t.numpy()
    with pytest.raises(ValueError, match=r"stride of the numpy array is negative .* a\[::-1\]\.copy\(\)"):
        engine.from_numpy(np.arange(3.0)[::-1])
    strided = engine.from_numpy(np.arange(6.0).reshape(2, 3)[:, ::2])  # positive strides share memory
    assert strided.tolist() == [[0.0, 2.0], [3.0, 5.0]]


def test_numpy_views_of_a_tensor_that_requires_grad_are_refused_as_torchs():
    # np.asarray(p)[0] = 5 changed a parameter behind autograd's back
    p = nn.Parameter(engine.ones(2))
    for make in (np.asarray, np.array, lambda t: np.histogram(t, bins=2)):
        with pytest.raises(RuntimeError, match=r"requires grad\. Use tensor\.detach\(\)\.numpy\(\)"):
            make(p)
    assert np.asarray(p.detach()).tolist() == [1.0, 1.0] and np.histogram(p.detach(), bins=2)[0].sum() == 2


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linspace_is_torchs_to_the_bit(dtype):
    torch = pytest.importorskip("torch")
    for start, end, steps in [(-1, 1, 64), (0, 10, 7), (0.1, 1e3, 1001), (2, -2, 9), (0, 1, 1), (0, 1, 0), (5, 5, 3)]:
        ours = engine.linspace(start, end, steps, dtype=getattr(engine, dtype)).numpy()
        theirs = torch.linspace(start, end, steps, dtype=getattr(torch, dtype)).numpy()
        np.testing.assert_array_equal(ours, theirs)


def test_erfc_of_a_large_array_goes_by_blocks_to_the_same_values(monkeypatch):
    import math

    from engine import backend
    from engine.ops import activation

    monkeypatch.setattr(backend, "BLOCK_BYTES", 1 << 12)  # blocks of 64 float64 values
    z = np.abs(np.random.default_rng(0).standard_normal(3 * 64 + 17)) * 4
    whole = activation._erfc_sum(np, z)
    blocked = activation._erfc_nonnegative(np, z)
    np.testing.assert_array_equal(blocked, whole)
    for i in (0, 64, len(z) - 1):
        assert blocked[i] == pytest.approx(math.erfc(z[i]), rel=1e-13)
    assert activation._erfc_nonnegative(np, z.reshape(-1, 1)[:150].T).shape == (1, 150)
