"""Colours that depend on whether the palette is light or dark (text colours that must stay readable)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QGraphicsView, QWidget

# (light, dark): each reads at a WCAG contrast of 4.5 or more on its palette's Base and Window colours
ERROR_TEXT = ("#c92a2a", "#ff8787")
OK_TEXT = ("#2b8a3e", "#69db7c")
MUTED_TEXT = ("#868e96", "#9aa3ad")
SECONDARY_TEXT = ("#495057", "#c1c8d0")
# a field that refused its input: a pale red fill in light mode, a dark red one in dark mode (text keeps
# the palette's colour, which reads on either)
ERROR_FIELD = ("#ffe3e3", "#4a2124")
# the curves of one plot in order (a loss per source line): mid-tone hues that read on light and dark, none
# the red of a NaN's cross or the amber of a replay's cursor
CURVES = ("#1c7ed6", "#2f9e44", "#ae3ec9", "#e8590c", "#0c8599", "#5f3dc4", "#66a80f", "#c2255c")


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether `palette` (default: the application's) draws light text on a dark window."""
    if palette is None:
        palette = QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5


def pick(pair: tuple[str, str], palette: QPalette | None = None) -> str:
    """The light or dark member of `pair`, for `palette` (default: the application's)."""
    return pair[1] if is_dark(palette) else pair[0]


def luminance(colour: QColor) -> float:
    """Relative luminance (WCAG 2) of an sRGB colour: 0 black, 1 white."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * linear(colour.redF()) + 0.7152 * linear(colour.greenF()) + 0.0722 * linear(colour.blueF())


def contrast(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((luminance(QColor(a)), luminance(QColor(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


class _PaletteWatch(QObject):
    """Calls `apply` when its widget's palette turns between light and dark (not on every palette event:
    a style sheet set by `apply` sends one too)."""

    def __init__(self, widget: QWidget, apply: Callable[[], None]) -> None:
        super().__init__(widget)
        self._apply = apply
        self._dark = is_dark(widget.palette())
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.PaletteChange and isinstance(watched, QWidget):
            dark = is_dark(watched.palette())
            if dark != self._dark:
                self._dark = dark
                if isinstance(watched, QGraphicsView):  # pyqtgraph caches the background it drew
                    watched.resetCachedContent()
                # a widget being torn down: its Qt parts are gone, nothing to recolour
                with contextlib.suppress(RuntimeError):
                    self._apply()
        return False


def follow_palette(widget: QWidget, apply: Callable[[], None], now: bool = True) -> None:
    """Call `apply` now (unless not `now`), and again whenever `widget`'s palette turns light or dark:
    colours picked from the palette at construction (style sheets, item colours) follow a change of the
    system's colour scheme while the app runs, not only after a restart."""
    if now:
        apply()
    _PaletteWatch(widget, apply)


class _Tint(QObject):
    """The pair a label is tinted with now (None: the palette's own text colour), kept as its child so
    tinting it again changes the colour instead of adding a second watcher."""

    def __init__(self, label: QWidget) -> None:
        super().__init__(label)
        self.setObjectName(_TINT)
        self.label = label
        self.pair: tuple[str, str] | None = None
        follow_palette(label, self.apply, now=False)

    def apply(self) -> None:
        label, palette = self.label, self.label.palette()
        if self.pair is None:  # the parent's (the application's) text colours again
            source = label.parentWidget().palette() if label.parentWidget() else QGuiApplication.palette()
            text, window_text = source.color(QPalette.ColorRole.Text), source.color(QPalette.ColorRole.WindowText)
        else:
            text = window_text = QColor(pick(self.pair))
        palette.setColor(QPalette.ColorRole.WindowText, window_text)
        palette.setColor(QPalette.ColorRole.Text, text)
        label.setPalette(palette)


_TINT = "tapescope-tint"


def tint(label: QWidget, pair: tuple[str, str] | None, extra: str | None = None) -> None:
    """Colour `label`'s text with the light or dark member of `pair` (None: the palette's text colour),
    following the palette as it changes; call it again to change the colour (`extra`: a style sheet without
    colours, e.g. a font size). Through the palette, not a style sheet: a widget with a colour in its style
    sheet keeps its palette and never hears that the system's changed."""
    if extra is not None:
        label.setStyleSheet(extra)
    holder = label.findChild(_Tint, _TINT, Qt.FindChildOption.FindDirectChildrenOnly)
    if holder is None:
        holder = _Tint(label)
    holder.pair = pair
    holder.apply()
