"""The panels' shares of the main window, kept as the window changes size.

Qt gives all the room a window gains to its central widget: docks squeezed by a small window stayed
small when it grew again (the inspector's table behind a scroll bar, the module tree without its Class
column), and docks grown with a large window kept the graph small when it shrank again.

`PanelShares` remembers each dock area's size (the left and right columns' widths, the bottom area's
height) and the window's size when it was set: by the first layout, a dragged splitter, a reset, the
model builder. The area then keeps that size while the window is smaller (the graph gives way first,
then Qt squeezes the docks), and the same share of the window while it is larger. Docks side by side
in an area (the inspector above the alerts, source | output | loss) keep the ratio they had.

    shares = PanelShares(window, docks)
    shares.remember()                          # once the window is shown
    shares.window_resized(event.oldSize())     # from the window's resizeEvent
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QRect, QSize, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QScrollArea, QStyle

Area, Orientation = Qt.DockWidgetArea, Qt.Orientation
H, V = Orientation.Horizontal, Orientation.Vertical
LEFT, RIGHT, BOTTOM = Area.LeftDockWidgetArea, Area.RightDockWidgetArea, Area.BottomDockWidgetArea
AREAS = ((LEFT, H), (RIGHT, H), (BOTTOM, V))  # each area's size across the window
STACKS = ((LEFT, V), (RIGHT, V), (BOTTOM, H))  # and the docks along it (the bottom area: its first row)


@dataclass(frozen=True)
class Share:
    """An area's size in pixels, set while the window was `window` pixels long in the same direction."""

    size: int
    window: int

    def at(self, window: int) -> int:
        """The area's size in a window this long: its own size, or its share of a larger window."""
        return round(self.size * max(window / max(self.window, 1), 1.0))


class PanelShares(QObject):
    """Remembers each dock area's size and share of the window, and restores them as the window resizes."""

    def __init__(self, window: QMainWindow, docks: Iterable[QDockWidget],
                 centre: Callable[[], int] | None = None) -> None:
        super().__init__(window)
        self._window = window
        self._centre = centre  # the least width the central column keeps while the window shrinks
        self._docks = list(docks)
        self._shares: dict[Area, Share] = {}
        self._stacks: dict[Area, dict[QDockWidget, int]] = {}  # the lengths of the docks along an area
        self._seen: dict = {}  # what each area and stack was when last looked at, to tell what changed
        self._size = QSize()  # the window size when last looked at; invalid until remember()
        self._applying = False
        for dock in self._docks:
            dock.installEventFilter(self)

    def share(self, area: Area) -> Share | None:
        """What is remembered of `area` (left, right: widths; bottom: height)."""
        return self._shares.get(area)

    def remember(self, only_changed: bool = False) -> None:
        """Take the areas' present sizes as those to keep (`only_changed`: only those that changed)."""
        self._size = self._window.size()
        for area, orientation in AREAS:
            extent = _length(self._bounds(area), orientation)
            if extent > 0 and (not only_changed or self._seen.get(area) != extent):  # a closed area keeps its
                self._shares[area] = Share(extent, _length(self._size, orientation))
        for area, orientation in STACKS:
            stack = self._stack(area, orientation)
            if len(stack) > 1 and (not only_changed or self._seen.get((area, orientation)) != stack):
                self._stacks[area] = stack
        self._look()

    @contextlib.contextmanager
    def rearranging(self, area: Area):
        """The window moves docks of `area` itself (not the person): no area's size inside is taken as the one
        to keep, while the docks now side by side in `area` share it from then on as they do now."""
        self._applying = True
        try:
            yield
        finally:
            self._applying = False
            stack = self._stack(area, dict(STACKS)[area])
            if len(stack) > 1:
                self._stacks[area] = stack
            self._look()

    def window_resized(self, old: QSize) -> None:
        """Bring each area to its size for the window's new size (Qt has moved the docks already)."""
        if not self._size.isValid():
            return  # not shown yet: the first sizes come with the window
        new = self._window.size()
        self._applying = True
        try:
            sizes = self._area_sizes(old, new)
            if new.width() < old.width():
                sizes = self._keep_centre(sizes, new.width())
            self._apply(sizes)
            self._apply(self._stack_sizes(old, new))  # within the areas' new sizes
        finally:
            self._applying = False
        self._size = new
        self._look()

    def keep_centre(self) -> None:
        """Narrow the side columns alike where they leave the central column less than its least width (a
        layout restored from a larger window: at 1024x640 one saved at 1920x1080 kept a 503-pixel inspector)."""
        self._applying = True
        try:
            self._apply(self._keep_centre([], self._window.width()))
        finally:
            self._applying = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # a dock resized while the window kept its size was sized on purpose: a splitter, a reset, a builder
        if event.type() == QEvent.Type.Resize and not self._applying and self._window.size() == self._size:
            self.remember(only_changed=True)
        return False

    def _area_sizes(self, old: QSize, new: QSize) -> list[tuple[Orientation, QDockWidget, int]]:
        """Per area that the window's change takes towards its size, its longest dock and that dock's length
        (in the bottom area the row, not the timeline under it)."""
        out = []
        for area, orientation in AREAS:
            share, bounds = self._shares.get(area), self._bounds(area)
            if share is None or bounds.isEmpty():
                continue
            change = _length(new, orientation) - _length(old, orientation)
            delta = share.at(_length(new, orientation)) - _length(bounds, orientation)
            if delta * change > 0:  # only along the window's change: a squeezed area waits for room
                dock = max(self._in(area), key=lambda d: _length(d.geometry(), orientation))
                out.append((orientation, dock, _length(dock.geometry(), orientation) + delta))
        return out

    def _keep_centre(self, sizes: list, width: int) -> list:
        """`sizes` with the left and right columns narrowed alike where they would leave the central column
        less than its least width: from 1440x900 to 1024x640 with the model builder open, the columns kept
        their widths and the graph's column had 255 pixels, its source panel two characters of each line."""
        if self._centre is None:
            return sizes
        planned = {dock: size for o, dock, size in sizes if o == H}
        columns = []  # (the column's longest dock, its width to be, the column's width to be, its least width)
        for area in (LEFT, RIGHT):
            docks = self._in(area)
            if docks:
                dock = next((d for d in docks if d in planned), None) or max(docks, key=lambda d: d.width())
                size = planned.get(dock, dock.width())
                columns.append((dock, size, self._bounds(area).width() + size - dock.width(),
                                max(_least_width(d) for d in docks)))
        # each column gives what it has above the least width its panels read at (the inspector's table,
        # the builder's buttons): past that they would scroll sideways, which is worse than a narrow graph
        spare = {dock: max(column - least, 0) for dock, _size, column, least in columns}
        taken = sum(column for _dock, _size, column, _least in columns)
        short = min(self._centre() - (width - taken), sum(spare.values()))
        if short <= 0:
            return sizes
        narrowed = {dock: size - round(short * spare[dock] / sum(spare.values()))
                    for dock, size, _column, _least in columns}
        return [entry for entry in sizes if entry[0] != H or entry[1] not in narrowed] + [
            (H, dock, size) for dock, size in narrowed.items()]

    def _stack_sizes(self, old: QSize, new: QSize) -> list[tuple[Orientation, QDockWidget, int]]:
        """The docks along each area, sharing its length as they did (when they are the same docks)."""
        out = []
        for area, orientation in STACKS:
            was, now = self._stacks.get(area, {}), self._stack(area, orientation)
            if _length(new, orientation) == _length(old, orientation) or len(now) < 2 or set(was) != set(now):
                continue  # other docks now (one closed, one moved): Qt's split stands
            total, before = sum(now.values()), sum(was.values())
            out += [(orientation, dock, round(total * was[dock] / before)) for dock in now]
        return out

    def _apply(self, sizes: list[tuple[Orientation, QDockWidget, int]]) -> None:
        """Resize docks to these lengths now (a tabbed dock's length in resizeDocks counts its tab bar:
        a second pass corrects by what the first missed)."""
        for orientation in (H, V):
            docks = [dock for o, dock, _size in sizes if o == orientation]
            wanted = [size for o, _dock, size in sizes if o == orientation]
            # a dock squeezed under its minimum (a window made very small) misses by more than it asked for:
            # Qt refuses a size of 0 or less, with a warning, so each ask stays at least a pixel
            wanted = [max(1, size) for size in wanted]
            asked = list(wanted)
            for _ in range(2 if docks else 0):
                self._window.resizeDocks(docks, asked, orientation)
                self._window.layout().activate()  # now, so the docks' resizes are not taken as the person's
                missed = [size - _length(d.geometry(), orientation) for d, size in zip(docks, wanted, strict=True)]
                if not any(missed):
                    break
                asked = [max(1, a + m) for a, m in zip(asked, missed, strict=True)]

    def _look(self) -> None:
        """Note what every area and stack is now."""
        for area, orientation in AREAS:
            self._seen[area] = _length(self._bounds(area), orientation)
        for area, orientation in STACKS:
            self._seen[(area, orientation)] = self._stack(area, orientation)

    def _stack(self, area: Area, orientation: Orientation) -> dict[QDockWidget, int]:
        """The lengths of the docks in `area`'s first line along `orientation`."""
        docks = self._in(area)
        across = (lambda d: d.geometry().top()) if orientation == H else (lambda d: d.geometry().left())
        first = min((across(d) for d in docks), default=0)
        return {d: _length(d.geometry(), orientation) for d in docks if across(d) == first}

    def _in(self, area: Area) -> list[QDockWidget]:
        """The docks shown in `area` (a tab behind another is "visible", but moved out of the window)."""
        inside = self._window.rect()
        return [d for d in self._docks if d.isVisible() and not d.isFloating()
                and self._window.dockWidgetArea(d) == area and inside.intersects(d.geometry())]

    def _bounds(self, area: Area) -> QRect:
        bounds = QRect()
        for dock in self._in(area):
            bounds = bounds.united(dock.geometry())
        return bounds


def _least_width(dock: QDockWidget) -> int:
    """The width a dock's panel reads at: what its contents need, also inside a scroll area."""
    inner = dock.widget()
    if isinstance(inner, QScrollArea) and inner.widget() is not None:
        bar = inner.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, inner)
        content = inner.widget()
        # the inspector scrolls its tensor inside itself, its buttons pinned: it reads at its full width
        need = content.full_width() if hasattr(content, "full_width") else content.minimumSizeHint().width()
        return need + bar + dock.width() - inner.width()
    return dock.minimumSizeHint().width()


def _length(rect: QRect | QSize, orientation: Orientation) -> int:
    return rect.width() if orientation == H else rect.height()
