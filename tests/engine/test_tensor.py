"""The Tensor API a PyTorch user reaches for: metadata, conversions, hooks, in-place ops and repr."""

import numpy as np
import pytest

import engine
from engine.backend import cupy_module
from tests.engine.oracle import needs_torch, torch


# ---- metadata -------------------------------------------------------------------------------------
def test_metadata_of_a_fresh_leaf():
    x = engine.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.dim() == 2
    assert x.dtype is engine.float32 and x.device == "cpu" and not x.is_cuda
    assert x.requires_grad and x.grad is None and x.grad_fn is None and x.is_leaf
    assert x.numel() == 6 and len(x) == 2
    assert x.size() == (2, 3) and x.size(0) == 2 and x.size(1) == 3 and x.size(-1) == 3 and x.size(-2) == 2


def test_results_of_ops_are_not_leaves():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert not y.is_leaf and y.requires_grad and y.grad_fn.name() == "MulBackward0"
    c = engine.tensor([1.0, 2.0]) * 2
    assert c.is_leaf and not c.requires_grad and c.grad_fn is None


@pytest.mark.parametrize("dim", [2, -3, 10])
def test_size_out_of_range_names_the_dimension(dim):
    with pytest.raises(IndexError, match=f"dimension {dim} is out of range for a 2-d tensor"):
        engine.zeros(2, 3).size(dim)


def test_zero_dim_tensor_has_no_length():
    with pytest.raises(TypeError, match="0-d"):
        len(engine.tensor(1.0))


# ---- conversions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("data,value,kind", [(2.5, 2.5, float), ([[7]], 7, int), (True, True, bool),
                                             ([-1.25], -1.25, float)])
def test_item_gives_a_python_number(data, value, kind):
    v = engine.tensor(data).item()
    assert v == value and type(v) is kind


def test_item_of_several_elements_is_an_error():
    with pytest.raises(RuntimeError, match="a Tensor with 3 elements cannot be converted to Scalar"):
        engine.tensor([1.0, 2.0, 3.0]).item()


@needs_torch
@pytest.mark.parametrize("data", [[[1.5, 2.0], [3.0, 4.0]], [1, 2, 3], 2.0, [True, False], [[]]], ids=repr)
def test_tolist_matches_torch(data):
    ours, theirs = engine.tensor(data).tolist(), torch.tensor(data).tolist()
    assert ours == theirs and type(ours) is type(theirs)


def test_numpy_shares_memory_both_ways():
    t = engine.tensor([1.0, 2.0])
    a = t.numpy()
    a[0] = 9.0
    assert t.tolist() == [9.0, 2.0]
    t.add_(1)
    assert a.tolist() == [10.0, 3.0]


def test_numpy_of_a_tensor_that_requires_grad_is_an_error():
    x = engine.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"requires grad. Use tensor.detach\(\).numpy\(\)"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0]


def test_np_asarray_reads_the_tensor():
    t = engine.tensor([[1, 2], [3, 4]])
    a = np.asarray(t)
    assert a.dtype == np.int64 and a.tolist() == [[1, 2], [3, 4]]
    assert np.asarray(t, dtype=np.float32).dtype == np.float32


def test_np_array_copies_while_np_asarray_shares():
    # regression: __array__ ignored copy=True, so np.array(t) aliased the tensor
    t = engine.tensor([1.0, 2.0])
    np.array(t)[0] = 99.0
    assert t.tolist() == [1.0, 2.0]
    np.asarray(t)[0] = 7.0
    assert t.tolist() == [7.0, 2.0]


def test_python_number_conversions():
    assert float(engine.tensor([2.5])) == 2.5 and int(engine.tensor(3)) == 3
    assert bool(engine.tensor([1.0])) and not bool(engine.tensor(0))
    assert [10, 20, 30][engine.tensor(1)] == 20
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(engine.tensor([1.0, 2.0]))


# ---- detach, clone, requires_grad_ ------------------------------------------------------------
def test_detach_shares_data_and_drops_the_graph():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.numpy(), y.detach().numpy())
    with engine.no_grad():
        y.add_(1)
    assert d.tolist() == [4.0, 7.0], "detach() is a view, not a copy"
    assert d._version == y._version, "a detached tensor shares the version counter, as in PyTorch"


def test_clone_copies_and_is_differentiable():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert c.grad_fn.name() == "CloneBackward0" and not c.is_leaf
    assert not np.shares_memory(c.detach().numpy(), x.detach().numpy())
    (c * c).backward(engine.ones(2))
    assert x.grad.tolist() == [2.0, 4.0]
    plain = engine.tensor([5.0])
    assert not plain.clone().requires_grad


def test_requires_grad_underscore():
    t = engine.tensor([1.0])
    assert t.requires_grad_() is t and t.requires_grad
    t.requires_grad_(False)
    assert not t.requires_grad
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
        engine.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf variables"):
        (engine.tensor([1.0], requires_grad=True) * 2).requires_grad_(False)


# ---- retain_grad and hooks ------------------------------------------------------------------------
@needs_torch
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_retain_grad_keeps_the_gradient_of_a_non_leaf():
    for lib in (engine, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3
        z = x * 5
        y.retain_grad()
        (y * y + z).backward(lib.ones(2))
        assert y.retains_grad and y.grad.tolist() == [6.0, 12.0], lib.__name__
        assert z.grad is None, f"{lib.__name__}: non-leaves drop their gradient unless retained"
        assert x.grad.tolist() == [23.0, 41.0]


def test_retain_grad_needs_requires_grad():
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        engine.tensor([1.0]).retain_grad()


@needs_torch
def test_hooks_on_leaf_and_non_leaf_can_replace_the_gradient():
    results = {}
    for lib in (engine, torch):
        seen = []
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        x.register_hook(lambda g, seen=seen: seen.append(("x", g.tolist())))  # None: keeps the gradient
        y = x * x
        y.register_hook(lambda g: g * 10)
        y.register_hook(lambda g, seen=seen: seen.append(("y", g.tolist())))  # sees the replaced gradient
        (y * 2).backward(lib.ones(2))
        results[lib.__name__] = seen, x.grad.tolist()
    assert results["engine"] == results["torch"] == ([("y", [20.0, 20.0]), ("x", [40.0, 80.0])], [40.0, 80.0])


def test_removed_hooks_no_longer_run():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    h1 = x.register_hook(lambda g: g * 100)
    y = x * 1
    h2 = y.register_hook(lambda g: g * 100)
    h1.remove()
    h2.remove()
    h2.remove()  # removing twice is harmless
    (y * 1).backward(engine.ones(2))
    assert x.grad.tolist() == [1.0, 1.0]


def test_register_hook_needs_requires_grad():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        engine.tensor([1.0]).register_hook(lambda g: g)


def test_a_hook_returning_its_own_tensor_is_not_mutated_by_accumulation():
    # regression: the returned array was stored as .grad without a copy, then accumulated into in place
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    kept = engine.tensor([5.0, 5.0])
    x.register_hook(lambda g: kept)
    (x * 1).backward(engine.ones(2))
    (x * 1).backward(engine.ones(2))
    assert x.grad.tolist() == [10.0, 10.0] and kept.tolist() == [5.0, 5.0]


def test_the_gradient_argument_is_not_mutated_by_accumulation():
    # regression: backward(g) through an add stored g's array as x.grad; the next backward added into it
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    g = engine.tensor([1.0, 1.0])
    (x + 1).backward(g)
    (x + 1).backward(g)
    assert x.grad.tolist() == [2.0, 2.0] and g.tolist() == [1.0, 1.0]
    leaf = engine.tensor([3.0], requires_grad=True)
    g1 = engine.tensor([1.0])
    leaf.backward(g1)
    leaf.backward(g1)
    assert leaf.grad.tolist() == [2.0] and g1.tolist() == [1.0]


# ---- backward arguments ---------------------------------------------------------------------------
def test_backward_with_a_gradient_and_retain_graph():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.backward(gradient=engine.tensor([1.0, 0.5]), retain_graph=True)
    assert x.grad.tolist() == [2.0, 2.0]
    y.backward(engine.tensor([1.0, 1.0]))
    assert x.grad.tolist() == [4.0, 6.0]


@needs_torch
def test_backward_inputs_limits_which_leaves_get_gradients():
    for lib in (engine, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([3.0, 4.0], requires_grad=True)
        (x * w + x).backward(lib.ones(2), inputs=[x])
        assert x.grad.tolist() == [4.0, 5.0] and w.grad is None, lib.__name__


def test_backward_gradient_of_the_wrong_shape():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\) but the output has shape \(2,\)"):
        (x * 2).backward(engine.ones(3))


def test_scalar_backward_needs_no_gradient():
    x = engine.tensor(3.0, requires_grad=True)
    (x * x).backward()
    assert x.grad.item() == 6.0
    w = engine.tensor([2.0], requires_grad=True)
    (w * 4).backward()  # one element counts as a scalar
    assert w.grad.tolist() == [4.0]


def test_backward_with_sum_matches_torch_style_training_step():
    x = engine.tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.tolist() == [[2.0, -4.0], [6.0, 1.0]]


# ---- in-place ops and version counters ------------------------------------------------------------
def test_inplace_ops_bump_the_version_and_keep_identity():
    t = engine.tensor([1.0, 2.0])
    assert t._version == 0
    same = t
    t += 1
    assert t is same and t._version == 1 and t.tolist() == [2.0, 3.0]
    t.mul_(2)
    t.sub_(engine.tensor([1.0, 1.0]))
    assert t._version == 3 and t.tolist() == [3.0, 5.0]
    assert t.zero_() is t and t._version == 4 and t.tolist() == [0.0, 0.0]
    t.fill_(7)
    assert t.tolist() == [7.0, 7.0] and t._version == 5


@needs_torch
def test_version_counter_matches_torch():
    versions = {}
    for lib in (engine, torch):
        t = lib.zeros(3)
        v = [t._version]
        t.add_(1)
        v.append(t._version)
        t.mul_(3)
        t.zero_()
        v.append(t._version)
        d = t.detach()
        d.add_(1)
        v.append(t._version)
        versions[lib.__name__] = v
    assert versions["engine"] == versions["torch"]


def test_inplace_on_a_leaf_that_requires_grad_is_an_error():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    for change in (lambda: x.add_(1), lambda: x.zero_(), lambda: x.mul_(2), lambda: x.__iadd__(1)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an"):
            change()
    assert x.tolist() == [1.0, 2.0] and x._version == 0


def test_inplace_on_a_leaf_is_allowed_under_no_grad():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    with engine.no_grad():
        x.mul_(2)
        x -= 1
    assert x.tolist() == [1.0, 3.0] and x.requires_grad and x.is_leaf and x._version == 2


@needs_torch
def test_inplace_on_a_non_leaf_is_differentiable():
    for lib in (engine, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 1
        y.mul_(3)
        y.add_(x)
        assert y.grad_fn.name() == "AddBackward0", lib.__name__
        (y * y).backward(lib.ones(2))
        assert x.grad.tolist() == [32.0, 64.0], lib.__name__


@needs_torch
def test_inplace_errors_match_torch():
    for lib in (engine, torch):
        cast = r"result type .*(float32|Float).* can't be cast to the desired output type .*(int64|Long)"
        with pytest.raises(RuntimeError, match=cast):
            lib.tensor([1, 2]).add_(1.5)
        with pytest.raises(RuntimeError, match=r"output with shape .*2.* doesn't match the broadcast shape"):
            lib.zeros(2).add_(lib.ones(2, 2))


def test_inplace_with_a_tensor_that_requires_grad_joins_the_graph():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    t = engine.tensor([3.0, 4.0])
    t.mul_(x)
    assert t.requires_grad and t.grad_fn.name() == "MulBackward0"
    t.backward(engine.ones(2))
    assert x.grad.tolist() == [3.0, 4.0], "the gradient uses t's value from before the change"


# ---- repr -----------------------------------------------------------------------------------------
def _torch_repr(t) -> str:
    return repr(t).replace("torch.", "engine.")


REPR_DATA = [
    [[1.5, -2.0], [3.0, 4.0]], [1, 2, 3], [[1, -20], [300, 4]], [1.0, 2.0, 3.0], [True, False], 3.5, 3, True,
    [0.0, 0.0], [1e-5, 1.0], [1e9, 2.0], [-1.0, 2.0, 1000.0], [1.0, 100000.0], [123456.7, 1.0],
    [0.1, 0.2, 0.3], [-0.0, 1.5],
    [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.5]]], list(range(40)), [x / 7 for x in range(30)],
]


@needs_torch
@pytest.mark.parametrize("data", REPR_DATA, ids=repr)
@pytest.mark.parametrize("dtype", [None, "float64", "int32"])
def test_repr_matches_torch(data, dtype):
    ref = torch.tensor(data, dtype=getattr(torch, dtype) if dtype else None)
    assert repr(engine.tensor(ref.numpy())) == _torch_repr(ref)


@needs_torch
@pytest.mark.parametrize("data", [[1.0, float("nan"), float("inf")], [0.0, float("-inf")], [float("nan")],
                                  [2.5, float("nan")], [1e-7, float("inf")]], ids=repr)
def test_repr_of_non_finite_values_matches_torch(data):
    for dtype in (torch.float32, torch.float64):
        ref = torch.tensor(data, dtype=dtype)
        assert repr(engine.tensor(ref.numpy())) == _torch_repr(ref)


def test_repr_pads_columns_to_one_width():
    assert repr(engine.tensor([[1.5, -2.0], [3.0, 4.0]])) == ("tensor([[ 1.5000, -2.0000],\n"
                                                             "        [ 3.0000,  4.0000]])")
    assert repr(engine.tensor([[1, -20], [300, 4]])) == "tensor([[  1, -20],\n        [300,   4]])"
    assert repr(engine.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(engine.tensor(2.5, dtype=engine.float64)) == "tensor(2.5000, dtype=engine.float64)"


@needs_torch
@pytest.mark.parametrize("shape", [(2000,), (40, 40), (5, 300), (3, 4, 200), (10, 10, 11), (1001,)])
@pytest.mark.parametrize("kind", ["float", "int"])
def test_repr_of_large_tensors_is_summarized_like_torch(shape, kind):
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if kind == "int":
        a = (a * 100).astype(np.int64)
    assert repr(engine.tensor(a)) == repr(torch.tensor(a))


@needs_torch
def test_repr_of_empty_tensors():
    for e, t in [(engine.tensor([]), torch.tensor([])), (engine.zeros(2, 0), torch.zeros(2, 0)),
                 (engine.zeros(0, dtype=engine.int64), torch.zeros(0, dtype=torch.int64)),
                 (engine.zeros(0, 3, dtype=engine.float64), torch.zeros(0, 3, dtype=torch.float64))]:
        assert repr(e) == _torch_repr(t)


@needs_torch
def test_repr_shows_autograd_state_like_torch():
    ex = engine.tensor([1.0, 2.0], requires_grad=True)
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    assert repr(ex) == _torch_repr(tx) == "tensor([1., 2.], requires_grad=True)"
    assert repr(ex * 2) == _torch_repr(tx * 2) == "tensor([2., 4.], grad_fn=<MulBackward0>)"
    assert repr(ex + 1.5) == _torch_repr(tx + 1.5)
    e64 = engine.tensor([x * 1.1 for x in range(12)], dtype=engine.float64, requires_grad=True) * 3
    t64 = torch.tensor([x * 1.1 for x in range(12)], dtype=torch.float64, requires_grad=True) * 3
    assert repr(e64) == _torch_repr(t64)  # the suffixes wrap onto a new line past 80 columns
    assert repr(ex.detach()) == "tensor([1., 2.])"


# ---- on a GPU (run on the lent H100; skipped elsewhere) -----------------------------------------------
def _has_cuda() -> bool:
    cp = cupy_module()
    try:
        return cp is not None and cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # CuPy without a working driver
        return False


gpu = pytest.mark.skipif(not _has_cuda(), reason="needs CuPy and a CUDA GPU")


@pytest.mark.gpu
@gpu
def test_gpu_tensors_are_created_on_the_device_and_print_like_torch():
    # regression: Tensor() sent CuPy 14 arrays (no __array_namespace__) through np.asarray
    x = engine.tensor([[1.5, -2.0], [3.0, 4.0]], device="cuda", requires_grad=True)
    assert x.device == "cuda:0" and x.is_cuda and engine.zeros_like(x).device == "cuda:0"
    for make in (lambda: engine.randn(2, 3, device="cuda"), lambda: engine.arange(3, device="cuda"),
                 lambda: engine.full((2,), 3, device="cuda"), lambda: engine.ones(2, device="cuda:0")):
        assert make().device == "cuda:0"
    if torch is not None and torch.cuda.is_available():
        ref = torch.tensor([[1.5, -2.0], [3.0, 4.0]], device="cuda", requires_grad=True)
        assert repr(x * 2) == repr(ref * 2)
        big = np.random.default_rng(0).standard_normal((40, 40)).astype(np.float32)
        assert repr(engine.tensor(big, device="cuda")) == repr(torch.tensor(big, device="cuda"))


@pytest.mark.gpu
@gpu
def test_gpu_backward_accumulates_like_cpu():
    # regression: the scheduler read `flags.writeable`, which CuPy arrays do not have
    grads = []
    for device in ("cpu", "cuda"):
        x = engine.tensor([1.0, 2.0], device=device, requires_grad=True)
        g = engine.tensor([1.0, 1.0], device=device)
        (x * x * x + x * 2 + x).backward(g)
        (x + 1).backward(g)
        (x + 1).backward(g)
        assert g.tolist() == [1.0, 1.0]
        grads.append(x.grad.tolist())
    assert grads[0] == grads[1] == [8.0, 17.0]
    with pytest.raises(RuntimeError, match="expected all tensors on the same device, but found cpu and cuda"):
        engine.ones(2) * engine.ones(2, device="cuda")
