"""engine.nn.utils.prune as torch.nn.utils.prune: masks, names, hooks, gradients, repeated and global pruning."""

import io
import math

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.utils.prune as prune
from tests.engine.oracle import GRAD_ATOL, GRAD_RTOL, cuda_or_skip, needs_torch, one_line, torch

if torch is not None:
    import torch.nn.utils.prune as tprune


def _twins(make_engine, make_torch, seed=0):
    """The same layer in the engine and in torch, with equal (seeded) values."""
    torch.manual_seed(seed)
    theirs = make_torch()
    ours = make_engine()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _linear(i=6, o=5, seed=0, bias=True):
    return _twins(lambda: nn.Linear(i, o, bias=bias), lambda: torch.nn.Linear(i, o, bias=bias), seed)


def _conv(seed=0):
    return _twins(lambda: nn.Conv2d(3, 6, 3), lambda: torch.nn.Conv2d(3, 6, 3), seed)


def _set(layers, name, values):
    """Give `name` of each layer the same values."""
    for layer in layers:
        lib = engine if isinstance(layer, nn.Module) else torch
        with lib.no_grad():
            getattr(layer, name).copy_(lib.tensor(values, dtype=lib.float32))


def _same_state(ours, theirs):
    """Equal parameter and buffer names, in order, and equal values (masks exactly)."""
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].detach().numpy(), value.detach().numpy(), err_msg=key)


# ---- deterministic methods against torch ------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("amount", [0, 7, 0.3, 0.5, 1.0, 30])
def test_l1_unstructured_matches_torch(amount):
    ours, theirs = _linear()
    assert prune.l1_unstructured(ours, "weight", amount=amount) is ours
    tprune.l1_unstructured(theirs, "weight", amount=amount)
    _same_state(ours, theirs)
    assert list(ours.state_dict()) == ["bias", "weight_orig", "weight_mask"]
    assert ours.weight_mask.dtype == engine.float32 and not ours.weight_mask.requires_grad
    assert not isinstance(ours.weight, nn.Parameter) and ours.weight.grad_fn is not None
    (hook,) = ours._forward_pre_hooks.values()
    assert isinstance(hook, prune.L1Unstructured) and hook._tensor_name == "weight" and hook.amount == amount
    np.testing.assert_array_equal(ours.weight.detach().numpy(), theirs.weight.detach().numpy())


@needs_torch
@pytest.mark.parametrize("shape, levels, amount", [((8, 8), 1, 5), ((16, 12), 3, 0.4), ((40, 50), 4, 10)])
def test_l1_unstructured_among_ties_prunes_as_many_and_never_a_larger_one(shape, levels, amount):
    # which of equal magnitudes go is torch's sort routine's choice; here the lower indices stay
    rng = np.random.default_rng(sum(shape) + levels)
    weight = rng.integers(1, levels + 1, shape) * rng.choice([-1.0, 1.0], shape)  # equal magnitudes, both signs
    ours, theirs = _linear(shape[1], shape[0])
    _set((ours, theirs), "weight", weight)
    prune.l1_unstructured(ours, "weight", amount=amount)
    tprune.l1_unstructured(theirs, "weight", amount=amount)
    mask = ours.weight_mask.numpy()
    assert mask.sum() == theirs.weight_mask.numpy().sum()
    assert np.abs(weight[mask == 0]).max() <= np.abs(weight[mask == 1]).min()


@needs_torch
@pytest.mark.parametrize("n", [1, 2, 3, math.inf, -math.inf, 0, "fro", "nuc"])
@pytest.mark.parametrize("dim, amount", [(0, 2), (1, 0.5), (-1, 1), (-4, 0.34)])
def test_ln_structured_matches_torch(n, dim, amount):
    if n in ("fro", "nuc"):  # torch.norm takes two dims for these: a 3-D weight
        ours, theirs = _twins(lambda: nn.Conv1d(3, 6, 3), lambda: torch.nn.Conv1d(3, 6, 3))
        dim = min(dim, 2) if dim >= 0 else max(dim, -3)
    else:
        ours, theirs = _conv()
    prune.ln_structured(ours, "weight", amount=amount, n=n, dim=dim)
    tprune.ln_structured(theirs, "weight", amount=amount, n=n, dim=dim)
    if n == 0:  # every channel counts as many nonzeros: a tie, which torch's sort routine breaks its own way
        assert ours.weight_mask.numpy().sum() == theirs.weight_mask.numpy().sum()
        return
    _same_state(ours, theirs)


@needs_torch
def test_ln_structured_ties_and_importance_scores_as_torch():
    ours, theirs = _conv()
    _set((ours, theirs), "weight", np.ones((6, 3, 3, 3)))  # every channel the same norm: the first two stay
    prune.ln_structured(ours, "weight", amount=4, n=2, dim=0)
    tprune.ln_structured(theirs, "weight", amount=4, n=2, dim=0)
    assert ours.weight_mask.numpy().sum(axis=(1, 2, 3)).tolist() == [27, 27, 0, 0, 0, 0]
    assert theirs.weight_mask.numpy().sum() == ours.weight_mask.numpy().sum()
    scores = np.random.default_rng(3).standard_normal((6, 3, 3, 3)).astype(np.float32)
    ours, theirs = _conv(seed=1)
    prune.ln_structured(ours, "weight", 0.5, 1, 1, importance_scores=engine.tensor(scores))
    tprune.ln_structured(theirs, "weight", 0.5, 1, 1, importance_scores=torch.tensor(scores))
    _same_state(ours, theirs)
    prune.l1_unstructured(ours, "bias", 2, importance_scores=engine.tensor(scores[:, 0, 0, 0]))
    tprune.l1_unstructured(theirs, "bias", 2, importance_scores=torch.tensor(scores[:, 0, 0, 0]))
    _same_state(ours, theirs)


@needs_torch
def test_identity_and_custom_from_mask_match_torch():
    ours, theirs = _linear()
    prune.identity(ours, "weight")
    tprune.identity(theirs, "weight")
    prune.custom_from_mask(ours, "bias", mask=engine.tensor([0, 1, 1, 0, 1]))
    tprune.custom_from_mask(theirs, "bias", mask=torch.tensor([0, 1, 1, 0, 1]))
    _same_state(ours, theirs)
    assert ours.bias_mask.dtype == engine.float32
    assert prune.is_pruned(ours) and not prune.is_pruned(nn.Linear(2, 2))


@needs_torch
def test_gradients_reach_weight_orig_through_the_mask():
    ours, theirs = _conv()
    prune.ln_structured(ours, "weight", amount=2, n=1, dim=0)
    tprune.ln_structured(theirs, "weight", amount=2, n=1, dim=0)
    prune.l1_unstructured(ours, "weight", amount=20)
    tprune.l1_unstructured(theirs, "weight", amount=20)
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    out, ref = ours(engine.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-3, atol=1e-6)
    (out ** 2).sum().backward()
    (ref ** 2).sum().backward()
    grad = ours.weight_orig.grad.numpy()
    np.testing.assert_allclose(grad, theirs.weight_orig.grad.numpy(), rtol=GRAD_RTOL, atol=GRAD_ATOL)
    assert np.all(grad[ours.weight_mask.numpy() == 0] == 0) and np.any(grad != 0)
    assert ours.weight_mask.grad is None


@needs_torch
def test_second_order_gradients_through_a_pruned_layer_match_torch():
    grads = []
    ours, theirs = _linear(4, 3)
    for lib, layer, p in ((engine, ours, prune), (torch, theirs, tprune)):
        p.l1_unstructured(layer, "weight", amount=5)
        x = lib.tensor(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4), requires_grad=True)
        (gx,) = lib.autograd.grad(layer(x).tanh().sum(), x, create_graph=True)
        (gw,) = lib.autograd.grad((gx ** 2).sum(), layer.weight_orig)
        grads.append(gw.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=GRAD_RTOL, atol=GRAD_ATOL)


# ---- repeated and global pruning ----------------------------------------------------------------------------
@needs_torch
def test_repeated_pruning_combines_masks_as_torch():
    ours, theirs = _conv()
    steps = [("ln_structured", dict(amount=1, n=2, dim=0)), ("ln_structured", dict(amount=0.34, n=1, dim=1)),
             ("l1_unstructured", dict(amount=0.3)), ("ln_structured", dict(amount=1, n=math.inf, dim=-1)),
             ("l1_unstructured", dict(amount=10)), ("identity", {})]
    for count, (fn, kwargs) in enumerate(steps, 1):
        getattr(prune, fn)(ours, "weight", **kwargs)
        getattr(tprune, fn)(theirs, "weight", **kwargs)
        _same_state(ours, theirs)
        (hook,) = ours._forward_pre_hooks.values()
        (their_hook,) = theirs._forward_pre_hooks.values()
        assert _method_names(hook) == _method_names(their_hook) and len(_method_names(hook)) == count
    mask = np.ones((6, 3, 3, 3), np.float32)
    mask[::2, :, 0] = 0
    prune.custom_from_mask(ours, "weight", engine.tensor(mask))
    tprune.custom_from_mask(theirs, "weight", torch.tensor(mask))
    _same_state(ours, theirs)
    (hook,) = ours._forward_pre_hooks.values()
    assert _method_names(hook)[-1] == "CustomFromMask" and len(hook) == len(steps) + 1


def _method_names(hook):
    """The class names of the methods a pruning hook applied, in order."""
    return [type(m).__name__ for m in hook] if type(hook).__name__ == "PruningContainer" else [type(hook).__name__]


@needs_torch
@pytest.mark.parametrize("amount", [0.2, 0.6, 25])
def test_global_unstructured_matches_torch_over_several_layers(amount):
    (l1, t1), (l2, t2), (c, tc) = _linear(6, 5), _linear(5, 4, seed=1), _conv(seed=2)
    ours = [(l1, "weight"), (l2, "weight"), (l2, "bias"), (c, "weight")]
    theirs = [(t1, "weight"), (t2, "weight"), (t2, "bias"), (tc, "weight")]
    prune.global_unstructured(iter(ours), pruning_method=prune.L1Unstructured, amount=amount)
    tprune.global_unstructured(theirs, pruning_method=tprune.L1Unstructured, amount=amount)
    for a, b in ((l1, t1), (l2, t2), (c, tc)):
        _same_state(a, b)
    total = sum(getattr(m, n).numel() for m, n in ours)
    zeros = sum(int((getattr(m, n + "_mask") == 0).sum().item()) for m, n in ours)
    assert zeros == (amount if isinstance(amount, int) else round(amount * total))
    # again, on top of the first: only still unpruned entries count, and importance scores can be given
    scores = {(l1, "weight"): engine.ones(5, 6)}
    prune.global_unstructured(ours, prune.L1Unstructured, importance_scores=scores, amount=10)
    tprune.global_unstructured(theirs, tprune.L1Unstructured, importance_scores={(t1, "weight"): torch.ones(5, 6)},
                               amount=10)
    for a, b in ((l1, t1), (l2, t2), (c, tc)):
        _same_state(a, b)


@needs_torch
def test_remove_makes_pruning_permanent_as_torch():
    ours, theirs = _linear()
    for lib, layer, p in ((engine, ours, prune), (torch, theirs, tprune)):
        p.l1_unstructured(layer, "weight", amount=0.4)
        p.l1_unstructured(layer, "weight", amount=3)
        orig = layer.weight_orig
        assert p.remove(layer, "weight") is layer
        assert layer.weight is orig and isinstance(layer.weight, lib.nn.Parameter)
        assert not p.is_pruned(layer) and not layer._forward_pre_hooks
    _same_state(ours, theirs)
    assert list(ours.state_dict()) == ["bias", "weight"] and int((ours.weight == 0).sum().item()) == 15
    assert "weight" not in ours.__dict__


# ---- random methods: counts, not positions ------------------------------------------------------------------
def test_random_unstructured_prunes_the_amount_of_unpruned_entries():
    layer = nn.Linear(10, 8)
    prune.random_unstructured(layer, "weight", amount=0.25)
    assert int((layer.weight_mask == 0).sum().item()) == 20
    first = layer.weight_mask.numpy().copy()
    prune.random_unstructured(layer, "weight", amount=6)
    mask = layer.weight_mask.numpy()
    assert int((mask == 0).sum()) == 26 and np.all(mask[first == 0] == 0)
    assert np.array_equal(layer.weight.detach().numpy(), layer.weight_orig.detach().numpy() * mask)


def test_random_structured_prunes_whole_channels():
    layer = nn.Conv2d(4, 6, 3)
    prune.random_structured(layer, "weight", amount=2, dim=0)
    prune.random_structured(layer, "weight", amount=0.5, dim=1)
    mask = layer.weight_mask.numpy()
    assert int((mask.sum(axis=(1, 2, 3)) == 0).sum()) == 2
    assert int((mask.sum(axis=(0, 2, 3)) == 0).sum()) == 2
    assert np.all(mask.sum(axis=(2, 3)) % 9 == 0)  # every (out, in) filter is whole or gone
    engine.manual_seed(3)
    again = prune.random_structured(nn.Conv2d(4, 6, 3), "weight", amount=3, dim=-1).weight_mask.numpy()
    assert int((again.sum(axis=(0, 1, 2)) == 0).sum()) == 3


def test_random_methods_use_the_engines_generator():
    masks = []
    for _ in range(2):
        engine.manual_seed(7)
        masks.append(prune.random_unstructured(nn.Linear(9, 9), "weight", amount=0.5).weight_mask.numpy())
    np.testing.assert_array_equal(*masks)


# ---- the classes as building blocks -------------------------------------------------------------------------
def test_pruning_methods_can_be_used_and_combined_by_hand():
    t = engine.tensor([[1.0, -3.0, 2.0], [0.5, 4.0, -0.1]])
    np.testing.assert_array_equal(prune.L1Unstructured(2).prune(t).numpy(), [[1, -3, 2], [0, 4, 0]])
    scores = engine.tensor([[9.0, 9, 9], [1, 2, 9]])
    pruned = prune.LnStructured(1, n=1, dim=1).prune(t, importance_scores=scores)
    np.testing.assert_allclose(pruned.numpy(), [[0, -3, 2], [0, 4, -0.1]])

    class KeepPositive(prune.BasePruningMethod):
        PRUNING_TYPE = "unstructured"

        def compute_mask(self, t, default_mask):
            return default_mask * (t > 0).to(dtype=default_mask.dtype)

    layer = nn.Linear(3, 2)
    prune.l1_unstructured(layer, "weight", amount=1)
    KeepPositive.apply(layer, "weight")
    (container,) = layer._forward_pre_hooks.values()
    assert len(container) == 2 and isinstance(container[1], KeepPositive)
    assert np.all(layer.weight.detach().numpy() >= 0)
    one_line(lambda: container.add_pruning_method("l1"), TypeError, "is not a BasePruningMethod subclass")
    other = prune.Identity()
    other._tensor_name = "bias"
    one_line(lambda: container.add_pruning_method(other), ValueError, "parameter named 'weight'")


def test_a_pruned_model_trains_and_pruned_entries_stay_zero():
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    prune.global_unstructured([(model[0], "weight"), (model[2], "weight")], prune.L1Unstructured, amount=0.5)
    orig_before = model[0].weight_orig.detach().numpy().copy()
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(16, 4), engine.randn(16, 1)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model(x)  # the pre hook recomputes the pruned weights from the trained originals
    for layer in (model[0], model[2]):
        mask = layer.weight_mask.numpy()
        assert np.all(layer.weight.detach().numpy()[mask == 0] == 0)
    moved = model[0].weight_orig.detach().numpy() != orig_before
    assert np.any(moved) and not np.any(moved[model[0].weight_mask.numpy() == 0])


def test_state_dict_round_trips_through_save_and_load():
    engine.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    prune.random_structured(model[1], "weight", amount=1, dim=1)
    buffer = io.BytesIO()
    engine.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = engine.load(buffer)
    assert list(state) == ["0.bias", "0.weight_orig", "0.weight_mask", "1.bias", "1.weight_orig", "1.weight_mask"]
    fresh = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 2))
    prune.identity(fresh[0], "weight")
    prune.identity(fresh[1], "weight")
    fresh.load_state_dict(state)
    x = engine.randn(3, 5)
    np.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())
    np.testing.assert_array_equal(fresh[1].weight.detach().numpy(), model[1].weight.detach().numpy())


# ---- bad input: torch's error types -------------------------------------------------------------------------
BAD = {
    "amount over the count": (lambda p, m: p.l1_unstructured(m, "weight", amount=31), ValueError,
                              r"amount=31 should be smaller than the number of parameters to prune=30"),
    "negative amount": (lambda p, m: p.random_unstructured(m, "weight", amount=-1), ValueError,
                        r"amount=-1 should either be a float in the range \[0, 1\] or a non-negative integer"),
    "fraction over one": (lambda p, m: p.l1_unstructured(m, "weight", amount=1.5), ValueError, r"amount=1.5"),
    "negative fraction": (lambda p, m: p.l1_unstructured(m, "weight", amount=-0.1), ValueError, r"amount=-0.1"),
    "amount of a bad type": (lambda p, m: p.l1_unstructured(m, "weight", amount="1"), TypeError,
                             r"Invalid type for amount: 1\. Must be int or float"),
    "a bool amount": (lambda p, m: p.l1_unstructured(m, "weight", amount=True), TypeError, r"amount"),
    "no such attribute": (lambda p, m: p.l1_unstructured(m, "wieght", amount=1), AttributeError, r"wieght"),
    "a buffer": (lambda p, m: p.identity(m.register_buffer("scale", m.bias.detach()) or m, "scale"), TypeError,
                 r"scale"),
    "channels of a vector": (lambda p, m: p.ln_structured(m, "bias", amount=1, n=2, dim=0), ValueError,
                             r"Structured pruning can only be applied to multidimensional tensors"),
    "dim out of range": (lambda p, m: p.ln_structured(m, "weight", amount=1, n=2, dim=2), IndexError, r"2"),
    "too many channels": (lambda p, m: p.random_structured(m, "weight", amount=7, dim=1), ValueError,
                          r"amount=7 should be smaller than the number of parameters to prune=6"),
    "scores of another shape": (lambda p, m: p.l1_unstructured(m, "weight", 1, importance_scores=m.bias),
                                AssertionError, r"importance_scores should have the same shape"),
    "a mask of another shape": (lambda p, m: p.custom_from_mask(m, "weight", mask=m.bias > 0), AssertionError,
                                r"must match self.mask shape"),
    "remove unpruned": (lambda p, m: p.remove(m, "weight"), ValueError, r"has to be pruned before pruning"),
    "global structured": (lambda p, m: p.global_unstructured([(m, "weight")], p.RandomStructured, amount=1),
                          TypeError, r'Only "unstructured" PRUNING_TYPE supported'),
    "global of no iterable": (lambda p, m: p.global_unstructured(3, p.L1Unstructured, amount=1), TypeError,
                              r"parameters is not an Iterable"),
    "global scores no dict": (lambda p, m: p.global_unstructured([(m, "weight")], p.L1Unstructured, [1], amount=1),
                              TypeError, r"importance_scores must be of type dict"),
}


@needs_torch
@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_torchs_error_type(case):
    call, error, message = BAD[case]
    ours, theirs = _linear()
    with pytest.raises(error):
        call(tprune, theirs)
    one_line(lambda: call(prune, ours), error, message)
    assert not prune.is_pruned(ours) and list(ours._parameters) in (["weight", "bias"], ["bias", "weight"])
    assert isinstance(ours.weight, nn.Parameter) and not ours._buffers.get("weight_mask")


def test_a_parameter_that_is_none_cannot_be_pruned():
    one_line(lambda: prune.identity(nn.Linear(2, 2, bias=False), "bias"), TypeError, r"'bias' of Linear: it is None")


@needs_torch
@pytest.mark.parametrize("dim", [2, -3])
def test_structured_pruning_twice_with_a_bad_dim_keeps_the_first(dim):
    ours, theirs = _linear()
    prune.ln_structured(ours, "weight", amount=1, n=2, dim=0)
    tprune.ln_structured(theirs, "weight", amount=1, n=2, dim=0)
    with pytest.raises(IndexError):
        tprune.ln_structured(theirs, "weight", amount=1, n=2, dim=dim)
    one_line(lambda: prune.ln_structured(ours, "weight", amount=1, n=2, dim=dim), IndexError,
             rf"Invalid index {dim} for tensor of size \(5, 6\)")
    one_line(lambda: prune.random_structured(ours, "weight", amount=9, dim=1), ValueError, r"amount=9")
    # torch loses the first pruning's hook here (a later pruning of it fails); the engine keeps it
    (hook,) = ours._forward_pre_hooks.values()
    assert isinstance(hook, prune.LnStructured) and hook.dim == 0
    prune.ln_structured(ours, "weight", amount=2, n=1, dim=1)
    _, clean = _linear()
    tprune.ln_structured(clean, "weight", amount=1, n=2, dim=0)
    tprune.ln_structured(clean, "weight", amount=2, n=1, dim=1)
    _same_state(ours, clean)
    (hook,) = ours._forward_pre_hooks.values()
    assert [type(m).__name__ for m in hook] == ["LnStructured", "LnStructured"]


def test_prune_on_cuda_matches_the_cpu():
    cuda_or_skip()
    cpu = nn.Conv2d(3, 4, 3)
    gpu = nn.Conv2d(3, 4, 3).cuda()
    gpu.load_state_dict(cpu.state_dict())
    for layer in (cpu, gpu):
        prune.ln_structured(layer, "weight", amount=1, n=2, dim=0)
        prune.l1_unstructured(layer, "weight", amount=0.3)
        prune.random_unstructured(layer, "bias", amount=2)
    np.testing.assert_array_equal(gpu.weight_mask.cpu().numpy(), cpu.weight_mask.numpy())
    assert int((gpu.bias_mask == 0).sum().item()) == 2
    x = engine.randn(1, 3, 5, 5)
    gpu(x.cuda()).sum().backward()
    assert np.all(gpu.weight_orig.grad.cpu().numpy()[cpu.weight_mask.numpy() == 0] == 0)
