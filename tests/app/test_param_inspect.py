"""Selecting a parameter node shows its value and the gradient that reached it, live and in a replay."""

import sqlite3

import numpy as np
import pytest

import engine
import engine.tape
from tests.app.graphs import sgd_steps
from tests.engine.tape.helpers import MLP

TIMEOUT = 15_000  # ms
MODELS: list = []  # the model each run built, for the expected values


@pytest.fixture
def window(make_window):
    return make_window((1400, 900))


def net() -> MLP:
    """The model of these tests: fc1 (8 -> 16), relu, fc2 (16 -> 2)."""
    return MLP(8, 16, 2)


def train(steps: int = 2):
    engine.manual_seed(0)
    model = net()
    MODELS.append(model)
    sgd_steps(model, engine.randn(32, 8), steps)


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
    assert "param in MLP.fc1: 16\u00d78 float32" in text
    assert "value: now, after the optimizer step of iteration 0" in text
    assert "gradient: as it reached it in the backward of iteration 0" in text
    # the gradient's summary is the engine's own, at once; the value's is computed from the live weight
    assert_stats(window, "gradient", weight.grad.array)
    qtbot.waitUntil(lambda: inspector.stat_text("L2 norm", "value") != "", timeout=TIMEOUT)
    assert_stats(window, "value", weight.array)
    assert inspector.meta.text().startswith("16\u00d78  \u00b7  float32")
    # the full arrays reach the heatmap: the weight as the step left it, and its .grad
    qtbot.waitUntil(lambda: "value" in inspector.arrays(), timeout=TIMEOUT)
    shown = inspector.arrays()
    np.testing.assert_array_equal(shown["value"], weight.array)
    np.testing.assert_array_equal(shown["gradient"], weight.grad.array)


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
    assert "gradient (it. 0)" in headers
    qtbot.waitUntil(lambda: window.inspector.stat_text("L2 norm", "value") != "", timeout=TIMEOUT)
    assert_stats(window, "value", MODELS[-1].fc2.weight.array)


def test_a_replayed_weight_shows_its_recorded_value_and_gradient(qtbot, window, tmp_path):
    MODELS.clear()
    tape = str(tmp_path / "run.tape")
    with engine.record(tape, capture="summary"):
        train(2)
    weight = MODELS[-1].fc1.weight  # as the last step left it; its .grad the last backward's
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    window.canvas.select(node_labelled(window, "fc1.weight"))
    text = window.inspector.meta.text()
    # a summary tape snapshots every 10th iteration's step, and the last one when recording ends
    assert "value: after the optimizer step of iteration 1 (recorded every 10 iterations)" in text
    assert "gradient: as it reached it in the backward of iteration 1" in text
    assert "No values are recorded" not in text
    assert_stats(window, "gradient", weight.grad.array)
    assert_stats(window, "value", weight.array)


def train_keeping(steps: int = 3):
    """train(), keeping copies of fc1.weight before the first forward and after every step."""
    engine.manual_seed(0)
    model = net()
    MODELS.append(model.fc1.weight.array.copy())
    opt = engine.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = engine.randn(32, 8)
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        MODELS.append(model.fc1.weight.array.copy())


def last_op(tape: str, iteration: int) -> int:
    with engine.tape.open(tape) as t:
        return [ev.seq for ev in t.events(iteration=iteration) if type(ev).__name__ == "OpEvent"][-1]


def test_a_replay_shows_the_weight_as_the_current_iteration_uses_it(qtbot, window, tmp_path):
    MODELS.clear()
    tape = str(tmp_path / "run.tape")
    with engine.record(tape, capture="summary", parameter_every=1):
        train_keeping(3)
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    for iteration, note, expected in ((2, "after the optimizer step of iteration 1", MODELS[2]),
                                      (0, "as iteration 0 began, before its forward", MODELS[0]),
                                      (1, "after the optimizer step of iteration 0", MODELS[1])):
        seq = last_op(tape, iteration)  # its forward ran; its step is still to come
        window.timeline.cursorMoved.emit(seq)
        qtbot.waitUntil(lambda s=seq: window.session.status == "paused" and window.session.cursor == s,
                        timeout=TIMEOUT)
        window.canvas.select(node_labelled(window, "fc1.weight"))
        assert f"value: {note} (recorded)" in window.inspector.meta.text()
        assert_stats(window, "value", expected)


def test_a_values_tape_gives_the_heatmap_the_weight_of_the_iteration_shown(qtbot, window, tmp_path):
    # the inspector showed the snapshot's statistics, and the heatmap stayed empty: a replayed parameter's
    # value was never fetched
    MODELS.clear()
    tape = str(tmp_path / "values.tape")
    with engine.record(tape, capture="values"):
        train_keeping(3)
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    seq = last_op(tape, 2)  # the forward of iteration 2 uses what the step of iteration 1 left
    window.timeline.cursorMoved.emit(seq)
    qtbot.waitUntil(lambda: window.session.status == "paused" and window.session.cursor == seq, timeout=TIMEOUT)
    window.canvas.select(node_labelled(window, "fc1.weight"))
    inspector = window.inspector
    if "value" not in inspector.arrays() and inspector.load_button.isEnabled():
        inspector.load_button.click()
    qtbot.waitUntil(lambda: "value" in inspector.arrays(), timeout=TIMEOUT)
    np.testing.assert_array_equal(inspector.arrays()["value"], MODELS[2])


def test_a_replayed_weight_on_a_tape_without_snapshots_says_why(qtbot, window, tmp_path):
    MODELS.clear()
    old = str(tmp_path / "old.tape")
    structure = str(tmp_path / "structure.tape")
    with engine.record(old, capture="summary"):
        train(2)
    conn = sqlite3.connect(old)
    conn.execute("DROP TABLE parameters")  # as tapes were written before they kept parameter values
    conn.commit()
    conn.close()
    with engine.record(structure, capture="structure"):
        train(2)
    for tape, why in ((old, "the tape was recorded before tapes kept them"),
                      (structure, "a structure tape holds none (record with --capture summary for them)")):
        assert window.open_tape(tape)
        qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
        window.canvas.select(node_labelled(window, "fc1.weight"))
        assert f"value: values of parameters are not on this tape: {why}" in window.inspector.meta.text()
        assert window.inspector.stat_text("L2 norm", "value") == ""


def train_on_scaled(steps: int = 2):
    engine.manual_seed(0)
    model = net()
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
    key = "MLP.fc1/linear:0/in0"  # x, made by an op of iteration 0
    assert window.canvas.view.label[window.canvas.view.node_of[key]] == "input"
    window.canvas.select(key)
    assert "value: the input of iteration 1" in window.inspector.meta.text()
    qtbot.waitUntil(lambda: "value" in window.inspector.arrays(), timeout=TIMEOUT)
    np.testing.assert_array_equal(window.inspector.arrays()["value"], MODELS[-1].array)
    assert_stats(window, "value", MODELS[-1].array)


def train_batchnorm(steps: int = 2):
    engine.manual_seed(0)
    model = engine.nn.Sequential(engine.nn.Linear(4, 3), engine.nn.BatchNorm1d(3))
    MODELS.append(model)
    sgd_steps(model, engine.randn(8, 4), steps)


def test_a_batchnorms_running_mean_is_called_a_buffer_not_a_param(qtbot, window):
    # the graph named running_mean a buffer, and the Inspector's header still said "param"
    MODELS.clear()
    window.run_function(train_batchnorm, "net")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    view = window.canvas.view
    window.canvas.select(view.keys[view.caption.index("running_mean")])
    text = window.inspector.meta.text()
    assert "buffer in Sequential.1: 3 float32" in text and "param in" not in text
    assert "value: now, as the module holds it (each forward in train mode updates it)" in text
    qtbot.waitUntil(lambda: window.inspector.stat_text("mean", "value") != "", timeout=TIMEOUT)
    assert stat(window, "mean", "value") == pytest.approx(float(MODELS[-1][1].running_mean.array.mean()), rel=1e-4)
    window.canvas.select(node_labelled(window, "1.weight"))
    assert "param in Sequential.1" in window.inspector.meta.text()
