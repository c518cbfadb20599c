"""Stepping through a big graph in the window: each stop shows the current op readably, near where it was."""

import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.app.test_window import TIMEOUT, paused
from widgets.graph_canvas import READABLE_PX

LAYOUT_TIMEOUT = 60_000  # ms: a graph of several hundred nodes is laid out on a worker thread


@pytest.fixture
def window(make_window):
    w = make_window()
    w.resize(1280, 720)
    w.set_stop_on_alerts("nonfinite")  # a deep tanh net's gradients vanish at its first step: no stop there
    return w


def deep(layers: int = 150):
    """A deep MLP (Linear then Tanh, `layers` times): over 600 nodes, a graph that fitted is a speck."""
    model = nn.Sequential(*[m for _ in range(layers) for m in (nn.Linear(4, 4), nn.Tanh())])
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    x, y = engine.randn(8, 4), engine.randint(0, 4, (8,))
    for _ in range(3):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def settled(window) -> bool:
    return paused(window) and not window.graph.busy and window.canvas.settled


def step(qtbot, window, action: str = "step_into") -> str:
    """Run a debugger command to its next stop and wait until the view stops moving onto the current op (on
    a loaded machine the view can report settled a frame before its last move lands); the current key."""
    before = window.session.records
    window.command(action)
    canvas = window.canvas
    qtbot.waitUntil(lambda: settled(window) and window.session.records > before
                    and QRectF(canvas.viewport().rect()).contains(canvas.node_screen_rect(canvas.current_key)),
                    timeout=LAYOUT_TIMEOUT)
    return canvas.current_key


def into_second_iteration(qtbot, window) -> None:
    window.run_function(deep, "deep")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: settled(window) and window.session.iteration == 1, timeout=LAYOUT_TIMEOUT)
    assert len(window.canvas.view) > 600


def on_screen(canvas, key: str) -> QRectF:
    """Node `key`'s box in the canvas's pixels; asserts that it lies inside the canvas."""
    box = canvas.node_screen_rect(key)
    assert QRectF(canvas.viewport().rect()).contains(box), (key, box)
    return box


def whole_graph_shown(canvas) -> bool:
    return canvas.box.viewRect().contains(canvas.fit_rect())


def test_each_stop_in_a_big_graph_shows_the_current_op_readably(qtbot, window):
    into_second_iteration(qtbot, window)
    for _ in range(4):
        key = step(qtbot, window)
        assert key == window.session.model.current
        box = on_screen(window.canvas, key)
        assert box.width() >= 100  # not a speck under an orange ring
        assert window.canvas.label_px(key) >= READABLE_PX
        assert window.canvas.view.label[window.canvas.view.node_of[key]] in window.canvas.visible_labels()
    # step over, and a breakpoint's stop after a free run: the same
    for action in ("step_over", "step_out"):
        key = step(qtbot, window, action)
        on_screen(window.canvas, key)
        assert window.canvas.label_px(key) >= READABLE_PX


def test_the_next_steps_keep_the_zoom_and_pan_only_as_needed(qtbot, window):
    into_second_iteration(qtbot, window)
    step(qtbot, window)
    canvas = window.canvas
    zoom = canvas.box.viewRect().width()
    moves = 0
    for _ in range(6):
        before = canvas.box.viewRect()
        key = step(qtbot, window)
        after = canvas.box.viewRect()
        assert after.width() == pytest.approx(zoom)  # no zooming in and out from step to step
        on_screen(canvas, key)
        moves += after != before
        # a pan is a step's worth, not a jump across the graph
        assert abs(after.center().y() - before.center().y()) < after.height()
    assert moves < 6  # an op already comfortably in view does not move the view


def wheel(qtbot, canvas, clicks: int) -> None:
    """Turn the mouse wheel over the canvas's middle (negative: zoom out), as a person does."""
    pos = QPointF(canvas.viewport().rect().center())
    event = QWheelEvent(pos, QPointF(canvas.viewport().mapToGlobal(pos.toPoint())), QPoint(0, 0),
                        QPoint(0, 120 * clicks), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), event)


def test_a_persons_own_zoom_is_kept_and_fit_shows_the_whole_graph(qtbot, window):
    into_second_iteration(qtbot, window)
    step(qtbot, window)
    canvas = window.canvas
    zoomed = canvas.box.viewRect().width()
    wheel(qtbot, canvas, -3)  # zoom out by hand, to see more around the op
    qtbot.waitUntil(lambda: canvas.box.viewRect().width() > zoomed * 1.5)
    theirs = canvas.box.viewRect().width()
    for _ in range(3):
        key = step(qtbot, window)
        assert canvas.box.viewRect().width() == pytest.approx(theirs)  # not zoomed back in
        on_screen(canvas, key)  # only panned, where needed, to keep the op in view
    # Fit: a graph this tall (150 layers) whole is a hairline of specks, so first across its width with labels that
    # read, around the op; Fit again shows the whole
    window.actions["fit"].trigger()
    assert canvas.fitted() == "across" and canvas.drawn_labels()
    on_screen(canvas, key)
    window.actions["fit"].trigger()
    assert whole_graph_shown(canvas)


def test_the_demo_mlp_stays_fitted_at_every_stop(qtbot, window):
    window.open_demo(epochs=1, n=128)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    for _ in range(5):  # the graph grows op by op
        step(qtbot, window)
        assert whole_graph_shown(window.canvas)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: settled(window) and window.session.iteration == 1, timeout=TIMEOUT)
    for _ in range(3):
        step(qtbot, window)
        assert whole_graph_shown(window.canvas)


def test_a_collapsed_module_holding_the_current_op_is_marked_and_shown(qtbot, window):
    into_second_iteration(qtbot, window)
    window.graph.collapse_all(True)
    qtbot.waitUntil(lambda: settled(window) and window.canvas.view is not None
                    and "Sequential" in window.canvas.view.keys, timeout=LAYOUT_TIMEOUT)
    assert whole_graph_shown(window.canvas)  # collapsing lays out again and fits, as before
    for _ in range(3):
        key = step(qtbot, window)
        assert window.session.model.current.startswith("Sequential.")  # an op inside the collapsed model
        assert key == "Sequential"  # the module's node is marked as where the run is
        on_screen(window.canvas, key)
    window.graph.collapse_all(False)  # expanded again: the op itself
    qtbot.waitUntil(lambda: settled(window) and "Sequential" not in window.canvas.view.keys,
                    timeout=LAYOUT_TIMEOUT)
    key = step(qtbot, window)
    assert key == window.session.model.current
    on_screen(window.canvas, key)
    assert window.canvas.label_px(key) >= READABLE_PX


def test_finding_a_node_zooms_until_its_label_reads(qtbot, window):
    into_second_iteration(qtbot, window)
    window.graph.fit()
    key = window.find("cross_entropy")
    assert key is not None
    on_screen(window.canvas, key)
    assert window.canvas.label_px(key) >= READABLE_PX
