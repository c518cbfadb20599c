"""NaN origin (not the flood), watch() in scripts and CI, gradient-norm and dead-ReLU alerts."""

import inspect

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import AlertSettings, Breakpoint, Debugger, NonFiniteError, watch
from tests.engine.debug.helpers import TIMEOUT, batch

pytestmark = pytest.mark.filterwarnings("ignore:divide by zero", "ignore:invalid value")


class Deep(nn.Module):
    """Three layers; `plant` puts log(0) (so -inf, then NaN everywhere after) into the second."""

    def __init__(self, plant: bool) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3)
        self.plant = plant

    def forward(self, x):
        h = F.relu(self.l1(x))
        h = self.l2(h)
        if self.plant:
            h = h * (h - h).log()  # log(0) = -inf, times h: NaN and inf from here on
        return self.l3(F.relu(h))


def _planted_line() -> int:
    lines, start = inspect.getsourcelines(Deep.forward)
    return start + next(i for i, line in enumerate(lines) if ".log()" in line)


def _train(model, steps=1):
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return loss


def test_the_alert_names_the_origin_op_and_line_and_only_it():
    model = Deep(plant=True)
    with Debugger("summary", model=model) as dbg:
        loss = _train(model, steps=2)
    assert np.isnan(loss.item())  # everything downstream, backward and the update included, is NaN
    assert len(dbg.alerts) == 1
    alert = dbg.alerts[0]
    assert alert.kind == "nonfinite_forward" and alert.op == "log" and alert.key == "Deep/log:0"
    assert alert.module == "Deep" and alert.line == _planted_line() and alert.file == __file__
    assert alert.code == "h = h * (h - h).log()  # log(0) = -inf, times h: NaN and inf from here on"
    assert alert.iteration == 0 and len(alert.inputs) == 1 and alert.inputs[0].finite
    assert alert.inputs[0].max == 0.0 == alert.inputs[0].min  # h - h


def test_structure_capture_still_finds_the_origin_when_asked():
    model = Deep(plant=True)
    with Debugger("structure", model=model, alerts=AlertSettings()) as dbg:
        _train(model)
    assert [(a.kind, a.op) for a in dbg.alerts] == [("nonfinite_forward", "log")]


def test_a_backward_origin_is_the_node_that_makes_the_gradient_non_finite():
    x = engine.tensor(np.array([0.0, 1.0, 4.0], np.float32), requires_grad=True)
    with Debugger("summary") as dbg:
        (x.sqrt() * 2.0).sum().backward()  # sqrt(0) is fine forward; its derivative 1/(2 sqrt 0) is not
    assert [(a.kind, a.op, a.key) for a in dbg.alerts] == [("nonfinite_backward", "sqrt", "sqrt:0")]
    assert dbg.alerts[0].inputs[0].finite  # the incoming gradient was finite
    assert np.isinf(x.grad.numpy()[0])


def test_watch_raises_at_the_origin_with_op_module_and_line():
    model = Deep(plant=True)
    with pytest.raises(NonFiniteError) as info, watch(model):
        _train(model)
    message = str(info.value)
    assert "'log' (Deep/log:0) in module 'Deep'" in message and f"{__file__}:{_planted_line()}" in message
    assert info.value.alert.op == "log" and not engine.hub.active


def test_watch_is_quiet_on_healthy_training():
    model = Deep(plant=False)
    with watch(model) as dbg:
        loss = _train(model, steps=3)
    assert np.isfinite(loss.item()) and list(dbg.alerts) == []


def test_watch_record_mode_keeps_going():
    model = Deep(plant=True)
    with watch(model, on_nonfinite="record") as dbg:
        _train(model, steps=2)
    assert [a.op for a in dbg.alerts] == ["log"]


def test_exploding_and_vanishing_gradient_norms_one_alert_naming_the_worst():
    model = Deep(plant=False)
    settings = AlertSettings(grad_norm_max=1e-3, grad_norm_min=None, dead_relu=None)
    with Debugger("summary", model=model, alerts=settings) as dbg:
        _train(model, steps=3)
    [alert] = dbg.alerts  # once for the condition, not once per parameter or per step
    assert alert.kind == "exploding_grad" and alert.value > 1e-3
    assert alert.key in {n for n, _ in model.named_parameters()}
    assert "in 3 layers ('l1', 'l2', 'l3')" in alert.message
    model.l1.weight.requires_grad_(False)
    with Debugger("summary", model=model, alerts=AlertSettings(grad_norm_max=None, grad_norm_min=1e9)) as dbg:
        _train(model)
    vanishing = [a for a in dbg.alerts if a.kind == "vanishing_grad"]
    assert len(vanishing) == 1 and vanishing[0].key != "l1.weight" and "l1.weight" not in vanishing[0].message
    assert {a.kind for a in dbg.alerts} == {"vanishing_grad", "frozen"}  # l1.weight is frozen, and in the optimizer


def test_dead_relu_alert():
    model = Deep(plant=False)
    with engine.no_grad():
        model.l1.bias.fill_(-100.0)  # every unit of the first relu is dead
    with Debugger("summary", model=model, alerts=AlertSettings(dead_relu=0.9)) as dbg:
        _train(model, steps=2)
    dead = [a for a in dbg.alerts if a.kind == "dead_relu"]
    assert [(a.key, a.value) for a in dead] == [("Deep/relu:0", 1.0)]


def test_an_alert_can_stop_the_engine_thread():
    model = Deep(plant=True)
    dbg = Debugger("summary", model=model, stop_on_alert=True)
    run = dbg.run_callable(_train, model)
    stop = dbg.wait_for_stop(TIMEOUT)
    assert stop.reason == "alert" and stop.alert.op == "log" and stop.record.event.op == "log"
    dbg.resume()
    assert run.join(TIMEOUT)


def test_nonfinite_breakpoint_and_alert_agree_on_where():
    model = Deep(plant=True)
    dbg = Debugger("structure", model=model)
    dbg.add_breakpoint(Breakpoint.nonfinite(on="output"))
    run = dbg.run_callable(_train, model)
    stop = dbg.wait_for_stop(TIMEOUT)
    assert stop.record.event.op == "log" and stop.record.summary.nan_count + stop.record.summary.inf_count > 0
    dbg.detach()
    assert run.join(TIMEOUT)


def test_masking_with_minus_infinity_is_not_an_alert():
    scores = engine.randn(2, 4, 4)
    causal = engine.tensor(np.triu(np.ones((4, 4), bool), k=1))
    with Debugger("summary") as dbg:
        weights = F.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)  # attention's causal mask
    assert np.isfinite(weights.numpy()).all()
    assert list(dbg.alerts) == []


def test_a_mask_of_minus_infinity_written_by_index_or_where_is_not_an_alert_either():
    # top-k sampling writes its mask with an index (`logits[logits < v[:, [-1]]] = -inf`): 20 false alerts a run
    logits = engine.randn(3, 6)
    with Debugger("summary") as dbg, engine.no_grad():
        v, _ = engine.topk(logits, 2)
        masked = logits.clone()
        masked[masked < v[:, [-1]]] = -float("inf")
        F.softmax(masked, dim=-1)
        F.softmax(engine.where(logits < logits.amax(-1, keepdim=True), -float("inf"), logits), dim=-1)  # arg max
        F.softmax(logits.index_fill(1, engine.tensor([0, 2]), -float("inf")), dim=-1)
        near = engine.cdist(logits, logits)
        near.fill_diagonal_(float("inf"))  # a nearest-neighbour search leaves each point out of its own row
        near.min(dim=1)
    assert list(dbg.alerts) == []
    with Debugger("summary") as dbg, engine.no_grad():  # a NaN written is no mask
        masked = logits.clone()
        masked[0, 0] = float("nan")
    assert [(a.kind, a.op) for a in dbg.alerts] == [("nonfinite_forward", "setitem")]


def test_a_nan_made_from_masked_infinities_is_reported_where_it_appears():
    scores = engine.randn(1, 3, 3)
    everything = engine.tensor(np.array([[False, False, False], [True, True, True], [False, True, True]]))
    with Debugger("summary") as dbg:
        F.softmax(scores.masked_fill(everything, float("-inf")), dim=-1)  # row 1 masked entirely: NaN
    assert [(a.kind, a.op) for a in dbg.alerts] == [("nonfinite_forward", "softmax")]
    assert "its inputs hold infinities but no NaN" in dbg.alerts[0].message


def test_two_debuggers_give_the_hub_each_alert_once():
    # a recorder's debugger and a script's own watch() see the same op: a tape must hold one alert
    settings = AlertSettings(grad_norm_max=1e-3, grad_norm_min=None, dead_relu=None)
    published = []
    off = engine.hub.subscribe(lambda e: published.append(e) if e.__class__.__name__ == "AlertEvent" else None)
    try:
        for model in (Deep(plant=True), Deep(plant=False)):  # a NaN at an op; gradient norms at a step
            with Debugger("summary", model=model, alerts=settings) as first, \
                    Debugger("summary", model=model, alerts=settings) as second:
                _train(model, steps=2)
            seen = [(a.kind, a.key) for a in first.alerts]
            assert seen and seen == [(a.kind, a.key) for a in second.alerts]
            assert sorted((a.kind, a.key) for a in published) == sorted(seen)
            published.clear()
    finally:
        off()
    assert {kind for kind, _ in seen} == {"exploding_grad"}


def conv_then(norm) -> tuple[list, float]:
    """Three steps of a Conv2d with its default bias, then `norm`: ((kind, key) of each alert, |bias gradient|)."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), norm, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(engine.randn(8, 1, 8, 8)), engine.randint(0, 3, (8,))).backward()
            opt.step()
    return [(a.kind, a.key) for a in dbg.alerts], float(model[0].bias.grad.norm())


def test_a_bias_a_batchnorm_takes_away_is_no_vanishing_gradient():
    # a Conv2d with its default bias before a BatchNorm2d: the bias's gradient is zero by design (the norm
    # subtracts each channel's mean), and the alert sent people to change activations and initialisation
    alerts, bias_grad = conv_then(nn.BatchNorm2d(4))
    assert bias_grad < 1e-5 and alerts == []
    settings = AlertSettings(grad_norm_min=0.5)  # a bias whose gradient is small for another reason still is
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1))
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    with Debugger("summary", model=model, optimizer=opt, alerts=settings) as dbg:
        opt.zero_grad()
        (model(engine.randn(4, 3)) * 1e-3).sum().backward()
        opt.step()
    assert [a.kind for a in dbg.alerts] == ["vanishing_grad"]


def test_a_bias_a_batchnorm_takes_away_is_no_alert_when_its_optimizer_names_it_by_position():
    # distillation: the teacher is called first, so the student's parameters are named by their AdamW
    # ("group0.1"), and the name the alert looked the bias up by did not match
    def cnn(width):
        return nn.Sequential(nn.Conv2d(1, width, 3), nn.BatchNorm2d(width), nn.ReLU(), nn.Flatten(),
                             nn.Linear(width * 36, 3))

    teacher, student = cnn(8), cnn(4)
    opt = engine.optim.AdamW(student.parameters(), lr=1e-3)
    with Debugger("summary", discover=True) as dbg:
        for _ in range(4):
            x = engine.randn(8, 1, 8, 8)
            with engine.no_grad():
                target = F.log_softmax(teacher(x), 1)
            loss = F.kl_div(F.log_softmax(student(x), 1), target, reduction="batchmean", log_target=True)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert float(student[0].bias.grad.norm()) < 1e-5 and list(dbg.alerts) == []
