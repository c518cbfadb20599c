"""A person whose model does not train runs it in the window: the loss plots mark chance level, the
training plots draw each layer's gradient norm over the iterations, live and from a tape."""

import math
import textwrap

import numpy as np
import pytest

from app.cli import main
from app.debug_panels import chance_level
from engine.events import OpEvent
from tests.app.test_wont_train_qa import run_example_briefly
from tests.shots import shoot
from widgets.gradient_flow import per_layer

TIMEOUT = 60_000  # ms

HEAD = """
import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.data import two_spirals

engine.manual_seed(0)
x, y = two_spirals(128, noise=0.05)
model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))
"""


def loop(loss: str, lr: float, steps: int = 5, zero_grad: bool = True) -> str:
    """A training loop over the model of HEAD (or one the loss line's script makes before it)."""
    reset = "    opt.zero_grad()\n" if zero_grad else ""
    return (f"opt = engine.optim.SGD(model.parameters(), lr={lr})\nfor step in range({steps}):\n"
            f"    loss = {loss}\n{reset}    loss.backward()\n    opt.step()\n")


SCRIPTS = {
    # probabilities into cross_entropy: the loss stays near ln 2
    "softmax": loop("F.cross_entropy(F.softmax(model(x), dim=1), y)", 0.05, steps=25),
    # no zero_grad: the gradients add up, their norm grows step after step
    "no_zero_grad": loop("F.cross_entropy(model(x), y)", 0.001, steps=25, zero_grad=False),
    # a summed loss starts near 128 ln 2, not ln 2: no chance line rather than a wrong one
    "sum": loop('F.cross_entropy(model(x), y, reduction="sum")', 0.001),
    # log-probabilities and nll_loss over 10 classes
    "nll10": "model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 10))\n"
             + loop("F.nll_loss(F.log_softmax(model(x), dim=1), y)", 0.05),
    # a regression: no classes, no chance
    "mse": loop("F.mse_loss(model(x)[:, 0], y.float())", 0.01),
}


@pytest.fixture
def window(make_window):
    w = make_window()
    w.resize(1280, 720)
    return w


def script(tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(HEAD + SCRIPTS[name]))
    return str(path)


def run(qtbot, window, tmp_path, name: str) -> None:
    window.set_stop_on_alerts("none")  # the plots of the whole run, its alerts listed, not stopped at
    assert window.run_script(script(tmp_path, name), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: len(window.training_plots.series("loss")[1]) == len(window.session.losses))


def chance_lines(window) -> list[tuple[str, float]]:
    """The chance line of each loss plot: (label, value on a linear axis), ('', nan) where there is none."""
    out = []
    for line, log in ((window.loss_plot.chance, window.loss_plot.log),
                      (window.training_plots.chance, window.training_plots.loss_plot.getAxis("left").logMode)):
        out.append((line.text(), (10 ** line.value() if log else line.value()) if line.isVisible() else math.nan))
    return out


def uniform_loss(classes: int, rows: int = 128) -> float:
    """PyTorch's cross entropy of logits that give every class the same probability."""
    torch = pytest.importorskip("torch")
    target = torch.arange(rows) % classes
    return float(torch.nn.functional.cross_entropy(torch.zeros(rows, classes), target))


def test_a_loss_stuck_at_chance_is_drawn_against_a_line_labelled_chance(qtbot, window, tmp_path):
    run(qtbot, window, tmp_path, "softmax")
    expected = uniform_loss(2)
    for text, value in chance_lines(window):
        assert text == "chance (2 classes)"
        assert value == pytest.approx(expected, rel=1e-6)
    _, losses = window.training_plots.series("loss")
    assert np.all(np.abs(losses - expected) < 0.05)  # what the line makes plain: it learns nothing
    window.docks["loss"].raise_()
    shoot(window, "chance_softmax_window.png")


def test_nll_loss_of_log_softmax_gets_chance_over_its_classes(qtbot, window, tmp_path):
    run(qtbot, window, tmp_path, "nll10")
    for text, value in chance_lines(window):
        assert text == "chance (10 classes)" and value == pytest.approx(uniform_loss(10), rel=1e-6)


@pytest.mark.parametrize("name", ["sum", "mse"])
def test_no_chance_line_where_the_loss_has_no_chance_level_of_ln_c(qtbot, window, tmp_path, name):
    run(qtbot, window, tmp_path, name)
    assert chance_lines(window) == [("", pytest.approx(math.nan, nan_ok=True))] * 2


def test_the_chance_level_of_a_loss_event():
    def ev(op, shapes, out=()):
        return OpEvent(1, op, f"{op}:0", "", (1, 2), 3, shapes, out, "float32", "cpu", True)

    assert chance_level(ev("cross_entropy", ((64, 10), (64,)))) == (pytest.approx(math.log(10)), 10)
    assert chance_level(ev("cross_entropy", ((10,), ()))) == (pytest.approx(math.log(10)), 10)  # one sample
    assert chance_level(ev("cross_entropy", ((8, 5, 7, 7), (8, 7, 7)))) == (pytest.approx(math.log(5)), 5)
    assert chance_level(ev("binary_cross_entropy_with_logits", ((64,), (64,)))) == (pytest.approx(math.log(2)), 2)
    # a pos_weight or a weight scales a binary loss at chance by their mean: no line rather than ln 2
    assert chance_level(ev("binary_cross_entropy_with_logits", ((64, 1), (64, 1), (1,)))) is None
    assert chance_level(ev("binary_cross_entropy", ((64,), (64,), (64,)))) is None
    assert chance_level(ev("cross_entropy", ((64, 10), (64,)), out=(64,))) is None  # reduction='none'
    assert chance_level(ev("cross_entropy", ((64, 1), (64,)))) is None  # one class: nothing to guess
    assert chance_level(ev("mse_loss", ((64,), (64,)))) is None
    # a loss that starts near 64 ln 10 is a sum over the rows
    assert chance_level(ev("cross_entropy", ((64, 10), (64,))), first_loss=64 * math.log(10)) is None
    assert chance_level(ev("cross_entropy", ((64, 10), (64,))), first_loss=5.0) is not None


def test_gradient_norms_that_grow_without_zero_grad_show_in_the_training_plots(qtbot, window, tmp_path):
    run(qtbot, window, tmp_path, "no_zero_grad")
    plots = window.training_plots
    assert plots.grad_layers() == ["0", "2", "4"]
    steps = window.session.steps
    for layer in plots.grad_layers():
        x, y = plots.series(f"grad:{layer}")
        assert x.tolist() == [it for it, _ in steps]
        np.testing.assert_allclose(y, [per_layer(ev.grad_norms)[layer] for _, ev in steps], rtol=1e-12)
        # each step adds about the same gradient again: the norm grows about linearly
        assert y[-1] > 10 * y[0] and np.all(np.diff(y) > 0)
    assert plots.grad_plot.isVisible()
    window.docks["plots"].raise_()
    shoot(window, "grad_norms_no_zero_grad_window.png")


def test_a_replay_marks_chance_and_draws_gradient_norms_as_the_live_run_did(qtbot, window, tmp_path):
    tape = str(tmp_path / "softmax.tape")
    assert main(["record", script(tmp_path, "softmax"), "-o", tape, "--capture", "summary"]) == 0
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    for text, value in chance_lines(window):
        assert text == "chance (2 classes)" and value == pytest.approx(math.log(2), rel=1e-6)
    assert window.training_plots.grad_layers() == ["0", "2", "4"]
    x, _ = window.training_plots.series("grad:0")
    assert len(x) == 25


@pytest.mark.parametrize("name", ["mlp_spirals"])
def test_a_healthy_example_trains_below_chance(qtbot, window, tmp_path, name):
    run_example_briefly(qtbot, window, tmp_path, name)
    (text, value), _ = chance_lines(window)
    assert text == "chance (2 classes)"
    _, losses = window.session.loss_curve()
    # the curve leaves the line behind (at first a spiral plateaus at ~0.58, each batch's loss around it)
    assert np.mean(losses[-10:]) < 0.9 * value
