"""F.one_hot, F.normalize, F.cosine_similarity and F.scaled_dot_product_attention against PyTorch and
finite differences; Tensor.new_*, type_as and the method form of where."""

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from tests.engine.oracle import check_grads, needs_torch, torch

TF = None if torch is None else torch.nn.functional


def _both(ours, theirs):
    """One function for check_grads: the engine's on engine tensors, torch's on torch tensors."""
    return lambda *xs: ours(*xs) if isinstance(xs[0], engine.Tensor) else theirs(*xs)


# ---- one_hot ------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("classes,num_classes", [([0, 2, 1, 2], -1), ([[1, 0], [3, 3]], 5), ([], 3)])
def test_one_hot_matches_torch(classes, num_classes):
    ours = F.one_hot(engine.tensor(classes, dtype=engine.int64), num_classes)
    theirs = TF.one_hot(torch.tensor(classes, dtype=torch.int64), num_classes)
    assert ours.dtype is engine.int64 and not ours.requires_grad
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_one_hot_errors():
    with pytest.raises(IndexError, match=r"one_hot: class value 3 is not smaller than num_classes \(3\) in input "
                                         r"of shape \(2,\)"):
        F.one_hot(engine.tensor([0, 3]), 3)
    with pytest.raises(IndexError, match=r"one_hot: class values must be non-negative, got -1"):
        F.one_hot(engine.tensor([-1, 0]))
    with pytest.raises(TypeError, match="one_hot: expected an int64"):
        F.one_hot(engine.tensor([0.0, 1.0]))


# ---- normalize, cosine_similarity ------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{}, {"dim": -1}, {"p": 1, "dim": 0}, {"p": 3.0, "dim": 2}],
                         ids=["default", "dim-1", "p1-dim0", "p3"])
def test_normalize(kwargs):
    torch_fn = None if torch is None else (lambda x: TF.normalize(x, **kwargs))
    check_grads(lambda x: F.normalize(x, **kwargs), [(2, 3, 4)], torch_fn=torch_fn)


@pytest.mark.parametrize("shapes,dim", [([(3, 4), (3, 4)], 1), ([(3, 4), (1, 4)], 1), ([(2, 3, 4), (2, 3, 4)], -1),
                                        ([(2, 3, 4), (3, 1)], 0)],
                         ids=["same", "broadcast", "dim-1", "broadcast-dim0"])
def test_cosine_similarity(shapes, dim):
    torch_fn = None if torch is None else (lambda a, b: TF.cosine_similarity(a, b, dim=dim))
    check_grads(lambda a, b: F.cosine_similarity(a, b, dim=dim), shapes, torch_fn=torch_fn)


def test_normalize_keeps_zero_vectors_finite_and_cosine_names_shapes():
    out = F.normalize(engine.zeros(2, 3))
    np.testing.assert_array_equal(out.numpy(), np.zeros((2, 3)))
    with pytest.raises(engine.ShapeError, match=r"cosine_similarity: x1 \(3, 4\) and x2 \(2, 4\) do not broadcast"):
        F.cosine_similarity(engine.ones(3, 4), engine.ones(2, 4))


# ---- scaled_dot_product_attention --------------------------------------------------------------------
CAUSAL_KEEP = np.tril(np.ones((3, 5), dtype=bool), 2)  # every query row keeps at least one key


@pytest.mark.parametrize("kwargs,shapes", [
    ({}, [(2, 3, 4), (2, 5, 4), (2, 5, 6)]),
    ({"is_causal": True}, [(2, 2, 4, 3), (2, 2, 4, 3), (2, 2, 4, 3)]),
    ({"scale": 0.7}, [(3, 4), (5, 4), (5, 2)]),
], ids=["plain", "causal-heads", "scale-2d"])
def test_attention(kwargs, shapes):
    torch_fn = None if torch is None else (lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, **kwargs))
    check_grads(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs), shapes, torch_fn=torch_fn)


def test_attention_with_masks():
    sdpa = _both(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
                 lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m))
    check_grads(sdpa, [(2, 3, 4), (2, 5, 4), (2, 5, 4), CAUSAL_KEEP])           # bool: keep where true
    check_grads(sdpa, [(2, 3, 4), (2, 5, 4), (2, 5, 4), (3, 5)], wrt=[0, 1, 2])  # float: added to the scores


def test_attention_dropout_zeroes_some_weights_in_training():
    engine.manual_seed(0)
    q = engine.randn(1, 8, 4)
    out = F.scaled_dot_product_attention(q, q, engine.ones(1, 8, 4), dropout_p=0.5)
    assert out.shape == (1, 8, 4) and not np.allclose(out.numpy(), 1.0)


def test_attention_errors_name_the_shapes():
    q = engine.ones(2, 3, 4)
    with pytest.raises(engine.ShapeError, match=r"scaled_dot_product_attention: query \(2, 3, 4\), key \(2, 5, 3\)"):
        F.scaled_dot_product_attention(q, engine.ones(2, 5, 3), engine.ones(2, 5, 3))
    with pytest.raises(engine.ShapeError, match=r"attn_mask \(4, 5\) does not broadcast to the scores \(2, 3, 5\)"):
        F.scaled_dot_product_attention(q, engine.ones(2, 5, 4), engine.ones(2, 5, 4), attn_mask=engine.ones(4, 5))
    with pytest.raises(ValueError, match="either attn_mask or is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=engine.ones(3, 3), is_causal=True)


# ---- Tensor.new_*, type_as, where ------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("make", [
    lambda x: x.new_zeros(2, 3),
    lambda x: x.new_zeros((2,)),
    lambda x: x.new_ones(3, dtype=engine.float64 if isinstance(x, engine.Tensor) else torch.float64),
    lambda x: x.new_full((2, 2), 7),
    lambda x: x.new_tensor([[1, 2], [3, 4]]),
    lambda x: x.new_tensor([True, False]),
    lambda x: x.type_as(x.new_zeros(1, dtype=engine.int64 if isinstance(x, engine.Tensor) else torch.int64)),
], ids=["new_zeros", "new_zeros-tuple", "new_ones-dtype", "new_full", "new_tensor", "new_tensor-bool", "type_as"])
def test_new_tensors_take_dtype_and_device_from_self(make):
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    ours, theirs = make(engine.tensor(data, requires_grad=True)), make(torch.tensor(data, requires_grad=True))
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert ours.requires_grad == theirs.requires_grad
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())


def test_new_tensor_copies_and_type_as_is_differentiable():
    x = engine.ones(2, requires_grad=True)
    src = engine.tensor([1.0, 2.0])
    y = x.new_tensor(src)
    src.add_(1.0)
    np.testing.assert_array_equal(y.numpy(), [1.0, 2.0])
    x.type_as(engine.zeros(1, dtype=engine.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_where_method():
    cond = np.array([[True, False, True], [False, True, True]])
    check_grads(lambda x, c, y: x.where(c, y), [(2, 3), cond, (1, 3)])
    out = engine.tensor([1.0, -2.0]).where(engine.tensor([True, False]), 0.0)
    np.testing.assert_array_equal(out.numpy(), [1.0, 0.0])
