"""torch's statistics, distances, histograms, logspace and signal windows the engine lacked: std_mean, var_mean,
aminmax, cov, corrcoef, dist, pdist (and F.pdist), histogram, histogramdd, logspace, hann/hamming/blackman/
bartlett/kaiser windows: values and gradients against torch (float32) and float64 finite differences, second
derivatives, one-line errors, GPU; and that every name of this port exists where torch has it."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as EF
from tests.engine.oracle import check_grads, cuda_or_skip, lib, needs_torch, one_line, torch
from tests.engine.second_order import check_matches_finite_differences
from tests.engine.test_math_more import check_second_order

RNG = np.random.default_rng(5)

FUNCTIONS = ["std_mean", "var_mean", "aminmax", "cov", "corrcoef", "dist", "inner", "vdot", "addr", "addmv", "addbmm",
             "baddbmm", "chain_matmul", "matrix_power", "pinverse", "svd", "qr", "cholesky_solve", "cholesky_inverse",
             "triangular_solve", "nuclear_norm", "frobenius_norm", "pdist", "pairwise_distance", "histogram",
             "histogramdd", "logspace", "hann_window", "hamming_window", "blackman_window", "bartlett_window",
             "kaiser_window", "lu", "lu_solve"]
METHODS = ["aminmax", "cov", "corrcoef", "dist", "inner", "vdot", "addr", "addmv", "addbmm", "baddbmm", "matrix_power",
           "pinverse", "svd", "qr", "cholesky_solve", "cholesky_inverse", "triangular_solve", "histogram", "lu",
           "lu_solve", "det", "addr_", "addmv_", "addbmm_", "baddbmm_"]
LINALG = ["svd", "qr", "pinv", "matrix_power", "multi_dot"]


def test_every_name_exists():
    assert [n for n in FUNCTIONS if not callable(getattr(engine, n, None))] == []
    assert [n for n in METHODS if not callable(getattr(engine.Tensor, n, None))] == []
    assert [n for n in LINALG if not callable(getattr(engine.linalg, n, None))] == []
    assert EF.pdist is engine.pdist


@needs_torch
def test_names_are_torchs():
    assert [n for n in FUNCTIONS if not hasattr(torch, n)] == []
    assert [n for n in METHODS if not hasattr(torch.Tensor, n)] == []
    assert [n for n in LINALG if not hasattr(torch.linalg, n)] == []


CASES = {
    "std_mean": (lambda x: (lambda s, m: s * m)(*lib(x).std_mean(x, 1)), [(3, 4)]),
    "std_mean_all": (lambda x: (lambda s, m: s + m)(*lib(x).std_mean(x, correction=0)), [(3, 4)]),
    "var_mean_keepdim": (lambda x: (lambda v, m: v - m)(*lib(x).var_mean(x, (0, 2), keepdim=True)), [(2, 3, 4)]),
    "var_mean_unbiased": (lambda x: sum(lib(x).var_mean(x, 0, False)), [(5, 2)]),
    "aminmax": (lambda x: (lambda lo, hi: lo * 2 + hi)(*x.aminmax()), [(3, 4)]),
    "aminmax_dim": (lambda x: (lambda lo, hi: lo - hi)(*lib(x).aminmax(x, dim=-1, keepdim=True)), [(3, 4)]),
    "aminmax_keep_all": (lambda x: lib(x).aminmax(x, keepdim=True).max, [(2, 3)]),
    "cov": (lambda x: lib(x).cov(x), [(3, 6)]),
    "cov_vector": (lambda x: x.cov(correction=0), [(5,)]),
    "cov_aweights": (lambda x, w: lib(x).cov(x, aweights=w.abs() + 0.5), [(2, 6), (6,)]),
    "cov_both_weights": (lambda x, w: lib(x).cov(x, correction=2, fweights=lib(x).tensor([1, 2, 1, 3, 1, 2]),
                                                   aweights=w.abs() + 0.5), [(3, 6), (6,)]),
    "corrcoef": (lambda x: lib(x).corrcoef(x), [(3, 5)]),
    "corrcoef_vector": (lambda x: x.corrcoef(), [(5,)]),
    "dist": (lambda a, b: lib(a).dist(a, b), [(3, 4), (4,)]),
    "dist_p": (lambda a, b: a.dist(b, 3.5), [(3, 4), (3, 4)]),
    "dist_inf": (lambda a, b: a.dist(b, float("inf")), [(5,), (5,)]),
    "pdist": (lambda x: lib(x).pdist(x), [(5, 3)]),
    "pdist_p1": (lambda x: lib(x).pdist(x, 1), [(4, 2)]),
    "pdist_p3": (lambda x: lib(x).nn.functional.pdist(x, 3), [(4, 3)]),
    "pairwise_distance": (lambda a, b: lib(a).pairwise_distance(a, b), [(3, 4), (3, 4)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients(name):
    fn, shapes = CASES[name]
    check_grads(fn, shapes, seed=sum(map(ord, name)))


HIGHER = {
    "std_mean": (lambda L, x: (lambda s, m: s * m)(*L.std_mean(x, 1)), [(3, 4)]),
    "cov": (lambda L, x, w: L.cov(x, aweights=w ** 2 + 0.5), [(3, 5), (5,)]),
    "corrcoef": (lambda L, x: L.corrcoef(x), [(3, 5)]),
    "dist": (lambda L, a, b: L.dist(a, b, 3), [(3, 4), (3, 4)]),
}


@needs_torch
@pytest.mark.parametrize("name", list(HIGHER))
def test_second_derivatives_match_torch(name):
    check_second_order(*HIGHER[name], seed=sum(map(ord, name)))


def test_pdist_second_derivative_matches_finite_differences():
    # torch has no double backward of pdist: central differences of the engine's own gradient are the reference
    check_matches_finite_differences({"pdist": (lambda L, F, x: F.pdist(x, 3) ** 2, [(4, 3)])}, "pdist")


# ---- histograms ------------------------------------------------------------------------------------------
def _same(ours, theirs):
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)


@needs_torch
@pytest.mark.parametrize("kwargs", [{}, {"bins": 7}, {"bins": 5, "range": (-1.0, 2.0)}, {"bins": 4, "density": True},
                                    {"bins": 6, "weight": True}, {"bins": "edges"}, {"bins": 3, "constant": True}])
def test_histogram_matches_torch(kwargs):
    x = RNG.standard_normal((4, 25)).astype(np.float32)
    if kwargs.pop("constant", False):
        x[:] = 2.0
    if kwargs.get("weight"):
        kwargs["weight"] = RNG.random((4, 25)).astype(np.float32)
    if kwargs.get("bins") == "edges":
        kwargs["bins"] = np.array([-3.0, -0.5, 0.0, 0.25, 3.0], np.float32)
    ours = engine.tensor(x).histogram(**{k: engine.tensor(v) if isinstance(v, np.ndarray) else v
                                         for k, v in kwargs.items()})
    theirs = torch.histogram(torch.tensor(x), **{k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                                                 for k, v in kwargs.items()})
    assert type(ours).__name__ == "histogram" and ours._fields == ("hist", "bin_edges")
    _same(ours.hist, theirs.hist)
    _same(ours.bin_edges, theirs.bin_edges)


@needs_torch
def test_histogramdd_matches_torch():
    x = RNG.standard_normal((2, 30, 2))
    w = RNG.random((2, 30))
    for kwargs in [{"bins": 4}, {"bins": [3, 5], "range": [-2.0, 2.0, -1.0, 1.0], "density": True},
                   {"bins": [np.array([-3.0, 0.0, 3.0]), np.array([-2.0, -1.0, 1.0, 2.0])], "weight": w}]:
        def conv(lib, v):
            if isinstance(v, list):
                return [conv(lib, e) for e in v]
            return lib.tensor(v) if isinstance(v, np.ndarray) else v

        ours = engine.histogramdd(engine.tensor(x), **{k: conv(engine, v) for k, v in kwargs.items()})
        theirs = torch.histogramdd(torch.tensor(x), **{k: conv(torch, v) for k, v in kwargs.items()})
        _same(ours.hist, theirs.hist)
        assert len(ours.bin_edges) == len(theirs.bin_edges)
        for a, b in zip(ours.bin_edges, theirs.bin_edges):
            _same(a, b)


# ---- logspace and windows ----------------------------------------------------------------------------------
WINDOW_CALLS = [("hann_window", {}), ("hamming_window", {}), ("hamming_window", {"alpha": 0.6, "beta": 0.3}),
                ("blackman_window", {}), ("bartlett_window", {}), ("kaiser_window", {}),
                ("kaiser_window", {"beta": 5.0})]


@needs_torch
@pytest.mark.parametrize("name, kwargs", WINDOW_CALLS)
@pytest.mark.parametrize("length", [0, 1, 2, 7, 16])
@pytest.mark.parametrize("periodic", [True, False])
def test_windows_match_torch(name, kwargs, length, periodic):
    for dtype in ("float32", "float64"):
        ours = getattr(engine, name)(length, periodic, dtype=getattr(engine, dtype), **kwargs)
        theirs = getattr(torch, name)(length, periodic, dtype=getattr(torch, dtype), **kwargs)
        assert ours.dtype.name == dtype and tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)
    assert getattr(engine, name)(4, requires_grad=True).requires_grad


@needs_torch
@pytest.mark.parametrize("args, kwargs", [((0, 2, 5), {}), ((-1.0, 1.0, 4), {"base": 2.0}), ((1, 3, 1), {}),
                                          ((2, -2, 6), {"dtype": "float64"}), ((0, 1, 0), {})])
def test_logspace_matches_torch(args, kwargs):
    dtype = kwargs.pop("dtype", None)
    ours = engine.logspace(*args, dtype=dtype and getattr(engine, dtype), **kwargs)
    theirs = torch.logspace(*args, dtype=dtype and getattr(torch, dtype), **kwargs)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


@pytest.mark.parametrize("call, error, message", [
    (lambda: engine.std_mean(engine.arange(4)), TypeError, r"std_mean only support floating point"),
    (lambda: engine.aminmax(engine.ones(0)), RuntimeError, r"cannot compute aminmax over an empty dimension"),
    (lambda: engine.aminmax(engine.ones(2, 3), dim=2), IndexError, r"out of range"),
    (lambda: engine.cov(engine.ones(2, 3, 4)), engine.ShapeError, r"two or fewer dimensions but got an input with 3"),
    (lambda: engine.cov(engine.ones(2, 3), fweights=engine.ones(3)), TypeError, r"fweights to have integral dtype"),
    (lambda: engine.cov(engine.ones(2, 3), fweights=engine.ones(4).long()), engine.ShapeError, r"4 != 3"),
    (lambda: engine.cov(engine.ones(2, 3), fweights=-engine.ones(3).long()), ValueError, r"fweights cannot be neg"),
    (lambda: engine.cov(engine.ones(2, 3), aweights=engine.ones(3).long()), TypeError, r"aweights to have floating"),
    (lambda: engine.corrcoef(engine.ones(2, 2, 2)), engine.ShapeError, r"two or fewer dimensions"),
    (lambda: engine.dist(engine.ones(2, 3), engine.ones(4)), engine.ShapeError, r"broadcast"),
    (lambda: engine.pdist(engine.ones(2, 3, 4)), engine.ShapeError, r"pdist only supports 2D tensors, got: 3D"),
    (lambda: engine.pdist(engine.ones(3, 4), -1), ValueError, r"non-negative p values"),
    (lambda: engine.histogram(engine.arange(4), 3), TypeError, r"not implemented for int64"),
    (lambda: engine.histogram(engine.ones(4), -1), ValueError, r"bins must be > 0, but got -1"),
    (lambda: engine.histogram(engine.ones(4), 3, range=(1.0, 0.0)), RuntimeError, r"min should not exceed max"),
    (lambda: engine.histogram(engine.ones(4), 3, weight=engine.ones(3)), engine.ShapeError, r"same shape"),
    (lambda: engine.histogramdd(engine.ones(4, 2), [3]), ValueError, r"expected 2 sequences of bin edges"),
    (lambda: engine.logspace(0, 2, -1), ValueError, r"number of steps must be non-negative"),
    (lambda: engine.hann_window(-1), ValueError, r"requires non-negative window_length, got window_length=-1"),
    (lambda: engine.kaiser_window(4, dtype=engine.int64), TypeError, r"kaiser_window expects floating point dtypes"),
])
def test_errors(call, error, message):
    one_line(call, error, message)


# ---- GPU ------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_matches_cpu_cuda():
    cuda_or_skip()
    x, w = RNG.standard_normal((3, 6)), RNG.random(6)
    results = {}
    for device in ("cpu", "cuda"):
        X, W = (engine.tensor(a, device=device, requires_grad=True) for a in (x, w))
        parts = [*engine.std_mean(X, 1), *engine.var_mean(X), *X.aminmax(dim=0), engine.cov(X, aweights=W + 0.5),
                 engine.corrcoef(X), engine.dist(X, X.flip(0)), engine.pdist(X), engine.pdist(X, 1.5)]
        sum((t * t).sum() for t in parts).backward()
        made = [engine.hann_window(8, device=device), engine.kaiser_window(5, False, device=device),
                engine.logspace(0, 1, 4, device=device), *X.detach().histogram(4),
                *engine.histogramdd(X.detach().mT, 3)]
        made = [m for item in made for m in (item if isinstance(item, list) else [item])]
        assert all(t.device == engine.device(device) for t in parts + made)
        results[device] = [t.detach().cpu().numpy() for t in parts + made] + [t.grad.cpu().numpy() for t in (X, W)]
    for cpu, gpu in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-8, atol=1e-10)
