"""Live debugging as a person sees it: the module editor, the inspector and the loss plot at each stop."""

import pytest

import engine
import engine.nn as nn
from tests.app.graphs import sgd_steps
from tests.app.test_window import TIMEOUT, paused


def halving_lr(steps: int = 4):
    """SGD whose learning rate the script halves after every step, as an lr scheduler does."""
    engine.manual_seed(0)
    sgd_steps(nn.Linear(4, 2), engine.randn(8, 4), steps, after_step=lambda opt: opt.param_groups[0].update(
        lr=opt.param_groups[0]["lr"] * 0.5))


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


def test_the_learning_rate_can_be_edited_before_the_first_optimizer_step(qtbot, window):
    # the optimizer was found only when it first stepped: the first iteration had no lr to edit, though a
    # person suspecting a diverging run wants to lower it before the first update
    window.run_function(halving_lr, "halving lr")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("step_into")  # the first op of the first forward
    qtbot.waitUntil(lambda: paused(window) and window.session.records > 0, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: lr_shown(window) is not None, timeout=TIMEOUT)
    assert lr_shown(window) == pytest.approx(0.1) and window.session.steps == []
    editor = window.module_editor.editor("optimizer.lr")
    editor.setText("0")
    editor.editingFinished.emit()
    qtbot.waitUntil(lambda: window.status_panel.note.text().startswith("Edit applied"), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    (_, step), = window.session.steps
    assert step.lrs == (0.0,) and all(norm == 0.0 for norm in step.update_norms.values())
