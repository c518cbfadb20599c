"""Selecting a parameter node shows its value and the gradient that reached it, live and in a replay."""

import numpy as np
import pytest
from PySide6.QtCore import QSettings

import engine
import engine.nn as nn
from app.window import MainWindow

TIMEOUT = 15_000  # ms
MODELS: list = []  # the model each run built, for the expected values


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    w.recordings_dir = str(tmp_path / "recordings")
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    yield w
    w.close()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())


def train(steps: int = 2):
    engine.manual_seed(0)
    model = Net()
    MODELS.append(model)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x = engine.randn(32, 8)
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def paused(window) -> bool:
    return window.session is not None and window.session.status == "paused"


def node_labelled(window, label: str) -> str:
    view = window.canvas.view
    return next(key for key, text in zip(view.keys, view.label) if text == label)


def stat(window, name: str, column: str) -> float:
    return float(window.inspector.stat_text(name, column))


def assert_stats(window, column: str, a: np.ndarray) -> None:
    for name, expected in (("L2 norm", np.linalg.norm(a)), ("mean", a.mean()), ("min", a.min()),
                           ("max", a.max())):
        assert stat(window, name, column) == pytest.approx(float(expected), rel=1e-4, abs=1e-7), name


def test_a_live_weight_shows_its_value_and_gradient_after_the_step(qtbot, window):
    MODELS.clear()
    window.run_function(train, "net")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    for _ in range(4):  # through the forward and the backward to the optimizer step of iteration 0
        if window.session.phase == "optimizer":
            break
        window.command("run_to_phase")
        qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert window.session.phase == "optimizer" and window.session.iteration == 0
    weight = MODELS[-1].fc1.weight
    key = node_labelled(window, "fc1.weight")
    window.canvas.select(key)
    inspector = window.inspector
    text = inspector.meta.text()
    assert "param in Net.fc1: 16\u00d78 float32" in text
    assert "value: now, after the optimizer step of iteration 0" in text
    assert "gradient: as it reached it in the backward of iteration 0" in text
    # the gradient's summary is the engine's own, at once; the value's is computed from the live weight
    assert_stats(window, "gradient", weight.grad.data)
    qtbot.waitUntil(lambda: inspector.stat_text("L2 norm", "value") != "", timeout=TIMEOUT)
    assert_stats(window, "value", weight.data)
    assert inspector.meta.text().startswith("16\u00d78  \u00b7  float32")
    # the full arrays reach the heatmap: the weight as the step left it, and its .grad
    qtbot.waitUntil(lambda: "value" in inspector.arrays(), timeout=TIMEOUT)
    shown = inspector.arrays()
    np.testing.assert_array_equal(shown["value"], weight.data)
    np.testing.assert_array_equal(shown["gradient"], weight.grad.data)


def test_a_weight_in_the_next_forward_says_which_step_made_it(qtbot, window):
    MODELS.clear()
    window.run_function(train, "net")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")  # the first op of iteration 1: iteration 0's step is done
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    window.canvas.select(node_labelled(window, "fc2.weight"))
    text = window.inspector.meta.text()
    assert "value: now, as iteration 1 uses it (after the optimizer step of iteration 0)" in text
    headers = [window.inspector.stats.horizontalHeaderItem(c).text()
               for c in range(window.inspector.stats.columnCount())]
    assert "gradient (iteration 0)" in headers
    qtbot.waitUntil(lambda: window.inspector.stat_text("L2 norm", "value") != "", timeout=TIMEOUT)
    assert_stats(window, "value", MODELS[-1].fc2.weight.data)


def test_a_replayed_weight_shows_its_gradient_and_says_values_are_not_on_tapes(qtbot, window, tmp_path):
    MODELS.clear()
    tape = str(tmp_path / "run.tape")
    with engine.record(tape, capture="summary"):
        train(2)
    grad = MODELS[-1].fc1.weight.grad.data  # the last backward's: no zero_grad came after it
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    window.canvas.select(node_labelled(window, "fc1.weight"))
    text = window.inspector.meta.text()
    assert "values of parameters are not recorded on tapes" in text
    assert "gradient: as it reached it in the backward of iteration 1" in text
    assert "No values are recorded" not in text
    assert_stats(window, "gradient", grad)
    assert window.inspector.stat_text("L2 norm", "value") == ""


def train_on_scaled(steps: int = 2):
    engine.manual_seed(0)
    model = Net()
    MODELS.append(model)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x = engine.randn(32, 8) * 0.5  # an op of iteration 0: its output is an input of every later iteration
    MODELS.append(x)
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def test_an_input_whose_value_the_cache_holds_shows_it(qtbot, window):
    MODELS.clear()
    window.run_function(train_on_scaled, "net")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    window.command("run_to_phase")  # into iteration 1's backward: fc1 has run on x
    qtbot.waitUntil(lambda: paused(window) and window.session.phase == "backward", timeout=TIMEOUT)
    key = "Net.fc1/linear:0/in0"  # x, made by an op of iteration 0
    assert window.canvas.view.label[window.canvas.view.node_of[key]] == "input"
    window.canvas.select(key)
    assert "value: the input of iteration 1" in window.inspector.meta.text()
    qtbot.waitUntil(lambda: "value" in window.inspector.arrays(), timeout=TIMEOUT)
    np.testing.assert_array_equal(window.inspector.arrays()["value"], MODELS[-1].data)
    assert_stats(window, "value", MODELS[-1].data)
