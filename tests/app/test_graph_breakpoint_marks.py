"""A module breakpoint's red dot sits on the module's own box, not on the box around it."""

from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor

from engine.debug import Breakpoint
from tests.app.test_stepping_qa import two_blocks
from tests.app.test_window import TIMEOUT, paused
from tests.shots import shoot
from widgets.graph_canvas import BREAKPOINT


def _paused_in_iteration_1(qtbot, window) -> None:
    window.run_function(two_blocks, "two blocks")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)


def _red_pixels(canvas, x0: float, y0: float, x1: float, y1: float) -> int:
    """How many pixels of the breakpoint's red lie in the scene rectangle (x0, y0)-(x1, y1), as drawn."""
    image = canvas.grab().toImage()
    view = canvas.box
    a, b = (canvas.mapFromScene(view.mapViewToScene(p)) for p in (QPointF(x0, y0), QPointF(x1, y1)))
    red = QColor(BREAKPOINT[0])
    count = 0
    for x in range(max(a.x(), 0), min(b.x(), image.width())):
        for y in range(max(a.y(), 0), min(b.y(), image.height())):
            c = image.pixelColor(x, y)
            count += abs(c.red() - red.red()) + abs(c.green() - red.green()) + abs(c.blue() - red.blue()) < 60
    return count


def test_a_nested_modules_breakpoint_dot_lies_inside_its_own_title_bar(qtbot, window):
    # the dot was drawn on the box's top-left corner: a nested box's corner lies a few pixels inside its
    # parent's, so the dot straddled the parent's border and its padding and read as the parent's breakpoint
    _paused_in_iteration_1(qtbot, window)
    window.breakpoints.addRequested.emit(Breakpoint.module("Sequential.1", on="enter"))
    canvas = window.canvas
    groups = list(canvas.view.groups)
    g = groups.index("Sequential.1")
    qtbot.waitUntil(lambda: len(canvas.marks_item.group_breakpoints) == 1, timeout=TIMEOUT)
    x, y, w, _h = canvas.layout_data.group_rect[g]
    canvas.box.setRange(xRange=(x - 30, x + 150), yRange=(y - 30, y + 90), padding=0)
    qtbot.wait(50)
    shoot(canvas, "module_breakpoint_nested.png")
    inside_bar = _red_pixels(canvas, x + 1, y + 1, x + w - 1, y + 24 - 1)
    outside = _red_pixels(canvas, x - 30, y - 30, x + 150, y + 90) - inside_bar
    assert inside_bar > 20 and outside == 0, (inside_bar, outside)
    # the title makes room for it: its text starts right of the dot
    title = next(label for label in canvas._labels if label.isVisible() and label.lines
                 and label.lines[0].startswith("1  \u00b7  Sequential"))
    assert title.rect.left() >= 2 * 5


def test_a_collapsed_modules_breakpoint_dot_lies_inside_its_node(qtbot, window):
    _paused_in_iteration_1(qtbot, window)
    window.graph.expand("Sequential.1", False)
    canvas = window.canvas
    qtbot.waitUntil(lambda: "Sequential.1" in [canvas.view.keys[i] for i in range(len(canvas.view))],
                    timeout=TIMEOUT)
    window.breakpoints.addRequested.emit(Breakpoint.module("Sequential.1", on="enter"))
    i = list(canvas.view.keys).index("Sequential.1")
    marks = canvas.marks_item
    qtbot.waitUntil(lambda: i in [*marks.breakpoints, *getattr(marks, "module_breakpoints", ())], timeout=TIMEOUT)
    x, y, w, h = canvas.marks_item.rects[i]
    canvas.box.setRange(xRange=(x - 40, x + w + 40), yRange=(y - 40, y + h + 40), padding=0)
    qtbot.wait(50)
    shoot(canvas, "module_breakpoint_collapsed.png")
    inside = _red_pixels(canvas, x + 1, y + 1, x + w - 1, y + h - 1)
    outside = _red_pixels(canvas, x - 40, y - 40, x + w + 40, y + h + 40) - inside
    assert inside > 20 and outside == 0, (inside, outside)


def _ring_pixels(canvas, key: str, colour: str) -> int:
    """Pixels of `colour` in a band 1 to 12 pixels around node `key`'s box, as drawn (its halo's)."""
    image = canvas.grab().toImage()
    rect = canvas.node_screen_rect(key).toRect()
    want = QColor(colour)
    count = 0
    for x in range(max(rect.left() - 12, 0), min(rect.right() + 12, image.width())):
        for y in range(max(rect.top() - 12, 0), min(rect.bottom() + 12, image.height())):
            if rect.adjusted(-1, -1, 1, 1).contains(x, y):
                continue
            c = image.pixelColor(x, y)
            count += abs(c.red() - want.red()) + abs(c.green() - want.green()) + abs(c.blue() - want.blue()) < 60
    return count


def test_a_stop_at_a_breakpoint_is_marked_red_on_the_graph_not_like_a_step(qtbot, window):
    # a stop at a breakpoint drew the same amber halo as any step's current node
    from widgets.graph_canvas import CURRENT
    from widgets.status import STATE_COLOURS
    _paused_in_iteration_1(qtbot, window)
    window.breakpoints.addRequested.emit(Breakpoint.op("relu"))
    window.command("resume")
    qtbot.waitUntil(lambda: paused(window) and window.session.current_stop.reason == "breakpoint", timeout=TIMEOUT)
    canvas = window.canvas
    key = canvas.current_key
    qtbot.waitUntil(lambda: canvas.settled, timeout=TIMEOUT)
    shoot(window, "breakpoint_stop.png")
    assert canvas.stop_kind == "breakpoint"
    assert "by a breakpoint" in canvas.tooltip_for(canvas.view.node_of[key])
    assert _ring_pixels(canvas, key, BREAKPOINT[0]) > 40
    assert window.status_panel.dot.colour == QColor(STATE_COLOURS["breakpoint"])
    window.command("step_into")  # a step on from there: the usual amber halo, no red ring
    qtbot.waitUntil(lambda: paused(window) and window.session.current_stop.reason == "step", timeout=TIMEOUT)
    qtbot.waitUntil(lambda: canvas.settled, timeout=TIMEOUT)
    key = canvas.current_key
    assert canvas.stop_kind == "" and "breakpoint" not in canvas.tooltip_for(canvas.view.node_of[key])
    assert _ring_pixels(canvas, key, BREAKPOINT[0]) == 0
    assert _ring_pixels(canvas, key, CURRENT) > 40
    assert window.status_panel.dot.colour == QColor(STATE_COLOURS["paused"])
