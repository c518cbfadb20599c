"""engine.nn.functional activations, softmax, dropout, linear, embedding and normalizations.

Each function is written once as `fn(F, *tensors)` and run with F = engine.nn.functional on engine
tensors and F = torch.nn.functional on torch tensors, against finite differences and PyTorch.
"""

import math
import re
import warnings

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import ShapeError
from tests.engine.oracle import check_grads, needs_torch, torch, torch_check

TF = torch.nn.functional if torch is not None else None


def raises(exc, message):
    """pytest.raises matching `message` literally."""
    return pytest.raises(exc, match=re.escape(message))


def check(fn, specs, **kw):
    """check_grads of fn(engine.nn.functional, ...) against fn(torch.nn.functional, ...)."""
    check_grads(lambda *a: fn(F, *a), specs, torch_fn=lambda *a: fn(TF, *a), **kw)


def away_from_zero(shape, seed=3, lo=0.2, hi=2.5):
    """Values of both signs, kept off the kinks at 0 so finite differences are meaningful."""
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


# ---- activations -----------------------------------------------------------------------------------
ACTIVATIONS = {
    "relu": lambda F, x: F.relu(x),
    "gelu": lambda F, x: F.gelu(x),
    "gelu_tanh": lambda F, x: F.gelu(x, approximate="tanh"),
    "silu": lambda F, x: F.silu(x),
    "leaky_relu": lambda F, x: F.leaky_relu(x, 0.2),
    "leaky_relu_default": lambda F, x: F.leaky_relu(x),
    "elu": lambda F, x: F.elu(x, alpha=0.7),
    "softplus": lambda F, x: F.softplus(x),
    "softplus_threshold": lambda F, x: F.softplus(x, beta=2.0, threshold=3.0),
    "sigmoid": lambda F, x: F.sigmoid(x),
    "tanh": lambda F, x: F.tanh(x),
    "softmax_0": lambda F, x: F.softmax(x, 0),
    "softmax_last": lambda F, x: F.softmax(x, dim=-1),
    "log_softmax_1": lambda F, x: F.log_softmax(x, 1),
    "log_softmax_last": lambda F, x: F.log_softmax(x, dim=-1),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_values_and_grads(name):
    check(ACTIVATIONS[name], [away_from_zero((3, 4, 2))])


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu", "elu", "softplus", "sigmoid", "tanh",
                                  "softmax_last", "log_softmax_last"])
@needs_torch
def test_extreme_inputs_stay_finite_and_match_torch(name):
    x = np.array([[-1e4, -100.0, -30.0, -1.0], [0.0, 1.0, 30.0, 100.0], [1e4, -1e4, 80.0, 90.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings from the branch not taken
        ours = ACTIVATIONS[name](F, engine.tensor(x, requires_grad=True))
        ours.sum().backward()
    ref = ACTIVATIONS[name](TF, torch.tensor(x))
    assert np.all(np.isfinite(ours.detach().numpy()))
    np.testing.assert_allclose(ours.detach().numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def test_gelu_is_exact_in_float64():
    # numpy has no erf; the engine's own erfc must be accurate to float64, deep into the negative tail
    x = np.concatenate([np.linspace(-35, 8, 861), [-1e-9, 0.0, 1e-9]])
    ref = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(F.gelu(engine.tensor(x)).numpy(), ref, rtol=1e-12, atol=0)
    assert F.gelu(engine.tensor(x, dtype=engine.float32)).dtype is engine.float32


def test_unknown_gelu_approximation_is_refused():
    with raises(ValueError, "gelu: approximate must be 'none' or 'tanh', got 'fast'"):
        F.gelu(engine.randn(3), approximate="fast")


@pytest.mark.parametrize("fn", [F.gelu, F.silu, F.elu, F.softplus, F.leaky_relu, lambda x: F.softmax(x, 0)])
def test_activations_refuse_integer_tensors(fn):
    with raises(TypeError, "expected a floating point tensor, got int64"):
        fn(engine.arange(4))


@needs_torch
def test_inplace_activation_on_non_leaf_keeps_gradients_right():
    x = away_from_zero((3, 4))
    grads = []
    for lib, nnf in ((engine, F), (torch, TF)):
        t = lib.tensor(x, requires_grad=True)
        h = t * 2
        out = nnf.leaky_relu(h, 0.1, inplace=True)
        assert out is h
        (nnf.elu(h, alpha=0.5) * h).sum().backward()
        grads.append(np.asarray(t.grad))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_inplace_on_a_leaf_that_requires_grad_is_refused():
    with raises(RuntimeError, "leaf"):
        F.relu(engine.randn(3, requires_grad=True), inplace=True)


# ---- softmax ---------------------------------------------------------------------------------------
@needs_torch
def test_softmax_methods_and_dtype_match_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    e, t = engine.tensor(x), torch.tensor(x)
    np.testing.assert_allclose(e.softmax(1).numpy(), t.softmax(1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(e.log_softmax(-1).numpy(), t.log_softmax(-1).numpy(), rtol=1e-5)
    assert F.softmax(e, 2, dtype=engine.float64).dtype is engine.float64
    np.testing.assert_allclose(F.softmax(e, 1).numpy().sum(axis=1), 1.0, rtol=1e-6)
    assert F.softmax(engine.tensor(3.0), 0).item() == 1.0
    assert F.log_softmax(engine.tensor(3.0), -1).item() == 0.0


@needs_torch
def test_softmax_without_dim_takes_pytorchs_implicit_dim_and_warns():
    x = engine.randn(2, 3, 4)
    for shape in ((5,), (2, 3), (2, 3, 4), (2, 3, 4, 5)):
        e = engine.randn(*shape)
        t = torch.tensor(e.numpy())
        with pytest.warns(UserWarning, match=r"softmax without dim takes dim=\d for an input of shape"):
            got = F.softmax(e)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own deprecation warning
            want = torch.nn.functional.softmax(t)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)
    with pytest.warns(UserWarning, match=r"dim=0 .* \(the batch, if the first dim is one"):
        engine.nn.Softmax()(x)


def test_softmax_needs_a_valid_dim():
    with raises(ShapeError, "log_softmax: dim 2 is out of range for a tensor of shape (2, 3)"):
        F.log_softmax(engine.randn(2, 3), 2)


# ---- dropout ---------------------------------------------------------------------------------------
def test_dropout_statistics_and_scaling():
    p = 0.3
    y = F.dropout(engine.ones(20000), p=p).numpy()
    assert abs((y == 0).mean() - p) < 0.015
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.03  # the expectation is preserved


def test_dropout_gradient_is_the_same_mask():
    x = engine.ones(50, 40, requires_grad=True)
    y = F.dropout(x, p=0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())


def test_dropout_is_identity_at_eval_and_for_p_zero():
    x = engine.randn(4, 5)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    x = engine.randn(4, 5, requires_grad=True)
    y = F.dropout(x, p=1.0)
    y.sum().backward()
    assert not np.any(y.detach().numpy()) and not np.any(x.grad.numpy())


def test_dropout_is_reproducible_with_manual_seed():
    x = engine.ones(100)
    engine.manual_seed(7)
    a = F.dropout(x).numpy()
    engine.manual_seed(7)
    b = F.dropout(x).numpy()
    c = F.dropout(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_validates_p(p):
    with raises(ValueError, "dropout: p must be a probability between 0 and 1"):
        F.dropout(engine.ones(3), p=p)


def test_dropout_inplace_changes_the_tensor():
    x = engine.ones(1000)
    out = F.dropout(x, 0.5, inplace=True)
    assert out is x and (x.numpy() == 0).any() and (x.numpy() == 2).any()


# ---- linear ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", [
    [(4, 3), (5, 3), (5,)],
    [(4, 3), (5, 3)],
    [(2, 3, 4), (5, 4), (5,)],
    [(4,), (3, 4), (3,)],
])
def test_linear(shapes):
    check(lambda F, x, w, b=None: F.linear(x, w, b), shapes)


def test_linear_is_one_node():
    x, w, b = engine.randn(4, 3), engine.randn(5, 3, requires_grad=True), engine.randn(5, requires_grad=True)
    y = F.linear(x, w, b)
    assert y.grad_fn.name() == "LinearBackward0"
    assert [n.name() if n else None for n, _ in y.grad_fn.next_functions] == \
        [None, "AccumulateGrad", "AccumulateGrad"]
    y.sum().backward()
    assert x.grad is None and w.grad.shape == (5, 3) and b.grad.shape == (5,)


def test_linear_errors_name_the_shapes():
    with raises(ShapeError, "linear: input has 5 features but weight expects 4 (weight shape (8, 4)"):
        F.linear(engine.randn(2, 5), engine.randn(8, 4))
    with raises(ShapeError, "linear: bias has shape (3,) but weight has 8 output features"):
        F.linear(engine.randn(2, 4), engine.randn(8, 4), engine.randn(3))
    with raises(ShapeError, "linear: weight must be 2-D"):
        F.linear(engine.randn(2, 4), engine.randn(4))
    with raises(TypeError, "linear: input is float32 but weight is float64"):
        F.linear(engine.randn(2, 4), engine.randn(3, 4, dtype=engine.float64))


# ---- embedding -------------------------------------------------------------------------------------
IDX = np.array([[1, 2, 1], [0, 1, 4]])


def test_embedding_accumulates_repeated_indices():
    check(lambda F, i, w: F.embedding(i, w), [IDX, (5, 3)])


@pytest.mark.parametrize("padding_idx", [1, -4])
def test_embedding_padding_idx_matches_torch(padding_idx):
    # the padding row's gradient is zeroed on purpose, so finite differences do not apply
    torch_check(lambda i, w: F.embedding(i, w, padding_idx=padding_idx), [IDX, np.ones((5, 3))],
                torch_fn=lambda i, w: TF.embedding(i, w, padding_idx=padding_idx))


def test_embedding_padding_row_gets_no_gradient():
    w = engine.randn(5, 3, requires_grad=True)
    F.embedding(engine.tensor(IDX), w, padding_idx=1).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [1, 0, 1, 0, 1])


def test_embedding_errors():
    w = engine.randn(5, 3)
    with raises(TypeError, "embedding: indices must be an integer tensor, got float32"):
        F.embedding(engine.tensor([1.0]), w)
    with raises(IndexError, "embedding: index 7 is out of range for weight of shape (5, 3)"):
        F.embedding(engine.tensor([1, 7]), w)
    with raises(IndexError, "embedding: index -1 is out of range"):
        F.embedding(engine.tensor([-1, 2]), w)
    with raises(ValueError, "embedding: padding_idx 5 is out of range for 5 embeddings"):
        F.embedding(engine.tensor([1]), w, padding_idx=5)


# ---- normalizations --------------------------------------------------------------------------------
@pytest.mark.parametrize("fn,shapes", [
    (lambda F, x, w, b: F.layer_norm(x, (4,), w, b), [(3, 4), (4,), (4,)]),
    (lambda F, x, w, b: F.layer_norm(x, (3, 4), w, b, eps=1e-3), [(2, 3, 4), (3, 4), (3, 4)]),
    (lambda F, x: F.layer_norm(x, (5,)), [(3, 5)]),
    (lambda F, x, w: F.layer_norm(x, [2, 5], w), [(2, 2, 5), (2, 5)]),
])
def test_layer_norm(fn, shapes):
    check(fn, shapes)


def test_layer_norm_shape_errors():
    with raises(ShapeError, "layer_norm: input shape (2, 5) does not end with normalized_shape (4,)"):
        F.layer_norm(engine.randn(2, 5), (4,))
    with raises(ShapeError, "layer_norm: weight has shape (3,) but normalized_shape is (5,)"):
        F.layer_norm(engine.randn(2, 5), 5, engine.randn(3))


RUNNING_MEAN = np.array([0.5, -0.2, 0.1])
RUNNING_VAR = np.array([0.8, 1.5, 0.3])


@pytest.mark.parametrize("x_shape", [(4, 3), (2, 3, 5), (2, 3, 2, 2)])
def test_batch_norm_training(x_shape):
    check(lambda F, x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b, training=True),
          [x_shape, RUNNING_MEAN, RUNNING_VAR, (3,), (3,)], wrt=[0, 3, 4])
    check(lambda F, x: F.batch_norm(x, None, None, training=True), [x_shape])


@pytest.mark.parametrize("x_shape", [(4, 3), (2, 3, 2, 2)])
def test_batch_norm_eval(x_shape):
    check(lambda F, x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-3),
          [x_shape, RUNNING_MEAN, RUNNING_VAR, (3,), (3,)], wrt=[0, 3, 4])


@pytest.mark.parametrize("x_shape", [(6, 3), (4, 3, 2, 5)])
@needs_torch
def test_batch_norm_updates_running_stats_like_torch(x_shape):
    x = np.random.default_rng(2).standard_normal(x_shape).astype(np.float32) * 3 + 1
    stats = []
    for lib, nnf in ((engine, F), (torch, TF)):
        rm, rv = lib.tensor(RUNNING_MEAN.astype(np.float32)), lib.tensor(RUNNING_VAR.astype(np.float32))
        for _ in range(2):
            nnf.batch_norm(lib.tensor(x), rm, rv, training=True, momentum=0.3)
        nnf.batch_norm(lib.tensor(x), rm, rv, training=False)  # eval leaves them alone
        stats.append((np.asarray(rm), np.asarray(rv)))
    np.testing.assert_allclose(stats[0][0], stats[1][0], rtol=1e-5)
    np.testing.assert_allclose(stats[0][1], stats[1][1], rtol=1e-5)  # unbiased variance, as torch


def test_batch_norm_errors():
    rm, rv = engine.zeros(3), engine.ones(3)
    with raises(ShapeError, "batch_norm: expected more than 1 value per channel when training, "
                            "got input of shape (1, 3)"):
        F.batch_norm(engine.randn(1, 3), rm, rv, training=True)
    with raises(ShapeError, "batch_norm: weight has shape (4,) but the input has 3 channels"):
        F.batch_norm(engine.randn(2, 3), rm, rv, engine.ones(4))
    with raises(ShapeError, "batch_norm: running_mean has shape (3,) but the input has 5 channels"):
        F.batch_norm(engine.randn(2, 5, 4), rm, rv)
    with raises(ValueError, "batch_norm: running_mean and running_var are required"):
        F.batch_norm(engine.randn(2, 3), None, None)


@pytest.mark.parametrize("fn,shapes", [
    (lambda F, x, w, b: F.group_norm(x, 2, w, b), [(2, 4, 3), (4,), (4,)]),
    (lambda F, x: F.group_norm(x, 3), [(2, 6, 2, 2)]),
    (lambda F, x, w, b: F.group_norm(x, 1, w, b, eps=1e-3), [(3, 4), (4,), (4,)]),
])
def test_group_norm(fn, shapes):
    check(fn, shapes)


def test_group_norm_needs_divisible_channels():
    with raises(ShapeError, "group_norm: 6 channels cannot be split into 4 groups (input shape (2, 6, 3))"):
        F.group_norm(engine.randn(2, 6, 3), 4)


def test_functional_exports_the_whole_surface():
    from engine.ops import conv, pool, shape

    assert F.pad is shape.pad and F.conv2d is conv.conv2d and F.max_pool2d is pool.max_pool2d
    for name in F.__all__:
        assert callable(getattr(F, name)), name
    if TF is not None:
        missing = [n for n in F.__all__ if not hasattr(TF, n)]
        assert not missing, f"not in torch.nn.functional: {missing}"


# ---- GPU: the same kernels through cupy --------------------------------------------------------------
def _gpu_cases():
    rng = np.random.default_rng(0)

    def n(*s):
        return rng.standard_normal(s)

    def u(*s):
        return rng.uniform(0.05, 0.95, s)

    bce, bce_logits = F.binary_cross_entropy, F.binary_cross_entropy_with_logits
    return [
        (lambda x: F.gelu(x * 4) + F.gelu(x, approximate="tanh") + F.silu(x) + F.elu(x), [n(3, 4)]),
        (lambda x: F.leaky_relu(x, 0.1) * F.softplus(x, 2, 1) + F.softmax(x, 1) - F.log_softmax(x, 0),
         [n(3, 4)]),
        (lambda x, w, b: F.linear(x, w, b), [n(2, 3, 4), n(5, 4), n(5)]),
        (lambda i, w: F.embedding(i, w, padding_idx=1), [np.array([[1, 2, 1], [0, 1, 4]]), n(5, 3)]),
        (lambda x, w, b: F.layer_norm(x, (4, 2)) + F.group_norm(x, 2, w, b), [n(3, 4, 2), n(4), n(4)]),
        (lambda x, rm, rv: F.batch_norm(x, rm, rv, training=True) + F.batch_norm(x, rm, rv),
         [n(4, 3, 2), n(3), u(3)]),
        (lambda x, t, w: F.cross_entropy(x, t, w, label_smoothing=0.1) + F.nll_loss(x, t, reduction="sum"),
         [n(5, 4), np.array([0, -100, 1, 3, -100]), u(4)]),
        (lambda x, q: F.cross_entropy(x, q, reduction="none"), [n(2, 4, 3), u(2, 4, 3)]),
        (lambda x, y: F.mse_loss(x, y) + F.smooth_l1_loss(x, y) + F.huber_loss(x, y, delta=0.5),
         [n(3, 4), n(3, 4)]),
        (lambda p, y, pw: bce(p, y) + bce_logits(p, y, pos_weight=pw), [u(3, 4), u(3, 4), u(4)]),
    ]


@pytest.mark.gpu
def test_gpu_functional_matches_cpu():
    cupy = engine.backend.cupy_module()
    try:
        if cupy is None or cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("needs CuPy and a CUDA GPU")
    except Exception:
        pytest.skip("needs CuPy and a CUDA GPU")
    for fn, arrays in _gpu_cases():
        results = []
        for device in ("cpu", "cuda"):
            ts = [engine.tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]
            out = fn(*ts)
            r = np.linspace(-1, 1, out.numel()).reshape(out.shape)
            (out * engine.tensor(r, device=device)).sum().backward()
            grads = [t.grad.cpu().numpy() for t in ts if t.grad is not None]  # running stats get none
            results.append([out.detach().cpu().numpy(), *grads])
        assert len(results[0]) == len(results[1])
        for cpu, gpu in zip(*results):
            np.testing.assert_allclose(gpu, cpu, rtol=1e-9, atol=1e-12)
    engine.manual_seed(1)
    kept = F.dropout(engine.ones(20000, device="cuda"), 0.25).cpu().numpy()
    assert abs((kept == 0).mean() - 0.25) < 0.015 and set(np.unique(kept)) == {0.0, np.float32(1 / 0.75)}
