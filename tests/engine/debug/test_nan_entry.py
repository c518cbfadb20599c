"""Non-finite values that enter from outside the recorded graph: the input data, a parameter an optimizer
step blew up, a tensor made before the debugger attached, a gradient a hook or a .grad assignment made.
Each is one alert that names where it entered and what to check, and watch() raises on it."""

import importlib.util
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger, NonFiniteError, watch
from tests.engine.debug.helpers import MLP, batch

pytestmark = pytest.mark.filterwarnings("ignore:overflow", "ignore:invalid value", "ignore:divide by zero")
HELPERS = str(Path(__file__).resolve().parent / "helpers.py")
FC1_LINE = inspect.getsourcelines(MLP.forward)[1] + 1  # h = F.relu(self.fc1(x))
FC2_LINE = FC1_LINE + 1  # return self.fc2(h * 2.0)


@pytest.fixture(autouse=True)
def _fresh_keys():
    """Restart top-level op keys after each test: a run that raised mid-iteration never reached the step
    that does (other tests look ops up by key, 'cross_entropy:0')."""
    yield
    engine.hub.reset_top_level()


def _nan_data():
    x, y = batch()
    data = x.numpy().copy()
    data[1, 2] = np.nan  # a missing value, read as NaN
    return engine.tensor(data), y


def _recorded(fn, before=None):
    """The alerts of Debugger("summary") around fn(model), and the same run under watch(): its error.
    `before(model)` runs before the debugger attaches."""
    engine.manual_seed(0)
    model = MLP()
    if before is not None:
        before(model)
    with Debugger("summary", model=model) as dbg:
        fn(model)
    engine.manual_seed(0)
    model = MLP()
    if before is not None:
        before(model)
    with pytest.raises(NonFiniteError) as info, watch(model):
        fn(model)
    return list(dbg.alerts), info.value.alert


def _blow_fc2(model):
    with engine.no_grad():
        model.fc2.weight.data[0, 3] = float("inf")


def _train(model, x, y, steps=3, lr=0.1, before_step=None, scale=1.0):
    opt = engine.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        (F.cross_entropy(model(x), y) * scale).backward()
        if before_step is not None:
            before_step(model)
        opt.step()  # the line a step's alert names
    return opt


STEP_LINE = inspect.getsourcelines(_train)[1] + 7


# ---- (a) the input data ---------------------------------------------------------------------------
def test_nan_in_the_input_data_is_one_alert_at_the_op_it_enters_naming_the_data():
    x, y = _nan_data()
    alerts, raised = _recorded(lambda model: _train(model, x, y))
    assert [(a.kind, a.op, a.key) for a in alerts] == [("nonfinite_input", "linear", "MLP.fc1/linear:0")]
    for alert in (alerts[0], raised):  # three iterations of the same bad data: one alert, not one each
        assert alert.file == HELPERS and alert.line == FC1_LINE and alert.module == "MLP.fc1"
        assert "through its 1st input, the input data" in alert.message
        assert "NaN, first at [1, 2]" in alert.message and "preprocessing" in alert.message
        assert len(alert.inputs) == 3 and alert.inputs[0].nan_count == 1 and alert.inputs[1].finite


def test_pytorch_anomaly_mode_blames_a_backward_function_where_we_name_the_data():
    torch = pytest.importorskip("torch")
    x, y = _nan_data()
    model = nn.Linear(4, 3)
    tmodel = torch.nn.Linear(4, 3)
    with torch.no_grad():
        tmodel.weight.copy_(torch.tensor(model.weight.detach().numpy()))
        tmodel.bias.copy_(torch.tensor(model.bias.detach().numpy()))
    tx = torch.tensor(x.numpy())
    with pytest.raises(RuntimeError) as torch_error, pytest.warns(UserWarning), torch.autograd.detect_anomaly():
        torch.nn.functional.cross_entropy(tmodel(tx), torch.tensor(y.numpy())).backward()
    assert "returned nan values" in str(torch_error.value)  # the flood, in a backward function
    with pytest.raises(NonFiniteError) as info, watch(model):
        F.cross_entropy(model(x), y).backward()
    first = [int(v) for v in torch.isnan(tx).nonzero()[0]]  # where the data holds its NaN
    message = info.value.alert.message
    assert f"(NaN, first at {first}) enter 'linear'" in message and "through its 1st input, the input data" in message


def test_the_alert_returns_when_bad_data_comes_back_after_clean_iterations():
    x, y = batch()
    bad, _ = _nan_data()
    model = MLP()
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    with Debugger("summary", model=model) as dbg:
        for data in (bad, bad, x, bad):
            opt.zero_grad()
            F.cross_entropy(model(data), y).backward()
            opt.step()
            with engine.no_grad():  # undo what the NaN did to the weights, as a skipped step would
                for p in model.parameters():
                    p.data[~np.isfinite(p.detach().numpy())] = 0
    nonfinite = [(a.kind, a.iteration) for a in dbg.alerts if a.kind.startswith("nonfinite")]
    assert nonfinite == [("nonfinite_input", 0), ("nonfinite_input", 3)]


# ---- (b) an optimizer step ------------------------------------------------------------------------
def test_an_optimizer_step_that_makes_parameters_non_finite_is_the_origin():
    x, y = batch()
    alerts, raised = _recorded(lambda model: _train(model, x, y, lr=1e38, scale=1e3))
    # not the next forward's linear, not a flood over the three steps: the first step, once
    nonfinite = [(a.kind, a.key, a.iteration) for a in alerts if a.kind.startswith("nonfinite")]
    assert nonfinite == [("nonfinite_step", "fc1.weight", 0)]
    for alert in (alerts[0], raised):
        assert alert.file == __file__ and alert.line == STEP_LINE and alert.code == "opt.step()  # the line a " \
            "step's alert names"
        message = alert.message
        assert "the optimizer step (SGD, lr=1e+38) made parameter 'fc1.weight'" in message
        assert "'fc2.bias'" in message and "though it and its gradient (norm" in message
        assert "learning rate is far too high" in message


def test_pytorch_makes_the_same_parameters_non_finite_from_finite_ones_in_that_step():
    torch = pytest.importorskip("torch")
    x, y = batch()
    engine.manual_seed(0)
    model = MLP()
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    with torch.no_grad():
        for tp, p in zip(tmodel.parameters(), model.parameters()):
            tp.copy_(torch.tensor(p.detach().numpy()))
    topt = torch.optim.SGD(tmodel.parameters(), lr=1e38)
    (torch.nn.functional.cross_entropy(tmodel[2](tmodel[1](tmodel[0](torch.tensor(x.numpy()))) * 2.0),
                                       torch.tensor(y.numpy())) * 1e3).backward()
    assert all(torch.isfinite(p).all() and torch.isfinite(p.grad).all() for p in tmodel.parameters())
    topt.step()
    assert not torch.isfinite(tmodel[0].weight).all()
    with Debugger("summary", model=model) as dbg:
        _train(model, x, y, steps=1, lr=1e38, scale=1e3)
    assert [a.kind for a in dbg.alerts if a.kind.startswith("nonfinite")] == ["nonfinite_step"]
    assert np.array_equal(np.isfinite(model.fc1.weight.detach().numpy()), torch.isfinite(tmodel[0].weight).numpy())


def test_weights_blown_up_but_finite_name_the_parameter_at_the_op_that_overflows():
    x, y = batch()
    alerts, raised = _recorded(lambda model: _train(model, x, y, lr=1e37))
    assert [(a.kind, a.op, a.iteration) for a in alerts] == [("nonfinite_forward", "linear", 1)]
    assert "its inputs are finite, but parameter 'fc2.weight' holds values up to" in raised.message


def test_a_step_alert_without_norms_at_the_structure_tier_and_with_an_optimizer_of_plain_parameters():
    x, y = batch()
    model = MLP()
    with pytest.raises(NonFiniteError) as info, watch(capture="structure"):  # no model given: the one called, named
        _train(model, x, y, steps=1, lr=1e38, scale=1e3)
    assert info.value.alert.kind == "nonfinite_step" and "made parameter 'fc1.weight'" in info.value.alert.message
    w = engine.randn(4, 3, requires_grad=True)  # no module at all: the optimizer's tensor, by the script's name
    opt = engine.optim.SGD([w], lr=1e38)
    with pytest.raises(NonFiniteError) as info, watch(capture="structure"):
        (F.cross_entropy(x @ w, y) * 1e3).backward()
        opt.step()
    assert info.value.alert.kind == "nonfinite_step" and "made parameter 'w'" in info.value.alert.message


# ---- (c) made before the debugger attached ----------------------------------------------------------
def test_a_tensor_computed_before_the_debugger_attached():
    bad, _ = _nan_data()
    model = MLP()
    hidden = F.relu(model.fc1(bad))  # before the debugger attached: no recorded op made it
    with Debugger("summary", model=model) as dbg:
        model.fc2(hidden * 2.0).sum().backward()
    assert [(a.kind, a.op) for a in dbg.alerts] == [("nonfinite_input", "mul")]
    with pytest.raises(NonFiniteError) as info, watch(model):
        model.fc2(hidden * 2.0).sum().backward()
    for alert in (dbg.alerts[0], info.value.alert):
        assert alert.file == __file__ and alert.code == "model.fc2(hidden * 2.0).sum().backward()"
        assert "through its 1st input, a tensor computed outside the recorded ops (before the debugger " \
               "attached" in alert.message and "Check where it was computed" in alert.message


def test_a_parameter_non_finite_before_the_debugger_attached_is_named():
    x, y = batch()
    alerts, raised = _recorded(lambda model: _train(model, x, y), before=_blow_fc2)
    assert [(a.kind, a.op, a.key) for a in alerts] == [("nonfinite_input", "linear", "MLP.fc2/linear:0")]
    for alert in (alerts[0], raised):
        assert alert.line == FC2_LINE
        assert "through its 2nd input, parameter 'fc2.weight'" in alert.message and "+inf, first at [0, 3]" \
            in alert.message
        assert "No optimizer step made it non-finite" in alert.message


@pytest.mark.parametrize("through", ["data", "no_grad"])
def test_a_parameter_written_non_finite_while_recorded_is_one_alert_at_the_write(through):
    # the write is a recorded op: it is the origin, and the parameter later entering fc2 is no second alert
    x, y = batch()

    def run(model):
        _train(model, x, y, steps=1)
        if through == "data":
            model.fc2.weight.data[0, 3] = float("inf")
        else:
            _blow_fc2(model)
        _train(model, x, y, steps=2)

    alerts, raised = _recorded(run)
    assert [(a.kind, a.op) for a in alerts] == [("nonfinite_forward", "setitem")]
    assert raised.kind == "nonfinite_forward" and raised.op == "setitem"


# ---- (d) gradients from hooks and assignments -----------------------------------------------------
def test_a_hook_on_a_parameter_that_returns_nan_is_named_at_the_step():
    x, y = batch()

    def run(model):
        model.fc1.bias.register_hook(lambda g: engine.tensor(np.full(g.shape, np.nan, np.float32)))
        _train(model, x, y)

    alerts, raised = _recorded(run)
    assert [(a.kind, a.key, a.iteration) for a in alerts] == [("nonfinite_grad", "fc1.bias", 0)]
    for alert in (alerts[0], raised):
        assert alert.line == STEP_LINE
        assert "the gradient of parameter 'fc1.bias' is non-finite (NaN" in alert.message
        assert "no recorded op or backward node made it: a hook on the parameter (register_hook) or an " \
               "assignment to its .grad" in alert.message and "(SGD, lr=0.1)" in alert.message


def test_a_grad_assigned_by_hand_is_named_at_the_step():
    x, y = batch()

    def assign(model):
        model.fc2.bias.grad = engine.tensor(np.array([0.0, np.inf, 0.0], np.float32))

    alerts, raised = _recorded(lambda model: _train(model, x, y, before_step=assign))
    assert [a.kind for a in alerts if a.kind.startswith("nonfinite")] == ["nonfinite_grad"]
    assert "parameter 'fc2.bias' is non-finite (+inf, first at [1])" in raised.message


def test_a_hook_on_an_activation_is_named_at_the_backward_node_it_feeds():
    x, y = batch()

    def run(model):
        opt = engine.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            out = model(x)
            out.register_hook(lambda g: engine.tensor(np.full(g.shape, np.nan, np.float32)))
            F.cross_entropy(out, y).backward()
            opt.step()

    alerts, raised = _recorded(run)
    assert [(a.kind, a.op, a.key) for a in alerts] == [("nonfinite_grad", "linear", "MLP.fc2/linear:0")]
    assert "the gradient reaching the backward of 'linear' (MLP.fc2/linear:0)" in raised.message
    assert "no recorded backward node made it: a hook on a tensor (register_hook)" in raised.message


def test_a_hook_that_computes_nan_with_engine_ops_is_named_at_its_own_line():
    x, y = batch()

    def run(model):
        model.fc1.bias.register_hook(lambda g: g * float("nan"))  # the hook's line
        _train(model, x, y)

    alerts, raised = _recorded(run)
    assert [(a.kind, a.op) for a in alerts] == [("nonfinite_forward", "mul")]
    assert raised.code == 'model.fc1.bias.register_hook(lambda g: g * float("nan"))  # the hook\'s line'


# ---- no false alerts ---------------------------------------------------------------------------------
def test_an_additive_minus_inf_mask_made_outside_the_recorded_ops_is_no_alert():
    scores = engine.randn(2, 4, 4)
    mask = engine.tensor(np.triu(np.full((4, 4), -np.inf, np.float32), k=1))  # as nn.Transformer's masks
    with Debugger("summary") as dbg, watch():
        weights = F.softmax(scores / 2.0 + mask, dim=-1)
    assert np.isfinite(weights.numpy()).all() and list(dbg.alerts) == []


def test_infinities_of_masked_fill_passed_through_other_ops_stay_intended():
    scores = engine.randn(2, 4, 4, requires_grad=True)
    causal = engine.tensor(np.triu(np.ones((4, 4), bool), k=1))
    with Debugger("summary") as dbg, watch():
        weights = F.softmax(scores.masked_fill(causal, float("-inf")) / 2.0 - 1.0, dim=-1)  # scaled after masking
        (weights * engine.randn(2, 4, 4)).sum().backward()
    assert np.isfinite(scores.grad.numpy()).all() and list(dbg.alerts) == []


def test_a_nan_from_an_outside_mask_is_reported_where_it_appears_naming_the_mask():
    everything = np.zeros((3, 3), np.float32)
    everything[1] = -np.inf  # row 1 masked entirely: softmax gives NaN there
    with Debugger("summary") as dbg:
        F.softmax(engine.randn(1, 3, 3) + engine.tensor(everything), dim=-1)
    assert [(a.kind, a.op) for a in dbg.alerts] == [("nonfinite_forward", "softmax")]
    assert "its inputs hold infinities but no NaN (the -inf of its 2nd input, an additive mask)" \
        in dbg.alerts[0].message


def test_plus_infinity_in_data_is_not_taken_for_a_mask():
    data = np.zeros((2, 3), np.float32)
    data[0, 1] = np.inf
    with pytest.raises(NonFiniteError) as info, watch():
        engine.randn(2, 3) + engine.tensor(data)
    message = info.value.alert.message
    assert info.value.alert.kind == "nonfinite_input" and "(+inf, first at [0, 1]) enter 'add'" in message
    assert "through its 2nd input, the input data" in message


def _example(name: str):
    path = Path(__file__).resolve().parents[3] / "resources" / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"nan_entry_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("name", "kwargs"), [
    ("mlp_spirals", {"epochs": 2}),
    ("tiny_transformer", {"epochs": 1, "max_batches": 4, "seq_len": 32, "sample_length": 5, "verbose": False}),
])
def test_healthy_examples_raise_and_record_nothing(name, kwargs, capsys):
    example = _example(name)
    with watch(capture="structure") as watched:
        example.main(**kwargs)
    with Debugger("summary", discover=True) as dbg:
        example.main(**kwargs)
    assert [a.kind for a in watched.alerts] == [] and [a.message for a in dbg.alerts] == []


def _has_cuda() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # not installed, or no working driver
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs CuPy and a CUDA GPU")
def test_entries_and_steps_on_a_gpu():
    x, y = _nan_data()
    model = MLP().to("cuda")
    with pytest.raises(NonFiniteError) as info, watch(model):
        _train(model, x.to("cuda"), y.to("cuda"))
    assert "through its 1st input, the input data" in info.value.alert.message
    assert "NaN, first at [1, 2]" in info.value.alert.message
    for capture in ("structure", "summary"):  # the step's check without and with the optimizer's norms
        engine.manual_seed(0)
        model = MLP().to("cuda")
        with pytest.raises(NonFiniteError) as info, watch(model, capture=capture):
            _train(model, batch()[0].to("cuda"), batch()[1].to("cuda"), lr=1e38, scale=1e3)
        assert info.value.alert.kind == "nonfinite_step" and "'fc1.weight'" in info.value.alert.message


def test_an_overflow_names_the_parameters_own_largest_value_not_its_larger_input():
    # the tester's bp.py: "parameter '2.weight' holds values up to 5.24e+35", the size of the layer's input;
    # the weight itself held 3.12e32
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    x = engine.randn(64, 4)
    y = (x[:, :1] * 2 - x[:, 1:2]).detach()
    tops = []  # per iteration: each parameter's largest |value| as the forward saw it
    with Debugger("summary", model=model) as dbg:
        for it in range(24):
            tops.append({name: float(p.abs().max()) for name, p in model.named_parameters()})
            opt.zero_grad()
            F.mse_loss(model(x * (1.0 if it < 20 else 100.0 * it)), y).backward()
            opt.step()
    alert = next(a for a in dbg.alerts if "parameter '" in a.message)
    name = alert.message.split("parameter '")[1].split("'")[0]
    said = float(alert.message.split("holds values up to ")[1].split(" ")[0])
    assert said == pytest.approx(tops[alert.iteration][name], rel=1e-2)
    reach = float(alert.message.split("its inputs reach ")[1].split(" ")[0])  # the activation, named apart
    assert reach > said
