"""Creation functions: dtype inference, filled tensors, ranges, random numbers and their errors."""

import numpy as np
import pytest

import engine
from engine.backend import cupy_module
from tests.engine.oracle import needs_torch, torch


def _same(ours, theirs) -> None:
    """Same dtype, shape and values as a torch tensor."""
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), f"{ours.dtype} != {theirs.dtype}"
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)


DATA = [
    1.5, 3, True, [1, 2, 3], [1.0, 2], [True, False], [True, 2], [[1, 2.5], [True, 0]], [], [[], []],
    [[1, 2], [3, 4]], ((1, 2), (3, 4)), [np.float64(1.0), 2.0], [np.int32(1), 2], [np.int32(1), np.int32(5)],
    [np.float32(1.0), 2], np.float64(2.5), np.int32(7), [[[1.0]], [[-2.0]]],
]


@needs_torch
@pytest.mark.parametrize("data", DATA, ids=repr)
def test_tensor_infers_dtype_like_torch(data):
    _same(engine.tensor(data), torch.tensor(data))


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "bool"])
def test_tensor_dtype_argument_converts(dtype):
    data = [[1.7, -2.2], [0.0, 3.0]]
    _same(engine.tensor(data, dtype=getattr(engine, dtype if dtype != "bool" else "bool_")),
          torch.tensor(data, dtype=getattr(torch, dtype)))


@needs_torch
@pytest.mark.parametrize("py_type", [float, int, bool])
def test_python_types_as_dtypes_mean_what_they_mean_in_torch(py_type):
    # regression: dtype=float gave float32, but a Python float is a double (torch.float64)
    _same(engine.zeros(2, dtype=py_type), torch.zeros(2, dtype=py_type))
    _same(engine.tensor([1, 0], dtype=py_type), torch.tensor([1, 0], dtype=py_type))
    _same(engine.ones(2).to(py_type), torch.ones(2).to(py_type))


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
def test_tensor_from_numpy_keeps_dtype_and_copies(np_dtype):
    src = np.array([[1, 0], [3, 4]]).astype(np_dtype)
    t = engine.tensor(src)
    assert t.dtype.np == np.dtype(np_dtype)
    src[0, 0] = 0
    assert t.tolist()[0][0] == 1, "tensor() must copy its input"


def test_tensor_from_tensor_copies_and_drops_graph():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = engine.tensor(x)
    assert not y.requires_grad and y.grad_fn is None
    with engine.no_grad():
        x.mul_(10)
    assert y.tolist() == [1.0, 2.0]


def test_from_numpy_and_as_tensor_share_memory():
    src = np.zeros(3, dtype=np.float32)
    a, b = engine.from_numpy(src), engine.as_tensor(src)
    src[1] = 5
    assert a.tolist() == [0, 5, 0] and b.tolist() == [0, 5, 0]
    t = engine.ones(2)
    assert engine.as_tensor(t) is t


@pytest.mark.parametrize("data", [[[1, 2], [3]], [[1, 2], 3], [[[1], [2]], [[3], [4, 5]]]], ids=repr)
def test_ragged_lists_give_one_clear_error(data):
    with pytest.raises(ValueError, match=r"tensor\(\): nested lists must be rectangular") as err:
        engine.tensor(data)
    msg = str(err.value)
    assert "\n" not in msg and "inhomogeneous" not in msg, "the error speaks the user's language, not numpy's"
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_ragged_error_says_where():
    with pytest.raises(ValueError, match=r"length 2 at dim 1 \(got 1\)"):
        engine.tensor([[1, 2], [3]])


@pytest.mark.parametrize("data", ["abc", ["a", "b"], [1, None], {"a": 1}], ids=repr)
def test_non_numbers_give_one_clear_error(data):
    with pytest.raises(TypeError, match=r"tensor\(\): could not infer dtype of (str|NoneType|dict)"):
        engine.tensor(data)


def test_unsupported_numpy_dtype_is_refused_by_name():
    with pytest.raises(TypeError, match="unsupported dtype uint16; the engine supports float16, float32"):
        engine.tensor(np.ones(2, dtype=np.uint16))
    with pytest.raises(TypeError, match="unknown dtype"):
        engine.zeros(2, dtype="complex64")


# ---- filled tensors ------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("name", ["zeros", "ones"])
@pytest.mark.parametrize("size", [(2, 3), ((2, 3),), ([2, 3],), (4,), ((),), (0, 3)], ids=repr)
def test_zeros_ones_sizes_as_varargs_or_tuple(name, size):
    _same(getattr(engine, name)(*size), getattr(torch, name)(*size))


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "int64", "int32", "bool"])
def test_filled_dtypes(dtype):
    e_dt = getattr(engine, dtype if dtype != "bool" else "bool_")
    t_dt = getattr(torch, dtype)
    _same(engine.zeros(2, 2, dtype=e_dt), torch.zeros(2, 2, dtype=t_dt))
    _same(engine.ones((3,), dtype=e_dt), torch.ones((3,), dtype=t_dt))
    assert engine.empty(2, 3, dtype=e_dt).dtype is e_dt


@needs_torch
@pytest.mark.parametrize("value", [3, 2.5, True, -1])
def test_full_infers_dtype_from_the_value(value):
    _same(engine.full((2, 3), value), torch.full((2, 3), value))
    _same(engine.full((2,), value, dtype=engine.float64), torch.full((2,), value, dtype=torch.float64))


def test_empty_has_shape_and_dtype():
    t = engine.empty(2, 3)
    assert t.shape == (2, 3) and t.dtype is engine.float32 and not t.requires_grad


@pytest.mark.parametrize("make", [engine.zeros, engine.ones, engine.empty, engine.rand, engine.randn])
def test_requires_grad_and_device_arguments(make):
    t = make(2, 3, requires_grad=True, device="cpu")
    assert t.requires_grad and t.is_leaf and t.grad is None
    assert t.device == engine.device("cpu") and t.device.type == "cpu"
    assert make(1, device=engine.device("cpu")).device == "cpu"


def test_requires_grad_on_an_integer_dtype_is_refused():
    with pytest.raises(RuntimeError, match="floating point"):
        engine.zeros(2, dtype=engine.int64, requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        engine.tensor([1, 2], requires_grad=True)


@pytest.mark.parametrize("size", [(-1, 2), (2.5,), ("2",), ((2, 3), 4), (True,)], ids=repr)
def test_bad_sizes_give_a_clear_error(size):
    with pytest.raises(ValueError, match="sizes must be non-negative integers"):
        engine.zeros(*size)
    with pytest.raises(ValueError, match="sizes must be non-negative integers"):
        engine.randn(*size)


def test_bad_device_names_are_refused():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        engine.zeros(2, device="tpu")
    with pytest.raises(ValueError, match="cuda:N"):
        engine.zeros(2, device="cuda:x")


@pytest.mark.skipif(cupy_module() is not None, reason="CuPy is installed")
def test_cuda_without_cupy_says_how_to_get_it():
    with pytest.raises(RuntimeError, match="needs CuPy"):
        engine.zeros(2, device="cuda")


@needs_torch
@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "randn_like", "rand_like", "empty_like"])
def test_like_functions_follow_the_input(name):
    fn = getattr(engine, name)
    x = engine.ones(2, 3, dtype=engine.float64)
    y = fn(x)
    assert y.shape == (2, 3) and y.dtype is engine.float64 and y.device == x.device and not y.requires_grad
    z = fn(x, dtype=engine.float32, requires_grad=True)
    assert z.dtype is engine.float32 and z.requires_grad
    if name in ("zeros_like", "ones_like"):
        _same(fn(engine.tensor([1, 2])), getattr(torch, name)(torch.tensor([1, 2])))


def test_randn_like_of_an_integer_tensor_is_refused():
    with pytest.raises(TypeError, match="randn: dtype must be a floating point type, got int64"):
        engine.randn_like(engine.tensor([1, 2]))


# ---- ranges ---------------------------------------------------------------------------------------
ARANGES = [(5,), (2, 8), (5, 0, -1), (10, 0, -3), (0, 1, 0.1), (1.0, 0.0, -0.25), (0, 2.5), (-3, 3, 2),
           (0.5, 3), (3, 3), (0, 1, 0.3)]


@needs_torch
@pytest.mark.parametrize("args", ARANGES, ids=repr)
def test_arange_matches_torch(args):
    _same(engine.arange(*args), torch.arange(*args))


@needs_torch
def test_arange_dtype_and_requires_grad():
    _same(engine.arange(4, dtype=engine.float64), torch.arange(4, dtype=torch.float64))
    assert engine.arange(3.0, requires_grad=True).requires_grad


@pytest.mark.parametrize("args,match", [((0, 3, 0), "step must be nonzero"), ((-3,), "wrong side"),
                                        ((0, 5, -1), "wrong side"), ((5, 0, 1), "wrong side")])
def test_arange_errors(args, match):
    with pytest.raises(ValueError, match=match):
        engine.arange(*args)


@needs_torch
@pytest.mark.parametrize("args", [(0, 1, 5), (-1, 1, 1), (3, 3, 0), (2, -2, 9)], ids=repr)
def test_linspace_matches_torch(args):
    _same(engine.linspace(*args), torch.linspace(*args))
    _same(engine.linspace(*args, dtype=engine.float64), torch.linspace(*args, dtype=torch.float64))


def test_linspace_needs_a_step_count():
    with pytest.raises(ValueError, match="linspace: steps must be a non-negative integer"):
        engine.linspace(0, 1, -1)


@needs_torch
@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2), (0,)], ids=repr)
def test_eye_matches_torch(args):
    _same(engine.eye(*args), torch.eye(*args))
    _same(engine.eye(*args, dtype=engine.int64), torch.eye(*args, dtype=torch.int64))


# ---- random ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: engine.rand(3, 4), lambda: engine.randn(3, 4), lambda: engine.randint(0, 100, (3, 4)),
    lambda: engine.randperm(10), lambda: engine.randn_like(engine.zeros(5)),
])
def test_manual_seed_reproduces_the_same_numbers(make):
    engine.manual_seed(123)
    a = make().tolist()
    b = make().tolist()
    engine.manual_seed(123)
    assert make().tolist() == a and make().tolist() == b
    assert a != b, "consecutive draws differ"
    engine.manual_seed(124)
    assert make().tolist() != a
    assert engine.initial_seed() == 124


def test_manual_seed_needs_an_integer():
    with pytest.raises(TypeError, match="manual_seed expects an integer"):
        engine.manual_seed(1.5)


def test_rand_and_randn_shapes_dtypes_and_ranges():
    u = engine.rand(1000)
    assert u.dtype is engine.float32 and u.numpy().min() >= 0 and u.numpy().max() < 1
    n = engine.randn((2, 500), dtype=engine.float64)
    assert n.shape == (2, 500) and n.dtype is engine.float64
    assert abs(float(n.numpy().mean())) < 0.2 and 0.8 < float(n.numpy().std()) < 1.2


@pytest.mark.parametrize("make", [engine.rand, engine.randn])
def test_random_floats_refuse_integer_dtypes(make):
    with pytest.raises(TypeError, match="dtype must be a floating point type, got int64; use randint"):
        make(2, dtype=engine.int64)


@needs_torch
@pytest.mark.parametrize("args,kwargs", [((10, (3,)), {}), ((2, 5, (4, 2)), {}), ((5,), {"size": (6,)}),
                                         ((-3, 3), {"size": (8,)}), ((0, 2, (3,)), {"dtype": engine.int32})],
                         ids=repr)
def test_randint_forms_match_torch(args, kwargs):
    t = engine.randint(*args, **kwargs)
    ref = torch.randint(*args, **{k: (torch.int32 if v is engine.int32 else v) for k, v in kwargs.items()})
    assert t.dtype.name == str(ref.dtype).removeprefix("torch.") and tuple(t.shape) == tuple(ref.shape)
    low, high = (0, args[0]) if len(args) == 1 or isinstance(args[1], tuple) else args[:2]
    assert low <= t.numpy().min() and t.numpy().max() < high


def test_randint_bad_bounds():
    with pytest.raises(ValueError, match=r"randint: high \(1\) must be greater than low \(3\)"):
        engine.randint(3, 1, (2,))


def test_randperm_is_a_permutation():
    assert sorted(engine.randperm(7).tolist()) == list(range(7))
    assert engine.randperm(3).dtype is engine.int64
