"""What a tenth round of ported programs met: dense-only tensors that say so (and real-only ones, which a
fourteenth met), special.entr, the warning for a spread over too few elements, and pooling's padding error type."""

import warnings

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from tests.engine.oracle import needs_torch, torch


def test_tensors_are_dense_and_sparse_calls_say_what_to_do_instead():
    adj, h = engine.eye(3), engine.ones(3, 2)
    assert adj.is_sparse is False and adj.is_sparse_csr is False
    assert adj.layout is engine.strided and isinstance(adj.layout, engine.layout)
    assert repr(adj.layout) == "engine.strided"
    assert adj.to_dense() is adj and adj.to_dense(engine.float64).dtype == engine.float64
    # a GCN's guard takes the dense path
    assert (engine.sparse.mm(adj, h) if adj.is_sparse else adj @ h).shape == (3, 2)
    for name in ("sparse", "sparse_coo_tensor", "sparse_csr_tensor"):
        with pytest.raises(AttributeError, match=r"no sparse tensors: build the matrix dense .* @ or engine.mm"):
            getattr(engine, name)
    with pytest.raises(RuntimeError, match=r"^to_sparse: the engine has no sparse tensors"):
        adj.to_sparse()
    with pytest.raises(AttributeError, match=r"no attribute 'nonsense'$"):
        engine.nonsense  # noqa: B018


def test_complex_names_say_the_engine_has_no_complex_numbers_and_what_to_do_instead():
    # an S4D model stopped at "module 'engine' has no attribute 'fft'", which read like a missing import
    for name in ("fft", "view_as_real", "view_as_complex", "polar", "cfloat", "complex64", "complex128"):
        with pytest.raises(AttributeError, match=rf"'{name}': the engine has no complex dtypes and no FFT: keep real "
                                                 r"and imaginary parts as two real tensors"):
            getattr(engine, name)
    assert not hasattr(engine, "fft")  # a script's feature check takes its fallback
    assert not engine.ones(2).is_complex()


@needs_torch
def test_special_entr_matches_torch_with_its_gradients():
    values = np.array([-1.0, 0.0, 1e-300, 0.5, 1.0, 2.0, np.nan, np.inf])
    x, tx = engine.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    with np.errstate(all="ignore"):
        y, ty = engine.special.entr(x), torch.special.entr(tx)
        np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
        y.sum().backward()
        ty.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    x, tx = engine.tensor([0.3, 2.0], requires_grad=True), torch.tensor([0.3, 2.0], requires_grad=True)
    (g,), (tg,) = (lib.autograd.grad(lib.special.entr(v).sum(), v, create_graph=True) for lib, v in
                   ((engine, x), (torch, tx)))
    g.sum().backward()
    tg.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
    assert engine.special.entr(engine.tensor([0.5], dtype=engine.float32)).dtype == engine.float32


def test_the_spread_of_too_few_elements_warns_at_the_callers_line():
    for call in (lambda x: x.std(), lambda x: engine.var(x), lambda x: engine.std_mean(x)):
        with pytest.warns(UserWarning, match=r"degrees of freedom is <= 0.*pass correction=0") as caught:
            out = call(engine.tensor([1.0]))
        assert caught[0].filename == __file__
        assert np.isnan((out[0] if isinstance(out, tuple) else out).item())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert engine.tensor([1.0]).std(correction=0).item() == 0.0 and engine.tensor([1.0, 3.0]).std().item() > 0


def test_pooling_padding_past_half_the_kernel_is_a_runtime_error_as_torchs():
    with pytest.raises(RuntimeError, match="padding should be at most half of kernel_size"):
        F.max_pool2d(engine.randn(1, 2, 9, 9), 3, padding=2, dilation=2)


def test_autocast_and_grad_scaler_warn_at_the_scripts_line():
    import engine.amp as amp

    amp._warned.clear()  # once per process: let this test see it
    with pytest.warns(UserWarning, match="defaults to bfloat16") as caught, engine.autocast("cpu"):
        pass
    assert caught[0].filename == __file__
    with pytest.warns(UserWarning, match="CUDA is not available") as caught:
        engine.amp.GradScaler()
    assert caught[0].filename == __file__
