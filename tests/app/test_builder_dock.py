"""The model builder in the main window, offscreen: open it, build, debug the training, watch predictions."""

import ast

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QToolButton

from app.builder import Progress, export_script, from_json
from app.builder_dock import caption
from tests.shots import shoot

TIMEOUT = 15_000  # ms
TRAINING = 120_000  # ms: 40 epochs under the debugger on a busy 2-core machine


@pytest.fixture
def window(make_window):
    return make_window((1440, 900))


def status(window) -> str:
    return window.status_panel.state.text()


def paused(window) -> bool:
    return status(window).startswith("Paused")


def open_builder(qtbot, window):
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    dock = window.builder
    qtbot.waitUntil(lambda: dock.builder_dock.isVisible() and dock.prediction_dock.isVisible(), timeout=TIMEOUT)
    return dock


def test_the_builder_is_hidden_until_opened_from_the_view_menu(qtbot, window):
    dock = window.builder
    assert not dock.builder_dock.isVisible() and not dock.prediction_dock.isVisible()
    view = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "View")
    assert dock.open_action in view.actions()
    open_builder(qtbot, window)
    # wide enough for the palette, the layer tree and the buttons without scrolling sideways
    qtbot.waitUntil(lambda: dock.builder_dock.width() >= dock.panel.minimumSizeHint().width(), timeout=TIMEOUT)
    # the panel checks the model a moment after it changes (a debounce timer): wait for the verdict
    qtbot.waitUntil(lambda: dock.panel.status_text().startswith("\u2713 Ready"), timeout=TIMEOUT)
    window.actions["reset_layout"].trigger()  # View > Reset Panels puts the builder away again
    assert not dock.builder_dock.isVisible() and not dock.prediction_dock.isVisible()


def test_opening_the_builder_leaves_every_panel_under_the_graph_readable(qtbot, make_window):
    window = make_window((1600, 1000))
    window.resize(1200, 800)  # a person makes the window smaller, then opens the builder
    qtbot.waitUntil(lambda: window.width() == 1200)
    window.builder.open_action.trigger()
    qtbot.waitUntil(lambda: window.builder.builder_dock.isVisible(), timeout=TIMEOUT)
    bottom = [window.docks[name] for name in ("source", "output", "loss")]
    # the builder's column takes width from the graph's; the panels under the graph share what is left
    # (the output panel was squeezed to a sliver, its title cut to "O...")
    qtbot.waitUntil(lambda: min(d.width() for d in bottom) >= 0.2 * sum(d.width() for d in bottom),
                    timeout=TIMEOUT)
    assert all(d.width() >= 120 for d in bottom), [d.width() for d in bottom]


def test_a_spirals_build_debugs_its_training_and_draws_the_boundary_live(qtbot, window):
    dock = open_builder(qtbot, window)
    panel = dock.panel
    panel.tabs.setCurrentWidget(panel.data)
    qtbot.mouseClick(panel.data.starter_button, Qt.MouseButton.LeftButton)  # the spirals starter MLP
    qtbot.waitUntil(lambda: panel.build_button.isEnabled(), timeout=TIMEOUT)
    assert [layer["type"] for layer in panel.document()["layers"]] == ["Linear", "ReLU"] * 2 + ["Linear"]
    qtbot.mouseClick(panel.build_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert status(window).startswith("Paused on entry")
    assert "spirals-mlp" in window.windowTitle()
    assert window.source_view.file.endswith("loop.py")  # the training loop the build runs

    qtbot.keyClick(window, Qt.Key.Key_F11)  # the debugger works on it: step into the first op
    qtbot.waitUntil(lambda: paused(window) and "linear" in status(window), timeout=TIMEOUT)
    assert status(window) == "Paused at op linear in Sequential.0"

    qtbot.keyClick(window, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TRAINING)
    assert window.session.ended.outcome == "finished"
    # the last preview: the end of epoch 40 (the caption of a preview taken during epoch 40 says "Epoch 40"
    # too, with epoch 39's metrics; and the view repaints at most five times a second, so the last preview
    # may still be on its way when the session has ended)
    qtbot.waitUntil(lambda: dock.view.caption.text().startswith("After epoch 40,"), timeout=TIMEOUT)
    assert len(dock.history) == 40 and dock.accuracy > 0.9
    assert dock.view.mode == "boundary" and f"test accuracy {dock.accuracy:.1%}" in dock.view.caption.text()
    assert "epoch  40" in window.output.toPlainText()
    panel.tabs.setCurrentIndex(0)  # the layers, for the picture
    shoot(window, "builder_window.png")

    restart = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window, Qt.Key.Key_F5, restart)  # the same build again, from the start
    qtbot.waitUntil(lambda: paused(window) and not dock.history, timeout=TIMEOUT)
    assert dock.view.caption.text().startswith("Paused before training")


def test_a_preview_taken_during_an_epoch_names_the_epoch_its_metrics_come_from():
    # metrics are measured at the end of an epoch: a preview during epoch 40 has epoch 39's to show, and
    # once said "Epoch 40, step 400 \u00b7 loss 0.0784 \u00b7 test accuracy 96.2%" with epoch 39's accuracy
    epoch_39 = {"epoch": 39, "train_loss": 0.0784, "lr": 0.01, "test_accuracy": 0.962}
    epoch_40 = {"epoch": 40, "train_loss": 0.0752, "lr": 0.01, "test_accuracy": 0.988}
    during = caption(Progress(40, 400, None, {"kind": "boundary"}), epoch_39)
    assert during == "Epoch 40, step 400 \u00b7 after epoch 39: loss 0.0784 \u00b7 test accuracy 96.2%"
    after = caption(Progress(40, 400, epoch_40, {"kind": "boundary"}), epoch_40)
    assert after == "After epoch 40, step 400 \u00b7 loss 0.0752 \u00b7 test accuracy 98.8%"
    assert caption(Progress(1, 7, None, {"kind": "boundary"}), None) == "Epoch 1, step 7"


def test_a_build_whose_shapes_do_not_fit_is_refused_naming_the_layer(qtbot, window):
    dock = open_builder(qtbot, window)
    doc = dock.panel.document()
    doc["layers"][2]["args"]["in_features"] = 5  # the second Linear gets 32 features
    dock.panel.set_document(doc)
    assert not dock.build()
    message = window.message_bar.text()
    assert message.startswith("Cannot build: layer 2 (Linear)") and "(N, 32)" in message, message
    assert window.session is None and not dock.panel.build_button.isEnabled()


def test_building_again_starts_a_fresh_session(qtbot, window):
    dock = open_builder(qtbot, window)
    assert dock.build()
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    first = window.session
    assert dock.build()
    assert window.session is not first and first.join(0)  # the old run was stopped and has unwound
    qtbot.waitUntil(lambda: paused(window) and window.session.records == 0, timeout=TIMEOUT)


def test_export_script_writes_the_build_as_a_runnable_script(qtbot, window, tmp_path, monkeypatch):
    dock = open_builder(qtbot, window)
    target = tmp_path / "spirals.py"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "Python (*.py)"))
    button = next(b for b in dock.panel.findChildren(QToolButton) if b.text().startswith("Export"))
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    text = target.read_text()
    ast.parse(text)  # the script itself runs and learns: tests/app/test_builder.py
    assert text == export_script(from_json(dock.panel.document_json()))
