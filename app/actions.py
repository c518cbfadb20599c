"""The window's actions (menus, toolbar, shortcuts) and their icons, drawn here so every platform has them.

Shortcuts follow the debuggers people know: F5 continue, Shift+F5 stop, Ctrl+Shift+F5 restart,
F10 step over, F11 step into, Shift+F11 step out; stepping back adds Ctrl+Shift to the step it undoes
(Ctrl+Shift+F11 step back, Ctrl+Shift+F10 step back over: Shift+F10 opens a context menu on many desktops).
Within a menu each item underlines a letter of its own, so Alt+D then that letter runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QAction,
    QColor,
    QIcon,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QPolygonF,
)


@dataclass(frozen=True)
class Spec:
    """One action: its name in the window, text, shortcut, icon and status tip."""

    name: str
    text: str
    shortcut: str = ""
    icon: str = ""
    tip: str = ""
    checkable: bool = False


DEBUG = (
    Spec("resume", "&Continue", "F5", "continue", "Run until a breakpoint, an alert (Debug > Stop on Alerts) "
         "or the end"),
    Spec("pause", "&Pause", "F6", "pause", "Stop at the next op"),
    Spec("step_into", "Step &Into", "F11", "step_into",
         "Run to the next op, backward node or optimizer step"),
    Spec("step_over", "Step &Over", "F10", "step_over", "Run to the next op in this module call, "
         "skipping nested module calls"),
    Spec("step_out", "Step O&ut", "Shift+F11", "step_out", "Run until the current module call returns; at top "
         "level, to the end of this iteration (its optimizer step)"),
    Spec("step_back", "Step Bac&k", "Ctrl+Shift+F11", "step_back", "Go back to the op, backward node or optimizer "
         "step before: a replay shows everything as it was there; a paused live run, what it recorded there"),
    Spec("step_back_over", "Step Back O&ver", "Ctrl+Shift+F10", "step_back_over", "Go back to the op before in "
         "this module call or its caller, over nested module calls"),
    Spec("run_to_phase", "Run &to Next Phase", "Ctrl+F10", "run_to_phase",
         "Run to the next phase: forward \u2192 backward \u2192 optimizer step"),
    Spec("run_to_next_iteration", "Run to &Next Iteration", "Ctrl+F11", "next_iteration",
         "Run to the first op of the next iteration"),
    Spec("restart", "&Restart", "Ctrl+Shift+F5", "restart", "Run the script again from the start"),
    Spec("stop", "&Stop", "Shift+F5", "stop", "Stop the script (also one that never calls the engine)"),
    Spec("toggle_breakpoint", "Toggle &Breakpoint", "F9", tip="Break at what was picked last, a node of the graph "
         "or a module of the Modules tree (with neither, the op paused at), every time it runs; again to remove"),
    Spec("break_in_python", "Break in P&ython Code", tip="Let Pause stop in plain Python code too (a loop that calls "
         "no engine op), at the line it runs; the script runs slower while this is on. A running script switches at "
         "its next op; turned on while a pause waits in a loop without ops, it restarts the run", checkable=True),
    Spec("record", "Recor&d to Tape", "Ctrl+R", "record", "Record the live session to a .tape file "
         "(replay it with File > Open Tape)", checkable=True),
    # the timeline's cursor, from the graph or the timeline (Home and End stay the text's and the lists' elsewhere)
    Spec("go_to_first", "Go to &First Event", "Home", "", "The timeline's first event: a replay goes back there; a "
         "paused run shows what it recorded there"),
    Spec("go_to_last", "Go to &Last Event", "End", "", "The timeline's last event: the end of a tape, or where a "
         "paused run stands"),
    Spec("go_to", "&Go to Iteration or Event\u2026", "Ctrl+G", "", "Move the timeline's cursor to an iteration's "
         "first event or to an event, by its number"),
)
GO_KEYS = ("go_to_first", "go_to_last")  # shortcuts of the graph and the timeline only, not of the whole window
DEBUG_TIPS = {spec.name: spec.tip for spec in DEBUG}
# Debug > Stop on Alerts: which alerts stop Continue and the steps where they are raised (app.session.ALERT_STOPS)
STOP_ON_ALERTS = (
    Spec("stop_on_all", "&Every Alert", tip="Stop where each alert is raised (the default: an alert is Tapescope's "
         "diagnosis of why a model will not train, raised once per problem at the op or step where it shows "
         "first, the moment to look; F5 runs on)", checkable=True),
    Spec("stop_on_nonfinite", "&NaN or Inf Only", tip="Stop only where NaN or Inf first appears (after it every "
         "value is lost); other alerts are listed without stopping", checkable=True),
    Spec("stop_on_none", "N&o Alert", tip="Never stop at an alert; the Alerts panel lists them", checkable=True),
)
ALERT_STOP_OF = {"stop_on_all": "all", "stop_on_nonfinite": "nonfinite", "stop_on_none": "none"}
FILE = (
    Spec("open_tape", "&Open Tape\u2026", "Ctrl+O", tip="Replay a recorded .tape file"),
    Spec("run_script", "&Debug Script\u2026", "Ctrl+Shift+O", tip="Run a Python script under the debugger"),
    Spec("open_demo", "Open the D&emo", tip="The built-in demo: an MLP learning two spirals"),
    Spec("export", "Ex&port Tape\u2026", "Ctrl+E", tip="Write the open tape (or the session's recording) as a "
         "Perfetto trace, Graphviz DOT or JSON"),
    Spec("quit", "&Quit", "Ctrl+Q"),
)
EDIT = (
    Spec("undo", "&Undo Edit", "Ctrl+Z", tip="Undo the last runtime edit of the model"),
    Spec("redo", "&Redo Edit", "Ctrl+Shift+Z", tip="Apply the undone runtime edit again"),
)
VIEW = (
    Spec("fit", "Fi&t Graph", "Ctrl+0", "fit", "Zoom to show the whole graph; one too tall to read whole across its "
         "width, its labels readable, around the selected node (again: the whole)"),
    Spec("find", "&Find Node\u2026", "Ctrl+F", tip="Find a node by op, module or key"),
    Spec("find_next", "Find &Next", "F3", tip="Select the next node that matches the search"),
    Spec("find_previous", "Find Pre&vious", "Shift+F3", tip="Select the previous node that matches the search"),
    Spec("backward", "Show &Backward Pass", "Ctrl+B", tip="Overlay the gradient flow of the backward pass",
         checkable=True),
    # folding as in editors (VS Code's Fold and Unfold)
    Spec("collapse_modules", "&Collapse Modules", "Ctrl+Shift+[", tip="Show every top-level module as one node"),
    Spec("expand_modules", "&Expand Modules", "Ctrl+Shift+]", tip="Show the inside of every module"),
    Spec("reset_layout", "&Reset Panels", tip="Put the panels back where they started"),
    Spec("next_panel", "Ne&xt Panel", "Ctrl+Tab", tip="Move the keyboard focus to the next panel in view (the graph "
         "included), left to right and top to bottom"),
    Spec("previous_panel", "Previous Pane&l", "Ctrl+Shift+Tab", tip="Move the keyboard focus to the panel in view "
         "before this one"),
)
# View > Go to Panel: the panel brought to the front and given the keyboard focus (spec name "panel_" + the dock's
# name; "graph" is the window's centre)
GO_TO_PANEL = tuple(
    Spec(f"panel_{name}", text, f"Alt+{key}" if key else "", "", f"Show the {text.replace('&', '')} panel and "
         "give it the keyboard focus")
    for name, text, key in (("graph", "&Graph", 1), ("modules", "&Modules", 2), ("inspector", "&Inspector", 3),
                            ("alerts", "&Alerts", 4), ("breakpoints", "&Breakpoints", 5), ("source", "&Source", 6),
                            ("output", "&Output", 7), ("loss", "&Loss", 8), ("timeline", "&Timeline", 9),
                            ("node", "&Node", None), ("editor", "&Editor", None),
                            ("plots", "T&raining", None), ("gradients", "Gra&dient Flow", None)))
HELP = (
    Spec("shortcuts", "&Keyboard Shortcuts", tip="List every action that has a keyboard shortcut"),
    Spec("tape_format", "&Tape Format", tip="Open docs/tape-format.md: what a .tape file holds"),
    Spec("documentation", "&Documentation", tip="Open README.md: what Tapescope does and how to use it"),
    Spec("about", "&About Tapescope", tip="Versions of Tapescope and what it runs on, to copy into a bug report"),
)


def build_actions(parent, specs: tuple[Spec, ...]) -> dict[str, QAction]:
    """QActions for `specs`, keyed by name, owned by `parent`."""
    actions = {}
    for spec in specs:
        action = QAction(spec.text, parent)
        action.setObjectName(spec.name)
        if spec.shortcut:
            action.setShortcut(QKeySequence(spec.shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if spec.icon:
            action.setIcon(icon(spec.icon))
        tip = spec.tip or spec.text.replace("&", "").rstrip("\u2026")
        action.setStatusTip(tip)
        name = spec.text.replace("&", "").rstrip("\u2026")
        action.setToolTip(f"{name} ({spec.shortcut})" if spec.shortcut else name)
        action.setCheckable(spec.checkable)
        actions[spec.name] = action
    return actions


# ---- icons ------------------------------------------------------------------------------------------
GREEN, AMBER, RED, BLUE, GREY = "#2f9e44", "#e8a200", "#e03131", "#1c7ed6", "#5f6b7a"
_SIZE = 64  # drawn at 64 px in a 24-unit grid, scaled down by Qt as needed


def icon(kind: str) -> QIcon:
    """A toolbar icon drawn with QPainter: continue, pause, stop, restart, step_*, record, fit, ..."""
    pixmap = QPixmap(_SIZE, _SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(_SIZE / 24, _SIZE / 24)
    _DRAW[kind](p)
    p.end()
    return QIcon(pixmap)


def _pen(p: QPainter, colour: str, width: float = 2.2) -> None:
    pen = QPen(QColor(colour), width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)


def _fill(p: QPainter, colour: str) -> None:
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(colour))


def _triangle(p: QPainter, x: float, y: float, w: float, h: float) -> None:
    p.drawPolygon(QPolygonF([QPointF(x, y), QPointF(x + w, y + h / 2), QPointF(x, y + h)]))


def _arrow_head(p: QPainter, tip: QPointF, angle: float, size: float = 4.5) -> None:
    """A filled arrow head at `tip`, pointing along `angle` (radians)."""
    left = QPointF(tip.x() - size * math.cos(angle - 0.5), tip.y() - size * math.sin(angle - 0.5))
    right = QPointF(tip.x() - size * math.cos(angle + 0.5), tip.y() - size * math.sin(angle + 0.5))
    p.drawPolygon(QPolygonF([tip, left, right]))


def _dot(p: QPainter, x: float, y: float, colour: str = GREY) -> None:
    _fill(p, colour)
    p.drawEllipse(QPointF(x, y), 2.6, 2.6)


def _continue(p: QPainter) -> None:
    _fill(p, GREEN)
    p.drawRoundedRect(QRectF(4, 4, 3, 16), 1, 1)
    _triangle(p, 9.5, 4, 11, 16)


def _pause(p: QPainter) -> None:
    _fill(p, AMBER)
    p.drawRoundedRect(QRectF(6, 4, 4, 16), 1, 1)
    p.drawRoundedRect(QRectF(14, 4, 4, 16), 1, 1)


def _stop(p: QPainter) -> None:
    _fill(p, RED)
    p.drawRoundedRect(QRectF(5, 5, 14, 14), 2, 2)


def _restart(p: QPainter) -> None:
    _pen(p, GREEN, 2.6)
    p.drawArc(QRectF(5, 5, 14, 14), 60 * 16, 290 * 16)
    _fill(p, GREEN)
    _arrow_head(p, QPointF(16.5, 4.2), math.radians(-10), 5.5)


def _step_over(p: QPainter, back: bool = False) -> None:
    """An arc over the dot, left to right (`back`: its mirror image, right to left)."""
    def x(v: float) -> float:
        return 24 - v if back else v

    _pen(p, BLUE)
    path = QPainterPath(QPointF(x(4), 14))
    path.cubicTo(QPointF(x(5), 4), QPointF(x(19), 4), QPointF(x(20), 12.5))
    p.drawPath(path)
    _fill(p, BLUE)
    _arrow_head(p, QPointF(x(20.2), 14.5), math.radians(95 if back else 85))
    _dot(p, 12, 19)


def _straight_step(p: QPainter, shaft: tuple, head: tuple, degrees: float, dot: tuple) -> None:
    """A step's arrow: a shaft from shaft[0] to shaft[1], its head at `head` pointing `degrees`, and the dot of
    where the step lands."""
    _pen(p, BLUE)
    p.drawLine(QPointF(*shaft[0]), QPointF(*shaft[1]))
    _fill(p, BLUE)
    _arrow_head(p, QPointF(*head), math.radians(degrees))
    _dot(p, *dot)


def _step_into(p: QPainter) -> None:
    _straight_step(p, ((12, 3), (12, 12)), (12, 15), 90, (12, 20))


def _step_out(p: QPainter) -> None:
    _straight_step(p, ((12, 17), (12, 7)), (12, 3.5), -90, (12, 20.5))


def _run_to_phase(p: QPainter) -> None:
    _pen(p, BLUE)
    p.drawLine(QPointF(3, 12), QPointF(14, 12))
    _fill(p, BLUE)
    _arrow_head(p, QPointF(17, 12), 0.0)
    _fill(p, GREY)
    p.drawRoundedRect(QRectF(18.5, 4, 2.6, 16), 1, 1)


def _next_iteration(p: QPainter) -> None:
    _fill(p, BLUE)
    _triangle(p, 3, 5, 9, 14)
    _triangle(p, 11, 5, 9, 14)
    _fill(p, GREY)
    p.drawRoundedRect(QRectF(19.5, 5, 2.4, 14), 1, 1)


def _step_back(p: QPainter) -> None:
    _straight_step(p, ((21, 12), (11, 12)), (8, 12), 180, (3.8, 12))


def _step_back_over(p: QPainter) -> None:
    _step_over(p, back=True)


def _record(p: QPainter) -> None:
    _fill(p, RED)
    p.drawEllipse(QPointF(12, 12), 7, 7)


def _fit(p: QPainter) -> None:
    _pen(p, GREY, 2.2)
    for x, y, dx, dy in ((4, 4, 1, 1), (20, 4, -1, 1), (4, 20, 1, -1), (20, 20, -1, -1)):
        p.drawLine(QPointF(x, y), QPointF(x + 5 * dx, y))
        p.drawLine(QPointF(x, y), QPointF(x, y + 5 * dy))
    _fill(p, GREY)
    p.drawRoundedRect(QRectF(9, 9, 6, 6), 1, 1)


_DRAW = {"continue": _continue, "pause": _pause, "stop": _stop, "restart": _restart, "step_over": _step_over,
         "step_into": _step_into, "step_out": _step_out, "step_back": _step_back, "step_back_over": _step_back_over,
         "run_to_phase": _run_to_phase,
         "next_iteration": _next_iteration, "record": _record, "fit": _fit}
