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
import traceback
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
_frames: dict = {}  # (code object, its file, line) -> SourceFrame: one shared object per line


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
    # code objects compare equal without their file: two copies of one script would share the first one's frames
    key = (code, code.co_filename, line)
    f = _frames.get(key)
    if f is None:
        text = linecache.getline(code.co_filename, line).strip()
        f = _frames[key] = SourceFrame(code.co_filename, line, code.co_name, text)
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

    memo: a one-item list the caller keeps between captures, holding the first two user frames of an
    earlier walk, each with the chain outside it, or None. While a frame runs, every frame outside it
    waits on a call and stays at its line, so a walk that reaches a remembered frame takes that frame's
    current line and the remembered chain, and stops there: the ops of a forward reach the forward's
    own frame after a few engine frames (each frame walked costs a frame object), and the ops of a
    helper called again and again reach its caller's. A generator's or coroutine's frame can be resumed
    from elsewhere, so it is never remembered. The memo holds its frames alive: set memo[0] = None
    when they are no longer wanted (the tracer does, as a forward phase ends). One tuple, swapped
    whole, so threads never see half of one.
    """
    try:
        f = sys._getframe(depth + 1)  # the C walk skips frames known to be the engine's
    except ValueError:  # the stack is not that deep
        return None, ()
    kinds = _kinds
    first = None
    chain = []
    users = []  # the user frames walked, as chain's entries
    k1, out1, k2, out2 = (memo[0] if memo is not None else None) or _NO_MEMO
    while f is not None:
        kind = kinds.get(id(f.f_code))
        if kind is None:
            kind = _classify(f.f_code)
        if kind.__class__ is dict:  # user code
            sf = kind.get(f.f_lasti)
            chain.append(sf if sf is not None else _user_frame(kind, f))
            if f is k1:
                return _joined(chain, out1)
            if f is k2:
                top, stack = _joined(chain, out2)
                if memo is not None and len(chain) == 2:  # a new frame in front of k2: it is k1 now
                    memo[0] = _remembered(users[0], stack[1:], k2, out2)
                return top, stack
            users.append(f)
            if len(chain) == MAX_CHAIN:
                break
        elif kind == LIBRARY:
            if chain:
                break
            if first is None:
                first = f  # an op called from a library: its nearest frame still says where
        f = f.f_back
    if chain:
        outside = _interned(tuple(chain[1:]))
        if memo is not None and len(chain) < MAX_CHAIN:
            memo[0] = _remembered(users[0], outside, users[1] if len(users) > 1 else None, tuple(chain[2:]))
        return _joined(chain[:1], outside)
    if first is not None:
        return _frame(first.f_code, first.f_lineno), ()
    return None, ()


def _remembered(f1, out1: tuple, f2, out2: tuple) -> tuple:
    """A memo entry of frames f1 and f2 (either may be None) and the chains outside them."""
    if f1 is not None and f1.f_code.co_flags & _RESUMABLE:
        f1 = None
    if f2 is not None and f2.f_code.co_flags & _RESUMABLE:
        f2 = None
    return f1, _interned(out1), f2, _interned(out2)


_chains: dict = {}  # ids of a chain's SourceFrames -> that chain: a loop's forward remembers the same one


def _interned(chain: tuple) -> tuple:
    """One tuple per distinct chain, so that _joined's stacks are shared from step to step as well."""
    key = tuple(map(id, chain))  # SourceFrames live on in _frames: their ids stay theirs
    hit = _chains.get(key)
    if hit is None:
        if len(_chains) >= _MAX_JOINS:
            _chains.clear()
        hit = _chains[key] = chain
    return hit


_NO_MEMO = (None, (), None, ())
# a generator's or coroutine's frame outlives a call and may be resumed from elsewhere: never a memo
_RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE
_joins: dict = {}  # ids of one or two frames and of a chain -> (that chain, the joined stack): shared stacks
_MAX_JOINS = 1 << 14


def _joined(inner: list, outer: tuple) -> tuple[SourceFrame, tuple[SourceFrame, ...]]:
    """(first frame, stack) of user frames `inner` followed by the memoized chain `outer`.

    SourceFrames are shared, one per line, so one or two of them in front of a chain make the same
    stack each time: it is made once (the records of a loop's ops then share it)."""
    if len(inner) > 2:
        stack = (*inner, *outer)[:MAX_CHAIN]
        return stack[0], stack
    key = (id(inner[0]), id(inner[-1]), len(inner), id(outer))
    hit = _joins.get(key)
    if hit is not None and hit[0] is outer:
        return inner[0], hit[1]
    if len(_joins) >= _MAX_JOINS:
        _joins.clear()
    stack = (*inner, *outer)[:MAX_CHAIN]
    _joins[key] = (outer, stack)  # holding `outer` keeps its id its own
    return inner[0], stack


def frame_kind(code) -> int:
    """ENGINE, LIBRARY or USER for a code object."""
    kind = _kinds.get(id(code))
    if kind is None:
        kind = _classify(code)
    return USER if kind.__class__ is dict else kind


def raised_through(tb) -> list[tuple[object, int]]:
    """(frame, line) of the user frames traceback `tb` went through, outermost first: as capture() chains them, the
    ones nearest the raise, up to the library frame that started the user's code (runpy, a test runner): a tool
    that ran the script (tapescope's own command line) is no part of it."""
    frames = []
    for f, line in reversed(list(traceback.walk_tb(tb))):
        kind = frame_kind(f.f_code)
        if kind == USER:
            frames.append((f, line))
        elif kind == LIBRARY and frames:
            break
    return frames[::-1]


def frame_of(f, line: int | None = None) -> SourceFrame:
    """The SourceFrame of a live frame object, at its current line or at `line` (a traceback's: a frame whose
    `with` block is unwinding an exception stands at the `with`, not at the line that raised)."""
    return _frame(f.f_code, f.f_lineno if line is None else line)


def short_message(message: str, file: str = "") -> str:
    """`message` with the path `file` it names cut to its base name: in a list row or a status line the
    folder only takes room from the message (`file` itself keeps the whole path)."""
    return message.replace(file, os.path.basename(file)) if file and os.path.dirname(file) else message
