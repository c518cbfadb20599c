"""An alert about a training step points at the line a person must change, not at optimizer.step(): the zero_grad()
that dropped the gradients, the init call that made the units alike, the numpy round trip that cut the graph."""

from __future__ import annotations

import runpy
import textwrap

from engine.debug import Debugger

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
