"""Warnings that point at the person's line: the first frame outside the engine, as torch's point at the call."""

from __future__ import annotations

import sys
import warnings


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """warnings.warn(message, category) attributed to the first caller outside the engine package."""
    f, level = sys._getframe(1), 2
    while f is not None and f.f_globals.get("__name__", "").startswith("engine."):
        f, level = f.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
