"""NAdam, RAdam, Adadelta, Adamax, Rprop, ASGD and LBFGS: PyTorch's trajectories, state, errors and events."""

import contextlib

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import nn, optim
from engine.debug import Debugger
from engine.events import OpEvent, OptimizerEvent, hub
from engine.optim.optimizer import SCALAR_STATE
from tests.engine.debug.helpers import label
from tests.engine.oracle import cuda_or_skip, needs_torch, torch

_rng = np.random.default_rng(7)
X = _rng.standard_normal((8, 3))
Y = _rng.standard_normal((8, 2))
INIT = [_rng.standard_normal(s) * 0.5 for s in [(3, 4), (4,), (4, 2)]]
TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-12), np.float32: dict(rtol=1e-3, atol=1e-5)}
# L-BFGS amplifies the rounding of dot products summed in another order than PyTorch's (about 100x per
# 20 iterations here): two steps, and a looser float64 tolerance
LBFGS_TOLERANCE = dict(rtol=1e-7, atol=1e-10)


def loss_of(lib, params, x, y):
    """A tiny two-layer network: mean squared error of tanh(x @ w1 + b1) @ w2."""
    w1, b1, w2 = params
    return ((lib.tanh(x @ w1 + b1) @ w2 - y) ** 2).mean()


def make_params(lib=engine, dtype=np.float64):
    return [lib.tensor(a.astype(dtype), requires_grad=True) for a in INIT]


@contextlib.contextmanager
def default_dtype_like(dtype):
    """Both libraries keep scalar state (the step, NAdam's mu_product, ASGD's eta) in the default dtype: the
    parameters' dtype here, so that float64 runs agree to float64 rounding."""
    before, ours = torch.get_default_dtype(), engine.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    engine.set_default_dtype(engine.float64 if dtype == np.float64 else engine.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(before)
        engine.set_default_dtype(ours)


def train_pair(ours, mine, theirs, params, steps, dtype):
    """Step both optimizers with the same gradients (the engine's, of the engine's parameters)."""
    x, y = engine.tensor(X.astype(dtype)), engine.tensor(Y.astype(dtype))
    history = []
    for _ in range(steps):
        ours.zero_grad()
        loss_of(engine, mine, x, y).backward()
        for p, tp in zip(mine, params):
            tp.grad = torch.tensor(p.grad.numpy().copy())
        ours.step()
        theirs.step()
        history.append(([p.detach().numpy().copy() for p in mine], [tp.detach().numpy().copy() for tp in params]))
    return history


def assert_same(history, dtype):
    for step, (ours, theirs) in enumerate(history):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(a, b, **TOLERANCE[dtype], err_msg=f"step {step + 1}, param {i}")


def assert_same_state(ours, theirs, dtype):
    """Every state entry of ours equals PyTorch's entry of that name."""
    sa, sb = ours.state_dict()["state"], theirs.state_dict()["state"]
    assert set(sa) == set(sb)
    for i in sa:
        assert set(sa[i]) <= set(sb[i]), f"state keys {sorted(sa[i])} vs PyTorch's {sorted(sb[i])}"
        for key, value in sa[i].items():
            value = value.numpy() if isinstance(value, engine.Tensor) else value
            np.testing.assert_allclose(value, sb[i][key].numpy(), **TOLERANCE[dtype], err_msg=f"state {i} {key}")


CASES = [
    ("NAdam", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05, betas=(0.8, 0.95), momentum_decay=0.01, eps=1e-6)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("NAdam", dict(lr=0.02, maximize=True)),
    ("RAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05, betas=(0.9, 0.9))),  # rho_t passes 5 after a few steps: both branches run
    ("RAdam", dict(lr=0.05, weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, betas=(0.8, 0.9))),
    ("RAdam", dict(lr=0.02, maximize=True, betas=(0.9, 0.9))),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, maximize=True)),
    ("Adamax", dict(lr=0.05)),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-3)),
    ("Adamax", dict(lr=0.05, weight_decay=0.1)),
    ("Adamax", dict(lr=0.02, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))),
    ("Rprop", dict(lr=0.02, maximize=True)),
    ("ASGD", dict(lr=0.05)),
    ("ASGD", dict(lr=0.05, lambd=1e-2, alpha=0.5, t0=4)),  # averaging starts at step 4
    ("ASGD", dict(lr=0.05, weight_decay=0.1, t0=2)),
    ("ASGD", dict(lr=0.02, maximize=True)),
]
IDS = [f"{n}-{'-'.join(k) or 'defaults'}" for n, k in CASES]


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_trajectory_and_state_match_torch(name, kwargs, dtype):
    mine, theirs = make_params(dtype=dtype), make_params(torch, dtype)
    with default_dtype_like(dtype):
        ours, reference = getattr(optim, name)(mine, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
        history = train_pair(ours, mine, reference, theirs, steps=12, dtype=dtype)
    assert not np.allclose(history[-1][0][0], INIT[0])  # the parameters did move
    assert_same(history, dtype)
    assert_same_state(ours, reference, dtype)


@needs_torch
@pytest.mark.parametrize(("name", "kwargs", "group"), [
    ("NAdam", dict(lr=0.05), dict(lr=0.01, betas=(0.5, 0.9), decoupled_weight_decay=True, weight_decay=0.2)),
    ("RAdam", dict(lr=0.05, betas=(0.9, 0.9)), dict(lr=0.2, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5), dict(rho=0.5, maximize=True)),
    ("Adamax", dict(lr=0.05), dict(lr=0.1, betas=(0.5, 0.5))),
    ("Rprop", dict(lr=0.05), dict(lr=0.2, etas=(0.2, 2.0))),
    ("ASGD", dict(lr=0.05, t0=3), dict(lr=0.1, t0=1, lambd=0.1)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_param_groups_with_their_own_hyperparameters_match_torch(name, kwargs, group):
    def groups(p):
        return [{"params": [p[0]], **group}, {"params": [p[1], p[2]]}]

    mine, theirs = make_params(), make_params(torch)
    with default_dtype_like(np.float64):
        ours = getattr(optim, name)(groups(mine), **kwargs)
        reference = getattr(torch.optim, name)(groups(theirs), **kwargs)
        assert_same(train_pair(ours, mine, reference, theirs, steps=8, dtype=np.float64), np.float64)
    for g, tg in zip(ours.param_groups, reference.param_groups):
        assert {k: g[k] for k in g if k != "params"} == {k: tg[k] for k in g if k != "params"}


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_state_dict_round_trip_through_a_file_mid_run_continues_identically(name, kwargs, tmp_path):
    params = make_params()
    x, y = engine.tensor(X), engine.tensor(Y)

    def run(opt, ps, steps):
        for _ in range(steps):
            opt.zero_grad()
            loss_of(engine, ps, x, y).backward()
            opt.step()

    opt = getattr(optim, name)(params, **kwargs)
    run(opt, params, 5)
    engine.save({"optimizer": opt.state_dict(), "params": [p.detach() for p in params]}, tmp_path / "ckpt")
    checkpoint = engine.load(tmp_path / "ckpt")
    resumed = [engine.tensor(p, requires_grad=True) for p in checkpoint["params"]]
    opt2 = getattr(optim, name)(resumed, lr=123.0)  # hyper-parameters come back from the state dict
    opt2.load_state_dict(checkpoint["optimizer"])
    assert opt2.param_groups[0]["lr"] == kwargs.get("lr", opt.defaults["lr"])
    run(opt, params, 5)
    run(opt2, resumed, 5)
    for a, b in zip(params, resumed):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


# ---- LBFGS -----------------------------------------------------------------------------------
def lbfgs_run(lib, opt_class, params, steps, **kwargs):
    """`steps` closure-driven L-BFGS steps; returns (losses the steps returned, parameters after each)."""
    dtype = params[0].detach().numpy().dtype
    x, y = lib.tensor(X.astype(dtype)), lib.tensor(Y.astype(dtype))
    opt = opt_class(params, **kwargs)

    def closure():
        opt.zero_grad()
        loss = loss_of(lib, params, x, y)
        loss.backward()
        return loss

    losses, history = [], []
    for _ in range(steps):
        losses.append(float(opt.step(closure).detach()))
        history.append([p.detach().numpy().copy() for p in params])
    return opt, losses, history


LBFGS_CASES = [
    dict(),
    dict(lr=0.5, max_iter=5),
    dict(max_iter=4, history_size=2),  # the history overflows and is shifted
    dict(line_search_fn="strong_wolfe"),
    dict(lr=0.8, max_iter=6, max_eval=9, history_size=3, line_search_fn="strong_wolfe"),
]


@needs_torch
@pytest.mark.parametrize("kwargs", LBFGS_CASES, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()) or "defaults")
def test_lbfgs_matches_torch(kwargs):
    ours, losses, history = lbfgs_run(engine, optim.LBFGS, make_params(), 2, **kwargs)
    theirs, t_losses, t_history = lbfgs_run(torch, torch.optim.LBFGS, make_params(torch), 2, **kwargs)
    assert losses[-1] < losses[0]  # it does minimise (a step returns the loss it started from)
    np.testing.assert_allclose(losses, t_losses, **LBFGS_TOLERANCE)
    for ours_step, theirs_step in zip(history, t_history):
        for a, b in zip(ours_step, theirs_step):
            np.testing.assert_allclose(a, b, **LBFGS_TOLERANCE)
    sa, sb = ours.state_dict()["state"][0], theirs.state_dict()["state"][0]
    assert (sa["func_evals"], sa["n_iter"], sa["t"]) == pytest.approx((sb["func_evals"], sb["n_iter"], float(sb["t"])))
    for key in ("d", "prev_flat_grad"):
        np.testing.assert_allclose(sa[key].numpy(), sb[key].numpy(), **LBFGS_TOLERANCE)
    assert len(sa["old_dirs"]) == len(sb["old_dirs"]) and len(sa["ro"]) == len(sb["ro"])


@needs_torch
def test_lbfgs_in_float32_stays_close_to_torch():
    _, losses, history = lbfgs_run(engine, optim.LBFGS, make_params(dtype=np.float32), 3, max_iter=5)
    _, t_losses, t_history = lbfgs_run(torch, torch.optim.LBFGS, make_params(torch, np.float32), 3, max_iter=5)
    np.testing.assert_allclose(losses, t_losses, rtol=1e-3)
    assert_same(list(zip(history, t_history)), np.float32)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_state_dict_round_trip_continues_identically(line_search_fn, tmp_path):
    params = make_params()
    opt, _, _ = lbfgs_run(engine, optim.LBFGS, params, 2, max_iter=3, line_search_fn=line_search_fn)
    engine.save({"optimizer": opt.state_dict(), "params": [p.detach() for p in params]}, tmp_path / "ckpt")
    checkpoint = engine.load(tmp_path / "ckpt")
    resumed = [engine.tensor(p, requires_grad=True) for p in checkpoint["params"]]
    x, y = engine.tensor(X), engine.tensor(Y)
    opt2 = optim.LBFGS(resumed)
    opt2.load_state_dict(checkpoint["optimizer"])
    assert opt2.param_groups[0]["max_iter"] == 3

    def closure_of(o, ps):
        def closure():
            o.zero_grad()
            loss = loss_of(engine, ps, x, y)
            loss.backward()
            return loss
        return closure

    for _ in range(2):
        opt.step(closure_of(opt, params))
        opt2.step(closure_of(opt2, resumed))
    for a, b in zip(params, resumed):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_lbfgs_state_of_another_model_is_refused():
    opt, _, _ = lbfgs_run(engine, optim.LBFGS, make_params(), 1, max_iter=2)
    other = [engine.zeros(2, requires_grad=True) for _ in range(3)]
    with pytest.raises(ValueError, match=r"'d' has shape .*different model"):
        optim.LBFGS(other).load_state_dict(opt.state_dict())


def test_lbfgs_refuses_groups_and_a_missing_closure():
    params = make_params()
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        optim.LBFGS([{"params": params[:1]}, {"params": params[1:]}])
    opt = optim.LBFGS(params[:1])
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        opt.add_param_group({"params": params[1:]})
    with pytest.raises(TypeError, match=r"LBFGS\.step needs a closure"):
        opt.step()
    with pytest.raises(TypeError, match=r"closure must return the loss .*got NoneType"):
        opt.step(lambda: None)
    with pytest.raises(TypeError, match=r"closure must return the loss .*got a tensor of shape \(3, 4\)"):
        opt.step(lambda: params[0] * 2)


def test_lbfgs_evaluations_in_one_step_repeat_the_same_op_keys():
    params = make_params()
    x, y = engine.tensor(X), engine.tensor(Y)
    opt = optim.LBFGS(params, max_iter=3)
    keys = []

    def closure():
        opt.zero_grad()
        keys.append([])
        loss = loss_of(engine, params, x, y)
        loss.backward()
        return loss

    unsubscribe = hub.subscribe(lambda e: keys[-1].append(e.key) if isinstance(e, OpEvent) else None)
    try:
        opt.step(closure)
    finally:
        unsubscribe()
    assert len(keys) == 3 and keys[0] == keys[1] == keys[2]  # one graph, evaluated again: not a growing one


# ---- errors ------------------------------------------------------------------------------------
BAD = [
    ("NAdam", dict(lr=-1.0), "Invalid learning rate: -1.0"),
    ("NAdam", dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    ("NAdam", dict(momentum_decay=-0.1), "Invalid momentum_decay value: -0.1"),
    ("NAdam", dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    ("RAdam", dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
    ("RAdam", dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    ("Adamax", dict(betas=(-0.1, 0.9)), "Invalid beta parameter at index 0: -0.1"),
    ("Adamax", dict(lr=float("nan")), "Invalid learning rate: nan"),
    ("Adadelta", dict(rho=1.5), "Invalid rho value: 1.5"),
    ("Adadelta", dict(weight_decay=-1), "Invalid weight_decay value: -1"),
    ("Rprop", dict(etas=(1.2, 0.5)), "Invalid eta values: 1.2, 0.5"),
    ("Rprop", dict(lr=-0.1), "Invalid learning rate: -0.1"),
    ("ASGD", dict(lr=-0.1), "Invalid learning rate: -0.1"),
    ("ASGD", dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    ("LBFGS", dict(lr=-1), "Invalid learning rate: -1"),
]


@pytest.mark.parametrize(("name", "kwargs", "message"), BAD, ids=[m for *_, m in BAD])
def test_bad_hyperparameters_are_refused_like_torch(name, kwargs, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        getattr(optim, name)(make_params(), **kwargs)
    with pytest.raises(ValueError, match="Invalid"):  # a group's own values are checked too
        getattr(optim, name)([{"params": make_params(), **kwargs}])
    if torch is not None:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
            getattr(torch.optim, name)(make_params(torch), **kwargs)


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("Rprop", dict(step_sizes=(1.0, 0.1)), "Invalid step_sizes: 1.0, 0.1"),
    ("NAdam", dict(betas=0.9), "betas must be a pair"),
    ("Adamax", dict(betas=("a", 0.9)), "Invalid beta parameter at index 0: a"),
    ("LBFGS", dict(line_search_fn="wolfe"), "Invalid line_search_fn: 'wolfe'"),
    ("LBFGS", dict(history_size=0), "Invalid history_size: 0"),
    ("LBFGS", dict(max_iter=2.5), "Invalid max_iter: 2.5"),
])
def test_arguments_torch_would_fail_on_later_are_refused_at_once(name, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        getattr(optim, name)(make_params(), **kwargs)


# ---- the debugger sees every step --------------------------------------------------------------
MAKERS = [
    ("NAdam", lambda ps: optim.NAdam(ps, lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", lambda ps: optim.RAdam(ps, lr=0.05, betas=(0.9, 0.9), weight_decay=0.1)),
    ("Adadelta", lambda ps: optim.Adadelta(ps, lr=0.5, weight_decay=0.1)),
    ("Adamax", lambda ps: optim.Adamax(ps, lr=0.05)),
    ("Rprop", lambda ps: optim.Rprop(ps, lr=0.05)),
    ("ASGD", lambda ps: optim.ASGD(ps, lr=0.05, lambd=0.01, t0=1)),
    ("LBFGS", lambda ps: optim.LBFGS(ps, max_iter=3, line_search_fn="strong_wolfe")),
]


def _model_loop(make):
    """A small model, its optimizer (made by `make`), and train(n): n steps, closure-driven for LBFGS."""
    engine.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    opt = make(model.parameters())
    x, y = engine.tensor(X.astype(np.float32)), engine.tensor(Y.astype(np.float32))

    def closure():
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        return loss

    def train(steps):
        for _ in range(steps):
            if isinstance(opt, optim.LBFGS):
                opt.step(closure)
            else:
                closure()
                opt.step()

    return model, opt, train


@pytest.mark.parametrize(("name", "make"), MAKERS, ids=[n for n, _ in MAKERS])
def test_the_debugger_receives_one_optimizer_event_per_step(name, make):
    model, opt, train = _model_loop(make)
    with Debugger("summary", model=model) as dbg:  # the optimizer found as it steps
        train(3)
    steps = [r.event for r in dbg.history if label(r) == "opt"]
    names = [n for n, _ in model.named_parameters()]
    assert len(steps) == 3
    for event in steps:
        assert event.optimizer == name and event.lrs == (opt.param_groups[0]["lr"],)
        assert list(event.update_norms) == names == list(event.weight_norms)
    # every parameter moves (Rprop leaves out, for a step, elements whose gradient changed sign: a whole bias may)
    assert all(any(event.update_norms[n] > 0 for event in steps) for n in names)
    assert not [a for a in dbg.alerts if a.kind.startswith("nonfinite")]


@pytest.mark.parametrize(("name", "make"), MAKERS, ids=[n for n, _ in MAKERS])
def test_update_norms_equal_the_parameters_change(name, make):
    """Whether read from the step an optimizer returns or from a copy, a norm is |after - before|."""
    model, _, train = _model_loop(make)
    train(2)
    params = list(model.parameters())
    before = [p.detach().numpy().copy() for p in params]
    events = []
    unsubscribe, release = hub.subscribe(events.append), hub.request_optimizer_norms()
    try:
        train(1)
    finally:
        unsubscribe()
        release()
    (event,) = [e for e in events if isinstance(e, OptimizerEvent)]
    after = [p.detach().numpy() for p in params]
    updates = [float(np.linalg.norm((a - b).astype(np.float64))) for a, b in zip(after, before)]
    np.testing.assert_allclose(list(event.update_norms.values()), updates, rtol=1e-4)
    np.testing.assert_allclose(list(event.weight_norms.values()),
                               [float(np.linalg.norm(a.astype(np.float64))) for a in after], rtol=1e-5)
    assert list(event.grad_norms) == list(event.update_norms) and all(v > 0 for v in event.grad_norms.values())


# ---- on a GPU ------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize(("name", "make"), MAKERS, ids=[n for n, _ in MAKERS])
def test_on_a_gpu_each_matches_the_float64_cpu_result(name, make):
    cuda_or_skip()

    def run(device, dtype):
        engine.manual_seed(3)
        model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).to(device, dtype)
        opt = make(model.parameters())
        x = engine.tensor(X, dtype=dtype, device=device)
        y = engine.tensor(Y, dtype=dtype, device=device)

        def closure():
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            return loss

        for _ in range(4):
            if isinstance(opt, optim.LBFGS):
                opt.step(closure)
            else:
                closure()
                opt.step()
        for key, tensor in opt.state_dict()["state"][0].items():  # the state stayed on the device
            if isinstance(tensor, engine.Tensor):  # but the step count and running scalars, as torch keeps them
                assert tensor.device.type == ("cpu" if key in SCALAR_STATE else device), key
        return [p.detach().cpu().numpy() for p in model.parameters()]

    for a, b in zip(run("cuda", engine.float32), run("cpu", engine.float64)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
