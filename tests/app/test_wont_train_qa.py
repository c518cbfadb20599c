"""A person whose model will not train runs it in the window: the alerts list names the cause once, and
the gradient flow shows the layers that never change and says what its colours mean."""

import os
import textwrap

import pytest

from widgets.gradient_flow import FROZEN, GRAD, NOT_UPDATED, UPDATE_RATIO

TIMEOUT = 60_000  # ms

HEAD = """
import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.data import two_spirals

engine.manual_seed(0)
x, y = two_spirals(128, noise=0.05)
"""
LOOP = """
for step in range(STEPS):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
SCRIPTS = {
    # the optimizer made before the head was replaced: the new head never trains
    "replaced": """
model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))
opt = engine.optim.Adam(model.parameters(), lr=0.01)
model[4] = nn.Linear(32, 2)
""",
    # a layer frozen by mistake, still given to the optimizer
    "frozen": """
model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))
for p in model[0].parameters():
    p.requires_grad_(False)
opt = engine.optim.Adam(model.parameters(), lr=0.01)
""",
    # a deep sigmoid MLP with small weights: the gradient fades towards the input
    "vanishing": """
layers = [nn.Linear(2, 32), nn.Sigmoid()]
for _ in range(7):
    layers += [nn.Linear(32, 32), nn.Sigmoid()]
model = nn.Sequential(*layers, nn.Linear(32, 2))
for m in model.modules():
    if isinstance(m, nn.Linear):
        m.weight.data.normal_(0, 0.05)
        m.bias.data.zero_()
opt = engine.optim.SGD(model.parameters(), lr=0.1)
""",
}


def run(qtbot, window, tmp_path, name: str, steps: int = 12) -> None:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(HEAD + SCRIPTS[name] + LOOP.replace("STEPS", str(steps))))
    window.set_stop_on_alerts("none")  # read at the end: the alerts listed, not stopped at
    assert window.run_script(str(path), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: bool(window.gradient_flow.bars()[0]), timeout=TIMEOUT)


def rows(window) -> list[tuple[str, str, str]]:
    panel = window.alerts_panel
    return [tuple(panel.topLevelItem(i).text(c) for c in range(3)) for i in range(panel.topLevelItemCount())]


def test_a_replaced_layer_is_one_alert_and_a_row_of_the_gradient_flow_that_says_it_never_trains(
        qtbot, window, tmp_path):
    run(qtbot, window, tmp_path, "replaced")
    # before, nothing: no alert, and the head was simply missing from the gradient flow's rows
    assert rows(window) == [("0", "not trained", "4.weight")]
    tip = window.alerts_panel.topLevelItem(0).toolTip(3)
    assert "'4.weight', '4.bias' get gradients but no optimizer updates them" in tip
    flow = window.gradient_flow
    labels, _ = flow.bars()
    assert labels == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]  # the model's order
    assert flow.row_text("4.weight") == NOT_UPDATED and flow.row_text("0.weight") != NOT_UPDATED
    # clicking the alert brings the gradient flow, where the layer is, to the front
    window.docks["alerts"].raise_()
    item = window.alerts_panel.topLevelItem(0)
    window.alerts_panel.itemClicked.emit(item, 0)
    qtbot.waitUntil(lambda: not window.docks["gradients"].visibleRegion().isEmpty())


def test_a_frozen_layer_shows_as_frozen_per_layer_too(qtbot, window, tmp_path):
    run(qtbot, window, tmp_path, "frozen")
    assert [r[1] for r in rows(window)] == ["frozen"]
    flow = window.gradient_flow
    assert flow.row_text("0.bias") == FROZEN
    flow.set_by_layer(True)
    assert flow.bars()[0] == ["0", "2", "4"] and flow.row_text("0") == FROZEN
    flow.set_metric(UPDATE_RATIO)
    assert flow.row_text("0") == FROZEN and "healthy step" in flow.legend.text()


def test_vanishing_gradients_are_one_alert_and_the_chart_says_what_grey_means(qtbot, window, tmp_path):
    run(qtbot, window, tmp_path, "vanishing")
    # ten rows before, one per parameter as each crossed the line, none saying what to try
    assert [(it, kind) for it, kind, _ in rows(window)] == [("0", "vanishing gradient")]
    assert rows(window)[0][2].startswith("0.")  # the layer nearest the input
    assert "Kaiming or Xavier init" in window.alerts_panel.topLevelItem(0).toolTip(3)
    flow = window.gradient_flow
    flow.set_metric(GRAD)
    assert "grey: vanishing, below 1e-07" in flow.legend.text()
    assert flow.plot.getAxis("bottom").labelText == "gradient L2 norm (log scale)"
    window.docks["gradients"].raise_()
    qtbot.waitUntil(lambda: not window.docks["gradients"].visibleRegion().isEmpty())


def run_example_briefly(qtbot, window, tmp_path, name: str) -> None:
    """Run resources/examples/`name`.py for two short epochs in the window, to its end."""
    examples = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "examples")
    path = tmp_path / "short.py"
    path.write_text(f"import sys\nsys.path.insert(0, {os.path.abspath(examples)!r})\n"
                    f"from {name} import main\nmain(epochs=2, n=300)\n")
    assert window.run_script(str(path), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)


@pytest.mark.parametrize("name", ["mlp_spirals"])
def test_a_healthy_example_raises_no_alert_in_the_window(qtbot, window, tmp_path, name):
    run_example_briefly(qtbot, window, tmp_path, name)
    assert rows(window) == []
    labels, _ = window.gradient_flow.bars()
    assert labels and all(window.gradient_flow.row_text(label) not in (FROZEN, NOT_UPDATED) for label in labels)
