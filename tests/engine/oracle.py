"""References nobody here wrote: float64 central finite differences, and PyTorch when installed.

    check_grads(lambda x, w: (x @ w).relu(), [(4, 3), (3, 2)])

builds random float64 inputs of those shapes, compares the engine's gradients of `sum(out * r)` for a
fixed random `r` with central differences (eps 1e-6), and, when torch is installed, runs the same
function in float32 on torch tensors (the engine and torch share the API) and compares values and
gradients with the tolerances of STYLE.md.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import engine

try:
    import torch
except ImportError:  # the oracle is optional; its tests skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install -e '.[dev]')")


_NORM_BIAS = re.compile(r"(affine=(?:True|False)), bias=(?:True|False)")


def same_repr(ours, theirs) -> bool:
    """Whether a module of ours prints as torch's does. The engine prints as torch 2.13 does; older torch releases
    leave the norm layers' `bias=` (after `affine=`) out of their lines, so against those ours are compared without
    it."""
    mine, text = repr(ours), repr(theirs)
    if "bias=" not in repr(torch.nn.LayerNorm(1)):
        mine = _NORM_BIAS.sub(r"\1", mine)
    return mine == text


def cuda_or_skip():
    """CuPy, when it has a working CUDA GPU; else the calling test is skipped."""
    from engine.backend import cupy_module

    cp = cupy_module()
    try:
        if cp is not None and cp.cuda.runtime.getDeviceCount() > 0:
            return cp
    except Exception:  # CuPy without a working driver
        pass
    pytest.skip("needs CuPy and a CUDA GPU")

FD_EPS, FD_ATOL, FD_RTOL = 1e-6, 1e-5, 1e-3
FWD_RTOL, FWD_ATOL = 1e-3, 1e-6
GRAD_RTOL, GRAD_ATOL = 1e-3, 1e-4


def _inputs(specs, rng, dtype):
    out = []
    for s in specs:
        if isinstance(s, np.ndarray):
            out.append(s.astype(dtype) if s.dtype.kind == "f" else s)
        else:
            out.append(rng.standard_normal(s).astype(dtype))
    return out


def finite_difference_check(fn, arrays, wrt=None, eps=FD_EPS, atol=FD_ATOL, rtol=FD_RTOL):
    """Compare engine gradients of fn(*tensors) with float64 central differences."""
    arrays = [np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in arrays]
    wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"] if wrt is None else wrt
    tensors = [engine.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out = fn(*tensors)
    r = np.random.default_rng(1).standard_normal(out.shape)
    (out * engine.tensor(r)).sum().backward()

    def value(arrs):
        with engine.no_grad():
            return float((fn(*[engine.tensor(a) for a in arrs]).numpy() * r).sum())

    for i in wrt:
        assert tensors[i].grad is not None, f"input {i} got no gradient"
        analytic = tensors[i].grad.numpy()
        numeric = np.zeros_like(arrays[i])
        flat = arrays[i].reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + eps
            hi = value(arrays)
            flat[j] = old - eps
            lo = value(arrays)
            flat[j] = old
            numeric.reshape(-1)[j] = (hi - lo) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i} differs from finite differences")


def torch_check(fn, arrays, torch_fn=None, wrt=None):
    """Run fn on engine and torch float32 tensors; compare outputs, dtypes, shapes and gradients."""
    if torch is None:
        pytest.skip("PyTorch is not installed")
    torch_fn = torch_fn or fn
    arrays = [np.asarray(a, dtype=np.float32) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in arrays]
    wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"] if wrt is None else wrt
    ours = [engine.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out, ref = fn(*ours), torch_fn(*theirs)
    assert tuple(out.shape) == tuple(ref.shape), f"shape {tuple(out.shape)} != torch's {tuple(ref.shape)}"
    assert out.dtype.name == str(ref.dtype).removeprefix("torch."), f"dtype {out.dtype} != torch's {ref.dtype}"
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=FWD_RTOL, atol=FWD_ATOL)
    if not wrt or not ref.requires_grad:
        return
    r = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(np.float32)
    (out * engine.tensor(r)).sum().backward()
    (ref * torch.tensor(r)).sum().backward()
    for i in wrt:
        g_ref = theirs[i].grad
        g = ours[i].grad
        if g_ref is None:
            assert g is None or not np.any(g.numpy()), f"input {i}: torch gives no gradient"
            continue
        assert g is not None, f"input {i} got no gradient"
        np.testing.assert_allclose(g.numpy(), g_ref.numpy(), rtol=GRAD_RTOL, atol=GRAD_ATOL,
                                   err_msg=f"gradient of input {i} differs from torch")


def check_grads(fn, specs, torch_fn=None, wrt=None, seed=0):
    """Finite differences in float64 always; against torch in float32 when installed."""
    rng = np.random.default_rng(seed)
    arrays = _inputs(specs, rng, np.float64)
    finite_difference_check(fn, arrays, wrt=wrt)
    if torch is not None:
        torch_check(fn, arrays, torch_fn=torch_fn, wrt=wrt)


def lib(t):
    """The library a tensor belongs to (engine or torch): a case written once runs on both."""
    return engine if isinstance(t, engine.Tensor) else torch


def one_line(call, error, message) -> None:
    """`call()` raises `error` matching `message`, in one line."""
    with pytest.raises(error, match=message) as err:
        call()
    assert "\n" not in str(err.value)
