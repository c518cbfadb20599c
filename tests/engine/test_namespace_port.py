"""torch's namespace utilities (engine.namespace_port), process-wide switches (engine.switches) and tensor
properties (engine.tensor_props), checked against torch where it is installed."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import engine
from tests.engine.oracle import needs_torch, torch

NAMESPACE = [
    "pi", "e", "inf", "nan", "newaxis", "finfo", "iinfo", "result_type", "promote_types", "can_cast", "is_signed",
    "is_nonzero", "is_same_size", "is_complex", "is_inference", "typename", "scalar_tensor", "asarray",
    "empty_strided", "range", "detach", "detach_", "set_default_dtype", "get_default_dtype", "set_num_threads",
    "get_num_threads", "set_num_interop_threads", "get_num_interop_threads", "use_deterministic_algorithms",
    "are_deterministic_algorithms_enabled", "is_deterministic_algorithms_warn_only_enabled", "set_anomaly_enabled",
    "is_anomaly_enabled", "set_printoptions", "set_warn_always", "is_warn_always_enabled",
    "set_float32_matmul_precision", "get_float32_matmul_precision", "get_default_device", "set_default_device",
]
TENSOR = [
    "is_cpu", "itemsize", "nbytes", "ndimension", "data_ptr", "get_device", "stride", "storage_offset",
    "is_contiguous", "is_neg", "is_conj", "resolve_conj", "resolve_neg", "conj", "real", "imag", "is_set_to",
    "is_inference", "new_empty_strided", "as_subclass", "apply_", "map_", "pin_memory", "is_pinned", "share_memory_",
    "is_shared", "record_stream", "dim_order", "is_signed", "is_complex",
]
DTYPES = ["float16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool"]


def pair(name):
    return getattr(engine, name), getattr(torch, name)


def test_every_listed_name_exists():
    assert [n for n in NAMESPACE if not hasattr(engine, n)] == []
    assert [n for n in TENSOR if not hasattr(engine.Tensor, n)] == []
    assert engine.autograd.detect_anomaly and engine.autograd.set_detect_anomaly


@needs_torch
def test_names_and_constants_are_torchs():
    assert [n for n in NAMESPACE if not hasattr(torch, n)] == []
    assert [n for n in TENSOR if not hasattr(torch.Tensor, n)] == []
    assert (engine.pi, engine.e, engine.inf, engine.newaxis) == (torch.pi, torch.e, torch.inf, torch.newaxis)
    assert math.isnan(engine.nan)


# ---- dtype facts ----------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_matches_torch(name):
    ours, theirs = engine.finfo(getattr(engine, name)), torch.finfo(getattr(torch, name))
    for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert repr(ours) == repr(theirs)
    assert engine.finfo().dtype == "float32"


@needs_torch
@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_matches_torch(name):
    ours, theirs = engine.iinfo(getattr(engine, name)), torch.iinfo(getattr(torch, name))
    assert (ours.bits, ours.min, ours.max, ours.dtype) == (theirs.bits, theirs.min, theirs.max, theirs.dtype)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("call", [lambda: engine.finfo(engine.int32), lambda: engine.iinfo(engine.float32),
                                  lambda: engine.iinfo(engine.bool), lambda: engine.finfo("float32")])
def test_finfo_and_iinfo_refuse_the_wrong_kind(call):
    with pytest.raises(TypeError):
        call()


@needs_torch
def test_promote_types_and_can_cast_match_torch_for_every_pair():
    for a in DTYPES:
        for b in DTYPES:
            (ea, ta), (eb, tb) = pair(a), pair(b)
            assert engine.promote_types(ea, eb).name == str(torch.promote_types(ta, tb)).removeprefix("torch.")
            assert engine.can_cast(ea, eb) == torch.can_cast(ta, tb), (a, b)
    assert engine.promote_types(engine.int64, float) is engine.float64


@needs_torch
def test_result_type_matches_torch():
    cases = [lambda L: (L.tensor([1, 2]), 1.0), lambda L: (1, 1.0), lambda L: (1, 2), lambda L: (True, 2),
             lambda L: (L.tensor([1], dtype=L.int32), L.tensor(1)),
             lambda L: (L.tensor([1], dtype=L.int32), L.tensor(1.0)),
             lambda L: (L.tensor([1], dtype=L.uint8), L.tensor(1)),
             lambda L: (L.tensor([1.0], dtype=L.float16), 2.5),
             lambda L: (np.float64(2.0), L.tensor([1], dtype=L.int16))]
    for make in cases:
        assert engine.result_type(*make(engine)).name == str(torch.result_type(*make(torch))).removeprefix("torch.")


@pytest.mark.parametrize("call", [lambda: engine.result_type("a", 1), lambda: engine.promote_types(engine.int64, "a"),
                                  lambda: engine.can_cast(engine.float32, 1)])
def test_dtype_functions_refuse_other_arguments(call):
    with pytest.raises(TypeError, match=r"must be|expected a Tensor or a Number"):
        call()


# ---- queries ----------------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("name", DTYPES)
def test_is_signed_and_typename_match_torch(name):
    ours, theirs = engine.zeros(2, dtype=getattr(engine, name)), torch.zeros(2, dtype=getattr(torch, name))
    assert engine.is_signed(ours) == ours.is_signed() == torch.is_signed(theirs)
    assert engine.typename(ours) == torch.typename(theirs).replace("torch.", "engine.")
    assert engine.is_complex(ours) is ours.is_complex() is False


def test_typename_of_other_objects():
    assert engine.typename(3) == "int"
    assert engine.typename(np.zeros(1)) == "numpy.ndarray"
    assert engine.typename(engine.nn.Linear(1, 1)) == "engine.nn.layers.linear.Linear"


@needs_torch
@pytest.mark.parametrize("values", [[0.0], [1.5], [False], [3], [[0]], [math.nan]])
def test_is_nonzero_matches_torch(values):
    assert engine.is_nonzero(engine.tensor(values)) == torch.is_nonzero(torch.tensor(values))


@pytest.mark.parametrize(("values", "words"), [([1, 3], "more than one value"), ([], "no values")])
def test_is_nonzero_refuses_other_than_one_element(values, words):
    with pytest.raises(RuntimeError, match=f"Boolean value of Tensor with {words} is ambiguous"):
        engine.is_nonzero(engine.tensor(values))


def test_is_same_size_is_inference_and_detach():
    a = engine.zeros(2, 3)
    assert engine.is_same_size(a, engine.ones(2, 3)) and not engine.is_same_size(a, engine.ones(3, 2))
    with engine.inference_mode():
        assert engine.is_inference(engine.zeros(2)) is True  # an inference tensor, as torch's
    x = engine.ones(2, requires_grad=True) * 2
    d = engine.detach(x)
    assert d.grad_fn is None and not d.requires_grad and np.shares_memory(d.array, x.array)
    assert engine.detach_(x) is x and x.grad_fn is None and not x.requires_grad


@pytest.mark.parametrize("call", [lambda: engine.is_same_size(engine.zeros(2), [2]), lambda: engine.is_signed(1),
                                  lambda: engine.is_complex(2), lambda: engine.detach(3),
                                  lambda: engine.is_nonzero(1)])
def test_queries_refuse_non_tensors(call):
    with pytest.raises(TypeError, match="must be Tensor"):
        call()


# ---- making tensors ---------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize(("s", "kwargs"), [(3, {}), (True, {}), (2.5, {"requires_grad": True}),
                                           (3, {"dtype": "int64"}), (7, {"dtype": "float64"})])
def test_scalar_tensor_matches_torch(s, kwargs):
    ours = engine.scalar_tensor(s, **{k: getattr(engine, v) if k == "dtype" else v for k, v in kwargs.items()})
    theirs = torch.scalar_tensor(s, **{k: getattr(torch, v) if k == "dtype" else v for k, v in kwargs.items()})
    assert repr(ours) == repr(theirs).replace("torch.", "engine.")
    with pytest.raises(TypeError, match="must be Number"):
        engine.scalar_tensor([1])


@needs_torch
def test_scalar_tensor_takes_a_0d_tensor_and_refuses_others_as_torch():
    assert repr(engine.scalar_tensor(engine.tensor(2.5))) == repr(torch.scalar_tensor(torch.tensor(2.5))) \
        .replace("torch.", "engine.")
    for lib in (torch, engine):
        with pytest.raises(TypeError, match=r"argument 's' \(position 1\) must be Number, not Tensor"):
            lib.scalar_tensor(lib.tensor([2.0]))


def test_asarray_shares_a_numpy_array_unless_told_or_forced_to_copy():
    a = np.arange(3.0)
    shared, copied, cast = engine.asarray(a), engine.asarray(a, copy=True), engine.asarray(a, dtype=engine.float32)
    a[0] = 9
    assert shared.tolist() == [9, 1, 2] and copied.tolist() == [0, 1, 2] and cast.tolist() == [0, 1, 2]
    assert shared.dtype is engine.float64 and cast.dtype is engine.float32
    with pytest.raises(ValueError, match="can't alias"):
        engine.asarray(a, dtype=engine.float32, copy=False)


def test_asarray_of_lists_scalars_and_numpy_scalars():
    assert engine.asarray([1, 2]).dtype is engine.int64
    assert engine.asarray([1.0, 2]).dtype is engine.float32
    assert engine.asarray(2.5).dtype is engine.float32 and engine.asarray(np.float64(2.5)).dtype is engine.float64
    assert engine.asarray((1, 2.5), dtype=engine.float64).tolist() == [1.0, 2.5]
    with pytest.raises(ValueError, match="can't alias arbitrary sequence"):
        engine.asarray([1, 2], copy=False)
    with pytest.raises(RuntimeError, match="can't alias NumPy scalars"):
        engine.asarray(np.float32(3), copy=False)
    with pytest.raises(RuntimeError, match="floating point"):
        engine.asarray([1, 2], requires_grad=True)


def test_asarray_of_a_tensor_keeps_it_its_graph_and_requires_grad():
    x = engine.ones(2, requires_grad=True)
    assert engine.asarray(x) is x
    wide = engine.asarray(x, dtype=engine.float64)
    assert wide.dtype is engine.float64 and wide.grad_fn is not None
    (wide * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    copy = engine.asarray(x, copy=True)
    assert copy is not x and copy.grad_fn is not None and not np.shares_memory(copy.array, x.array)
    with pytest.raises(ValueError, match="can't alias tensor with dtype float32 into dtype int64"):
        engine.asarray(x, dtype=engine.int64, copy=False)


def test_asarray_requires_grad_as_torch():
    y = engine.ones(2)
    assert engine.asarray(y, requires_grad=True) is y and y.requires_grad  # a leaf changes in place, as torch
    z = engine.ones(2, requires_grad=True) * 2
    d = engine.asarray(z, requires_grad=False)
    assert d is not z and not d.requires_grad and z.requires_grad
    a = engine.asarray(np.arange(3.0), requires_grad=True)
    assert a.requires_grad and a.is_leaf


def test_empty_strided_checks_its_strides_then_makes_a_contiguous_tensor():
    t = engine.empty_strided((2, 3), (1, 2), dtype=engine.int32)
    assert t.shape == (2, 3) and t.dtype is engine.int32 and t.stride() == (3, 1)  # the strides are not kept
    assert engine.empty_strided([2, 3], [3, 1]).dtype is engine.float32
    n = engine.ones(2, dtype=engine.float64).new_empty_strided((4,), (1,))
    assert n.shape == (4,) and n.dtype is engine.float64
    with pytest.raises(RuntimeError, match="dimensionality of sizes"):
        engine.empty_strided((2, 3), (3,))
    with pytest.raises(RuntimeError, match="negative dimension"):
        engine.empty_strided((2, -3), (3, 1))


@needs_torch
@pytest.mark.parametrize("args", [(1, 4), (1, 4, 0.5), (0, 1, 0.3), (4, 1, -1), (0, 0), (-2.5, 2.5, 1.25)])
def test_range_matches_torch_and_warns_that_it_is_deprecated(args):
    with pytest.warns(UserWarning, match="range is deprecated"):
        ours = engine.range(*args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.range(*args)
    assert ours.dtype is engine.float32
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    with pytest.warns(UserWarning):
        assert engine.range(1, 3, dtype=engine.int64).tolist() == [1, 2, 3]


@pytest.mark.parametrize(("args", "error", "words"), [((4, 1), RuntimeError, "inconsistent with step sign"),
                                                      ((1, 4, 0), RuntimeError, "step must be nonzero"),
                                                      ((5,), TypeError, "missing 1 required")])
def test_range_errors(args, error, words):
    with warnings.catch_warnings(), pytest.raises(error, match=words):
        warnings.simplefilter("ignore")
        engine.range(*args)
