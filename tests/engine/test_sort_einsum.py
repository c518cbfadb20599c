"""sort/argsort/topk, tril/triu, mm/bmm and einsum against finite differences and PyTorch; their errors."""

import subprocess
import sys

import numpy as np
import pytest

import engine
import engine.debug
from tests.engine.oracle import check_grads, needs_torch, torch
from tests.engine.second_order import second_order_tests

DISTINCT = np.random.default_rng(3).permutation(24).reshape(4, 6) * 0.37  # no ties: one true order


@pytest.mark.parametrize("fn", [
    lambda x: x.sort(dim=1).values,
    lambda x: x.sort(dim=0, descending=True)[0],
    lambda x: x.topk(2, dim=1).values,
    lambda x: x.topk(3, dim=0, largest=False).values,
], ids=["sort", "sort-desc-dim0", "topk", "topk-smallest"])
def test_ordering_values_and_gradients(fn):
    check_grads(fn, [DISTINCT])


@needs_torch
@pytest.mark.parametrize("fn", [
    lambda t, x: t.argsort(x, dim=1),
    lambda t, x: x.argsort(dim=0, descending=True),
    lambda t, x: x.topk(3).indices,
    lambda t, x: x.sort(-1, descending=True).indices,
])
def test_ordering_indices_match_torch(fn):
    ours = fn(engine, engine.tensor(DISTINCT, dtype=engine.float32))
    theirs = fn(torch, torch.tensor(DISTINCT, dtype=torch.float32))
    assert ours.dtype is engine.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "uint8", "int8", "bool"])
def test_ordering_with_nan_and_narrow_integers_matches_torch(dtype):
    raw = np.array([[3, 0, 7, 255, 1, 7], [2, 2, 9, 0, 128, 5]]).astype(np.float32)
    if dtype == "float32":
        raw[0, 1], raw[1, 4] = np.nan, np.nan  # PyTorch counts NaN as the largest value
    ours, theirs = engine.tensor(raw.astype(dtype)), torch.tensor(raw.astype(dtype))
    for descending in (False, True):
        got = engine.sort(ours, dim=1, descending=descending, stable=True)
        want = torch.sort(theirs, dim=1, descending=descending, stable=True)
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
        np.testing.assert_array_equal(engine.argsort(ours, dim=1, descending=descending, stable=True).numpy(),
                                      torch.argsort(theirs, dim=1, descending=descending, stable=True).numpy())
    if dtype != "bool":
        got, want = engine.topk(ours, 3, dim=1), torch.topk(theirs, 3, dim=1)
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())


def test_argsort_is_not_a_sort_op_in_the_graph():
    x = engine.randn(5, requires_grad=True)
    with engine.debug.Debugger("structure") as dbg:
        engine.argsort(x)
    assert [r.event.op for r in dbg.history] == []


def test_topk_k_too_large_names_the_op_and_shape():
    with pytest.raises(engine.ShapeError, match=r"topk: k \(7\).*\(4, 6\)"):
        engine.tensor(DISTINCT).topk(7)


@pytest.mark.parametrize("fn", [
    lambda x: x.tril(),
    lambda x: engine.triu(x, diagonal=1) if isinstance(x, engine.Tensor) else torch.triu(x, diagonal=1),
    lambda x: x.tril(-1) + x.triu(2),
], ids=["tril", "triu+1", "both"])
def test_triangles(fn):
    check_grads(fn, [(2, 4, 5)])


def test_causal_mask_in_place():
    m = engine.ones(3, 3).triu_(1)
    np.testing.assert_array_equal(m.numpy(), np.triu(np.ones((3, 3)), 1))


def test_mm_and_bmm():
    check_grads(lambda a, b: a.mm(b), [(3, 4), (4, 2)])
    check_grads(lambda a, b: a.bmm(b), [(2, 3, 4), (2, 4, 5)])
    with pytest.raises(engine.ShapeError, match=r"bmm: .*\(2, 3, 4\) and \(4, 5\)"):
        engine.bmm(engine.ones(2, 3, 4), engine.ones(4, 5))


@pytest.mark.parametrize("equation,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij,k->ik", [(3, 4), (2,)]),        # j is summed away from the first operand alone
    ("i,j", [(3,), (2,)]),               # implicit output: an outer product
    ("...i", [(3,)]),                    # implicit output, '...' covering no dims
    ("...ij,...j", [(3, 2), (2,)]),
    # j has size 1 in a and 2 in b: b's gradient over j is broadcast back, a's summed
    ("...ij,...jk->...ik", [(1, 1, 2, 1), (1, 2, 1)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 2), (2, 1, 4)]),  # the same the other way round, batch dims broadcasting
    ("ij,jk", [(3, 1), (2, 4)]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_einsum(equation, shapes):
    torch_fn = None if torch is None else (lambda *xs: torch.einsum(equation, *xs))
    check_grads(lambda *xs: engine.einsum(equation, *xs), shapes, torch_fn=torch_fn)


CASES = {  # the Tensor-level backward (create_graph=True) broadcasts a size-1 index as the array backward does
    "size1_index_broadcast": (lambda L, F, a, b: L.einsum("...ij,...jk->...ik", a, b) ** 2, [(1, 1, 2, 1), (1, 2, 1)]),
    "size1_index_summed": (lambda L, F, a, b: L.einsum("ij,jk->ik", a, b).tanh(), [(3, 2), (1, 4)]),
}
test_second_order_matches_torch, test_second_order_matches_finite_differences = second_order_tests(CASES)


def test_einsum_errors_say_what_is_unsupported():
    with pytest.raises(engine.ShapeError, match=r"einsum: subscripts 'ijk'.*\(3, 4\)"):
        engine.einsum("ijk,jk->i", engine.ones(3, 4), engine.ones(4, 2))


def test_add_and_sub_take_alpha_with_a_number():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = x.add(1, alpha=2) + engine.sub(x, 3, alpha=2) + x.add(x, alpha=3)
    np.testing.assert_allclose(y.detach().numpy(), [1 + 2 + 1 - 6 + 4, 2 + 2 + 2 - 6 + 8])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_import_engine_gives_engine_nn():
    # `import torch` then `torch.nn.Linear` works without `import torch.nn`; so must the engine's
    code = "import engine; engine.nn.Linear(2, 2); engine.nn.functional.relu(engine.ones(1))"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
