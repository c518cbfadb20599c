"""Optimizers: parameter trajectories equal PyTorch's, groups, errors, events and state dicts."""

import numpy as np
import pytest

import engine
from engine import nn, optim
from engine.events import OpEvent, OptimizerEvent, hub
from tests.engine.oracle import needs_torch, torch

STEPS = 30
_rng = np.random.default_rng(42)
X = _rng.standard_normal((8, 3)).astype(np.float32)
Y = _rng.standard_normal((8, 2)).astype(np.float32)
INIT = [(_rng.standard_normal(s) * 0.5).astype(np.float32) for s in [(3, 4), (4,), (4, 2)]]


def loss_of(lib, params, x, y):
    """A tiny two-layer network: mean squared error of tanh(x @ w1 + b1) @ w2."""
    w1, b1, w2 = params
    return ((lib.tanh(x @ w1 + b1) @ w2 - y) ** 2).mean()


def make_params(lib=engine):
    return [lib.tensor(a.copy(), requires_grad=True) for a in INIT]


def train(opt, params, lib=engine, steps=STEPS, record=True):
    """Run `steps` optimizer steps; returns the parameters (as numpy) after each one."""
    x, y = lib.tensor(X), lib.tensor(Y)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        loss_of(lib, params, x, y).backward()
        opt.step()
        if record:
            history.append([p.detach().numpy().copy() for p in params])
    return history

def step_with_norms(opt) -> OptimizerEvent:
    """The OptimizerEvent of one `opt.step()`, with update and weight norms asked for."""
    events = []
    unsubscribe, release = hub.subscribe(events.append), hub.request_optimizer_norms()
    try:
        opt.step()
    finally:
        unsubscribe()
        release()
    (event,) = [e for e in events if isinstance(e, OptimizerEvent)]
    return event



CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.01, maximize=True)),
    ("SGD", dict(lr=0.01, momentum=0.8, weight_decay=0.05, nesterov=True, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, amsgrad=True, weight_decay=0.05)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3)),
    ("AdamW", dict(lr=0.01, maximize=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9)),
    ("RMSprop", dict(lr=0.01, momentum=0.5)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1, eps=1e-6)),
    ("RMSprop", dict(lr=0.005, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-3)),
    ("Adagrad", dict(lr=0.05, maximize=True)),
]


def assert_same_trajectory(ours, theirs):
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for i, (pa, pb) in enumerate(zip(a, b)):
            np.testing.assert_allclose(pa, pb, rtol=1e-3, atol=1e-5, err_msg=f"step {step + 1}, param {i}")


@needs_torch
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[f"{n}-{'-'.join(k)}" for n, k in CASES])
def test_trajectory_matches_torch(name, kwargs):
    ours = make_params()
    theirs = make_params(torch)
    a = train(getattr(optim, name)(ours, **kwargs), ours)
    b = train(getattr(torch.optim, name)(theirs, **kwargs), theirs, lib=torch)
    assert not np.allclose(a[-1][0], INIT[0])  # the parameters did move
    assert_same_trajectory(a, b)


@needs_torch
def test_param_groups_with_their_own_hyperparameters_match_torch():
    def groups(p):
        return [{"params": [p[0]], "lr": 0.2, "momentum": 0.5}, {"params": [p[1], p[2]]}]

    ours, theirs = make_params(), make_params(torch)
    a = train(optim.SGD(groups(ours), lr=0.05, momentum=0.9), ours)
    b = train(torch.optim.SGD(groups(theirs), lr=0.05, momentum=0.9), theirs, lib=torch)
    assert_same_trajectory(a, b)


def test_groups_get_defaults_filled_in():
    w, b = engine.zeros(2, requires_grad=True), engine.zeros(1, requires_grad=True)
    opt = optim.Adam([{"params": [w], "lr": 0.5}, {"params": b}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    assert opt.param_groups[1]["betas"] == (0.9, 0.999) and opt.param_groups[1]["params"] == [b]
    c = engine.zeros(3, requires_grad=True)
    opt.add_param_group({"params": [c], "weight_decay": 0.1})
    assert opt.param_groups[2]["weight_decay"] == 0.1 and opt.param_groups[2]["lr"] == 0.1


def test_closure_is_evaluated_with_grad_and_its_loss_returned():
    params = make_params()
    opt = optim.SGD(params, lr=0.1)
    x, y = engine.tensor(X), engine.tensor(Y)

    def closure():
        opt.zero_grad()
        loss = loss_of(engine, params, x, y)
        loss.backward()
        return loss

    with engine.no_grad():  # the closure still records a graph
        first = opt.step(closure)
    second = opt.step(closure)
    assert second.item() < first.item()


def test_zero_grad_sets_none_or_zeros_in_place():
    w = engine.ones(3, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and w.grad.tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None


def test_parameters_without_grad_are_left_alone():
    w, frozen = engine.ones(2, requires_grad=True), engine.ones(2, requires_grad=True)
    opt = optim.Adam([w, frozen], lr=0.1)
    (w * 3.0).sum().backward()
    opt.step()
    assert frozen.tolist() == [1.0, 1.0] and w.tolist() != [1.0, 1.0]
    assert frozen not in opt.state


def test_step_updates_in_place_and_bumps_the_version():
    w = engine.ones(3, requires_grad=True)
    storage = w.array
    opt = optim.SGD([w], lr=0.5)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    before = w._version
    opt.step()
    assert w.array is storage and w._version == before + 1
    np.testing.assert_allclose(w.tolist(), [0.0, 0.0, 0.0])
    with pytest.raises(RuntimeError):  # the graph saved w before the step: backward must notice
        loss.backward()


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: optim.SGD(p, lr=-1), "Invalid learning rate: -1"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov momentum requires a momentum"),
    (lambda p: optim.Adam(p, eps=-1.0), "Invalid epsilon value: -1.0"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda p: optim.AdamW(p, lr=float("nan")), "Invalid learning rate: nan"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "Invalid alpha value: -0.1"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "Invalid lr_decay value: -1"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "Invalid initial_accumulator_value value: -1"),
    (lambda p: optim.Adam([{"params": p, "lr": -2}]), "Invalid learning rate: -2"),
])
def test_bad_hyperparameters_are_refused(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        make(make_params())


def test_bad_parameter_lists_are_refused():
    w = engine.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="wrap it in a list"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD({w}, lr=0.1)


def test_step_emits_an_event_with_norms_per_named_parameter():
    class Param(engine.Tensor):  # what engine.nn.Parameter looks like to the optimizer: a named leaf
        pass

    w = Param(np.array([3.0, 4.0], dtype=np.float32), requires_grad=True)
    w._name = "layer.weight"
    b = engine.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w, b], lr=0.5)
    (w * w).sum().backward()
    (b * 2.0).sum().backward()
    event = step_with_norms(opt)
    assert event.optimizer == "SGD" and event.lrs == (0.5,)
    assert set(event.update_norms) == {"layer.weight", "group0.1"}
    # w moves by lr * 2w = w, so it lands at 0; b moves by lr * 2 = 1
    assert event.update_norms["layer.weight"] == pytest.approx(5.0)
    assert event.weight_norms["layer.weight"] == pytest.approx(0.0)
    assert event.update_norms["group0.1"] == pytest.approx(1.0)
    assert event.weight_norms["group0.1"] == pytest.approx(0.0)
    assert event.grad_norms == pytest.approx({"layer.weight": 10.0, "group0.1": 2.0})  # |2w| and |2|


def test_named_parameters_name_the_event_entries_and_state_dict():
    w, b = make_params()[:2]
    opt = optim.Adam([("fc.weight", w), ("fc.bias", b)], lr=0.1)
    (w.sum() + b.sum()).backward()
    event = step_with_norms(opt)
    assert list(event.update_norms) == ["fc.weight", "fc.bias"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["fc.weight", "fc.bias"]


def test_norms_are_only_computed_on_request():
    w = engine.tensor([3.0, 4.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.5)
    (w * w).sum().backward()
    events = []
    unsubscribe = hub.subscribe(events.append)
    try:
        opt.step()
    finally:
        unsubscribe()
    (event,) = [e for e in events if isinstance(e, OptimizerEvent)]
    assert event.lrs == (0.5,) and event.update_norms == {} and event.weight_norms == {}


def test_step_ends_an_iteration_so_op_keys_restart():
    w = engine.ones(2, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    keys = []
    unsubscribe = hub.subscribe(lambda e: keys.append(e.key) if isinstance(e, OpEvent) else None)
    try:
        for _ in range(2):
            opt.zero_grad()
            (w * w).sum().backward()
            opt.step()
    finally:
        unsubscribe()
    assert keys[: len(keys) // 2] == keys[len(keys) // 2:]  # the same keys in both iterations


# ---- state dicts -----------------------------------------------------------------------------
RESUMABLE = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.05)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
]


@pytest.mark.parametrize(("name", "kwargs"), RESUMABLE, ids=[n for n, _ in RESUMABLE])
def test_state_dict_round_trip_through_a_file_continues_identically(name, kwargs, tmp_path):
    params = make_params()
    opt = getattr(optim, name)(params, **kwargs)
    train(opt, params, steps=10, record=False)
    engine.save({"optimizer": opt.state_dict(), "params": [p.detach() for p in params]}, tmp_path / "ckpt")

    checkpoint = engine.load(tmp_path / "ckpt")
    resumed = [engine.tensor(p, requires_grad=True) for p in checkpoint["params"]]
    opt2 = getattr(optim, name)(resumed, lr=123.0)  # hyper-parameters come back from the state dict
    opt2.load_state_dict(checkpoint["optimizer"])
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]

    a = train(opt, params, steps=10)
    b = train(opt2, resumed, steps=10)
    for pa, pb in zip(a[-1], b[-1]):
        np.testing.assert_array_equal(pa, pb)


def test_state_dict_has_pytorch_structure_and_is_a_snapshot():
    params = make_params()
    opt = optim.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.01}], lr=0.1)
    train(opt, params, steps=2, record=False)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.01
    assert set(sd["state"]) == {0, 1, 2}
    assert sd["state"][0]["step"] == 2 and set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    kept = sd["state"][0]["exp_avg"].numpy().copy()
    train(opt, params, steps=1, record=False)
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"].numpy(), kept)


@needs_torch
def test_state_dict_values_match_torch():
    ours, theirs = make_params(), make_params(torch)
    a, b = optim.Adam(ours, lr=0.05), torch.optim.Adam(theirs, lr=0.05)
    train(a, ours, steps=5, record=False)
    train(b, theirs, lib=torch, steps=5, record=False)
    sa, sb = a.state_dict(), b.state_dict()
    assert {k: v for k, v in sa["param_groups"][0].items()} == \
        {k: v for k, v in sb["param_groups"][0].items() if k in sa["param_groups"][0]}
    for i in range(3):
        assert sa["state"][i]["step"] == int(sb["state"][i]["step"])
        np.testing.assert_allclose(sa["state"][i]["exp_avg_sq"].numpy(), sb["state"][i]["exp_avg_sq"].numpy(),
                                   rtol=1e-3, atol=1e-7)


def test_load_state_dict_refuses_a_different_layout():
    params = make_params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    train(opt, params, steps=1, record=False)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.SGD(params[:2], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="exactly the keys"):
        optim.SGD(params, lr=0.1).load_state_dict({"state": {}})
    other = [engine.zeros(5, 5, requires_grad=True) for _ in range(3)]
    with pytest.raises(ValueError, match="different model"):
        optim.SGD(other, lr=0.1).load_state_dict(sd)


def test_repr_lists_groups_and_hyperparameters():
    text = repr(optim.SGD(make_params(), lr=0.1, momentum=0.9))
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "momentum: 0.9" in text


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True),
    lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.1),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
], ids=["sgd-nesterov", "adam-amsgrad", "adamw-decay", "rmsprop-centered", "adagrad"])
def test_update_norms_equal_the_parameters_change(make):
    """Whether read from the step an optimizer returns or from a copy, a norm is |after - before|."""
    params = make_params()
    opt = make(params)
    train(opt, params, steps=3, record=False)
    before = [p.detach().numpy().copy() for p in params]
    opt.zero_grad()
    loss_of(engine, params, engine.tensor(X), engine.tensor(Y)).backward()
    event = step_with_norms(opt)
    after = [p.detach().numpy() for p in params]
    expected_updates = [float(np.linalg.norm((a - b).astype(np.float64))) for a, b in zip(after, before)]
    expected_weights = [float(np.linalg.norm(a.astype(np.float64))) for a in after]
    np.testing.assert_allclose(list(event.update_norms.values()), expected_updates, rtol=1e-4)
    np.testing.assert_allclose(list(event.weight_norms.values()), expected_weights, rtol=1e-5)
    grads = [float(np.linalg.norm(p.grad.numpy().astype(np.float64))) for p in params]  # what the step used
    np.testing.assert_allclose(list(event.grad_norms.values()), grads, rtol=1e-5)
    assert list(event.grad_norms) == list(event.update_norms)


def test_optimizer_of_finds_the_newest_live_optimizer_of_a_models_parameters():
    import gc

    from engine.optim.optimizer import optimizer_of

    model, other = nn.Linear(3, 2), nn.Linear(3, 2)
    assert optimizer_of(model.parameters()) is None
    first = engine.optim.SGD(model.parameters(), lr=0.1)
    engine.optim.Adam(other.parameters())
    assert optimizer_of(model.parameters()) is first
    second = engine.optim.Adam([{"params": [model.bias]}])  # one of its parameters is enough
    assert optimizer_of(model.parameters()) is second
    del second
    gc.collect()
    assert optimizer_of(model.parameters()) is first  # a collected one is gone


def test_live_optimizers_follow_optimizers_made_and_collected_between_calls():
    import gc

    from engine.optim.optimizer import live_optimizers

    gc.collect()
    older = live_optimizers()  # other tests' optimizers still alive
    model = nn.Linear(3, 2)
    first = engine.optim.SGD(model.parameters(), lr=0.1)
    assert live_optimizers() == [*older, first]
    assert live_optimizers() == [*older, first]  # asked again with nothing made or collected
    second = engine.optim.Adam(model.parameters())
    assert live_optimizers() == [*older, first, second]  # oldest first
    del second
    gc.collect()
    assert live_optimizers() == [*older, first]  # a collected one is gone
    del first
    gc.collect()
    third = engine.optim.SGD(model.parameters(), lr=0.1)  # one collected, one made: as many as before
    assert live_optimizers() == [*older, third]
