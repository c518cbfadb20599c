"""`Tensor.data` as PyTorch code uses it: the same memory as a Tensor outside autograd."""

import numpy as np
import pytest

import engine
import engine.nn as nn
from tests.engine.oracle import needs_torch, torch


def test_data_is_a_tensor_sharing_memory_outside_autograd():
    w = engine.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = w.data
    assert isinstance(d, engine.Tensor) and not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert d.shape == w.shape and d.dtype is w.dtype and d.array is w.array
    d.mul_(0.5)  # no "leaf Variable that requires grad" error: .data does not require grad
    assert w.tolist() == [0.5, 1.0, 1.5] and w.requires_grad and w._version == 0


def test_data_of_a_parameter_is_a_plain_tensor():
    p = nn.Linear(3, 2).weight
    assert type(p.data) is engine.Tensor and isinstance(p, nn.Parameter)


@needs_torch
def test_writes_through_data_are_unseen_by_autograd_like_torch():
    """A write through .data between forward and backward is not an in-place error: the gradient uses the new
    values, as PyTorch's does (the documented hazard of .data, unlike detach())."""
    grads = {}
    for lib in (engine, torch):
        w = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        y = (w * w).sum()
        w.data.mul_(10)
        y.backward()
        grads[lib.__name__] = (w.grad.tolist(), w._version)
    assert grads["engine"] == grads["torch"]
    d = engine.tensor([1.0, 2.0], requires_grad=True)
    y = (d * d).sum()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        d.detach().mul_(2)  # detach() shares the version counter, so this one is caught
        y.backward()


@needs_torch
def test_the_classic_weight_init_idioms_match_torch():
    """`m.weight.data.normal_(...)`, `m.bias.data.fill_(0)`, `p.grad.data.zero_()`, `.data.copy_(...)`"""
    shapes = {}
    for lib, nn_lib in ((engine, nn), (torch, torch.nn)):
        lib.manual_seed(0)
        conv, lin = nn_lib.Conv2d(1, 4, 3), nn_lib.Linear(4, 2)
        conv.weight.data.normal_(0.0, 0.02)
        conv.bias.data.fill_(0)
        lin.weight.data.copy_(lib.ones(2, 4))
        lin.bias.data.zero_()
        lin.weight.data.clamp_(-0.5, 0.5)
        out = lin(conv(lib.ones(1, 1, 3, 3)).flatten(1)).sum()
        out.backward()
        lin.weight.grad.data.zero_()
        shapes[lib.__name__] = (tuple(conv.weight.shape), float(conv.weight.data.std()) < 0.1,
                                conv.bias.tolist(), lin.weight.tolist(), lin.bias.tolist(),
                                lin.weight.grad.tolist(), conv.weight.requires_grad)
    assert shapes["engine"] == shapes["torch"]


@needs_torch
def test_setting_data_swaps_the_memory_like_torch():
    seen = {}
    for lib, nn_lib in ((engine, nn), (torch, torch.nn)):
        p = nn_lib.Parameter(lib.zeros(2, 3))
        p.data = lib.ones(4)  # any shape, as in PyTorch
        seen[lib.__name__] = (tuple(p.shape), p.tolist(), p.requires_grad, p.is_leaf)
    assert seen["engine"] == seen["torch"]


def test_setting_data_to_an_array_or_something_else():
    t = engine.zeros(2)
    t.data = np.arange(3, dtype=np.float32)
    assert t.tolist() == [0.0, 1.0, 2.0] and t.dtype is engine.float32
    with pytest.raises(TypeError, match=r"Tensor\.data must be set to a Tensor or an array, not list"):
        t.data = [1.0, 2.0]
    assert t.tolist() == [0.0, 1.0, 2.0]  # unchanged


def test_array_is_the_backing_array():
    t = engine.tensor([[1.0, 2.0]])
    assert isinstance(t.array, np.ndarray) and t.array.shape == (1, 2)
    t.array[0, 1] = 5.0
    assert t.tolist() == [[1.0, 5.0]]


@needs_torch
def test_a_write_through_detach_leaves_the_source_history_alone_like_torch():
    # detach() was marked a view of its source, so a write through it was recorded on the source's graph
    # (h.grad_fn became a write_view) and on a leaf raised a "view of a leaf" error PyTorch does not raise
    seen = {}
    for lib in (engine, torch):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        h = w * 2
        h.detach().zero_()
        w.detach().add_(1)
        seen[lib.__name__] = (h.grad_fn.name(), h.tolist(), w.tolist(), w._version)
    assert seen["engine"] == seen["torch"]
