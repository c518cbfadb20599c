"""What training scripts reach for in torch.optim beyond the basics: more schedulers, the step-order warning,
Adafactor, the implementation flags (foreach, fused, ...), maximize, and swa_utils; each next to PyTorch."""

import copy
import warnings

import numpy as np
import pytest

import engine
from engine.optim import lr_scheduler
from tests.engine.oracle import needs_torch, torch


def _optimizer(lib, kind="SGD"):
    groups = [{"params": [lib.zeros(2, requires_grad=True)]},
              {"params": [lib.zeros(3, requires_grad=True)], "lr": 0.02}]
    if kind == "SGD":
        return lib.optim.SGD(groups, lr=0.1, momentum=0.9)
    return lib.optim.Adam(groups, lr=0.1)


def _momenta(opt):
    return [g["momentum"] if "momentum" in g else g["betas"][0] for g in opt.param_groups]


def _rates(lib, make, steps=60, kind="SGD"):
    """get_last_lr() and the groups' momenta after each of `steps` optimizer + scheduler steps."""
    opt = _optimizer(lib, kind)
    sched = make(lib.optim.lr_scheduler, opt)
    seen = []
    for _ in range(steps):
        opt.step()
        sched.step()
        seen.append([*sched.get_last_lr(), *[g["lr"] for g in opt.param_groups], *_momenta(opt)])
    return np.array(seen)


class Halving:
    """A callable object: its attributes travel in the scheduler's state dict, as in PyTorch."""

    def __init__(self):
        self.base = 0.5

    def __call__(self, x):
        return self.base ** x


SCHEDULERS = {
    "MultiplicativeLR": lambda L, o: L.MultiplicativeLR(o, lambda epoch: 0.95),
    "MultiplicativeLR per group": lambda L, o: L.MultiplicativeLR(o, [lambda e: 0.9, lambda e: 1.0 + e / 100]),
    "PolynomialLR": lambda L, o: L.PolynomialLR(o, total_iters=20, power=2.0),
    "PolynomialLR default": lambda L, o: L.PolynomialLR(o),
    "ChainedScheduler": lambda L, o: L.ChainedScheduler([L.ConstantLR(o, factor=0.5, total_iters=5),
                                                         L.ExponentialLR(o, gamma=0.9)]),
    "CyclicLR triangular": lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=5),
    "CyclicLR triangular2": lambda L, o: L.CyclicLR(o, [0.01, 0.02], 0.1, step_size_up=4, step_size_down=7,
                                                    mode="triangular2"),
    "CyclicLR exp_range": lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=3, mode="exp_range", gamma=0.97),
    "CyclicLR scale_fn": lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=3, scale_fn=Halving(),
                                                 scale_mode="iterations"),
    "CyclicLR no momentum": lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=2, cycle_momentum=False),
}


@needs_torch
@pytest.mark.parametrize("name", SCHEDULERS)
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_new_schedulers_give_torchs_rates_and_momenta(name, kind):
    np.testing.assert_allclose(_rates(engine, SCHEDULERS[name], kind=kind),
                               _rates(torch, SCHEDULERS[name], kind=kind), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_new_schedulers_resume_from_their_state_dict(name):
    make = SCHEDULERS[name]
    whole = _rates(engine, make, steps=30)
    opt = _optimizer(engine)
    sched = make(lr_scheduler, opt)
    for _ in range(12):
        opt.step()
        sched.step()
    saved_opt, saved = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    opt2 = _optimizer(engine)
    sched2 = make(lr_scheduler, opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    rest = []
    for _ in range(18):
        opt2.step()
        sched2.step()
        rest.append([*sched2.get_last_lr(), *[g["lr"] for g in opt2.param_groups], *_momenta(opt2)])
    np.testing.assert_allclose(np.array(rest), whole[12:], rtol=1e-12)


def test_cyclic_state_dict_keeps_a_callable_objects_attributes_but_no_function():
    opt = _optimizer(engine)
    fn = Halving()
    fn.base = 0.25
    state = lr_scheduler.CyclicLR(opt, 0.01, 0.1, scale_fn=fn).state_dict()
    assert state["_scale_fn_custom"] == {"base": 0.25}
    plain = lr_scheduler.CyclicLR(_optimizer(engine), 0.01, 0.1, scale_fn=lambda x: 1.0).state_dict()
    assert plain["_scale_fn_custom"] is None
    fresh = Halving()
    lr_scheduler.CyclicLR(_optimizer(engine), 0.01, 0.1, scale_fn=fresh).load_state_dict(state)
    assert fresh.base == 0.25


def _warnings_of(lib, order):
    p = lib.zeros(2, requires_grad=True)
    opt = lib.optim.SGD([p], lr=0.1)
    sched = lib.optim.lr_scheduler.StepLR(opt, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for call in order:
            (opt.step if call == "opt" else sched.step)()
    return [str(w.message) for w in caught]


@needs_torch
@pytest.mark.parametrize("order", [["sched", "opt", "sched"], ["opt", "sched", "opt", "sched"]])
def test_scheduler_before_optimizer_warns_as_torch_does(order):
    got = _warnings_of(engine, order)
    # torch's first sentence (what scripts filter by); our own words after it
    assert [m.split(". ")[0] for m in got] == [m.split(". ")[0] for m in _warnings_of(torch, order)]
    if order[0] == "sched":
        assert len(got) == 1 and got[0].startswith("Detected call of `lr_scheduler.step()` before `optimizer.step()`")
    else:
        assert got == []


def test_replacing_optimizer_step_after_the_scheduler_is_warned_about():
    opt = engine.optim.SGD([engine.zeros(1, requires_grad=True)], lr=0.1)
    sched = lr_scheduler.ExponentialLR(opt, 0.5)
    opt.step = lambda closure=None: None
    with pytest.warns(UserWarning, match="has been overridden after learning rate scheduler initialization"):
        sched.step()


def test_the_step_wrapper_still_steps_and_returns_the_closures_loss():
    w = engine.ones(1, requires_grad=True)
    opt = engine.optim.SGD([w], lr=0.5)
    lr_scheduler.StepLR(opt, 2)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    assert float(opt.step(closure)) == 1.0 and w.tolist() == [0.0]


@pytest.mark.parametrize(("make", "message"), [
    (lambda o: lr_scheduler.ChainedScheduler([]), "at least one scheduler"),
    (lambda o: lr_scheduler.ChainedScheduler([lr_scheduler.ReduceLROnPlateau(o)]), "ReduceLROnPlateau"),
    (lambda o: lr_scheduler.ChainedScheduler([lr_scheduler.StepLR(o, 2), lr_scheduler.StepLR(_optimizer(engine), 2)]),
     "same optimizer"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, mode="sawtooth"), "mode is invalid and scale_fn is None"),
    (lambda o: lr_scheduler.CyclicLR(o, [0.1], 1.0), "base_lr must have the same length"),
    (lambda o: lr_scheduler.CyclicLR(engine.optim.Adagrad([engine.zeros(1, requires_grad=True)]), 0.1, 1.0),
     "momentum or beta1"),
    (lambda o: lr_scheduler.PolynomialLR(o, total_iters=0), "total_iters must be a positive integer"),
])
def test_scheduler_errors_are_clear(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make(_optimizer(engine))


# ---- optimizers: maximize and PyTorch's implementation flags -----------------------------------------------
OPTIMIZERS = {
    "SGD": dict(lr=0.01, momentum=0.9, weight_decay=0.01), "Adam": dict(lr=0.01, weight_decay=0.01),
    "AdamW": dict(lr=0.01), "NAdam": dict(lr=0.01), "RAdam": dict(lr=0.01), "Adamax": dict(lr=0.01),
    "Adadelta": dict(lr=0.5), "Adagrad": dict(lr=0.05), "RMSprop": dict(lr=0.01, momentum=0.5, centered=True),
    "Rprop": dict(lr=0.01), "ASGD": dict(lr=0.01, t0=5), "Adafactor": dict(lr=0.05, weight_decay=0.1),
}
FUSED = {"SGD", "Adam", "AdamW", "Adagrad"}


def _train(lib, name, kwargs, steps=25):
    rng = np.random.default_rng(0)
    w = lib.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    b = lib.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    x = lib.tensor(rng.standard_normal((8, 3)).astype(np.float32))
    opt = getattr(lib.optim, name)([w, b], **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        ((x @ w + b).tanh() ** 2).sum().backward()
        opt.step()
    return np.concatenate([w.detach().numpy().ravel(), b.detach().numpy()])


FLAGS = {"maximize": dict(maximize=True), "maximize+foreach": dict(maximize=True, foreach=True),
         "foreach=False": dict(foreach=False), "fused": dict(fused=True)}


@needs_torch
@pytest.mark.parametrize(("name", "flags"), [(n, f) for n in OPTIMIZERS for f in FLAGS if f != "fused" or n in FUSED])
def test_maximize_and_implementation_flags_train_as_torch(name, flags):
    flags = FLAGS[flags]
    kwargs = {**OPTIMIZERS[name], **flags}
    np.testing.assert_allclose(_train(engine, name, kwargs), _train(torch, name, kwargs), rtol=1e-4, atol=1e-5)


@needs_torch
def test_adam_with_decoupled_weight_decay_is_adamw():
    kwargs = dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)
    ours = _train(engine, "Adam", kwargs)
    np.testing.assert_allclose(ours, _train(torch, "Adam", kwargs), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours, _train(engine, "AdamW", dict(lr=0.01, weight_decay=0.1)), rtol=1e-6)


def test_an_adamw_checkpoint_without_the_newer_group_keys_still_decays_decoupled():
    w = engine.ones(2, requires_grad=True)
    opt = engine.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    old = opt.state_dict()
    for key in ("decoupled_weight_decay", "foreach", "fused", "capturable", "differentiable"):
        del old["param_groups"][0][key]
    opt.load_state_dict(old)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
    w.grad = engine.zeros(2)
    opt.step()
    assert np.allclose(w.tolist(), 0.95)  # only the decoupled decay moves a weight with no gradient


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS if n != "Adafactor"])
def test_differentiable_steps_are_refused_clearly(name):
    with pytest.raises(ValueError, match="differentiable=True is not supported"):
        getattr(engine.optim, name)([engine.zeros(1, requires_grad=True)], differentiable=True)


def test_fused_and_foreach_together_are_refused_as_in_torch():
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        engine.optim.Adam([engine.zeros(1, requires_grad=True)], fused=True, foreach=True)


# ---- Adafactor -------------------------------------------------------------------------------------------
def _adafactor_params(lib):
    rng = np.random.default_rng(3)
    return [lib.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
            for s in [(5, 4), (4,), (2, 3, 4)]]


def _adafactor_run(lib, kwargs, steps=30, opt=None, params=None):
    params = params or _adafactor_params(lib)
    opt = opt or lib.optim.Adafactor(params, **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        sum(((p.sin() * (i + 1)) ** 2).sum() for i, p in enumerate(params)).backward()
        opt.step()
    return params, opt


@needs_torch
@pytest.mark.parametrize("kwargs", [dict(), dict(lr=0.05, weight_decay=0.1, maximize=True),
                                    dict(eps=(1e-6, 1e-3), d=1.5, beta2_decay=-0.5)])
def test_adafactor_matches_torch_on_matrices_vectors_and_3d_tensors(kwargs):
    ours, _ = _adafactor_run(engine, kwargs)
    theirs, _ = _adafactor_run(torch, kwargs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_adafactor_resumes_from_its_state_dict():
    whole, _ = _adafactor_run(engine, dict(lr=0.03), steps=20)
    params, opt = _adafactor_run(engine, dict(lr=0.03), steps=8)
    saved = opt.state_dict()
    fresh = [engine.tensor(p.detach().numpy(), requires_grad=True) for p in params]
    opt2 = engine.optim.Adafactor(fresh, lr=0.03)
    opt2.load_state_dict(saved)
    assert tuple(opt2.state[fresh[0]]["row_var"].shape) == (5, 1)
    _adafactor_run(engine, None, steps=12, opt=opt2, params=fresh)
    for a, b in zip(whole, fresh):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(lr=-1), "Learning rate should be >= 0 but is: -1"),
    (dict(beta2_decay=0.5), "beta2_decay should be <= 0 but is: 0.5"),
    (dict(eps=(-1, 1e-3)), "epsilon1 should be >= 0"),
    (dict(d=0.5), "Clipping threshold d should be >= 1 but is: 0.5"),
    (dict(weight_decay=-0.1), "weight_decay should be >= 0"),
])
def test_adafactor_argument_errors_read_as_torchs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        engine.optim.Adafactor([engine.zeros(2, requires_grad=True)], **kwargs)


# ---- swa_utils -------------------------------------------------------------------------------------------
def _swa_run(lib, kind, epochs=12):
    """Train a small net with BatchNorm, average it (SWA / EMA / avg_fn), anneal with SWALR, then update_bn."""
    rng = np.random.default_rng(1)
    x = lib.tensor(rng.standard_normal((32, 4)).astype(np.float32))
    y = lib.tensor(rng.standard_normal((32, 1)).astype(np.float32))
    model = lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.BatchNorm1d(8), lib.nn.ReLU(), lib.nn.Linear(8, 1))
    with lib.no_grad():
        for p in model.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32) * 0.3))
    su = lib.optim.swa_utils
    averaged = {
        "swa": lambda: su.AveragedModel(model),
        "ema": lambda: su.AveragedModel(model, multi_avg_fn=su.get_ema_multi_avg_fn(0.9), use_buffers=True),
        "avg_fn": lambda: su.AveragedModel(model, avg_fn=su.get_ema_avg_fn(0.8)),
        "swa_avg_fn": lambda: su.AveragedModel(model, avg_fn=su.get_swa_avg_fn()),
    }[kind]()
    opt = lib.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = su.SWALR(opt, swa_lr=0.01, anneal_epochs=5, anneal_strategy="cos" if kind != "swa" else "linear")
    rates = []
    for _ in range(epochs):
        for b in range(4):
            opt.zero_grad()
            ((model(x[b * 8:(b + 1) * 8]) - y[b * 8:(b + 1) * 8]) ** 2).mean().backward()
            opt.step()
        averaged.update_parameters(model)
        sched.step()
        rates.append(sched.get_last_lr()[0])
    su.update_bn([(x[b * 8:(b + 1) * 8], y[b * 8:(b + 1) * 8]) for b in range(4)], averaged)
    tensors = [t.detach().numpy().astype(np.float64) for t in [*averaged.parameters(), *averaged.buffers()]]
    return tensors, rates, averaged(x).detach().numpy()


@needs_torch
@pytest.mark.parametrize("kind", ["swa", "ema", "avg_fn", "swa_avg_fn"])
def test_averaged_model_swalr_and_update_bn_match_torch(kind):
    ours, our_rates, our_out = _swa_run(engine, kind)
    theirs, their_rates, their_out = _swa_run(torch, kind)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(our_rates, their_rates, rtol=1e-12)
    np.testing.assert_allclose(our_out, their_out, rtol=1e-4, atol=1e-5)


def test_averaged_model_is_a_running_mean_and_leaves_the_model_alone():
    model = engine.nn.Linear(2, 1)
    avg = engine.optim.swa_utils.AveragedModel(model)
    seen = []
    for value in (1.0, 2.0, 6.0):
        with engine.no_grad():
            model.weight.fill_(value)
        seen.append(value)
        avg.update_parameters(model)
    assert np.allclose(avg.module.weight.tolist(), np.mean(seen)) and int(avg.n_averaged) == 3
    assert np.allclose(model.weight.tolist(), 6.0)


def test_swalr_resumes_from_its_state_dict():
    def make():
        opt = engine.optim.SGD([engine.zeros(1, requires_grad=True)], lr=0.5)
        return opt, engine.optim.swa_utils.SWALR(opt, swa_lr=0.05, anneal_epochs=6)

    opt, sched = make()
    whole = []
    for _ in range(10):
        opt.step()
        sched.step()
        whole.append(sched.get_last_lr()[0])
    opt, sched = make()
    for _ in range(4):
        opt.step()
        sched.step()
    opt2, sched2 = make()
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    rest = []
    for _ in range(6):
        opt2.step()
        sched2.step()
        rest.append(sched2.get_last_lr()[0])
    np.testing.assert_allclose(rest, whole[4:], rtol=1e-12)


@pytest.mark.parametrize(("make", "message"), [
    (lambda o: engine.optim.swa_utils.SWALR(o, 0.1, anneal_strategy="step"), "'cos' or 'linear'"),
    (lambda o: engine.optim.swa_utils.SWALR(o, 0.1, anneal_epochs=-1), "anneal_epochs must be equal or greater"),
    (lambda o: engine.optim.swa_utils.SWALR(o, [0.1, 0.2]), "swa_lr must have the same length"),
    (lambda o: engine.optim.swa_utils.get_ema_multi_avg_fn(1.5), "Invalid decay value 1.5"),
    (lambda o: engine.optim.swa_utils.AveragedModel(engine.nn.Linear(1, 1), avg_fn=lambda a, c, n: a,
                                                    multi_avg_fn=lambda a, c, n: None), "Only one of"),
    (lambda o: engine.optim.swa_utils.AveragedModel(3), "expects an engine.nn.Module"),
])
def test_swa_errors_are_clear(make, message):
    opt = engine.optim.SGD([engine.zeros(1, requires_grad=True)], lr=0.5)
    with pytest.raises((ValueError, TypeError), match=message):
        make(opt)


def test_swa_utils_import_as_in_torch():
    from engine.optim.swa_utils import SWALR, AveragedModel, update_bn

    assert engine.optim.swa_utils.AveragedModel is AveragedModel and callable(update_bn) and SWALR
