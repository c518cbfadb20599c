"""An alert about a training step points at the line a person must change, not at optimizer.step(): the zero_grad()
that dropped the gradients (the optimizer's or the model's) or runs outside the loop, the scheduler.step() that runs
per batch, the init call that made the units alike, the numpy round trip that cut the graph."""

from __future__ import annotations

import runpy
import textwrap
import warnings

import numpy as np
import pytest

from engine.debug import Debugger, watch
from tests.engine.oracle import torch

HEAD = """
import numpy as np
import engine
import engine.nn as nn
import engine.nn.functional as F

engine.manual_seed(0)
x, y = engine.randn(48, 2), engine.randint(0, 3, (48,))
"""
MLP = "model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))\n"
LOOP = """
opt = engine.optim.Adam(model.parameters(), lr=1e-2)
for step in range(8):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
"""


def alerts_of(tmp_path, body: str) -> tuple[list, list[str]]:
    """The alerts of the script HEAD + body run as the app runs one (the debugger finds the model), and its lines."""
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(HEAD + body))
    with Debugger("summary", discover=True) as dbg:
        runpy.run_path(str(path), run_name="__main__")
    return [a for a in dbg.alerts if a.file in ("", str(path))], path.read_text().splitlines()


def line_of(lines: list[str], text: str) -> int:
    return next(n for n, line in enumerate(lines, 1) if text in line)


def only(alerts: list, kind: str):
    found = [a for a in alerts if a.kind == kind]
    assert len(found) == 1, [(a.kind, a.message) for a in alerts]
    return found[0]


def test_a_zero_grad_between_backward_and_step_is_pointed_at(tmp_path):
    alerts, lines = alerts_of(tmp_path, MLP + """
opt = engine.optim.SGD(model.parameters(), lr=0.1)
for step in range(6):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.zero_grad()  # meant to be first
    opt.step()
""")
    alert = only(alerts, "step_without_grad")
    assert alert.line == line_of(lines, "opt.zero_grad()")  # was the line of opt.step()
    assert alert.code.startswith("opt.zero_grad()")
    assert "zero_grad() runs between loss.backward() and the step" in alert.message


def test_a_step_before_backward_stays_at_the_step(tmp_path):
    alerts, lines = alerts_of(tmp_path, MLP + """
opt = engine.optim.SGD(model.parameters(), lr=0.1)
for step in range(6):
    opt.zero_grad()
    opt.step()
    F.cross_entropy(model(x), y).backward()
""")
    alert = only(alerts, "step_without_grad")
    assert alert.line == line_of(lines, "opt.step()")  # no zero_grad dropped anything after a backward
    assert "the step comes before loss.backward()" in alert.message


def test_identical_units_point_at_the_constant_init(tmp_path):
    alerts, lines = alerts_of(tmp_path, MLP + """
for m in model.modules():
    if isinstance(m, nn.Linear):
        nn.init.constant_(m.weight, 0.05)
        nn.init.zeros_(m.bias)
""" + LOOP)
    alert = only(alerts, "same_units")
    assert alert.line == line_of(lines, "nn.init.constant_(")  # was the line of opt.step()
    assert f"the init at line {alert.line} started them alike" in alert.message


def test_an_init_through_data_in_a_helper_given_to_apply_is_found_too(tmp_path):
    alerts, lines = alerts_of(tmp_path, MLP + """
def init(m):
    if isinstance(m, nn.Linear):
        nn.init.zeros_(m.weight.data)


model.apply(init)
""" + LOOP)
    assert only(alerts, "zero_init").line == line_of(lines, "nn.init.zeros_(")


def test_weights_filled_after_the_layers_own_init_keep_the_step(tmp_path):
    # the layers' default init ran in the engine, and fill_ is no init function: no init call of the script's to blame
    alerts, lines = alerts_of(tmp_path, MLP + """
for m in model.modules():
    if isinstance(m, nn.Linear):
        m.weight.data.fill_(0.05)
        m.bias.data.fill_(0.0)
""" + LOOP)
    alert = only(alerts, "same_units")
    assert alert.line == line_of(lines, "opt.step()")
    assert "a constant init (nn.init.constant_), or one row copied to all?" in alert.message


FORWARD = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 16)
        self.fc2 = nn.Linear(16, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        h = self.fc1(x)
        h = CUT
        h = F.relu(self.fc2(h))
        return self.out(h)


def scaled_tanh(h):
    return engine.from_numpy(np.tanh(h.detach().numpy()) * 1.7159)


model = Net()
"""


def test_a_numpy_round_trip_in_forward_is_pointed_at(tmp_path):
    cut = "engine.from_numpy(np.tanh(h.detach().numpy()) * 1.7159)"
    alerts, lines = alerts_of(tmp_path, FORWARD.replace("CUT", cut) + LOOP)
    alert = only(alerts, "no_gradient")
    assert alert.key == "fc1.weight"
    assert alert.line == line_of(lines, f"h = {cut}")  # had no line at all
    assert "comes back without its graph" in alert.message


def test_a_cut_no_line_shows_is_placed_at_the_first_op_after_it(tmp_path):
    # the numpy round trip happens in a helper: the forward's line that takes the new tensor is where to look
    alerts, lines = alerts_of(tmp_path, FORWARD.replace("CUT", "scaled_tanh(h)") + LOOP)
    alert = only(alerts, "no_gradient")
    assert alert.line == line_of(lines, "h = F.relu(self.fc2(h))")


def test_a_layer_forward_never_calls_is_placed_at_the_step(tmp_path):
    alerts, lines = alerts_of(tmp_path, FORWARD.replace("h = self.fc1(x)", "h = x @ engine.ones(2, 2)")
                              .replace("CUT", "h @ engine.ones(2, 16)") + LOOP)
    alert = only(alerts, "no_gradient")
    assert alert.line == line_of(lines, "opt.step()")  # never no line


# ---- model.zero_grad() out of place, and a scheduler stepped per batch: the same mistakes fail the same way in torch
def run_with(tmp_path, body: str, lib: str) -> dict:
    """The globals the script HEAD + body leaves, run on the engine or, the same text, on torch."""
    path = tmp_path / f"{lib}_script.py"
    path.write_text(textwrap.dedent(HEAD + body).replace("engine", lib))
    return runpy.run_path(str(path), run_name="__main__")


def same_in_torch(tmp_path, body: str) -> list[float]:
    """The losses the script collects, which torch's run of it matches: the mistake fails the same way there."""
    ours, theirs = (run_with(tmp_path, body, lib)["losses"] for lib in ("engine", "torch"))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    return ours


MODEL_ZERO_GRAD_BETWEEN = MLP + """
opt = engine.optim.SGD(model.parameters(), lr=0.1)
losses = []
for step in range(8):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    model.zero_grad(ARGS)  # meant to be first
    opt.step()
    losses.append(loss.item())
"""


@pytest.mark.parametrize("args", ["", "set_to_none=False"])
def test_a_model_zero_grad_between_backward_and_step_is_pointed_at(tmp_path, args):
    body = MODEL_ZERO_GRAD_BETWEEN.replace("ARGS", args)
    alerts, lines = alerts_of(tmp_path, body)
    alert = only(alerts, "step_without_grad")  # no vanishing gradient either, where it left zeros
    assert alert.line == line_of(lines, "model.zero_grad(")  # was the line of opt.step()
    assert alert.code.startswith("model.zero_grad(")
    assert "model.zero_grad() runs between loss.backward() and the step" in alert.message
    assert ("fills the gradients with zeros" if args else "drops the gradients") in alert.message
    assert [a.kind for a in alerts] == ["step_without_grad"]
    if torch is not None:  # torch's steps find no gradient (or zeros) too: nothing trains
        assert len(set(same_in_torch(tmp_path, body))) == 1


MODEL_ZERO_GRAD_BEFORE_THE_LOOP = MLP + """
opt = engine.optim.SGD(model.parameters(), lr=0.05)
model.zero_grad()
losses = []
for step in range(8):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
"""


def test_a_model_zero_grad_outside_the_loop_is_pointed_at(tmp_path):
    alerts, lines = alerts_of(tmp_path, MODEL_ZERO_GRAD_BEFORE_THE_LOOP)
    alert = only(alerts, "accumulating_grad")
    assert alert.line == line_of(lines, "model.zero_grad()")  # had no line
    assert "model.zero_grad(), which resets it, did not run between the last two steps" in alert.message
    if torch is not None:  # torch's gradients pile up the same way
        piled = same_in_torch(tmp_path, MODEL_ZERO_GRAD_BEFORE_THE_LOOP)
        healthy = same_in_torch(tmp_path, MODEL_ZERO_GRAD_BEFORE_THE_LOOP.replace(
            "    loss = F.cross_entropy", "    model.zero_grad()\n    loss = F.cross_entropy"))
        assert piled[:2] == pytest.approx(healthy[:2]) and piled[2:] != pytest.approx(healthy[2:], rel=1e-3)


def test_a_missing_zero_grad_says_so(tmp_path):
    alerts, _ = alerts_of(tmp_path, MODEL_ZERO_GRAD_BEFORE_THE_LOOP.replace("model.zero_grad()\n", ""))
    alert = only(alerts, "accumulating_grad")
    assert alert.line == 0 and "nothing resets it: no zero_grad() is called" in alert.message


PER_BATCH_SCHEDULE = MLP + """
opt = engine.optim.SGD(model.parameters(), lr=0.1)
scheduler = engine.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.1)
losses = []
for epoch in range(4):
    for i in range(0, 48, 2):
        opt.zero_grad()
        loss = F.cross_entropy(model(x[i:i + 2]), y[i:i + 2])
        loss.backward()
        opt.step()
        scheduler.step()  # meant once per epoch
        losses.append(loss.item())
"""


def test_a_scheduler_stepped_per_batch_is_pointed_at_its_step(tmp_path):
    alerts, lines = alerts_of(tmp_path, PER_BATCH_SCHEDULE)
    alert = only(alerts, "lr_gone")
    assert alert.line == line_of(lines, "scheduler.step()")  # was the line of opt.step()
    assert alert.code.startswith("scheduler.step()")
    assert "StepLR's step() runs at every iteration: meant for every epoch?" in alert.message
    if torch is not None:  # torch's rate is gone as fast (1e-9 by the last epoch): its epochs repeat each other
        losses = same_in_torch(tmp_path, PER_BATCH_SCHEDULE)
        np.testing.assert_allclose(losses[-24:], losses[-48:-24], rtol=1e-4)
        assert losses[24:48] != pytest.approx(losses[:24], rel=1e-3)  # the first epoch still trained


def test_a_scheduler_stepped_per_epoch_that_decays_too_steeply_points_at_where_it_is_made(tmp_path):
    alerts, lines = alerts_of(tmp_path, MLP + """
opt = engine.optim.SGD(model.parameters(), lr=0.1)
scheduler = engine.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.01)
for epoch in range(8):
    for i in range(0, 48, 4):
        opt.zero_grad()
        F.cross_entropy(model(x[i:i + 4]), y[i:i + 4]).backward()
        opt.step()
    scheduler.step()
""")
    alert = only(alerts, "lr_gone")
    assert alert.line == line_of(lines, "StepLR(opt, step_size=1, gamma=0.01)")  # its gamma is what to change
    assert "once per epoch" in alert.message


HEALTHY = """
engine.manual_seed(0)
x = engine.randn(96, 2)
y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
opt = OPTIMIZER
scheduler = engine.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
losses = []
for epoch in range(15):
    for i in range(0, 96, 16):
        model.zero_grad()
        loss = F.cross_entropy(model(x[i:i + 16]), y[i:i + 16])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    scheduler.step()
"""


@pytest.mark.parametrize("optimizer", ["engine.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)",
                                       "engine.optim.Adam(model.parameters(), lr=1e-2)"], ids=["SGD", "Adam"])
def test_a_healthy_loop_with_model_zero_grad_and_a_per_epoch_schedule_raises_nothing(tmp_path, optimizer):
    body = HEALTHY.replace("OPTIMIZER", optimizer)
    alerts, _ = alerts_of(tmp_path, body)
    assert alerts == []
    path = tmp_path / "script.py"
    with warnings.catch_warnings(record=True) as caught, watch():  # headless, as CI runs it
        warnings.simplefilter("always")
        losses = runpy.run_path(str(path), run_name="__main__")["losses"]
    assert [str(w.message) for w in caught] == []
    assert losses[-1] < 0.5 * losses[0]  # it trains


def test_a_learning_rate_far_too_high_points_at_where_the_optimizer_is_made(tmp_path):
    # the "learning rate too high" alert had no line at all (file '', line 0): the line to change is the one that
    # writes lr=10
    body = """
x = engine.randn(64, 4)
y = engine.randint(0, 3, (64,))
model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
opt = engine.optim.Adam(model.parameters(), lr=10.0)
losses = []
for step in range(30):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
"""
    alerts, lines = alerts_of(tmp_path, body)
    alert = only(alerts, "large_update")
    assert alert.line == line_of(lines, "engine.optim.Adam(") and "lr=10.0" in alert.code
    if torch is not None:  # torch's loss blows up the same way (then the runs part: an lr of 10 is chaotic)
        ours, theirs = (run_with(tmp_path, body, lib)["losses"] for lib in ("engine", "torch"))
        np.testing.assert_allclose(ours[:3], theirs[:3], rtol=1e-4)
        assert ours[1] > 100 * ours[0] and theirs[1] > 100 * theirs[0]
