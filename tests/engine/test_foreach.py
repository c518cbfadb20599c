"""torch._foreach_*: each op over a list of tensors, as EMA updates and optimizers write them, against torch."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from tests.engine.oracle import needs_torch, torch

RNG = np.random.default_rng(3)
ARRAYS = [RNG.random((2, 3)).astype(np.float32) + 0.5, RNG.random(4).astype(np.float32) + 0.5]


def _lists(lib):
    make = engine.tensor if lib is engine else torch.tensor
    return [make(a) for a in ARRAYS], [make(a * 0.5 + 0.1) for a in ARRAYS], [make(a + 1.0) for a in ARRAYS]


CASES = {
    "add_scalar": lambda L, a, b, c: L._foreach_add(a, 2.0),
    "add_list_alpha": lambda L, a, b, c: L._foreach_add(a, b, alpha=-0.5),
    "sub_scalars": lambda L, a, b, c: L._foreach_sub(a, [1.0, 2.0]),
    "mul_tensor": lambda L, a, b, c: L._foreach_mul(a, b),
    "div_": lambda L, a, b, c: L._foreach_div_(a, c),
    "maximum": lambda L, a, b, c: L._foreach_maximum(a, b),
    "pow": lambda L, a, b, c: L._foreach_pow(a, 2.0),
    "clamp_max_": lambda L, a, b, c: L._foreach_clamp_max_(a, 0.8),
    "lerp_": lambda L, a, b, c: L._foreach_lerp_(a, b, 0.3),  # an EMA of weights
    "lerp_weights": lambda L, a, b, c: L._foreach_lerp(a, b, c),
    "addcmul_": lambda L, a, b, c: L._foreach_addcmul_(a, b, c, value=0.5),
    "addcdiv_values": lambda L, a, b, c: L._foreach_addcdiv(a, b, c, [0.5, -1.0]),
    "sqrt_": lambda L, a, b, c: L._foreach_sqrt_(a),
    "exp": lambda L, a, b, c: L._foreach_exp(a),
    "neg_": lambda L, a, b, c: L._foreach_neg_(a),
    "norm": lambda L, a, b, c: L._foreach_norm(a),
    "norm_1": lambda L, a, b, c: L._foreach_norm(a, 1),
    "zero_": lambda L, a, b, c: L._foreach_zero_(a),
    "copy_": lambda L, a, b, c: L._foreach_copy_(a, b),
    "mul_0d": lambda L, a, b, c: L._foreach_mul_(a, (engine.tensor if L is engine else torch.tensor)(2.0)),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(CASES))
def test_foreach_matches_torch(name):
    results = []
    for L in (engine, torch):
        a, b, c = _lists(L)
        out = CASES[name](L, a, b, c)
        results.append([t.numpy() for t in (out if out is not None else a)] + [t.numpy() for t in a])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


def test_foreach_refuses_lists_of_different_lengths_and_non_tensors():
    a, b, _ = _lists(engine)
    with pytest.raises(RuntimeError, match="must have the same number of tensors, got 2 and 1"):
        engine._foreach_add_(a, b[:1])
    with pytest.raises(TypeError, match="expected a list of tensors, got int"):
        engine._foreach_mul_(3, 2.0)


def test_foreach_in_place_is_recorded_as_ordinary_ops():
    ema, params = [engine.zeros(2)], [engine.ones(2)]
    ops = []
    off = engine.hub.subscribe(lambda e: ops.append(e.op) if type(e).__name__ == "OpEvent" else None)
    try:
        engine._foreach_lerp_(ema, params, 0.25)
    finally:
        off()
    assert ops == ["sub", "mul", "add"] and ema[0].tolist() == [0.25, 0.25]  # lerp, as the engine composes it
