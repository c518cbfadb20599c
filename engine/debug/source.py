"""Where an op was called from: the first frame outside the engine, and the chain of user frames.

Walking the stack costs a dictionary lookup per frame: each code object is classified once (engine,
library or user), and each (code, line) becomes one shared SourceFrame, with its text read once.
"""

from __future__ import annotations

import linecache
import os
import sys
import sysconfig
from dataclasses import dataclass

import engine

ENGINE, LIBRARY, USER = 0, 1, 2
MAX_CHAIN = 12

_ENGINE_DIR = os.path.dirname(os.path.abspath(engine.__file__)) + os.sep
_LIBRARY_DIRS = tuple({os.path.abspath(p) + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")
                       if (p := sysconfig.get_paths().get(key))})


@dataclass(frozen=True, slots=True)
class SourceFrame:
    """One frame of user code: file, line number, function name and the line's text."""

    file: str
    line: int
    function: str
    text: str


_kinds: dict = {}  # code object -> ENGINE | LIBRARY | USER
_frames: dict = {}  # (code object, line) -> SourceFrame


def _kind(code) -> int:
    name = code.co_filename
    if name.startswith("<"):  # "<frozen runpy>" is Python's own; "<stdin>", "<string>" are a person's
        kind = LIBRARY if name.startswith("<frozen") else USER
    else:
        path = os.path.abspath(name)
        kind = ENGINE if path.startswith(_ENGINE_DIR) else LIBRARY if path.startswith(_LIBRARY_DIRS) else USER
    _kinds[code] = kind
    return kind


def _frame(code, line: int) -> SourceFrame:
    text = linecache.getline(code.co_filename, line).strip()
    f = _frames[(code, line)] = SourceFrame(code.co_filename, line, code.co_name, text)
    return f


def capture(depth: int = 1) -> tuple[SourceFrame | None, tuple[SourceFrame, ...]]:
    """(first frame outside the engine, user frames innermost first), from `depth` frames above the caller.

    Engine frames are skipped wherever they are (a model's forward called by Module.__call__ is user
    code); library frames before the first user frame are skipped too, and the chain ends at the first
    library frame after it (the test runner, runpy or threading that started the user's code).
    """
    kinds, frames = _kinds, _frames
    try:
        f = sys._getframe(depth + 1)  # the C walk skips frames known to be the engine's
    except ValueError:  # the stack is not that deep
        return None, ()
    first = None
    chain = []
    while f is not None:
        code = f.f_code
        kind = kinds.get(code)
        if kind is None:
            kind = _kind(code)
        if kind == USER:
            line = f.f_lineno
            sf = frames.get((code, line)) or _frame(code, line)
            chain.append(sf)
            if len(chain) == MAX_CHAIN:
                break
        elif kind == LIBRARY:
            if chain:
                break
            if first is None:
                first = f  # an op called from a library: its nearest frame still says where
        f = f.f_back
    if chain:
        return chain[0], tuple(chain)
    if first is not None:
        return frames.get((first.f_code, first.f_lineno)) or _frame(first.f_code, first.f_lineno), ()
    return None, ()


def frame_kind(code) -> int:
    """ENGINE, LIBRARY or USER for a code object."""
    kind = _kinds.get(code)
    return kind if kind is not None else _kind(code)


def frame_of(f) -> SourceFrame:
    """The SourceFrame of a live frame object."""
    return _frames.get((f.f_code, f.f_lineno)) or _frame(f.f_code, f.f_lineno)
