"""Where an op was called from: the first frame outside the engine, and the chain of user frames.

Walking the stack costs one dictionary lookup per frame, keyed by the code object's id (hashing a code
object hashes its bytecode): each code object is classified once (engine, library or user), and each
user code object maps its instruction offsets to shared SourceFrames, so a line number is computed
(a scan of the line table) and its text read only the first time an offset is seen.
"""

from __future__ import annotations

import inspect
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


# id(code) -> ENGINE, LIBRARY, or for user code a dict {instruction offset: SourceFrame}
_kinds: dict[int, int | dict] = {}
_codes: list = []  # every classified code object, kept alive so that its id stays its own
_frames: dict = {}  # (code object, line) -> SourceFrame: one shared object per line


def _classify(code) -> int | dict:
    name = code.co_filename
    if name.startswith("<"):  # "<frozen runpy>" is Python's own; "<stdin>", "<string>" are a person's
        kind = LIBRARY if name.startswith("<frozen") else USER
    else:
        path = os.path.abspath(name)
        kind = ENGINE if path.startswith(_ENGINE_DIR) else LIBRARY if path.startswith(_LIBRARY_DIRS) else USER
    entry = {} if kind == USER else kind
    _codes.append(code)
    _kinds[id(code)] = entry
    return entry


def _frame(code, line: int) -> SourceFrame:
    f = _frames.get((code, line))
    if f is None:
        text = linecache.getline(code.co_filename, line).strip()
        f = _frames[(code, line)] = SourceFrame(code.co_filename, line, code.co_name, text)
    return f


def _user_frame(offsets: dict, f) -> SourceFrame:
    """The SourceFrame of live user frame `f` whose code's offset table is `offsets` (filled on a miss)."""
    sf = offsets[f.f_lasti] = _frame(f.f_code, f.f_lineno)
    return sf


def capture(depth: int = 1, memo: list | None = None) -> tuple[SourceFrame | None, tuple[SourceFrame, ...]]:
    """(first frame outside the engine, user frames innermost first), from `depth` frames above the caller.

    Engine frames are skipped wherever they are (a model's forward called by Module.__call__ is user
    code); library frames before the first user frame are skipped too, and the chain ends at the first
    library frame after it (the test runner, runpy or threading that started the user's code).

    memo: a one-item list the caller keeps between captures, holding (frame, offset, chain from that
    frame outward) or None. That chain cannot change while the frame is still at the same instruction
    (it is waiting on a call), so the walk stops there and reuses it; a full walk remembers its second
    user frame. The memo holds that frame alive: set memo[0] = None when it is no longer wanted (the
    tracer does, as a forward phase ends). One tuple, swapped whole, so threads never see half of one.
    """
    try:
        f = sys._getframe(depth + 1)  # the C walk skips frames known to be the engine's
    except ValueError:  # the stack is not that deep
        return None, ()
    kinds = _kinds
    first = None
    chain = []
    outer, outer_lasti, outer_chain = (memo[0] if memo is not None else None) or _NO_MEMO
    second = None
    while f is not None:
        kind = kinds.get(id(f.f_code))
        if kind is None:
            kind = _classify(f.f_code)
        if kind.__class__ is dict:  # user code
            lasti = f.f_lasti
            if f is outer and lasti == outer_lasti:
                return _joined(chain, outer_chain)
            sf = kind.get(lasti)
            chain.append(sf if sf is not None else _user_frame(kind, f))
            if len(chain) == 2:
                second, second_lasti = f, lasti
            if len(chain) == MAX_CHAIN:
                break
        elif kind == LIBRARY:
            if chain:
                break
            if first is None:
                first = f  # an op called from a library: its nearest frame still says where
        f = f.f_back
    if chain:
        if second is not None and memo is not None and len(chain) < MAX_CHAIN \
                and not second.f_code.co_flags & _RESUMABLE:
            memo[0] = (second, second_lasti, tuple(chain[1:]))
        return chain[0], tuple(chain)
    if first is not None:
        return _frame(first.f_code, first.f_lineno), ()
    return None, ()


_NO_MEMO = (None, -1, ())
# a generator's or coroutine's frame outlives a call and may be resumed from elsewhere: never a memo
_RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE
_joins: dict = {}  # (id of a frame, id of a chain) -> (that chain, the frame + the chain): shared stacks
_MAX_JOINS = 1 << 14


def _joined(inner: list, outer: tuple) -> tuple[SourceFrame, tuple[SourceFrame, ...]]:
    """(first frame, stack) of user frames `inner` followed by the memoized chain `outer`."""
    if len(inner) == 1:  # the common case: one frame in front of a memoized chain, the same each time
        hit = _joins.get((id(inner[0]), id(outer)))
        if hit is not None and hit[0] is outer:
            return inner[0], hit[1]
        if len(_joins) >= _MAX_JOINS:
            _joins.clear()
        stack = (inner[0], *outer)[:MAX_CHAIN]
        _joins[(id(inner[0]), id(outer))] = (outer, stack)  # holding `outer` keeps its id its own
        return inner[0], stack
    stack = (*inner, *outer)[:MAX_CHAIN]
    return stack[0], stack


def frame_kind(code) -> int:
    """ENGINE, LIBRARY or USER for a code object."""
    kind = _kinds.get(id(code))
    if kind is None:
        kind = _classify(code)
    return USER if kind.__class__ is dict else kind


def frame_of(f) -> SourceFrame:
    """The SourceFrame of a live frame object."""
    return _frame(f.f_code, f.f_lineno)
