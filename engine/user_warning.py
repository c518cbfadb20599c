"""Warnings that point at the person's line: the first frame outside the engine, as torch's point at the call."""

from __future__ import annotations

import sys
import warnings


def in_engine(frame) -> bool:
    """Whether `frame` runs the engine's own code."""
    return frame.f_globals.get("__name__", "").startswith("engine.")


def outside_engine(frame, depth: int = 0) -> tuple:
    """The first frame from `frame` outward that is not the engine's (None past the stack's end), and `depth` plus
    how many frames out it lies: where the person called the engine."""
    while frame is not None and in_engine(frame):
        frame, depth = frame.f_back, depth + 1
    return frame, depth


def caller_site(frame) -> tuple[str, int] | None:
    """(file, line) of the first frame from `frame` outward outside the engine: the person's line, or None."""
    f, _ = outside_engine(frame)
    return (f.f_code.co_filename, f.f_lineno) if f is not None else None


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """warnings.warn(message, category) attributed to the first caller outside the engine package."""
    _, level = outside_engine(sys._getframe(1), 2)
    warnings.warn(message, category, stacklevel=level)
