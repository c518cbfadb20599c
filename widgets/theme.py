"""Colours that depend on whether the palette is light or dark (text colours that must stay readable)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QGuiApplication, QPalette

# (light, dark): each reads at a WCAG contrast of 4.5 or more on its palette's Base and Window colours
ERROR_TEXT = ("#c92a2a", "#ff8787")
OK_TEXT = ("#2b8a3e", "#69db7c")
MUTED_TEXT = ("#868e96", "#9aa3ad")
SECONDARY_TEXT = ("#495057", "#c1c8d0")
# a field that refused its input: a pale red fill in light mode, a dark red one in dark mode (text keeps
# the palette's colour, which reads on either)
ERROR_FIELD = ("#ffe3e3", "#4a2124")


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
