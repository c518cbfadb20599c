"""Indexing, setitem, gather, scatter_add, index_select and masked_fill against NumPy, finite differences
and PyTorch."""

import numpy as np
import pytest

import engine
from engine.backend import cupy_module
from tests.engine.oracle import check_grads, finite_difference_check, needs_torch, torch

SHAPE = (4, 3, 2)
MASK0 = np.array([True, False, True, True])
MASK01 = np.arange(12).reshape(4, 3) % 5 < 2
_ = slice(None)

# Index forms on a (4, 3, 2) tensor. NumPy gives the same result for all of these.
SAME_AS_NUMPY = [
    1, -1, (1, 2), (-1, _, 0), (3, 2, 1), (-4, -3, -2),
    slice(1, 3), slice(None, None, 2), slice(-3, None), (_, slice(1, None, 2)), slice(5, 10), slice(-10, 2),
    (_, _, slice(1, 0)),
    None, (None, 1), (Ellipsis, 1), (1, Ellipsis, None), Ellipsis, (Ellipsis, None, _, 0),
    (None, Ellipsis, None),
    [0, 2, 2], [-1, 0], [], np.array([[0, 1], [3, 3]]),
    (np.array([0, 1]), np.array([1, 2])),  # pairs
    (np.array([[0], [3]]), np.array([1, 2, 0])),  # broadcast to (2, 3)
    (np.array([[0], [1]]), _, np.array([0, 1])),  # separated by a slice: the broadcast dims go first
    (_, [0, 2], [1, 0]),  # adjacent, not first: they stay in place
    (np.array([0, 1]), None, np.array([1, 0])),
    (Ellipsis, [1, 1, 0]),
    (_, np.array([2, 0]), slice(1, None)),
    MASK0, (MASK0, 1), (_, np.array([True, False, True])), MASK01, (MASK01, 0),
    (Ellipsis, np.array([False, True])),
    (MASK0, [0, 2, 1]),  # a mask's positions broadcast with an integer array
    np.array([False, False, False, False]),
]
# Forms where PyTorch differs from NumPy: ints are applied before arrays; bools index a new dim.
TORCH_ONLY = [
    (0, _, [0, 1]),  # torch (3, 2), numpy (2, 3)
    (1, [2, 0, 2], _),
    (_, 1, np.array([[1], [0]])),
    True, False, (True, [0, 1]), (1, True), (np.array(2), _, [1]),
]


def _x() -> np.ndarray:
    return np.random.default_rng(7).standard_normal(SHAPE)


def _label(index) -> str:
    return repr(index).replace("slice(None, None, None)", ":").replace("array", "a")[:60]


@pytest.mark.parametrize("index", SAME_AS_NUMPY, ids=_label)
def test_getitem_matches_numpy(index):
    x = _x()
    out = engine.tensor(x)[index]
    expected = x[index]
    assert tuple(out.shape) == expected.shape
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("index", SAME_AS_NUMPY + TORCH_ONLY, ids=_label)
def test_getitem_gradients(index):
    check_grads(lambda t: t[index], [_x()])


@pytest.mark.parametrize("index", TORCH_ONLY, ids=_label)
@needs_torch
def test_getitem_shape_follows_torch_where_numpy_differs(index):
    x = _x()
    assert tuple(engine.tensor(x)[index].shape) == tuple(torch.tensor(x)[index].shape)


@pytest.mark.parametrize("spec", [
    np.array([0, 3, 3, -1]),
    np.array([[1, 0], [2, 2]]),
    MASK0,
    np.array(2),  # a 0-d integer tensor indexes like an int
    np.array(True),  # a 0-d bool tensor like True
], ids=["ints", "2d", "mask", "0d-int", "0d-bool"])
def test_tensor_indices(spec):
    check_grads(lambda t, i: t[i], [_x(), spec])
    check_grads(lambda t, i: t[:, :, 1][..., None][i], [_x(), spec])


def test_mixed_tensor_indices_broadcast():
    rows, cols = np.array([[0], [3], [0]]), np.array([1, 1])
    check_grads(lambda t, r, c: t[r, c], [_x(), rows, cols])
    check_grads(lambda t, r, c: t[r, 1:, c], [_x(), rows, cols])


def test_repeated_indices_accumulate_gradient():
    x = engine.zeros(4, requires_grad=True)
    x[[0, 2, 0, 0, 3]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 0, 1, 1])
    w = engine.zeros(3, 2, requires_grad=True)
    (w[engine.tensor([[1, 1], [1, 0]])] * engine.tensor([[[1.0, 2.0]]])).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[1, 2], [3, 6], [0, 0]])


def test_basic_indexing_gives_a_view():
    x = engine.zeros(3, 4)
    row = x[1]
    row[2] = 5.0  # writes through the view into x
    x[0, 1:3][1] = 7.0
    x[2, 3].fill_(9.0)  # even a 0-d view writes through
    np.testing.assert_array_equal(x.numpy(), [[0, 0, 7, 0], [0, 0, 5, 0], [0, 0, 0, 9]])
    assert row._version == x._version == 3
    copy = x[[1]]  # advanced indexing copies
    copy[0, 0] = 1.0
    assert x[1, 0].item() == 0.0


def test_view_of_a_tensor_requiring_grad_is_not_changed_in_place():
    x = engine.zeros(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="view"):
        x[1][0] = 1.0


# ---- setitem -----------------------------------------------------------------------------------
def _assign_pieces(x, v):
    y = x.clone()
    y[y > 0.5] = 0.0
    y[1:, 0] = v
    return y * 2


def test_setitem_gradients_match_torch():
    x = np.random.default_rng(2).uniform(-1, 1, (3, 4))
    x[np.abs(x - 0.5) < 0.05] = 0.0  # keep the mask away from the threshold for finite differences
    check_grads(_assign_pieces, [x, (2,)])


@pytest.mark.parametrize("index,value_shape", [
    ((slice(None), 1), ()),  # a 0-d value broadcast over a column
    ((slice(None), 1), (1, 3)),  # leading 1-dims are dropped, as in torch
    ([0, 2], (4,)),
    (np.array([[2], [0]]), (2, 1, 4)),
    ((Ellipsis, np.array([True, False, True, False])), (3, 1)),
    ((0, slice(1, None)), (3,)),
])
def test_setitem_forms(index, value_shape):
    def fn(x, v):
        y = x * 1.0
        y[index] = v
        return y

    check_grads(fn, [(3, 4), value_shape])


def test_setitem_value_gets_gradient_at_every_listed_position():
    # x[[0, 0]] = v: one write wins, but torch gives every listed position's gradient to v
    def fn(x, v):
        y = x * 1.0
        y[[0, 0]] = v
        return y

    check_grads(fn, [(2, 3), (2, 3)], wrt=[0])
    x, v = engine.zeros(2, 3, requires_grad=True), engine.zeros(2, 3, requires_grad=True)
    y = x * 1.0
    y[[0, 0]] = v
    y.sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 0], [1, 1, 1]])


def test_setitem_casts_to_the_tensors_dtype():
    x = engine.zeros(2, 3, dtype=engine.int64)
    x[0] = 2.7
    x[1, 1:] = engine.tensor([1.9, -3.2])
    np.testing.assert_array_equal(x.numpy(), [[2, 2, 2], [0, 1, -3]])
    assert x.dtype is engine.int64
    y = engine.zeros(3, requires_grad=True) * 1.0
    v = engine.tensor(2.0, dtype=engine.float64, requires_grad=True)
    y[1:] = v
    assert y.dtype is engine.float32
    (y * 3).sum().backward()
    assert v.grad.dtype is engine.float64 and v.grad.item() == 6.0


def test_setitem_accepts_arrays_and_numbers():
    x = engine.zeros(2, 3)
    x[0] = np.array([1.0, 2.0, 3.0])
    x[1, [0, 2]] = 4
    np.testing.assert_array_equal(x.numpy(), [[1, 2, 3], [4, 0, 4]])
    with pytest.raises(TypeError, match="can't assign a str"):
        x[0] = "a"


def test_setitem_makes_a_tensor_that_needed_no_grad_require_it():
    x = engine.zeros(3)
    v = engine.tensor(2.0, requires_grad=True)
    x[1] = v
    assert x.requires_grad and x.grad_fn is not None
    (x * engine.tensor([1.0, 5.0, 1.0])).sum().backward()
    assert v.grad.item() == 5.0


def test_setitem_on_a_leaf_requiring_grad_raises():
    x = engine.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x[0] = 1.0
    with engine.no_grad():
        x[0] = 1.0
    assert x[0].item() == 1.0


@pytest.mark.parametrize("lib", ["engine", "torch"])
def test_changing_a_tensor_saved_for_backward_raises_at_backward(lib):
    if lib == "torch" and torch is None:
        pytest.skip("PyTorch is not installed")
    mod = engine if lib == "engine" else torch
    x = mod.zeros(3, requires_grad=True)
    y = x.sigmoid()  # sigmoid saves its output
    y[0] = 1.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_setitem_shape_mismatch_names_the_shapes():
    x = engine.zeros(3, 4)
    with pytest.raises(ValueError, match=r"setitem.*\(2,\)"):
        x[0] = engine.ones(2)


# ---- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("index,error,message", [
    (4, IndexError, "index 4 is out of bounds for dimension 0 with size 4"),
    (-5, IndexError, "index -5 is out of bounds for dimension 0 with size 4"),
    ((0, 3), IndexError, "index 3 is out of bounds for dimension 1 with size 3"),
    ((_, [0, 3]), IndexError, "index 3 is out of bounds for dimension 1 with size 3"),
    ((_, _, np.array([[0], [-3]])), IndexError, "index -3 is out of bounds for dimension 2 with size 2"),
    (slice(None, None, -1), ValueError, "step must be greater than zero"),
    (slice(None, None, 0), ValueError, "slice step cannot be zero"),
    (1.0, IndexError, "only integers, slices"),
    ("a", IndexError, "only integers, slices"),
    ((0, 0, 0, 0), IndexError, "too many indices for tensor of dimension 3"),
    ((Ellipsis, 0, Ellipsis), IndexError, "single ellipsis"),
    (np.array([True, False]), IndexError, r"mask \[2\] does not match the shape of the indexed tensor \[4, "),
    ((_, np.ones((3, 1), bool)), IndexError, r"mask \[3, 1\] does not match .* at dimension 1"),
    (np.array([0.5]), IndexError, "integer or bool"),
    ([[0, 1], [1, 0]], IndexError, "ambiguous"),
])
def test_bad_indices(index, error, message):
    x = engine.tensor(_x())
    with pytest.raises(error, match=message):
        x[index]
    with pytest.raises(error, match=message):
        x[index] = 0.0


def test_float_tensor_index_raises():
    x = engine.tensor(_x())
    with pytest.raises(IndexError, match="tensors used as indices must be long, int or bool"):
        x[engine.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match="tensors used as indices must be long, int or bool"):
        x[engine.tensor([])]


def test_index_into_a_0d_tensor_raises():
    with pytest.raises(IndexError, match="0-dim"):
        engine.tensor(3.0)[0]
    assert engine.tensor(3.0)[None].shape == (1,)
    assert engine.tensor(3.0)[...].item() == 3.0


# ---- gather, scatter_add, index_select --------------------------------------------------------
GATHER = [
    ((3, 4), 1, np.array([[0, 0], [3, 1], [2, 2]])),
    ((3, 4), 0, np.array([[2, 0, 1, 1], [0, 0, 0, 2]])),
    ((3, 4), -1, np.array([[1], [0]])),  # smaller than the input in the other dimension too
    ((2, 3, 2), 1, np.array([[[2, 0], [1, 1], [0, 2], [2, 2]]])),  # longer than the input along dim
    ((5,), 0, np.array([4, 0, 4])),
    ((), 0, np.array(0)),
]


@pytest.mark.parametrize("shape,dim,index", GATHER)
def test_gather(shape, dim, index):
    check_grads(lambda x, i: x.gather(dim, i), [shape, index])
    check_grads(lambda x, i: engine.gather(x, dim, i), [shape, index],
                torch_fn=lambda x, i: torch.gather(x, dim, i))


@pytest.mark.parametrize("shape,dim,index", GATHER[:5])
def test_scatter_add(shape, dim, index):
    target = list(shape)
    target[dim] = 6  # room for every index above
    check_grads(lambda x, i, s: x.scatter_add(dim, i, s), [tuple(target), index, index.shape])


def test_scatter_add_with_a_larger_src_gives_unused_entries_no_gradient():
    index = np.array([[0], [3], [3]])
    # torch refuses this backward ("invalid gradient"), so only finite differences here
    inputs = [np.zeros((3, 4)), index, np.ones((3, 2))]
    finite_difference_check(lambda x, i, s: x.scatter_add(1, i, s), inputs)
    x, s = engine.zeros(3, 4, requires_grad=True), engine.ones(3, 2, requires_grad=True)
    out = x.scatter_add(1, engine.tensor(index), s)
    np.testing.assert_array_equal(out.detach().numpy(), [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]])
    (out * 2).sum().backward()
    np.testing.assert_array_equal(s.grad.numpy(), [[2, 0], [2, 0], [2, 0]])


def test_scatter_add_in_place_method_adds_up_repeats():
    x = engine.zeros(2, 3)
    x.scatter_add_(1, engine.tensor([[0, 0, 2], [1, 1, 1]]), engine.ones(2, 3))
    np.testing.assert_array_equal(x.numpy(), [[2, 0, 1], [0, 3, 0]])


@pytest.mark.parametrize("shape,dim,index", [
    ((3, 4), 1, np.array([0, 3, 3, 1])),
    ((3, 4), 0, np.array([2])),
    ((3, 4), -1, np.array(2)),  # a 0-d index keeps the dimension, with size 1
    ((2, 3, 2), 2, np.array([1, 1, 1], dtype=np.int32)),
    ((3, 4), 0, np.array([], dtype=np.int64)),
    ((), 0, np.array([0])),
])
def test_index_select(shape, dim, index):
    check_grads(lambda x, i: x.index_select(dim, i), [shape, index])


I64 = engine.int64
BOOL = engine.bool


@pytest.mark.parametrize("call,error,message", [
    (lambda x: x.gather(1, engine.tensor([[0], [4]])), IndexError,
     "index 4 is out of bounds for dimension 1 with size 4"),
    (lambda x: x.gather(1, engine.tensor([[0], [-1]])), RuntimeError, "index -1 is out of bounds"),
    (lambda x: x.gather(1, engine.tensor([0, 1])), ValueError, r"gather: index \(2,\) must have as many dim"),
    (lambda x: x.gather(1, engine.zeros(4, 1, dtype=I64)), ValueError, r"no larger than input \(3, 4\)"),
    (lambda x: x.gather(2, engine.zeros(3, 1, dtype=I64)), IndexError, "Dimension out of range"),
    (lambda x: x.gather(1, engine.zeros(3, 1)), RuntimeError, "Expected dtype int32/int64 for index"),
    (lambda x: x.scatter_add(1, engine.tensor([[0], [1]]), engine.ones(1, 2)), ValueError,
     r"nor than src \(1, 2\)"),
    (lambda x: x.scatter_add(1, engine.tensor([[0]]), engine.ones(1, 1, dtype=engine.float64)), RuntimeError,
     "self.dtype to be equal to src.dtype"),
    (lambda x: x.scatter_add(0, engine.tensor([[3]]), engine.ones(1, 1)), IndexError, "index 3 is out"),
    (lambda x: x.index_select(1, engine.tensor([[1]])), IndexError, "Index is supposed to be a vector"),
    (lambda x: x.index_select(1, engine.tensor([4])), IndexError, "index 4 is out of bounds for dimension 1"),
    (lambda x: x.index_select(0, engine.tensor([1.0])), RuntimeError, "Expected dtype int32/int64"),
    (lambda x: x.masked_fill(engine.ones(4), 1.0), RuntimeError, "only supports boolean masks"),
    (lambda x: x.masked_fill(engine.ones(4, dtype=BOOL), engine.ones(1)), RuntimeError, "0-dimensional"),
    (lambda x: x.masked_fill(engine.ones(5, dtype=BOOL), 1.0), ValueError, r"masked_fill.*\(3, 4\)"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_gather_family_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(engine.zeros(3, 4))


# ---- masked_fill -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,mask", [
    ((3, 4), np.array([True, False, True, False])),
    ((3, 4), np.arange(12).reshape(3, 4) % 5 < 2),
    ((4,), np.array([[True, False, False, True], [False] * 4])),  # the mask broadcasts x to (2, 4)
])
def test_masked_fill(shape, mask):
    check_grads(lambda x, m: x.masked_fill(m, 2.5), [shape, mask])
    check_grads(lambda x, m, v: x.masked_fill(m, v), [shape, mask, ()])  # a 0-d value tensor gets gradient


def test_masked_fill_keeps_the_tensors_dtype():
    x = engine.arange(4).masked_fill(engine.tensor([True, False, True, False]), 2.7)
    assert x.dtype is engine.int64
    np.testing.assert_array_equal(x.numpy(), [2, 1, 2, 3])
    y = engine.zeros(2).masked_fill(engine.tensor([True, False]), engine.tensor(1.5, dtype=engine.float64))
    assert y.dtype is engine.float32


def test_masked_fill_in_place_method():
    x = engine.zeros(2, 2)
    x.masked_fill_(engine.tensor([[True, False], [False, True]]), -1.0)
    np.testing.assert_array_equal(x.numpy(), [[-1, 0], [0, -1]])


# ---- GPU ----------------------------------------------------------------------------------------
def _cuda():
    cp = cupy_module()
    try:
        if cp is not None and cp.cuda.runtime.getDeviceCount() > 0:
            return cp
    except Exception:
        pass
    pytest.skip("needs CuPy and a CUDA GPU")


@pytest.mark.gpu
def test_gpu_indexing_matches_cpu():
    _cuda()
    x = _x()
    for index in [(0, _, [0, 1]), (_, [2, 0, 2]), MASK01, (1, slice(None, None, 2))]:
        cpu, gpu = engine.tensor(x, requires_grad=True), engine.tensor(x, device="cuda", requires_grad=True)
        r = np.random.default_rng(0).standard_normal(cpu[index].shape)
        (cpu[index] * engine.tensor(r)).sum().backward()
        (gpu[index] * engine.tensor(r, device="cuda")).sum().backward()
        np.testing.assert_allclose(gpu[index].cpu().detach().numpy(), cpu[index].detach().numpy())
        np.testing.assert_allclose(gpu.grad.cpu().numpy(), cpu.grad.numpy())
    i = engine.tensor([[0, 0], [1, 0]], device="cuda")
    g = engine.tensor(x[:2, :, 0], device="cuda", requires_grad=True)
    g.gather(1, i).sum().backward()
    np.testing.assert_array_equal(g.grad.cpu().numpy(), [[2, 0, 0], [1, 1, 0]])
    m = engine.zeros(3, device="cuda").masked_fill(engine.tensor([True, False, True], device="cuda"), 2.0)
    np.testing.assert_array_equal(m.cpu().numpy(), [2, 0, 2])
    s = engine.zeros(2, 3, device="cuda")
    s.scatter_add_(1, engine.tensor([[0, 0, 2], [1, 1, 1]], device="cuda"), engine.ones(2, 3, device="cuda"))
    s[0, [1, 1]] = 5.0
    s[1] = np.array([7.0, 8.0, 9.0])
    np.testing.assert_array_equal(s.cpu().numpy(), [[2, 5, 1], [7, 8, 9]])
    picked = s.index_select(1, engine.tensor([2, 2], device="cuda"))
    np.testing.assert_array_equal(picked.cpu().numpy(), [[1, 1], [9, 9]])


@pytest.mark.gpu
def test_index_on_another_device_raises():
    _cuda()
    x = engine.zeros(3, device="cuda")
    with pytest.raises(RuntimeError, match="index tensor is on cpu but the tensor is on cuda:0"):
        x[engine.tensor([0, 1])]
    with pytest.raises(RuntimeError, match="on cuda:0 but the tensor is on cpu"):
        engine.zeros(3)[engine.tensor([0, 1], device="cuda")]
    assert x[np.array([0, 2])].shape == (2,)  # host arrays and lists may index a GPU tensor
    assert x[[0, 2]].shape == (2,)
