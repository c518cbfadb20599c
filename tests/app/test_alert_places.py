"""Where the window takes a person at an alert of a training step: the line to change in the Source panel, the
parameter (or nothing) in the graph and the Inspector, never the op that happened to run last; and names and
gradients in the graph that belong to the node they are shown on."""

import textwrap

import pytest
from PySide6.QtCore import Qt

from tests.app.test_window import paused

TIMEOUT = 60_000  # ms

HEAD = """
import engine
import engine.nn as nn
import engine.nn.functional as F

engine.manual_seed(0)
x, y = engine.randn(48, 2), engine.randint(0, 3, (48,))
model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
"""


def stopped_at_alert(qtbot, window, tmp_path, body: str):
    """Run HEAD + body stopping at alerts; F5 from the stop on entry to the first alert's stop."""
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(HEAD + body))
    window.set_stop_on_alerts("all")
    assert window.run_script(str(path))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("resume")
    qtbot.waitUntil(lambda: paused(window) and window.session.stop_alert is not None, timeout=TIMEOUT)
    return window.session.stop_alert


@pytest.mark.parametrize("call", ["opt.zero_grad()", "model.zero_grad()"])
def test_a_zero_grad_before_the_step_shows_its_line_and_selects_no_op(qtbot, window, tmp_path, call):
    alert = stopped_at_alert(qtbot, window, tmp_path, f"""
opt = engine.optim.SGD(model.parameters(), lr=0.1)
for step in range(6):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    {call}
    opt.step()
""")
    assert alert.kind == "step_without_grad"
    # the line to move, not the step's (the Source panel marked `opt.step()`)
    assert window.source_view.current_line_text().endswith(f" {call}")
    # no node: the first linear was selected, marked as the alert's and shown in the Inspector
    assert window.canvas.selected_key is None
    assert window.canvas.stop_kind == ""
    assert window.inspector.title.text() == ""


def test_identical_units_select_the_weight_and_show_the_init_line(qtbot, window, tmp_path):
    alert = stopped_at_alert(qtbot, window, tmp_path, """
for m in model.modules():
    if isinstance(m, nn.Linear):
        nn.init.constant_(m.weight, 0.05)
        nn.init.zeros_(m.bias)
opt = engine.optim.SGD(model.parameters(), lr=0.1)
for step in range(3):
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
""")
    assert alert.kind == "same_units"
    assert window.source_view.current_line_text().endswith(" nn.init.constant_(m.weight, 0.05)")
    assert window.inspector.title.text().startswith("0.weight")


def test_a_diagnostic_after_the_last_step_names_its_own_node_and_shows_no_loss_gradient(qtbot, window, tmp_path):
    path = tmp_path / "fit.py"
    path.write_text(textwrap.dedent("""
        import engine
        import engine.nn as nn

        engine.manual_seed(0)
        x, y = engine.randn(32, 1), engine.randn(32)
        model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
        optimizer = engine.optim.Adam(model.parameters(), lr=1e-2)
        for step in range(3):
            optimizer.zero_grad()
            pred = model(x)
            loss = ((pred - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            if step == 2:
                true_mse = ((pred.squeeze(1) - y) ** 2).mean().item()
    """))
    window.set_stop_on_alerts("none")
    assert window.run_script(str(path), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    view = window.canvas.view
    captions = {view.label[i]: view.caption[i] for i in range(len(view))}
    # `.item()` read the mean: the name is its; squeeze is an intermediate (it was named true_mse, the mean "loss")
    assert captions["mean"] == "true_mse" and captions["squeeze"] == "squeeze"
    window.canvas.select(view.keys[view.label.index("mean")])
    qtbot.waitUntil(lambda: window.inspector.title.text().startswith("true_mse"), timeout=TIMEOUT)
    # no gradient flows into it: the training loss's of the iteration before was shown, greyed
    assert window.inspector.columns() == ["value"]


def test_ctrl_shift_b_pressed_at_once_opens_the_builder(qtbot, make_window):
    window = make_window()
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.builder.builder_dock.isVisible()


def test_a_scheduler_stepped_per_batch_shows_its_step_not_the_optimizers(qtbot, window, tmp_path):
    alert = stopped_at_alert(qtbot, window, tmp_path, """
opt = engine.optim.SGD(model.parameters(), lr=0.1)
scheduler = engine.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.1)
for epoch in range(4):
    for i in range(0, 48, 2):
        opt.zero_grad()
        F.cross_entropy(model(x[i:i + 2]), y[i:i + 2]).backward()
        opt.step()
        scheduler.step()
""")
    assert alert.kind == "lr_gone"
    # the line to move out of the batch loop (the Source panel marked `opt.step()`)
    assert window.source_view.current_line_text().endswith(" scheduler.step()")
