"""In-place writes into unfold's overlapping windows, by every path (setitem, in-place ops, detach(), .data), land
in the tensor as torch's do: a window's change is not undone by the windows sharing its elements."""

import numpy as np
import pytest

import engine
from tests.engine.oracle import cuda_or_skip, finite_difference_check, needs_torch, one_line, torch
from tests.engine.second_order import check_matches_finite_differences

WRITES = [
    # the reviewer's cases
    "u.detach()[0] = -1", "u.data[0] = -1", "u.index_fill_(0, L.tensor([0]), -1.)",
    "u.masked_fill_(rows == 0, -1.)", "u[0].fill_(-1)", "u.clamp_(max=1)",
    # more paths: other windows and dims, a detached tensor's ops, index order, ops with a tensor operand
    "u.index_fill_(0, L.tensor([2, 4]), 9.)", "u.index_fill_(1, L.tensor([2]), 9.)", "u.masked_fill_(rows == 3, 5.)",
    "u.data.index_fill_(0, L.tensor([2]), 0.)", "u.t().index_fill_(1, L.tensor([1]), 8.)",
    "u.detach()[[0, 1]] = L.arange(6.).reshape(2, 3) + 10", "u.detach()[[1, 0]] = L.arange(6.).reshape(2, 3) + 10",
    "u.detach()[:, 1] = L.arange(6.) * 10", "u.add_(L.zeros(6, 3).index_fill_(0, L.tensor([0]), 1.))",
    "u.mul_(L.ones(6, 3).index_fill_(0, L.tensor([2]), 5.))", "u.masked_scatter_(rows == 1, L.tensor([7., 8, 9]))",
]


def _rows(L):
    return L.arange(6).reshape(6, 1).expand(6, 3)


@needs_torch
@pytest.mark.parametrize("write", WRITES)
def test_writes_into_overlapping_windows_land_as_torchs(write):
    got = []
    for L in (engine, torch):
        x = L.arange(8.)
        u = x.unfold(0, 3, 1)
        exec(write, {"L": L, "u": u, "rows": _rows(L)})
        got.append((x.tolist(), x._version))
    assert got[0] == got[1]


@needs_torch
@pytest.mark.parametrize("write", ["u.index_fill_(1, L.tensor([0]), -1.)", "u.detach()[:, 0, 2] = 7",
                                   "u.masked_fill_(L.arange(2).reshape(1, 2, 1) == 0, -1.)"])
def test_writes_into_windows_along_an_inner_dim_as_torch(write):
    got = []
    for L in (engine, torch):
        x = L.arange(24.).reshape(4, 6)
        exec(write, {"L": L, "u": x.unfold(1, 3, 2)})
        got.append(x.tolist())
    assert got[0] == got[1]


@needs_torch
@pytest.mark.parametrize("make", ["L.arange(12.).reshape(3, 4).t().detach()", "L.arange(12.)[::2].detach()"])
@pytest.mark.parametrize("write", ["u[1, 0] = -1", "u.index_fill_(0, L.tensor([1]), -1.)", "u.detach()[0] = 5"])
def test_windows_of_a_tensor_that_is_not_contiguous_are_written_as_torch(make, write):
    got = []
    for L in (engine, torch):
        x = eval(make, {"L": L})
        exec(write, {"L": L, "u": x.unfold(0, 2, 1)})
        got.append(x.tolist())
    assert got[0] == got[1]


@needs_torch
def test_an_unchanged_nan_does_not_undo_a_change_of_its_place():
    got = []
    for L in (engine, torch):
        x = L.tensor([1., float("nan"), 2.])
        x.unfold(0, 2, 1).index_fill_(0, L.tensor([0]), 7.)
        got.append(x.tolist())
    assert got[0] == got[1] == [7., 7., 2.]


def test_elements_of_one_place_changed_differently_leave_the_last_in_element_order():
    # torch documents this as undefined (its CPU loop reads each place again: [10, 51, 42, 73, 84]); here each
    # element is computed from the values before the op, and of the ones that changed a place the last one wins
    x = engine.arange(5.)
    x.unfold(0, 2, 1).add_(engine.tensor([[10., 20], [30, 40], [0, 0], [70, 80]]))
    assert x.tolist() == [10, 31, 42, 73, 84]
    x = engine.arange(5.)
    with engine.no_grad():  # not recorded: the same
        x.unfold(0, 2, 1).sub_(engine.tensor([[1., 2], [0, 4], [5, 0], [7, 8]]))
    assert x.tolist() == [-1, -1, -3, -4, -4]


# ---- gradients ------------------------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("write", ["u.clamp_(max=1)", "u.zero_()", "u.fill_(2)", "u.copy_(L.ones(6, 3))",
                                   "u.masked_fill_(u > 4, 0.)"])
def test_gradients_through_a_write_of_the_whole_windows_as_torch(write):
    got = []
    for L in (engine, torch):
        w = L.arange(8., requires_grad=True)
        y = w * 1
        exec(write, {"L": L, "u": y.unfold(0, 3, 1)})
        (y * L.arange(8.)).sum().backward()
        got.append((y.tolist(), w.grad.tolist()))
    assert got[0] == got[1]


def _windows_changed(change):
    """fn(L, F, w): the windows of w * w changed by `change`, then the whole tensor times w (so a second order)."""
    def fn(L, F, w):
        y = w * w
        change(L, y.unfold(0, 3, 1), w)
        return y * w

    return fn


def _mul_one_window(L, u, w):
    u.mul_(L.cat([L.ones(2, 3, dtype=w.dtype), w[:3].reshape(1, 3), L.ones(3, 3, dtype=w.dtype)]))


# torch's CopySlices gives an overwritten element the gradient of the window written last (index_fill_ of window 0
# gives x[1] the gradient of window 1's unchanged x[1]): its gradients differ from its own finite differences here,
# so these are checked against finite differences, first and second order
CHANGES = {
    "index_fill_": lambda L, u, w: u.index_fill_(0, L.tensor([1]), -1.),
    "masked_fill_": lambda L, u, w: u.masked_fill_(L.arange(6).reshape(6, 1).expand(6, 3) == 2, -1.),
    "copy_": lambda L, u, w: u.copy_((w.unfold(0, 3, 1) * 2).sin()),
    "mul_ of one window": _mul_one_window,
    "sigmoid_": lambda L, u, w: u.sigmoid_(),
    "div_": lambda L, u, w: u.div_(w[2] + 3),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_gradients_through_a_write_of_the_whole_windows_match_finite_differences(name):
    finite_difference_check(lambda w: _windows_changed(CHANGES[name])(engine, None, w),
                            [np.random.default_rng(3).standard_normal(8)])


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_second_order_through_a_write_of_the_whole_windows(name):
    check_matches_finite_differences({name: (_windows_changed(CHANGES[name]), [(8,)])}, name)


def test_a_window_saved_before_a_write_of_the_whole_windows_is_an_error():
    y = engine.arange(6., requires_grad=True) * 1
    u = y.unfold(0, 3, 1)
    z = u.sin()  # saves the windows
    u.index_fill_(0, engine.tensor([0]), 0.)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


@pytest.mark.parametrize("write", ["u.index_fill_(0, L.tensor([0]), 3.)", "u[1, 0] = 3", "u.mul_(2)"])
def test_recording_a_write_into_windows_of_a_column_major_result_is_as_into_its_contiguous_copy(write):
    # x.t() * 1 is laid out as the transpose: the write lands, with the gradients, as in its C-ordered copy
    runs = [(engine, False), (engine, True)]
    if torch is not None and write == "u[1, 0] = 3":  # torch leaves the result of overlapping writes undefined
        runs.append((torch, False))
    got = []
    for lib, contiguous in runs:
        x = lib.arange(12., requires_grad=True)
        y = x.reshape(3, 4).t() * 1
        y = y.contiguous() if contiguous else y
        exec(write, {"L": lib, "u": y.unfold(0, 2, 1)})
        (y * lib.arange(12.).reshape(4, 3)).sum().backward()
        got.append((y.tolist(), x.grad.tolist()))
    assert all(g == got[0] for g in got)


# ---- what the engine still refuses ----------------------------------------------------------------------------------
def test_recording_a_write_into_detached_windows_is_refused():
    w = engine.ones(6, 3, requires_grad=True)
    u = engine.arange(8.).unfold(0, 3, 1).detach()
    one_line(lambda: u.copy_(w * 2), RuntimeError, "windows of a detached unfold")


# ---- on the GPU -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("write", WRITES)
def test_writes_into_overlapping_windows_on_cuda_as_on_the_cpu(write):
    cuda_or_skip()
    got = []
    for device in ("cpu", "cuda"):
        x = engine.arange(8., device=device)
        L = _OnDevice(device)
        exec(write, {"L": L, "u": x.unfold(0, 3, 1), "rows": _rows(L)})
        got.append(x.tolist())
    assert got[0] == got[1]


def test_gradients_through_windows_written_on_cuda_as_on_the_cpu():
    cuda_or_skip()
    got = []
    for device in ("cpu", "cuda"):
        w = engine.arange(8., requires_grad=True, device=device)
        y = w * w
        y.unfold(0, 3, 1).index_fill_(0, engine.tensor([1], device=device), -1.)
        (y * w).sum().backward()
        got.append((y.tolist(), w.grad.tolist()))
    assert got[0] == got[1]


class _OnDevice:
    """engine with tensor-making functions that make them on one device, so a case written for L runs there."""

    def __init__(self, device: str) -> None:
        self._device = device

    def __getattr__(self, name):
        fn = getattr(engine, name)
        if name in ("tensor", "arange", "zeros", "ones"):
            return lambda *args, **kwargs: fn(*args, device=self._device, **kwargs)
        return fn


def test_a_place_indexed_twice_takes_the_last_value_whatever_the_array_library():
    # rows 0 and 1 of the windows share elements 1 and 2: the last row written wins, as numpy assigns (CuPy's
    # assignment does not promise which of two values lands, and the GPU run differed)
    x = engine.arange(8.)
    x.unfold(0, 3, 1).detach()[[0, 1]] = engine.arange(6.).reshape(2, 3) + 10
    assert x.tolist() == [10.0, 13.0, 14.0, 15.0, 4.0, 5.0, 6.0, 7.0]
