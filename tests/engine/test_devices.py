"""Devices: every op family on each device against a float64 CPU reference, the engine.cuda API, the
errors without a GPU, DLPack exchange, fused CUDA kernels against the plain formulas, no leaks, no syncs.

The `device` tests run on "cpu" always and on "cuda" where CuPy sees a GPU (skipped with the reason
otherwise); float32 results on each device must match float64 on the CPU (rtol 1e-4), which also makes
GPU and CPU agree with each other.
"""

import contextlib
import gc

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine import kernels
from engine.backend import cupy_module, host_floats, square_sum
from engine.debug import summarize
from tests.engine.oracle import torch


def _no_gpu_reason() -> str | None:
    if cupy_module() is None:
        return "needs CuPy (pip install tapescope[gpu])"
    if engine.cuda.device_count() == 0:
        return "needs a CUDA GPU; CuPy sees none"
    return None


NO_GPU = _no_gpu_reason()


def waits_for_gpu(step) -> bool:
    """True when `step()` returned only after the GPU had finished the ~100 ms of work queued before it."""
    cp = cupy_module()
    busy = cp.ones((4096, 4096), dtype=cp.float32)
    for _ in range(30):
        busy = busy @ busy * (1 / 4096)
    queued = cp.cuda.Event(disable_timing=True)
    queued.record()  # a wait anywhere in the step lets this event complete before the step returns
    step()
    waited = queued.done  # the step's own work may still run when it returns; the queued work may not
    engine.cuda.synchronize()
    return waited
gpu = pytest.mark.skipif(NO_GPU is not None, reason=NO_GPU or "")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, gpu])]
RTOL, ATOL = 1e-4, 1e-5


def _rng():
    return np.random.default_rng(7)


def n(*shape):
    return _rng().standard_normal(shape)


def pos(*shape):
    return _rng().uniform(0.2, 2.0, shape)


def prob(*shape):
    return _rng().uniform(0.05, 0.95, shape)


def ints(high, *shape):
    return _rng().integers(0, high, shape)


def _cotangent(shape) -> np.ndarray:
    size = int(np.prod(shape))
    return np.linspace(-1.0, 1.5, size).reshape(shape) if size else np.zeros(shape)


def _host(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def _assert_close(got: list, want: list, what: str) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} results against {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=f"{what}, result {i}")


# ---- ops: (name, fn of tensors, input arrays) --------------------------------------------------------
OPS = [
    ("arithmetic", lambda a, b: (a + b) * a - b / (a.abs() + 1) + a ** 2, [n(3, 4), n(4)]),
    ("maximum/clamp/where", lambda a, b: a.maximum(b) + a.minimum(b) * a.clamp(-0.5, 0.7)
     + engine.where(a > b, a, b * 2), [n(3, 4), n(3, 4)]),
    ("unary", lambda a: a.exp() + a.sin() * a.cos() + a.tanh() + a.sigmoid() + a.relu() + a.square(),
     [n(4, 5)]),
    ("positive unary", lambda a: a.log() + a.sqrt() + a.rsqrt() + a.log1p() + a.reciprocal(), [pos(4, 5)]),
    ("reductions", lambda a: a.sum(1) + a.mean(1) + a.var(1) + a.std(1) + a.amax(1) + a.logsumexp(1)
     + a.norm(dim=1), [n(3, 6)]),
    ("max/cumsum/prod", lambda a: a.max(0).values + a.cumsum(0)[-1] + a.prod(0), [n(4, 3)]),
    ("shape", lambda a: a.reshape(2, 6).T.flatten() + a.permute(1, 0).reshape(-1) + a.flip(0).reshape(-1)
     + engine.cat([a[:1], a[1:]]).reshape(-1) + engine.stack([a, a]).sum(0).reshape(-1), [n(3, 4)]),
    ("indexing", lambda a, i: a[1:, ::2].sum() + a.index_select(0, i).sum(0) + a.gather(1, i[:, None]).sum()
     + a.masked_fill(a > 0, 0.5).sum(), [n(3, 4), np.array([2, 0, 1])]),
    ("matmul", lambda a, b: a @ b + (a @ b).relu(), [n(2, 3, 4), n(4, 5)]),
    ("activations", lambda a: F.gelu(a) + F.gelu(a, approximate="tanh") + F.silu(a) + F.elu(a, 0.7)
     + F.leaky_relu(a, 0.2) + F.softplus(a, 2.0, 1.0), [n(3, 5) * 2]),
    ("softmax", lambda a: F.softmax(a, 1) * F.log_softmax(a, 0), [n(3, 5)]),
    ("cross entropy", lambda x, t: F.cross_entropy(x, t) + F.cross_entropy(x, t, reduction="sum")
     + F.cross_entropy(x, t, reduction="none")[0], [n(6, 5), ints(5, 6)]),
    ("cross entropy 3-d", lambda x, t: F.cross_entropy(x, t), [n(2, 4, 3), ints(4, 2, 3)]),
    ("cross entropy options", lambda x, t, w: F.cross_entropy(x, t, w, label_smoothing=0.1)
     + F.cross_entropy(x, t, ignore_index=1) + F.nll_loss(F.log_softmax(x, 1), t),
     [n(6, 5), ints(5, 6), prob(5)]),
    ("soft-target cross entropy", lambda x, q: F.cross_entropy(x, q), [n(3, 4), prob(3, 4)]),
    ("regression losses", lambda x, y: F.mse_loss(x, y) + F.l1_loss(x, y) + F.smooth_l1_loss(x, y)
     + F.huber_loss(x, y, delta=0.5), [n(3, 4), n(3, 4)]),
    ("binary losses", lambda p, y, x: F.binary_cross_entropy(p, y)
     + F.binary_cross_entropy_with_logits(x, y), [prob(3, 4), prob(3, 4), n(3, 4)]),
    ("norms", lambda x, w, b: F.layer_norm(x, (4,), w, b) + F.group_norm(x.reshape(2, 4, 3), 2).reshape(6, 4)
     + F.batch_norm(x, None, None, training=True), [n(6, 4), n(4), n(4)]),
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [n(2, 3, 6, 5), n(4, 3, 3, 3), n(4)]),
    ("conv1d/transpose", lambda x, w: F.conv1d(x, w, padding=1).sum() + F.conv_transpose2d(
        x[:, :, None], w[:, :, None], stride=2).sum(), [n(2, 3, 7), n(3, 3, 3)]),
    ("pools", lambda x: F.max_pool2d(x, 2) .sum((2, 3)) + F.avg_pool2d(x, 3, 1, 1).sum((2, 3))
     + F.adaptive_avg_pool2d(x, (2, 3)).sum((2, 3)), [n(2, 3, 6, 6)]),
    ("embedding", lambda i, w: F.embedding(i, w), [ints(5, 2, 3), n(5, 4)]),
]


def _run_op(fn, arrays, device: str, dtype) -> list:
    ts = [engine.tensor(a.astype(dtype) if a.dtype.kind == "f" else a, device=device,
                        requires_grad=a.dtype.kind == "f") for a in arrays]
    out = fn(*ts)
    (out * engine.tensor(_cotangent(out.shape).astype(dtype), device=device)).sum().backward()
    return [_host(out)] + [_host(t.grad) for t in ts if t.grad is not None]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, fn, arrays", OPS, ids=[c[0] for c in OPS])
def test_ops_match_the_float64_cpu_result(device, name, fn, arrays):
    _assert_close(_run_op(fn, arrays, device, np.float32), _run_op(fn, arrays, "cpu", np.float64), name)


# ---- layers: (name, module factory, input arrays) ------------------------------------------------------
LAYERS = [
    ("linear", lambda: nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)), [n(6, 4)]),
    ("conv", lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                                   nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 2)), [n(3, 2, 4, 4)]),
    ("norms", lambda: nn.Sequential(nn.LayerNorm(6), nn.GELU(), nn.Linear(6, 6), nn.GroupNorm(2, 6)),
     [n(4, 6)]),
    ("lstm", lambda: nn.LSTM(3, 4, batch_first=True), [n(2, 5, 3)]),
    ("gru", lambda: nn.GRU(3, 4, num_layers=2), [n(5, 2, 3)]),
    ("attention", lambda: nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True),
     [n(2, 3, 8)]),
]


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def _run_layer(factory, arrays, device: str, dtype) -> list:
    engine.manual_seed(3)
    module = factory().to(device, engine.float32 if dtype == np.float32 else engine.float64)
    xs = [engine.tensor(a.astype(dtype), device=device, requires_grad=True) for a in arrays]
    out = _first(module(*xs))
    (out * engine.tensor(_cotangent(out.shape).astype(dtype), device=device)).sum().backward()
    return ([_host(out)] + [_host(x.grad) for x in xs]
            + [_host(p.grad) for p in module.parameters() if p.grad is not None])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, factory, arrays", LAYERS, ids=[c[0] for c in LAYERS])
def test_layers_match_the_float64_cpu_result(device, name, factory, arrays):
    _assert_close(_run_layer(factory, arrays, device, np.float32),
                  _run_layer(factory, arrays, "cpu", np.float64), name)


# ---- optimizers ----------------------------------------------------------------------------------------
OPTIMIZERS = [
    ("sgd", lambda p: engine.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("adam", lambda p: engine.optim.Adam(p, lr=0.01)),
    ("adam options", lambda p: engine.optim.Adam(p, lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("adamw", lambda p: engine.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    ("rmsprop", lambda p: engine.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True)),
    ("adagrad", lambda p: engine.optim.Adagrad(p, lr=0.1)),
]


def _train(make_optimizer, device: str, dtype, steps: int = 4) -> list:
    engine.manual_seed(5)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)).to(
        device, engine.float32 if dtype == np.float32 else engine.float64)
    opt = make_optimizer(model.parameters())
    x = engine.tensor(n(8, 3).astype(dtype), device=device)
    y = engine.tensor(n(8, 2).astype(dtype), device=device)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
    return [_host(p) for p in model.parameters()]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, make", OPTIMIZERS, ids=[c[0] for c in OPTIMIZERS])
def test_optimizers_match_the_float64_cpu_result(device, name, make):
    _assert_close(_train(make, device, np.float32), _train(make, "cpu", np.float64), name)


# ---- the device API ------------------------------------------------------------------------------------
@pytest.mark.skipif(NO_GPU is None, reason="a GPU is present")
def test_without_a_gpu_asking_for_cuda_raises_one_clear_error():
    assert not engine.cuda.is_available() and engine.cuda.device_count() == 0
    expected = "needs CuPy" if cupy_module() is None else "not available"
    for attempt in (lambda: engine.zeros(2, device="cuda"), lambda: engine.ones(2).cuda(),
                    lambda: nn.Linear(2, 2).to("cuda"), engine.cuda.synchronize,
                    engine.cuda.memory_allocated, lambda: engine.randn(3, device="cuda:1")):
        with pytest.raises(RuntimeError, match=expected):
            attempt()


def test_kernels_serve_numpy_nothing():
    for name in kernels.names():
        assert kernels.get(name, np) is None
    assert {"adam_update", "cross_entropy", "tensor_summary", "Gelu", "Relu"} <= set(kernels.names())


def test_dlpack_shares_memory_with_numpy_and_torch_on_the_cpu():
    a = np.arange(6.0)
    t = engine.from_dlpack(a)
    a[0] = 42.0
    assert t.device == "cpu" and t.tolist()[0] == 42.0
    if torch is not None:
        tt = torch.arange(4.0)
        e = engine.from_dlpack(tt)
        tt[1] = 7.0
        assert e.dtype == engine.float32 and e.tolist() == [0.0, 7.0, 2.0, 3.0]
        back = torch.from_dlpack(e)
        e.array[2] = -1.0
        assert back.tolist() == [0.0, 7.0, -1.0, 3.0]
    with pytest.raises(TypeError, match="from_dlpack expects"):
        engine.from_dlpack([1.0, 2.0])


@pytest.mark.gpu
@gpu
def test_array_module_of_numpy_scalars_and_cupy_arrays():
    # with CuPy loaded a numpy scalar (what a reduction returns) once went through
    # cupy.get_array_module, whose first call imports cupyx.scipy.sparse: a second's stall mid-run
    import subprocess
    import sys

    code = ("import sys, numpy as np, engine\n"
            "from engine.backend import array_module, cupy_module\n"
            "cp = cupy_module()\n"
            "assert array_module(np.float32(1)) is np and array_module(np.ones(2).sum()) is np\n"
            "assert array_module(cp.ones(2)) is cp and array_module(cp.ones(2).sum()) is cp\n"
            "assert array_module(np.ones(2)) is np and array_module(3.0) is np\n"
            "assert 'cupyx.scipy.sparse' not in sys.modules, 'array_module imported cupyx.scipy.sparse'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.gpu
@gpu
def test_device_api_on_a_gpu():
    assert engine.cuda.is_available() and engine.cuda.device_count() >= 1
    assert engine.cuda.current_device() == 0 and isinstance(engine.cuda.get_device_name(), str)
    engine.cuda.synchronize()
    before = engine.cuda.memory_allocated()
    t = engine.zeros(1 << 20, device="cuda")
    assert engine.cuda.memory_allocated() - before >= 4 << 20
    assert engine.cuda.memory_reserved() >= engine.cuda.memory_allocated()
    del t
    assert engine.cuda.memory_allocated() == before
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x.cuda()
    assert y.device == "cuda:0" and y.is_cuda and y.to("cpu").device == "cpu"
    (y * y).sum().backward()  # the move is differentiable: the gradient comes back to the CPU
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 4.0]
    model = nn.Linear(2, 3).to("cuda")
    assert all(p.device == "cuda:0" for p in model.parameters())
    with pytest.raises(RuntimeError, match=r"found cpu and cuda:0"):
        engine.ones(2) + engine.ones(2, device="cuda")
    with pytest.raises(RuntimeError, match=r"cuda:0"):
        model(engine.ones(4, 2))
    count = engine.cuda.device_count()
    with pytest.raises(RuntimeError, match=f"this machine has {count} CUDA device"):
        engine.zeros(2, device=f"cuda:{count}")


@pytest.mark.gpu
@gpu
def test_random_numbers_per_device_follow_manual_seed():
    engine.manual_seed(11)
    a, cpu_a = engine.randn(1000, device="cuda"), engine.randn(5)
    engine.manual_seed(11)
    cpu_b = engine.randn(5)  # the CPU stream does not depend on what the GPU drew
    b = engine.randn(1000, device="cuda")
    assert a.tolist() == b.tolist() and cpu_a.tolist() == cpu_b.tolist()
    assert abs(float(a.mean())) < 0.15 and 0.85 < float(a.std()) < 1.15
    engine.manual_seed(12)
    assert engine.randn(1000, device="cuda").tolist() != a.tolist()
    engine.manual_seed(11)
    kept = F.dropout(engine.ones(4000, device="cuda"), 0.5)
    engine.manual_seed(11)
    assert F.dropout(engine.ones(4000, device="cuda"), 0.5).tolist() == kept.tolist()


@pytest.mark.gpu
@gpu
def test_dlpack_shares_memory_with_torch_and_cupy_on_the_gpu():
    cp = cupy_module()
    c = cp.arange(5, dtype=cp.float32)
    e = engine.from_dlpack(c)
    c[0] = 9
    assert e.device == "cuda:0" and e.tolist()[0] == 9.0
    back = cp.from_dlpack(e)
    e.array[1] = -3
    assert float(back[1]) == -3.0
    if torch is not None and torch.cuda.is_available():
        tt = torch.zeros(3, device="cuda")
        e = engine.from_dlpack(tt)
        tt[2] = 5.0
        assert e.device == "cuda:0" and e.tolist() == [0.0, 0.0, 5.0]
        t2 = torch.from_dlpack(e)
        e.array[0] = 1.5
        assert t2.device.type == "cuda" and t2.tolist() == [1.5, 0.0, 5.0]


# ---- fused CUDA kernels against the plain formulas, on the same GPU -------------------------------------
FUSED_OPS = [
    ("relu/tanh/sigmoid", lambda a: a.relu() * a.tanh() + a.sigmoid()),
    ("gelu", lambda a: F.gelu(a) + F.gelu(a, approximate="tanh")),
    ("silu/elu/leaky/softplus",
     lambda a: F.silu(a) + F.elu(a, 0.5) + F.leaky_relu(a, 0.3) + F.softplus(a, 1.5, 2)),
    ("cross entropy mean", lambda a: F.cross_entropy(a.reshape(-1, 10), engine.arange(a.numel() // 10,
                                                     device=a.device) % 10)),
    ("cross entropy none 3-d", lambda a: F.cross_entropy(a.reshape(5, 10, -1), engine.zeros(
        5, a.numel() // 50, dtype=engine.int64, device=a.device), reduction="none")),
]


def _fused_and_plain(fn, x: np.ndarray, dtype) -> list[list]:
    results = []
    for context in (contextlib.nullcontext, kernels.disabled):
        with context():
            t = engine.tensor(x.astype(dtype), device="cuda", requires_grad=True)
            out = fn(t)
            (out * engine.tensor(_cotangent(out.shape).astype(dtype), device="cuda")).sum().backward()
        results.append([_host(out), _host(t.grad)])
    return results


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, fn", FUSED_OPS, ids=[c[0] for c in FUSED_OPS])
def test_fused_element_and_loss_kernels_equal_the_plain_formulas(name, fn, dtype):
    x = np.random.default_rng(2).standard_normal(2000) * 3
    fused, plain = _fused_and_plain(fn, x, dtype)
    rtol, atol = (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-12)
    for f, p in zip(fused, plain):
        np.testing.assert_allclose(f, p, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("name, make", OPTIMIZERS[1:4], ids=[c[0] for c in OPTIMIZERS[1:4]])
def test_fused_adam_equals_the_plain_update(name, make):
    fused = _train(make, "cuda", np.float32, steps=6)
    with kernels.disabled():
        plain = _train(make, "cuda", np.float32, steps=6)
    for f, p in zip(fused, plain):
        np.testing.assert_allclose(f, p, rtol=1e-6, atol=1e-7, err_msg=name)


SUMMARY_CASES = ["plain", "nan and inf", "constant", "all nan", "sampled", "float64", "ints"]


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "array calls"])
@pytest.mark.parametrize("case", SUMMARY_CASES)
def test_device_summaries_equal_the_host_summary(case, fused):
    rng = np.random.default_rng(4)
    a = rng.standard_normal(5000).astype(np.float32) * 3 + 1
    if case == "nan and inf":
        a[::7], a[3::11], a[5] = np.nan, np.inf, -np.inf
    elif case == "constant":
        a[:] = 2.5
    elif case == "all nan":
        a[:] = np.nan
    elif case == "sampled":
        a = rng.standard_normal(300_001).astype(np.float32)
        a[::97] = np.nan
        a[::13] = 0.0
    elif case == "float64":
        a = a.astype(np.float64)
    elif case == "ints":
        a = rng.integers(-50, 50, 4000)
    with contextlib.nullcontext() if fused else kernels.disabled():
        host, dev = summarize(a), summarize(engine.tensor(a, device="cuda"))
    exact = ("numel", "nan_count", "inf_count", "zero_count", "stride")
    assert [getattr(dev, f) for f in exact] == [getattr(host, f) for f in exact]
    floats = ("min", "max", "mean", "std", "norm", "lo", "hi")
    np.testing.assert_allclose([getattr(dev, f) for f in floats], [getattr(host, f) for f in floats],
                               rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(dev.samples, host.samples, equal_nan=True)
    np.testing.assert_array_equal(dev.counts, host.counts)  # one binning rule, in float64, on both
    assert not dev.counts.flags.writeable


# ---- no syncs for events; no leaks --------------------------------------------------------------------
@pytest.mark.gpu
@gpu
def test_events_do_not_wait_for_the_gpu():
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1)).to("cuda")
    x = engine.randn(32, 64, device="cuda")
    target = engine.zeros(32, 1, device="cuda")

    def step():
        F.mse_loss(model(x), target).backward()

    step()  # compiles the kernels and fills the memory pool, either of which may wait for the GPU
    seen = []
    off = engine.hub.subscribe(seen.append)
    try:
        waited = waits_for_gpu(step)
    finally:
        off()
    assert seen, "no events were emitted"
    assert not waited, "an op or an event waited for the GPU"


@pytest.mark.gpu
@gpu
def test_gradient_norms_wait_for_the_gpu_once_per_step_not_once_per_parameter():
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1)).to("cuda")
    F.mse_loss(model(engine.randn(32, 64, device="cuda")), engine.zeros(32, 1, device="cuda")).backward()
    grads = [p.grad.array for p in model.parameters()]
    for g in grads:  # compiles the reduction for each size (loading a kernel waits for the GPU)
        square_sum(g)
    assert not waits_for_gpu(lambda: [square_sum(g) for g in grads]), "a square sum waited for the GPU"
    expected = [float((g.get().astype(np.float64) ** 2).sum()) for g in grads]
    np.testing.assert_allclose(host_floats([square_sum(g) for g in grads]), expected, rtol=1e-12)


@pytest.mark.gpu
@pytest.mark.slow
@gpu
def test_a_thousand_cnn_steps_keep_the_memory_pool_flat():
    from tests.engine.test_examples import load

    engine.manual_seed(0)
    model = load("cnn_glyphs").build_model().to("cuda")
    optimizer = engine.optim.Adam(model.parameters(), lr=0.003)
    images, labels = engine.data.glyphs(32, seed=0)
    images, labels = images.to("cuda"), labels.to("cuda")
    used = []
    for step in range(1, 1001):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            gc.collect()
            used.append(engine.cuda.memory_allocated())
    assert loss.item() < 0.1, "the CNN did not learn its batch"
    assert max(used) - min(used) <= 64 << 10, f"pool usage every 100 steps: {used}"

