"""linalg.cholesky_ex and the failing leading minor that cholesky's error names, against torch."""

import numpy as np
import pytest

import engine
from tests.engine.oracle import cuda_or_skip, needs_torch, torch


def spd(rng, n, batch=()):
    a = rng.standard_normal((*batch, n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def indefinite(rng, n, order):
    """Symmetric, with its leading minors positive-definite up to `order` - 1 and not at `order`."""
    m = spd(rng, n)
    m[order - 1, order - 1] = -10.0 * n * n
    return m


@needs_torch
def test_info_is_the_order_of_the_first_failing_minor_as_torchs():
    rng = np.random.default_rng(0)
    stack = np.stack([spd(rng, 6), indefinite(rng, 6, 1), indefinite(rng, 6, 4), indefinite(rng, 6, 6)])
    ours = engine.linalg.cholesky_ex(engine.tensor(stack))
    theirs = torch.linalg.cholesky_ex(torch.tensor(stack))
    assert ours.info.dtype == engine.int32 and ours.info.tolist() == theirs.info.tolist() == [0, 1, 4, 6]
    np.testing.assert_allclose(ours.L[0].numpy(), theirs.L[0].numpy(), rtol=1e-12)
    assert not ours.L.requires_grad and (ours.L[1:] == 0).all()  # undefined in torch; zeros here


@needs_torch
@pytest.mark.parametrize("upper", [False, True])
def test_a_factorable_stack_is_choleskys_with_its_gradient(upper):
    rng = np.random.default_rng(1)
    a = spd(rng, 4, (3,))
    x, tx = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (low, info), (tlow, tinfo) = engine.linalg.cholesky_ex(x, upper=upper), torch.linalg.cholesky_ex(tx, upper=upper)
    assert info.tolist() == tinfo.tolist() == [0, 0, 0]
    np.testing.assert_allclose(low.detach().numpy(), tlow.detach().numpy(), rtol=1e-12)
    w = rng.standard_normal(a.shape)
    (low * engine.tensor(w)).sum().backward()
    (tlow * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)


@needs_torch
def test_errors_name_the_batch_element_and_minor_as_torchs():
    rng = np.random.default_rng(2)
    stack = np.stack([spd(rng, 3), indefinite(rng, 3, 2)])
    for call in (lambda lib, a: lib.linalg.cholesky(a), lambda lib, a: lib.linalg.cholesky_ex(a, check_errors=True)):
        with pytest.raises(torch.linalg.LinAlgError) as theirs:
            call(torch, torch.tensor(stack))
        with pytest.raises(engine.linalg.LinAlgError) as ours:
            call(engine, engine.tensor(stack))
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(engine.linalg.LinAlgError, match=r"^linalg.cholesky: The factorization .* order 2 is not"):
        engine.linalg.cholesky(engine.tensor(stack[1]))


def test_a_jitter_retry_loop_ends_with_a_factor():
    k = engine.tensor(np.ones((5, 5)))  # rank one: not positive-definite until jitter is added
    jitter, tries = 1e-6, 0
    low, info = engine.linalg.cholesky_ex(k)
    while info.item() != 0:
        tries += 1
        low, info = engine.linalg.cholesky_ex(k + jitter * engine.eye(5, dtype=k.dtype))
        jitter *= 10
    assert tries == 1 and np.allclose((low @ low.mT).numpy(), k.numpy() + 1e-6 * np.eye(5))


def test_bad_input_gets_torchs_errors():
    with pytest.raises(engine.ShapeError, match="square matrices"):
        engine.linalg.cholesky_ex(engine.ones(2, 3))
    with pytest.raises(TypeError, match="floating point"):
        engine.linalg.cholesky_ex(engine.ones(2, 2, dtype=engine.int64))


def test_cholesky_ex_on_cuda_matches_the_cpu():
    cuda_or_skip()
    rng = np.random.default_rng(3)
    stack = np.stack([spd(rng, 5), indefinite(rng, 5, 3)])
    cpu = engine.linalg.cholesky_ex(engine.tensor(stack))
    gpu = engine.linalg.cholesky_ex(engine.tensor(stack, device="cuda"))
    assert gpu.L.device.type == "cuda" and gpu.info.tolist() == cpu.info.tolist() == [0, 3]
    np.testing.assert_allclose(gpu.L.cpu().numpy(), cpu.L.numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(engine.linalg.LinAlgError, match=r"Batch element 1.*order 3"):
        engine.linalg.cholesky(engine.tensor(stack, device="cuda"))
