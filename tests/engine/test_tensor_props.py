"""Tensor properties and methods of engine.tensor_props (layout, device and dtype queries, complex views of real
tensors, apply_/map_, pinned/shared memory no-ops), against torch where it is installed."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from tests.engine.oracle import cuda_or_skip, needs_torch, torch

# name -> fn(lib): the same tensor built with engine and with torch, by the same ops
LAYOUTS = {
    "contiguous": lambda L: L.arange(12.0).reshape(3, 4),
    "transposed": lambda L: L.arange(12.0).reshape(3, 4).t(),
    "row_slice": lambda L: L.arange(12.0).reshape(3, 4)[1:, 2:],
    "step_slice": lambda L: L.arange(12.0).reshape(3, 4)[:, ::2],
    "narrowed": lambda L: L.arange(12.0).reshape(3, 4).narrow(1, 1, 2),
    "row": lambda L: L.arange(12.0).reshape(3, 4)[1],
    "expanded": lambda L: L.zeros(3, 1).expand(3, 4),
    "permuted": lambda L: L.zeros(2, 3, 4, 5).permute(0, 2, 3, 1),
    "size_one_dims": lambda L: L.zeros(3, 1, 4),
    "zero_dim": lambda L: L.tensor(3.0),
    "empty": lambda L: L.zeros(2, 0, 3),
    "int32": lambda L: L.arange(6, dtype=L.int32).reshape(2, 3),
}


@needs_torch
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layout_and_size_queries_match_torch(name):
    ours, theirs = LAYOUTS[name](engine), LAYOUTS[name](torch)
    assert ours.stride() == theirs.stride()
    assert [ours.stride(d) for d in range(-ours.ndim, ours.ndim)] == \
        [theirs.stride(d) for d in range(-theirs.ndim, theirs.ndim)]
    assert ours.storage_offset() == theirs.storage_offset()
    assert ours.dim_order() == theirs.dim_order()
    assert (ours.itemsize, ours.nbytes, ours.ndimension()) == (theirs.itemsize, theirs.nbytes, theirs.ndimension())
    assert (ours.is_cpu, ours.get_device()) == (theirs.is_cpu, theirs.get_device()) == (True, -1)


def test_data_ptr_is_the_first_elements_address():
    x = engine.arange(12.0).reshape(3, 4)
    assert x.data_ptr() == x.numpy().ctypes.data
    assert x[1:, 2:].data_ptr() - x.data_ptr() == x[1:, 2:].storage_offset() * x.itemsize
    assert engine.zeros(0).data_ptr() == 0


@needs_torch
@pytest.mark.parametrize(("dim", "error"), [(2, IndexError), (-3, IndexError), ("a", TypeError)])
def test_stride_refuses_bad_dims_as_torch(dim, error):
    with pytest.raises(error) as expected:
        torch.zeros(3, 4).stride(dim)
    with pytest.raises(error) as got:
        engine.zeros(3, 4).stride(dim)
    assert str(got.value) == str(expected.value)
    with pytest.raises(IndexError, match="has no dimensions"):
        engine.tensor(3.0).stride(0)


@needs_torch
def test_is_set_to_matches_torch():
    for lib in (engine, torch):
        x = lib.arange(12.0).reshape(3, 4)
        got = (x.is_set_to(x), x.is_set_to(x.view(3, 4)), x.is_set_to(x.clone()), x.is_set_to(x.view(12)),
               x.is_set_to(x.t()))
        assert got == (True, True, False, False, False)
    with pytest.raises(TypeError, match="must be Tensor"):
        engine.zeros(2).is_set_to(3)


def test_dim_order_ambiguity_check():
    x = engine.zeros(1, 2, 3, 4)
    assert x.dim_order() == (0, 1, 2, 3)
    with pytest.raises(RuntimeError, match="does not have unique dim order"):
        x.dim_order(ambiguity_check=True)
    assert x.dim_order(ambiguity_check=[engine.contiguous_format, engine.channels_last]) == (0, 1, 2, 3)
    assert engine.zeros(2, 3, 4, 5).dim_order(ambiguity_check=True) == (0, 1, 2, 3)
    with pytest.raises(TypeError, match="must be a bool or a list of memory formats"):
        x.dim_order(ambiguity_check="ILLEGAL")


@needs_torch
def test_real_tensors_complex_views_are_themselves_and_imag_is_refused_as_torch():
    x = engine.arange(3.0)
    assert x.conj() is x and x.resolve_conj() is x and x.resolve_neg() is x and x.real is x
    assert not x.is_neg() and not x.is_conj() and not x.is_complex() and not x.is_inference()
    with pytest.raises(RuntimeError) as expected:
        torch.arange(3.0).imag  # noqa: B018
    with pytest.raises(RuntimeError) as got:
        x.imag  # noqa: B018
    assert str(got.value) == str(expected.value)


def test_as_subclass_shares_data_and_graph_and_refuses_other_classes():
    x = engine.ones(2, requires_grad=True)
    y = x.as_subclass(engine.Tensor)
    assert type(y) is engine.Tensor and np.shares_memory(y.array, x.array)
    (y * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    with pytest.raises(TypeError, match="does not inherit from Tensor"):
        x.as_subclass(int)
    with pytest.raises(TypeError, match="does not re-class tensors"):
        x.as_subclass(engine.nn.Parameter)


@needs_torch
@pytest.mark.parametrize(("make", "fn"), [(lambda L: L.arange(4.0), lambda v: v * 2 + 1),
                                          (lambda L: L.arange(4), lambda v: v * 2.7),
                                          (lambda L: L.arange(6.0).reshape(2, 3).t(), lambda v: v ** 2),
                                          (lambda L: L.tensor([True, False]), lambda v: not v)])
def test_apply_matches_torch(make, fn):
    ours, theirs = make(engine), make(torch)
    assert ours.apply_(fn) is ours
    theirs.apply_(fn)
    assert ours.tolist() == theirs.tolist()


@needs_torch
@pytest.mark.parametrize("other_shape", [(4,), (1,), (3, 1)])
def test_map_matches_torch_with_broadcasting(other_shape):
    ours, theirs = engine.arange(12.0).reshape(3, 4), torch.arange(12.0).reshape(3, 4)
    b = np.arange(np.prod(other_shape), dtype=np.float32).reshape(other_shape) + 1
    ours.map_(engine.tensor(b), lambda p, q: p * q - 1)
    theirs.map_(torch.tensor(b), lambda p, q: p * q - 1)
    assert ours.tolist() == theirs.tolist()


def test_apply_and_map_bump_the_version_so_saved_tensors_notice():
    w = engine.ones(3, requires_grad=True)
    x = engine.arange(3.0)
    y = (w * x).sum()
    v = x._version
    x.apply_(lambda a: a + 1)
    assert x._version == v + 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    x.map_(engine.ones(3), lambda a, b: a + b)
    assert x._version == v + 2 and x.tolist() == [2.0, 3.0, 4.0]


@pytest.mark.parametrize(("call", "error", "words"), [
    (lambda: engine.ones(2, requires_grad=True).apply_(lambda v: v), RuntimeError, "Can't call apply_"),
    (lambda: engine.arange(4).apply_(lambda v: "a"), TypeError, "must return numbers"),
    (lambda: engine.ones(4).map_(engine.ones(5), lambda a, b: a), RuntimeError, "does not broadcast"),
    (lambda: engine.ones(1).map_(engine.ones(4), lambda a, b: a), RuntimeError, "does not broadcast"),
    (lambda: engine.ones(4).map_(engine.ones(4, dtype=engine.int64), lambda a, b: a), TypeError, "expected"),
    (lambda: engine.ones(4).map_(3, lambda a, b: a), TypeError, "must be Tensor"),
])
def test_apply_and_map_errors(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_pinned_and_stream_memory_are_no_ops_on_the_cpu():
    x = engine.ones(2)
    assert x.pin_memory() is x and not x.is_pinned()
    assert x.record_stream(None) is None


@needs_torch
def test_share_memory_makes_is_shared_true_as_torch():
    for lib in (engine, torch):
        x = lib.ones(2, 3)
        before = x.is_shared()
        assert x.share_memory_() is x
        x.add_(1)
        got = (before, x.is_shared(), x[0].is_shared(), x.detach().is_shared(), x.clone().is_shared(),
               lib.ones(2).is_shared())
        assert got == (False, True, True, True, False, False), lib.__name__


@needs_torch
@pytest.mark.parametrize("shape", [(2, 1, 3), (3, 1, 2, 1), (1, 2, 3, 4), (2, 3, 1, 1), (1, 1, 1), (2, 2, 2)])
def test_dim_order_of_permuted_and_expanded_tensors_matches_torch(shape):
    """Ties (size-1 dims, equal or zero strides) come out in torch's order, and the same ones are ambiguous."""
    import itertools

    def make(lib, perm, how):
        t = lib.ones(*shape).permute(*perm)
        return t.expand(*(2 if n == 1 else n for n in t.shape)) if how == "expand" else \
            t.contiguous() if how == "contiguous" else t

    def order(t, check):
        try:
            return t.dim_order(ambiguity_check=check)
        except RuntimeError as err:
            return str(err)

    for perm in itertools.permutations(range(len(shape))):
        for how in ("view", "contiguous", "expand"):
            for check in (False, True, "formats"):
                ours, theirs = make(engine, perm, how), make(torch, perm, how)
                ours_check = [engine.channels_last, engine.contiguous_format] if check == "formats" else check
                theirs_check = [torch.channels_last, torch.contiguous_format] if check == "formats" else check
                assert order(ours, ours_check) == order(theirs, theirs_check), (perm, how, check)


def test_props_on_cuda():
    cp = cuda_or_skip()
    x = engine.arange(12.0, device="cuda").reshape(3, 4)
    assert not x.is_cpu and x.get_device() == 0 and x.is_shared()
    assert x.stride() == (4, 1) and x.t().stride() == (1, 4)
    s = x[1:, 2:]
    assert s.storage_offset() == 6 and s.data_ptr() - x.data_ptr() == 6 * 4
    assert x.data_ptr() == x.array.data.ptr
    assert x.is_set_to(x.view(3, 4)) and not x.is_set_to(x.clone())
    with pytest.raises(TypeError, match="only implemented on CPU tensors"):
        x.apply_(lambda v: v)
    a = cp.arange(3.0)
    shared = engine.asarray(a)
    a[0] = 7
    assert shared.device.type == "cuda" and shared.tolist() == [7.0, 1.0, 2.0]
    assert engine.asarray(np.arange(3.0), device="cuda").device.type == "cuda"
