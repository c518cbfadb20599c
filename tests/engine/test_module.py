"""Module behaviour: registration, the module tree, state_dict, hooks, events, settings, init, clipping."""

import copy
import math

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.events import ModuleEvent, OpEvent
from tests.engine.oracle import needs_torch, same_repr, torch


class MLP(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.fc1 = nn.Linear(4, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, 2)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def torch_mlp(width: int = 8):
    class TorchMLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(4, width)
            self.act = torch.nn.ReLU()
            self.fc2 = torch.nn.Linear(width, 2)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    return TorchMLP()


def _copy(state):
    return {k: v.detach().numpy().copy() for k, v in state.items()}


# ---- registration and the module tree ---------------------------------------------------------
def test_attribute_assignment_registers_parameters_buffers_and_modules():
    m = nn.Module()
    m.w = nn.Parameter(engine.ones(3))
    m.register_buffer("stat", engine.zeros(3))
    m.register_buffer("scratch", engine.zeros(2), persistent=False)
    m.child = nn.Linear(3, 2)
    m.plain = engine.ones(1)  # a plain tensor attribute is neither a parameter nor a buffer
    assert [n for n, _ in m.named_parameters()] == ["w", "child.weight", "child.bias"]
    assert [n for n, _ in m.named_buffers()] == ["stat", "scratch"]
    assert list(m.state_dict()) == ["w", "stat", "child.weight", "child.bias"]
    assert [n for n, _ in m.named_children()] == ["child"]
    assert m.w is m._parameters["w"] and m.child is m._modules["child"]
    with pytest.raises(TypeError, match="parameter 'w'"):
        m.w = engine.ones(3)
    m.stat = engine.ones(3)  # a buffer may be replaced by any tensor
    assert m.stat.numpy().tolist() == [1, 1, 1]
    del m.child
    assert [n for n, _ in m.named_parameters()] == ["w"]
    with pytest.raises(AttributeError, match="has no attribute 'child'"):
        _ = m.child


def test_assigning_before_init_and_bad_names_fail_clearly():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(engine.ones(1))

    with pytest.raises(AttributeError, match=r"before Module\.__init__"):
        Broken()
    m = nn.Module()
    with pytest.raises(KeyError, match="can't be empty or contain"):
        m.register_buffer("a.b", engine.ones(1))
    m.x = 1
    with pytest.raises(KeyError, match="already exists"):
        m.register_parameter("x", None)


def test_named_modules_shared_modules_once_and_parameters_deduplicated():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]
    assert len(list(seq.parameters())) == 2
    names = [n for n, _ in seq.named_parameters(remove_duplicate=False)]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert seq.get_submodule("0") is shared
    assert seq.get_parameter("0.bias") is shared.bias
    assert next(n for n, _ in MLP().named_parameters(prefix="model")) == "model.fc1.weight"


def test_train_eval_apply_requires_grad_and_zero_grad():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    assert m.eval() is m and not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "Dropout", "Sequential"]
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    m.requires_grad_(True)
    m(engine.randn(3, 2)).sum().backward()
    m.zero_grad(set_to_none=False)
    assert all(not np.any(p.grad.numpy()) for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_to_dtype_converts_in_place_and_keeps_parameter_identity():
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    weight = m[0].weight
    m.to(engine.float64)
    assert m[0].weight is weight and weight.dtype == engine.float64
    assert m[1].running_mean.dtype == engine.float64
    assert m[1].num_batches_tracked.dtype == engine.int64  # only floating tensors are cast
    assert m(engine.randn(4, 3, dtype=engine.float64)).dtype == engine.float64
    with pytest.raises(TypeError, match="floating point"):
        m.to(engine.int64)


def test_deepcopy_gives_independent_parameters():
    m = MLP()
    c = copy.deepcopy(m)
    assert isinstance(c.fc1.weight, nn.Parameter)
    np.testing.assert_array_equal(c.fc1.weight.detach().numpy(), m.fc1.weight.detach().numpy())
    with engine.no_grad():
        c.fc1.weight.array[...] = 0
    assert np.any(m.fc1.weight.detach().numpy())


def test_parameter_repr_and_defaults():
    p = nn.Parameter(engine.tensor([1.0, 2.0]))
    assert p.requires_grad and p.is_leaf
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"


@needs_torch
def test_repr_matches_torch_for_a_small_sequential():
    def build(n):
        return n.Sequential(n.Linear(4, 8), n.ReLU(), n.Dropout(0.1), n.Linear(8, 2, bias=False),
                            n.Sequential(n.LayerNorm(2), n.GELU("tanh")))

    assert same_repr(build(nn), build(torch.nn))
    blocks = [nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()]
    assert repr(nn.ModuleList(blocks)) == repr(torch.nn.ModuleList(
        [torch.nn.Linear(2, 2) for _ in range(3)] + [torch.nn.ReLU()]))


def test_sequential_indexing_slicing_and_editing():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and list(head) == [a, b]
    assert head(engine.randn(5, 2)).shape == (5, 3)
    seq.append(nn.Sigmoid())
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]  # renumbered, as torch does
    assert seq(engine.randn(5, 2)).shape == (5, 1)
    with pytest.raises(IndexError, match="out of range"):
        seq[7]
    d = nn.ModuleDict({"enc": nn.Linear(2, 2)})
    d["dec"] = nn.Linear(2, 1)
    assert list(d.keys()) == ["enc", "dec"] and "dec" in d
    assert [n for n, _ in d.named_parameters()][-1] == "dec.bias"


# ---- state_dict ----------------------------------------------------------------------------------
@needs_torch
def test_state_dict_keys_equal_torchs_and_torch_weights_load():
    def build(n):
        return n.Sequential(n.Conv2d(1, 2, 3), n.BatchNorm2d(2), n.Flatten(), n.Linear(8, 3),
                            n.ModuleList([n.LayerNorm(3)]))

    ours, theirs = build(nn), build(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "1.num_batches_tracked" in ours.state_dict()
    result = ours.load_state_dict(theirs.state_dict())  # torch tensors directly
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k].numpy(), v.numpy())


def test_state_dict_is_detached_and_shares_values():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad
    assert m.state_dict(keep_vars=True)["weight"] is m.weight


def test_load_state_dict_reports_every_problem_at_once_and_changes_nothing():
    m = MLP()
    before = _copy(m.state_dict())
    bad = _copy(MLP().state_dict())
    del bad["fc2.bias"]
    bad["fc1.weight"] = np.zeros((3, 3), np.float32)
    bad["extra.weight"] = np.zeros(1, np.float32)
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict(bad)
    msg = str(err.value)
    assert "Error(s) in loading state_dict for MLP" in msg
    assert 'Missing key(s) in state_dict: "fc2.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    assert "size mismatch for fc1.weight: copying a param with shape [3, 3]" in msg
    for k, v in m.state_dict().items():
        assert v.numpy().tobytes() == before[k].tobytes(), f"{k} changed although loading failed"


def test_load_state_dict_non_strict_returns_keys_and_loads_the_rest():
    m, src = MLP(), MLP()
    sd = _copy(src.state_dict())
    del sd["fc2.bias"]
    sd["bogus"] = np.ones(1, np.float32)
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert missing == ["fc2.bias"] and unexpected == ["bogus"]
    np.testing.assert_array_equal(m.fc1.weight.detach().numpy(), src.fc1.weight.detach().numpy())
    sd["fc1.weight"] = np.zeros((1, 1), np.float32)
    with pytest.raises(RuntimeError, match=r"size mismatch for fc1\.weight"):
        m.load_state_dict(sd, strict=False)  # shape mismatches are errors even when not strict


def test_load_state_dict_keeps_the_parameter_objects():
    m = nn.Linear(2, 2)
    w = m.weight
    m.load_state_dict({"weight": engine.ones(2, 2, dtype=engine.float64), "bias": np.zeros(2)})
    assert m.weight is w and w.dtype == engine.float32 and w.detach().numpy().tolist() == [[1, 1], [1, 1]]


# ---- hooks ------------------------------------------------------------------------------------------
def test_forward_hooks_fire_in_order_can_replace_and_be_removed():
    m = nn.Linear(2, 2)
    calls = []
    m.register_forward_pre_hook(lambda mod, args: calls.append("pre1"))
    m.register_forward_pre_hook(lambda mod, args: calls.append("pre0"), prepend=True)
    h = m.register_forward_hook(lambda mod, args, out: calls.append("post"))
    m.register_forward_hook(lambda mod, args, out: out * 0)
    x = engine.randn(3, 2)
    out = m(x)
    assert calls == ["pre0", "pre1", "post"]
    assert not np.any(out.detach().numpy())
    h.remove()
    calls.clear()
    m(x)
    assert calls == ["pre0", "pre1"]


def test_forward_pre_hook_can_replace_inputs_and_see_kwargs():
    m = nn.Identity()
    m.register_forward_pre_hook(lambda mod, args: (args[0] + 1,))
    assert m(engine.zeros(2)).numpy().tolist() == [1, 1]
    seen = {}
    mha = nn.MultiheadAttention(4, 2)
    with mha.register_forward_pre_hook(lambda mod, args, kwargs: seen.update(kwargs), with_kwargs=True):
        x = engine.randn(3, 1, 4)
        mha(x, x, x, need_weights=False)
    assert seen == {"need_weights": False}
    assert not mha._forward_pre_hooks  # leaving the with-block removed it


@needs_torch
def test_full_backward_hook_sees_the_same_gradients_as_torch():
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    ours.load_state_dict(theirs.state_dict())
    got = {}

    def keep(name):
        def hook(module, grad_input, grad_output):
            got[name] = (grad_input, grad_output)
        return hook

    ours.register_full_backward_hook(keep("ours"))
    theirs.register_full_backward_hook(keep("theirs"))
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    xe, xt = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    # x also feeds another branch: grad_input must hold only what flowed through the module
    ((ours(xe) ** 2).sum() + (xe * 3).sum()).backward()
    ((theirs(xt) ** 2).sum() + (xt * 3).sum()).backward()
    (gi, go), (tgi, tgo) = got["ours"], got["theirs"]
    assert len(gi) == len(tgi) == 1 and len(go) == len(tgo) == 1
    np.testing.assert_allclose(gi[0].numpy(), tgi[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(go[0].numpy(), tgo[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


@needs_torch
def test_full_backward_hook_with_two_inputs_matches_torch():
    ours, theirs = nn.Bilinear(3, 2, 4), torch.nn.Bilinear(3, 2, 4)
    ours.load_state_dict(theirs.state_dict())
    got = {}
    ours.register_full_backward_hook(lambda m, gi, go: got.__setitem__("ours", gi))
    theirs.register_full_backward_hook(lambda m, gi, go: got.__setitem__("theirs", gi))
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((5, 2)).astype(np.float32)
    (ours(engine.tensor(a, requires_grad=True), engine.tensor(b, requires_grad=True)) ** 2).sum().backward()
    (theirs(torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)) ** 2).sum().backward()
    assert len(got["ours"]) == len(got["theirs"]) == 2
    for g, ref in zip(got["ours"], got["theirs"]):
        np.testing.assert_allclose(g.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_full_backward_hook_can_replace_the_input_gradient():
    m = nn.Linear(3, 2)
    m.register_full_backward_hook(lambda mod, gi, go: (gi[0] * 0,))
    x = engine.randn(4, 3, requires_grad=True)
    m(x).sum().backward()
    assert not np.any(x.grad.numpy())
    assert np.any(m.weight.grad.numpy())  # parameters still get theirs


def test_full_backward_hook_without_input_gradients_still_fires():
    m = nn.Linear(3, 2)
    got = []
    m.register_full_backward_hook(lambda mod, gi, go: got.append((gi, go)))
    m(engine.randn(4, 3)).sum().backward()
    assert len(got) == 1 and got[0][0] == (None,) and got[0][1][0].shape == (4, 2)


# ---- module events and paths -----------------------------------------------------------------------
def _record(fn):
    events = []
    unsubscribe = engine.hub.subscribe(events.append)
    try:
        out = fn()
    finally:
        unsubscribe()
    return events, out


def test_module_events_carry_paths_and_ops_carry_module_keys():
    m = MLP()
    x = engine.randn(3, 4)
    events, out = _record(lambda: m(x))
    mods = [(e.path, e.cls, e.enter) for e in events if isinstance(e, ModuleEvent)]
    assert mods == [
        ("MLP", "MLP", True), ("MLP.fc1", "Linear", True), ("MLP.fc1", "Linear", False),
        ("MLP.act", "ReLU", True), ("MLP.act", "ReLU", False),
        ("MLP.fc2", "Linear", True), ("MLP.fc2", "Linear", False), ("MLP", "MLP", False),
    ]
    first, last = events[0], events[-1]
    assert first.tensors == (x.id,) and last.tensors == (out.id,)
    keys = [e.key for e in events if isinstance(e, OpEvent)]
    assert "MLP.fc1/linear:0" in keys and "MLP.act/relu:0" in keys and "MLP.fc2/linear:0" in keys
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)
    assert engine.hub.module_path == ""  # the call left the module scope


def test_paths_through_containers_and_unregistered_modules():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return nn.Tanh()(x)  # built on the fly: not registered in Net

    events, _ = _record(lambda: Net()(engine.randn(1, 2)))
    paths = [e.path for e in events if isinstance(e, ModuleEvent) and e.enter]
    assert paths == ["Net", "Net.blocks.0", "Net.blocks.1", "Net.Tanh"]
    events, _ = _record(lambda: nn.Sequential(nn.Linear(2, 2), nn.ReLU())(engine.randn(1, 2)))
    assert [e.path for e in events if isinstance(e, ModuleEvent) and e.enter] == \
        ["Sequential", "Sequential.0", "Sequential.1"]


def test_module_scope_is_left_after_an_exception_and_exit_event_still_sent():
    m = nn.Sequential(nn.Linear(2, 3), nn.Linear(2, 3))
    events = []
    unsubscribe = engine.hub.subscribe(events.append)
    try:
        with pytest.raises(ValueError, match="linear"):
            m(engine.randn(1, 2))
    finally:
        unsubscribe()
    assert engine.hub.module_path == ""
    enters = sum(1 for e in events if isinstance(e, ModuleEvent) and e.enter)
    exits = sum(1 for e in events if isinstance(e, ModuleEvent) and not e.enter)
    assert enters == exits == 3


def test_ops_get_module_keys_even_when_nobody_listens():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(engine.hub.module_path)
            return x

    nn.Sequential(Probe())(engine.zeros(1))
    assert seen == ["Sequential.0"]


# ---- runtime-editable settings ------------------------------------------------------------------------
def test_set_setting_validates_and_leaves_the_module_unchanged_on_error():
    d = nn.Dropout(0.2)
    with pytest.raises(ValueError) as err:
        d.set_setting("p", 1.5)
    msg = str(err.value)
    assert "Dropout" in msg and "'p'" in msg and "1.5" in msg and "[0, 1]" in msg
    assert d.p == 0.2
    with pytest.raises(ValueError, match="a float"):
        d.set_setting("p", "high")
    d.set_setting("p", 1)
    assert d.p == 1.0 and isinstance(d.p, float)
    assert not np.any(d(engine.ones(10)).numpy())  # the change took effect: everything dropped


def test_shape_changing_attributes_are_refused():
    lin = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"out_features.*not a runtime-editable setting.*shapes"):
        lin.set_setting("out_features", 4)
    assert lin.out_features == 2
    with pytest.raises(ValueError, match="has no setting 'nonsense'"):
        lin.set_setting("nonsense", 1)
    assert lin.editable_settings() == []


def test_choices_open_bounds_and_optional_settings():
    g = nn.GELU()
    with pytest.raises(ValueError, match="one of 'none', 'tanh'"):
        g.set_setting("approximate", "fast")
    g.set_setting("approximate", "tanh")
    assert repr(g) == "GELU(approximate='tanh')"
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"\(0, inf\)"):
        bn.set_setting("eps", 0.0)
    bn.set_setting("momentum", None)  # None: a cumulative average, as in torch
    with pytest.raises(ValueError, match="momentum"):
        bn.set_setting("momentum", float("nan"))
    info = bn.editable_settings()
    assert [s["name"] for s in info] == ["momentum", "eps"]
    assert info[0]["value"] is None and info[1]["value"] == 1e-5 and info[1]["low_open"]
    with pytest.raises(ValueError, match=r"a bool|an integer|a float"):
        nn.LeakyReLU().set_setting("negative_slope", True)


# ---- init -----------------------------------------------------------------------------------------
def test_linear_default_init_matches_kaiming_uniform_theory():
    lin = nn.Linear(1000, 500)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    bound = 1 / math.sqrt(1000)  # kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.mean()) < 0.01 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert np.abs(b).max() <= bound and b.std() > 0.5 * bound / math.sqrt(3)


def test_conv_default_init_uses_the_receptive_field():
    conv = nn.Conv2d(16, 32, 5)
    bound = 1 / math.sqrt(16 * 25)
    w = conv.weight.detach().numpy()
    assert np.abs(w).max() <= bound and abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound


@pytest.mark.parametrize("fn,expected_std", [
    (lambda t: nn.init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / 400)),
    (lambda t: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / 300)),
    (lambda t: nn.init.xavier_normal_(t), math.sqrt(2 / 700)),
    (lambda t: nn.init.xavier_uniform_(t), math.sqrt(2 / 700)),
    (lambda t: nn.init.normal_(t, 1.0, 0.5), 0.5),
])
def test_init_distributions_have_the_theoretical_std(fn, expected_std):
    t = engine.empty(300, 400)
    assert fn(t) is t
    assert abs(t.numpy().std() - expected_std) < 0.02 * expected_std


def test_trunc_normal_orthogonal_constant_and_errors():
    t = nn.init.trunc_normal_(engine.empty(200, 200), std=1.0, a=-1.0, b=0.5).numpy()
    assert t.min() >= -1.0 and t.max() <= 0.5 and t.min() < -0.99 and t.max() > 0.49
    q = nn.init.orthogonal_(engine.empty(4, 7), gain=2.0).numpy()
    np.testing.assert_allclose(q @ q.T, 4 * np.eye(4), atol=1e-5)
    assert nn.init.constant_(engine.empty(2), 3.0).numpy().tolist() == [3, 3]
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(engine.empty(5))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.calculate_gain("swish")


@needs_torch
@pytest.mark.parametrize("args", [("linear",), ("tanh",), ("relu",), ("leaky_relu",), ("leaky_relu", 0.2),
                                  ("selu",), ("conv2d",), ("sigmoid",)])
def test_calculate_gain_matches_torch(args):
    assert nn.init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args))


def test_init_is_reproducible_with_manual_seed():
    engine.manual_seed(3)
    a = nn.Linear(5, 5).weight.detach().numpy().copy()
    engine.manual_seed(3)
    b = nn.Linear(5, 5).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


# ---- gradient clipping --------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(norm_type):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(np.float32) * 3 for s in [(3, 4), (5,)]]
    ours = [nn.Parameter(engine.zeros(g.shape)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
    for o, t, g in zip(ours, theirs, grads):
        o.grad, t.grad = engine.tensor(g), torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, 1.5, norm_type)
    ref = torch.nn.utils.clip_grad_norm_(theirs, 1.5, norm_type)
    assert float(total) == pytest.approx(float(ref), rel=1e-5)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_clip_grad_norm_leaves_small_gradients_and_clip_value_clamps():
    p = nn.Parameter(engine.zeros(3))
    p.grad = engine.tensor([0.1, -0.2, 0.2])
    assert float(nn.utils.clip_grad_norm_(p, 10.0)) == pytest.approx(0.3)
    np.testing.assert_allclose(p.grad.numpy(), [0.1, -0.2, 0.2], rtol=1e-5)
    p.grad = engine.tensor([0.5, -3.0, 2.0])
    nn.utils.clip_grad_value_([p], 1.0)
    assert p.grad.numpy().tolist() == [0.5, -1.0, 1.0]
    p.grad = engine.tensor([float("nan"), 1.0, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


# ---- ParameterList and ParameterDict ------------------------------------------------------------
def scaled(lib):
    """The same module written with engine or torch: a Linear, a ParameterList and a ParameterDict."""

    class Scaled(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = lib.nn.Linear(3, 3)
            self.scales = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(3)), lib.full((3,), 2.0)])
            self.shifts = lib.nn.ParameterDict({"a": lib.nn.Parameter(lib.zeros(3))})
            self.shifts["b"] = lib.nn.Parameter(lib.ones(3))

        def forward(self, x):
            for s in self.scales:
                x = self.fc(x) * s
            return x + self.shifts["a"] + self.shifts["b"]

    return Scaled()


@needs_torch
def test_parameter_containers_register_train_and_name_like_torch():
    ours, theirs = scaled(engine), scaled(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert all(isinstance(p, nn.Parameter) for p in ours.scales)  # a plain tensor was made a Parameter
    ours.load_state_dict({k: engine.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    ours(engine.tensor(x)).pow(2).sum().backward()
    theirs(torch.tensor(x)).pow(2).sum().backward()
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-3, atol=1e-4, err_msg=name)


def test_parameter_containers_behave_like_list_and_dict():
    plist = nn.ParameterList()
    plist.append(engine.ones(2)).extend([engine.zeros(1)])
    assert len(plist) == 2 and plist[-1].shape == (1,) and len(plist[:1]) == 1
    plist[0] = engine.full((2,), 3.0)
    assert plist[0].requires_grad and [n for n, _ in plist.named_parameters()] == ["0", "1"]
    pdict = nn.ParameterDict([("w", engine.ones(2))])
    assert "w" in pdict and list(pdict.keys()) == ["w"]
    assert pdict.pop("w").shape == (2,) and len(pdict) == 0
    with pytest.raises(TypeError, match="ParameterList holds tensors"):
        plist.append(3.0)
    plist.insert(0, engine.zeros(3, 2))  # renumbered, as in a ModuleList
    assert [n for n, _ in plist.named_parameters()] == ["0", "1", "2"]
    assert repr(plist) == ("ParameterList(\n    (0): Parameter containing: [engine.float32 of size 3x2]\n"
                           "    (1): Parameter containing: [engine.float32 of size 2]\n"
                           "    (2): Parameter containing: [engine.float32 of size 1]\n)")
    assert plist.pop(0).shape == (3, 2) and len(plist) == 2 and repr(nn.ParameterList()) == "ParameterList()"
