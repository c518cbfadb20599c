"""Live debugging as a person sees it: the module editor, the inspector and the loss plot at each stop."""

import pytest

import engine
import engine.nn as nn
from tests.app.test_window import TIMEOUT, make_window, paused


@pytest.fixture
def window(qtbot, tmp_path):
    return make_window(qtbot, tmp_path)


def halving_lr(steps: int = 4):
    """SGD whose learning rate the script halves after every step, as an lr scheduler does."""
    engine.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x = engine.randn(8, 4)
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        opt.param_groups[0]["lr"] *= 0.5


def test_the_editor_shows_the_learning_rate_a_scheduler_set(qtbot, window):
    window.run_function(halving_lr, "halving lr")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    for _ in range(3):  # the first op of iterations 1, 2, 3: the lr was halved after each step
        window.command("run_to_next_iteration")
        qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    lr = 0.1 * 0.5 ** 3
    qtbot.waitUntil(lambda: lr_shown(window) is not None, timeout=TIMEOUT)
    assert lr_shown(window) == pytest.approx(lr)


def lr_shown(window) -> float | None:
    """The learning rate the module editor shows, or None before it shows the optimizer."""
    try:
        return float(window.module_editor.editor("optimizer.lr").text())
    except KeyError:
        return None


def wrong_shape():
    """Two good steps, then a batch with one feature too many: linear raises."""
    model = nn.Linear(4, 2)
    model(engine.randn(8, 4)).sum().backward()
    model(engine.randn(8, 5))


def test_the_op_that_raised_shows_no_output_rather_than_a_scalar(qtbot, window):
    window.run_function(wrong_shape, "wrong shape")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("resume")
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    assert window.session.status == "failed"
    key = window.session.model.current
    assert key.endswith(":failed")
    window.canvas.select(key)
    node_text = window.node_info.plain_text()
    assert "8\u00d75" in node_text and "scalar" not in node_text and "it raised" in node_text
    assert "scalar" not in window.inspector.meta.text() and "it raised" in window.inspector.meta.text()
