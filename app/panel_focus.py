"""The keyboard's way between the window's panels: Ctrl+Tab and Ctrl+Shift+Tab go round the panels in view (the
graph included), View > Go to Panel (Alt+1 ... Alt+9) brings one to the front; either gives it the keyboard focus.

    focus = PanelFocus(window)          # window.canvas, window.docks, window.status_panel
    focus.cycle(); focus.cycle(backward=True); focus.go_to("alerts"); focus.current()

Tab stays each panel's own (in the graph it goes round the nodes), so without these the docks could not be reached
without the mouse. The round goes column by column as the window is laid out: the left column, the graph, the
right column, the rows under the graph, then floating panels; top to bottom, left to right within each.
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QPainter, QPalette, QPen
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QScrollArea, QWidget

GRAPH = "graph"  # the window's centre, named as the docks are
FLASH_MS = 900  # how long the panel given the focus is framed
_AREAS = (Qt.DockWidgetArea.LeftDockWidgetArea, None, Qt.DockWidgetArea.RightDockWidgetArea,
          Qt.DockWidgetArea.BottomDockWidgetArea, Qt.DockWidgetArea.TopDockWidgetArea)  # None: the graph


class PanelFocus:
    """Moves the keyboard focus between the graph and the docks of `window` (see the module docstring)."""

    def __init__(self, window: QMainWindow) -> None:
        self.w = window
        self.flash: Flash | None = None  # the frame over the panel the keyboard went to last, while it shows

    def panels(self) -> list[tuple[str, QWidget]]:
        """(name, the widget that holds it) of each panel in view, in the order Ctrl+Tab visits them."""
        w = self.w
        placed = []
        if w.canvas.isVisible():
            placed.append(((_AREAS.index(None), 0, 0), GRAPH, w.canvas))
        for dock in w.findChildren(QDockWidget):
            if not _in_view(dock):
                continue
            area = w.dockWidgetArea(dock)
            at = dock.mapTo(w, QPoint(0, 0)) if not dock.isFloating() else dock.pos()
            rank = len(_AREAS) if dock.isFloating() or area not in _AREAS else _AREAS.index(area)
            placed.append(((rank, at.y(), at.x()), dock.objectName(), dock))
        return [(name, widget) for _, name, widget in sorted(placed, key=lambda p: p[0])]

    def current(self) -> str | None:
        """The panel holding the keyboard focus, or None."""
        focus = QApplication.focusWidget()
        while focus is not None:
            if focus is self.w.canvas:
                return GRAPH
            if isinstance(focus, QDockWidget):
                return focus.objectName()
            focus = focus.parentWidget()
        return None

    def cycle(self, backward: bool = False) -> str | None:
        """Focus the next panel in view after the one with the focus (`backward`: the one before); its name."""
        panels = self.panels()
        if not panels:
            return None
        names = [name for name, _ in panels]
        here = self.current()
        if here in names:
            i = (names.index(here) + (-1 if backward else 1)) % len(names)
        else:
            i = len(names) - 1 if backward else 0
        self._focus(*panels[i])
        return names[i]

    def go_to(self, name: str) -> bool:
        """Show panel `name` ("graph" or a dock's name), in front of the panels tabbed with it, and focus it."""
        if name == GRAPH:
            self._focus(GRAPH, self.w.canvas)
            return True
        dock = self.w.findChild(QDockWidget, name)
        if dock is None:
            return False
        dock.show()
        dock.raise_()
        self._focus(name, dock)
        return True

    def _focus(self, name: str, holder: QWidget) -> None:
        target = focus_target(holder.widget() if isinstance(holder, QDockWidget) else holder)
        target.window().activateWindow()  # a floating dock is a window of its own
        target.setFocus(Qt.FocusReason.ShortcutFocusReason)
        title = "Graph" if name == GRAPH else holder.windowTitle()
        # where the focus went is not plain to see (a list draws no frame around itself): framed for a moment, named
        if self.flash is not None:
            with contextlib.suppress(RuntimeError):  # (gone already: it closes itself)
                self.flash.close()
        self.flash = Flash(holder)
        self.w.status_panel.set_note(f"{title}: Ctrl+Tab goes to the next panel, Ctrl+Shift+Tab back", 4)


class Flash(QWidget):
    """A frame in the palette's highlight colour over `panel` for FLASH_MS, then gone; the mouse goes through it."""

    def __init__(self, panel: QWidget) -> None:
        super().__init__(panel)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setGeometry(panel.rect())
        self.show()
        self.raise_()
        QTimer.singleShot(FLASH_MS, self.close)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), 3))
        p.drawRect(self.rect().adjusted(1, 1, -2, -2))


def focus_target(widget: QWidget | None) -> QWidget | None:
    """The widget of a panel to give the keyboard focus: the panel's own widget where it takes the focus, else its
    first shown child that does (a list, a text, a tab bar); a panel with none gets the focus itself, so that the
    next Ctrl+Tab goes on from it."""
    if widget is None:
        return None
    inner = widget.widget() if isinstance(widget, QScrollArea) and widget.widget() is not None else widget
    for candidate in (inner, *inner.findChildren(QWidget)):
        if (candidate.focusPolicy() & Qt.FocusPolicy.TabFocus and candidate.isVisible() and candidate.isEnabled()
                and not isinstance(candidate, QScrollArea)):
            return candidate
    if not inner.focusPolicy() & Qt.FocusPolicy.ClickFocus:
        inner.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    return inner


def _in_view(dock: QDockWidget) -> bool:
    """Whether `dock` is shown and in front: a dock tabbed behind another is not."""
    return dock.isVisible() and not dock.visibleRegion().isEmpty()
