"""The GPU's LU factorization (cuBLAS's batched getrf, cuSOLVER's getrf) gives the CPU's factors and pivots."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from tests.engine.oracle import cuda_or_skip


def _lu_parts(a: np.ndarray, device: str, pivot: bool = True) -> list[np.ndarray]:
    A = engine.tensor(a, device=device, requires_grad=True)
    p, low, up = engine.linalg.lu(A, pivot=pivot)
    parts = [p, low, up]
    if pivot and a.shape[-1] == a.shape[-2]:
        lu, pivots = engine.linalg.lu_factor(A)
        b = engine.tensor(np.ones((*a.shape[:-1], 2)), device=device)
        parts += [lu, pivots, *engine.lu_unpack(lu, pivots), engine.linalg.lu_solve(lu, pivots, b)]
    sum((t.float().sum() if t.dtype.is_floating_point else 0) for t in parts).backward()
    return [t.detach().cpu().numpy() for t in parts] + [A.grad.cpu().numpy()]


@pytest.mark.gpu
@pytest.mark.parametrize("shape, pivot", [((4, 6, 6), True),  # cuBLAS batched
                                          ((3, 70, 70), True),  # cuSOLVER, one matrix at a time
                                          ((2, 9, 5), True), ((2, 5, 9), True),  # tall and wide: cuSOLVER
                                          ((3, 80, 80), False),  # no pivoting: cuBLAS batched, any size
                                          ((2, 6, 4), False)])  # neither library: the engine's own loop
def test_gpu_lu_matches_cpu(shape, pivot):
    cuda_or_skip()
    rng = np.random.default_rng(sum(shape))
    a = rng.standard_normal(shape) + (0 if pivot else 4 * np.eye(*shape[-2:]))  # no pivoting wants a heavy diagonal
    for cpu, gpu in zip(_lu_parts(a, "cpu", pivot), _lu_parts(a, "cuda", pivot)):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-8, atol=1e-10)


@pytest.mark.gpu
def test_gpu_lu_of_float32_and_singular_matrices():
    cuda_or_skip()
    rng = np.random.default_rng(3)
    a = rng.standard_normal((5, 8, 8)).astype(np.float32)
    cpu, gpu = engine.linalg.lu_factor(engine.tensor(a)), engine.linalg.lu_factor(engine.tensor(a, device="cuda"))
    assert gpu.LU.dtype == engine.float32 and gpu.pivots.dtype == engine.int32
    np.testing.assert_array_equal(gpu.pivots.cpu().numpy(), cpu.pivots.numpy())
    np.testing.assert_allclose(gpu.LU.cpu().numpy(), cpu.LU.numpy(), rtol=1e-4, atol=1e-5)
    singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    for ours, theirs in zip(engine.linalg.lu(engine.tensor(singular, device="cuda")),
                            engine.linalg.lu(engine.tensor(singular))):
        np.testing.assert_allclose(ours.cpu().numpy(), theirs.numpy(), atol=1e-12)
    with pytest.raises(engine.linalg.LinAlgError, match=r"U\[2,2\] is zero"):
        engine.linalg.lu_factor(engine.tensor(np.stack([np.eye(3), singular]), device="cuda"))
