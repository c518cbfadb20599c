"""float16, uint8, int8 and int16: promotion, casts, creation, training steps and checkpoints, against PyTorch."""

import itertools

import numpy as np
import pytest

import engine
import engine.debug
import engine.nn as nn
import engine.nn.functional as F
from engine import dtypes
from tests.engine.oracle import cuda_or_skip

torch = pytest.importorskip("torch")

PAIRS = {dtypes.float16: torch.float16, dtypes.float32: torch.float32, dtypes.float64: torch.float64,
         dtypes.uint8: torch.uint8, dtypes.int8: torch.int8, dtypes.int16: torch.int16, dtypes.int32: torch.int32,
         dtypes.int64: torch.int64, dtypes.bool_: torch.bool}
BY_TORCH = {t: d for d, t in PAIRS.items()}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(PAIRS, repeat=2)), ids=str)
def test_promotion_of_every_pair_is_pytorchs(a, b):
    assert dtypes.wider(a, b) is BY_TORCH[torch.promote_types(PAIRS[a], PAIRS[b])]


@pytest.mark.parametrize("d", list(PAIRS), ids=str)
def test_arithmetic_with_scalars_and_zero_dim_tensors_gives_pytorchs_dtype(d):
    x = engine.ones(3, dtype=d)
    tx = torch.ones(3, dtype=PAIRS[d])
    for other, t_other in ((2, 2), (2.5, 2.5), (engine.tensor(3), torch.tensor(3)),
                           (engine.tensor(1.5, dtype=engine.float64), torch.tensor(1.5, dtype=torch.float64))):
        if d is dtypes.bool_ and isinstance(other, int):
            continue  # bool + int: fine in both, but the bool tensor's own add is `or` in numpy
        assert (x * other).dtype is BY_TORCH[(tx * t_other).dtype], (d, other)
    assert (x / 2).dtype is BY_TORCH[(tx / 2).dtype]
    assert x.sum().dtype is BY_TORCH[tx.sum().dtype]


def test_numpy_arrays_keep_their_narrow_dtypes_and_casts_name_them():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    x = engine.tensor(image)
    assert x.dtype is engine.uint8 and engine.from_numpy(image).dtype is engine.uint8
    np.testing.assert_allclose((x / 255).numpy(), (torch.from_numpy(image) / 255).numpy())
    assert x.half().dtype is engine.half is engine.float16
    assert x.char().dtype is engine.int8 and x.short().dtype is engine.short is engine.int16
    assert x.float().byte().dtype is engine.uint8
    assert engine.zeros(2, dtype="half").dtype is engine.float16
    assert engine.tensor(np.ones(2, np.float16)).dtype is engine.float16


def test_a_float16_linear_layer_trains_like_pytorchs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(np.float16)
    w = (rng.standard_normal((3, 5)) / 3).astype(np.float16)
    b = rng.standard_normal(3).astype(np.float16)
    ours = nn.Linear(5, 3).half()
    with engine.no_grad():
        ours.weight.array[...] = w
        ours.bias.array[...] = b
    theirs = torch.nn.Linear(5, 3).half()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(w))
        theirs.bias.copy_(torch.from_numpy(b))
    out = ours(engine.tensor(x))
    ref = theirs(torch.from_numpy(x))
    assert out.dtype is engine.float16 and ours.weight.dtype is engine.float16
    np.testing.assert_allclose(out.detach().numpy().astype(np.float32), ref.detach().numpy().astype(np.float32),
                               rtol=1e-2, atol=1e-2)
    out.float().pow(2).mean().backward()
    ref.float().pow(2).mean().backward()
    assert ours.weight.grad.dtype is engine.float16
    np.testing.assert_allclose(ours.weight.grad.numpy().astype(np.float32),
                               theirs.weight.grad.numpy().astype(np.float32), rtol=2e-2, atol=2e-3)


def test_mixing_float16_with_float32_promotes_and_the_gradient_keeps_each_inputs_dtype():
    h = engine.tensor(np.array([1.0, 2.0, 3.0], np.float16), requires_grad=True)
    f = engine.tensor(np.array([0.5, 0.25, 2.0], np.float32), requires_grad=True)
    y = h * f
    assert y.dtype is engine.float32
    y.sum().backward()
    assert h.grad.dtype is engine.float16 and f.grad.dtype is engine.float32
    np.testing.assert_array_equal(h.grad.numpy(), np.array([0.5, 0.25, 2.0], np.float16))


def test_narrow_dtypes_survive_a_checkpoint(tmp_path):
    state = {"h": engine.tensor(np.array([1.5, -2.0], np.float16)), "u": engine.tensor(np.array([0, 255], np.uint8)),
             "i8": engine.tensor(np.array([-128, 127], np.int8)), "i16": engine.tensor(np.array([-3, 30000], np.int16))}
    engine.save(state, tmp_path / "narrow.safetensors")
    loaded = engine.load(tmp_path / "narrow.safetensors")
    for name, t in state.items():
        assert loaded[name].dtype is t.dtype and loaded[name].tolist() == t.tolist(), name


def test_a_dtype_the_engine_lacks_is_named():
    with pytest.raises(TypeError, match="unsupported dtype complex64; the engine supports float16, float32"):
        engine.tensor(np.ones(2, np.complex64))
    with pytest.raises(TypeError, match=r"engine\.bfloat16 is not supported"):
        engine.zeros(2, dtype="bfloat16")


def test_the_debugger_summarises_a_float16_op():
    x = engine.tensor(np.array([[1.0, -2.0], [np.inf, 0.5]], np.float16))
    with engine.debug.Debugger("summary") as dbg:
        F.relu(x)
    s = dbg.history[-1].summary
    assert s.dtype == "float16" and s.inf_count == 1 and s.max == 1.0 and s.min == 0.0


@pytest.mark.gpu
def test_a_float16_step_on_the_gpu_matches_the_cpu():
    cuda_or_skip()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 8)).astype(np.float16)
    results = []
    for device in ("cpu", "cuda"):
        engine.manual_seed(0)
        layer = nn.Linear(8, 4).half().to(device)
        out = layer(engine.tensor(x, device=device))
        out.float().pow(2).mean().backward()
        assert out.dtype is engine.float16 and layer.weight.grad.dtype is engine.float16
        results.append((out.detach().cpu().numpy(), layer.weight.grad.cpu().numpy()))
    (cpu_out, cpu_grad), (gpu_out, gpu_grad) = results
    np.testing.assert_allclose(gpu_out.astype(np.float32), cpu_out.astype(np.float32), rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(gpu_grad.astype(np.float32), cpu_grad.astype(np.float32), rtol=2e-2, atol=2e-3)
    u8 = engine.tensor(np.array([0, 128, 255], np.uint8), device="cuda")
    assert (u8 / 255).dtype is engine.float32 and u8.byte().dtype is engine.uint8


@pytest.mark.parametrize("n", [1000, 70_000, 262_144])  # a count past float16's largest, 65504, too
def test_float16_means_and_variances_over_many_elements_keep_their_gradient(n):
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    for reduce in (lambda t: t.mean(), lambda t: t.var(), lambda t: t.std(),
                   lambda t: (t - 1).pow(2).mean()):
        ours, theirs = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, ref = reduce(ours.half()), reduce(theirs.half())
        assert np.isfinite(out.item()) and out.item() == pytest.approx(ref.item(), rel=2e-3)
        out.backward()
        ref.backward()
        assert np.abs(ours.grad.numpy()).max() > 0  # a zero gradient was float16's inf count
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=2e-3, atol=1.2e-7)  # a float16 ulp
    p, q = engine.zeros(n, requires_grad=True), torch.zeros(n, requires_grad=True)
    F.mse_loss(p.half(), engine.ones(n).half()).backward()
    torch.nn.functional.mse_loss(q.half(), torch.ones(n).half()).backward()
    np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=3e-3)
