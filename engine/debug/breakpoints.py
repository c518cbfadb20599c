"""Breakpoints: plain specs (Breakpoint) and the table that matches them against records.

Kinds: op name or key (glob), module path (glob; on enter or exit), iteration number, phase,
value conditions on an op's output or a node's gradients (non-finite, max |x|, L2 norm; on every op, or
on the ops an op glob names), and Python predicates registered by name. Each can be enabled,
disabled and hit-counted, and can skip its first `skip` hits (gdb's ignore count).
"""

from __future__ import annotations

import fnmatch
import functools
import math
import numbers
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from engine.debug.records import PHASES, BackwardRecord, EventRecord, OpRecord
from engine.events import ModuleEvent

KINDS = ("op", "module", "iteration", "phase", "nonfinite", "max_abs", "norm", "predicate")
CONDITIONS = ("nonfinite", "max_abs", "norm")
WHERE = {"op": ("forward", "backward", "any"), "module": ("enter", "exit", "any"),
         "condition": ("output", "grad", "any")}


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """Where to stop; build one with the class methods (Breakpoint.op("matmul"), ...).

    pattern: glob on op name or key, glob on module path, phase name, or predicate name; for a value
    condition, an op glob limiting it to the ops it names ("" watches every op). on: which side (see
    WHERE). value: iteration number or threshold. skip: hits passed before it stops.
    """

    kind: str
    pattern: str = ""
    on: str = ""
    value: float = 0.0
    skip: int = 0

    @classmethod
    def op(cls, pattern: str, on: str = "forward", skip: int = 0) -> Breakpoint:
        """Stop at ops whose name or key matches the glob (forward ops, backward nodes, or both)."""
        return cls("op", pattern, on, 0.0, skip)

    @classmethod
    def module(cls, pattern: str, on: str = "enter", skip: int = 0) -> Breakpoint:
        """Stop when a module call whose path matches the glob starts (or ends)."""
        return cls("module", pattern, on, 0.0, skip)

    @classmethod
    def iteration(cls, n: int) -> Breakpoint:
        """Stop at the first event of iteration `n`."""
        if isinstance(n, bool) or not isinstance(n, numbers.Real) or not 0 <= n < math.inf or n != int(n):
            raise ValueError(f"iteration breakpoint: the iteration must be a whole number >= 0, got {n!r}")
        return cls("iteration", "", "", float(n))

    @classmethod
    def phase(cls, name: str, skip: int = 0) -> Breakpoint:
        """Stop at the first event of each forward, backward or optimizer phase."""
        return cls("phase", name, "", 0.0, skip)

    @classmethod
    def nonfinite(cls, on: str = "any", pattern: str = "") -> Breakpoint:
        """Stop where an op output (or a gradient) holds NaN or infinity (`pattern`: only ops it names)."""
        return cls("nonfinite", pattern, on)

    @classmethod
    def max_abs(cls, threshold: float, on: str = "any", pattern: str = "") -> Breakpoint:
        """Stop where max |x| of an op output (or a gradient) exceeds `threshold` (`pattern`: only ops
        it names)."""
        return cls("max_abs", pattern, on, _threshold("max_abs", threshold))

    @classmethod
    def norm(cls, threshold: float, on: str = "any", pattern: str = "") -> Breakpoint:
        """Stop where the L2 norm of an op output (or a gradient) exceeds `threshold` (`pattern`: only
        ops it names)."""
        return cls("norm", pattern, on, _threshold("norm", threshold))

    @classmethod
    def predicate(cls, name: str) -> Breakpoint:
        """Stop where the predicate registered under `name` (Debugger.add_predicate) returns True."""
        return cls("predicate", name)

    def validate(self) -> Breakpoint:
        """This breakpoint with its default side filled in; ValueError when it cannot work."""
        if self.kind not in KINDS:
            raise ValueError(f"breakpoint kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        group = "condition" if self.kind in CONDITIONS else self.kind
        sides = WHERE.get(group)
        on = self.on or (sides[0] if group != "condition" and sides else "any")
        if sides and on not in sides:
            raise ValueError(f"{self.kind} breakpoint: on must be one of {', '.join(sides)}, got {on!r}")
        if self.kind == "phase" and self.pattern not in PHASES:
            raise ValueError(f"phase breakpoint: phase must be one of {', '.join(PHASES)}, "
                             f"got {self.pattern!r}")
        if self.kind in ("op", "module", "predicate") and not self.pattern:
            raise ValueError(f"{self.kind} breakpoint needs a pattern")
        if self.skip < 0:
            raise ValueError(f"breakpoint skip must be >= 0, got {self.skip}")
        return Breakpoint(self.kind, self.pattern, on, self.value, self.skip)


def _threshold(kind: str, value) -> float:
    """A condition's threshold as a float; ValueError naming the breakpoint when it is not a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"{kind} breakpoint: the threshold must be a number, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class BreakpointInfo:
    """A breakpoint as listed: its id, spec, whether enabled, and how often it was hit."""

    id: int
    spec: Breakpoint
    enabled: bool
    hits: int


class _Entry:
    __slots__ = ("enabled", "hits", "last", "regex", "spec")

    def __init__(self, spec: Breakpoint) -> None:
        self.spec = spec
        self.enabled = True
        self.hits = 0
        self.last = None  # iteration/phase breakpoints: where they last fired
        self.regex = glob(spec.pattern) if spec.pattern else None


class BreakpointTable:
    """Breakpoints by id; `match(record)` counts hits and returns the id that stops (0: none)."""

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._next = 1
        self._lock = threading.Lock()
        self.predicates: dict[str, Callable] = {}
        self.enabled = 0  # how many are enabled (the debugger's fast path reads it)
        self.conditions = 0  # how many enabled ones need value summaries

    def add(self, spec: Breakpoint) -> int:
        """Add a breakpoint; returns its id."""
        spec = spec.validate()
        with self._lock:
            bid = self._next
            self._next += 1
            self._entries[bid] = _Entry(spec)
            self._count()
        return bid

    def remove(self, bid: int) -> None:
        """Remove a breakpoint (KeyError for an unknown id)."""
        with self._lock:
            if self._entries.pop(bid, None) is None:
                raise KeyError(f"no breakpoint with id {bid}")
            self._count()

    def enable(self, bid: int, enabled: bool = True) -> None:
        """Enable or disable a breakpoint."""
        with self._lock:
            if bid not in self._entries:
                raise KeyError(f"no breakpoint with id {bid}")
            self._entries[bid].enabled = bool(enabled)
            self._count()

    def list(self) -> tuple[BreakpointInfo, ...]:
        """Every breakpoint with its state."""
        with self._lock:
            return tuple(BreakpointInfo(i, e.spec, e.enabled, e.hits) for i, e in self._entries.items())

    def _count(self) -> None:
        live = [e for e in self._entries.values() if e.enabled]
        self.enabled = len(live)
        self.conditions = sum(1 for e in live if e.spec.kind in CONDITIONS)

    def match(self, rec) -> int:
        """Count a hit on every enabled breakpoint `rec` matches; the first id that stops, or 0."""
        stop = 0
        for bid, e in tuple(self._entries.items()):
            if e.enabled and _matches(e, rec, self.predicates):
                e.hits += 1
                if not stop and e.hits > e.spec.skip:
                    stop = bid
        return stop


@functools.lru_cache(maxsize=256)
def glob(pattern: str) -> Callable:
    """The match function of a glob pattern (fnmatchcase's rules), compiled once per pattern."""
    return re.compile(fnmatch.translate(pattern)).match


# what an op or module breakpoint names, one rule for the engine's stops and the graph's marks: an op by its
# name or its key; a module call by its path, with or without the root's class name in front
def _names_op(match: Callable, op: str, key: str) -> bool:
    return bool(match(op) or match(key))


def _names_module(match: Callable, path: str) -> bool:
    return bool(match(path) or match(path.partition(".")[2]))


def namer(specs, kind: str) -> Callable | None:
    """For the places a graph marks: a function telling whether any `kind` ("op" or "module") breakpoint
    of `specs` names an op (op, key) or a module call (path); None when none is of that kind."""
    patterns = sorted({s.pattern for s in specs if s.kind == kind})
    if not patterns:
        return None
    match = re.compile("|".join(fnmatch.translate(p) for p in patterns)).match  # all of them in one pass
    if kind == "op":
        return lambda op, key: _names_op(match, op, key)
    return lambda path: _names_module(match, path)


def _matches(e: _Entry, rec, predicates: dict) -> bool:
    spec = e.spec
    kind = spec.kind
    is_module = isinstance(rec, EventRecord) and isinstance(rec.event, ModuleEvent)
    if kind == "module":
        if not is_module or (spec.on != "any" and (spec.on == "enter") != rec.event.enter):
            return False
        path = rec.event.path
        return _names_module(e.regex, path)
    if is_module or (isinstance(rec, EventRecord) and rec.phase != "optimizer"):
        return False  # only ops, backward nodes and optimizer steps are places to stop at
    if kind == "op":
        if isinstance(rec, EventRecord) or (spec.on == "forward" and not isinstance(rec, OpRecord)) \
                or (spec.on == "backward" and not isinstance(rec, BackwardRecord)):
            return False
        return _names_op(e.regex, rec.event.op, rec.event.key)
    if kind in ("iteration", "phase"):
        if kind == "iteration" and rec.iteration != spec.value:
            return False
        if kind == "phase" and rec.phase != spec.pattern:
            return False
        here = rec.iteration if kind == "iteration" else (rec.iteration, rec.phase)
        if e.last == here:
            return False
        e.last = here
        return True
    if kind == "predicate":
        fn = predicates.get(spec.pattern)
        if fn is None:
            return False
        try:
            return bool(fn(rec))
        except Exception as err:  # the person's predicate is wrong: say which, not a bare error from an op
            raise RuntimeError(f"breakpoint predicate {spec.pattern!r} raised {type(err).__name__}: {err} "
                               f"(at {getattr(rec.event, 'key', '') or type(rec.event).__name__})") from err
    if e.regex is not None and (isinstance(rec, EventRecord) or not _names_op(e.regex, rec.event.op, rec.event.key)):
        return False  # a condition limited to some ops: a backward node is named by its forward op's key
    return tripped(spec, rec) is not None


def tripped(spec: Breakpoint, rec) -> tuple[str, object] | None:
    """For a value condition: ("output" or "gradient", the summary) of what in `rec` meets it; else None.
    (An op pattern limiting the condition is the caller's to check.)"""
    if isinstance(rec, OpRecord) and spec.on != "grad":
        side, summaries = "output", (rec.summary,)
    elif isinstance(rec, BackwardRecord) and spec.on != "output":
        side, summaries = "gradient", rec.grad_inputs
    else:
        return None
    kind = spec.kind
    for s in summaries:
        if s is None:
            continue
        if (kind == "nonfinite" and not s.finite) or (kind == "max_abs" and s.abs_max > spec.value) \
                or (kind == "norm" and math.isfinite(s.norm) and s.norm > spec.value):
            return side, s
    return None


NOT_PATHS = ("phase", "predicate", "iteration")  # kinds whose pattern names no module or op (a model is not renamed)


def number(value: float) -> str:
    """`value` as short as it reads back exactly: 50, 0.1, 1e-07, 123456789 (never '1.23457e+08')."""
    if value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)  # the shortest text that reads back as the same float


def describe(spec: Breakpoint, models: dict[str, str] | None = None) -> str:
    """A breakpoint in words: 'op matmul (forward)', 'max |x| > 100 (grad)', 'iteration 5'; `models`: the script's
    names of the models (engine path -> name), which its pattern names them by ("op D.0/linear:0")."""
    if models and spec.kind not in NOT_PATHS:
        from engine.debug.node_names import script_named

        spec = replace(spec, pattern=script_named(spec.pattern, models))
    k = spec.kind
    if k in ("op", "module"):
        text = f"{k} {spec.pattern}" + (f"  ({spec.on})" if spec.on else "")
    elif k == "iteration":
        text = f"iteration {number(spec.value)}"
    elif k == "phase":
        text = f"start of {spec.pattern}"
    elif k == "nonfinite":
        text = "NaN or Inf" + (f" in {spec.pattern}" if spec.pattern else "") + (f"  ({spec.on})" if spec.on else "")
    elif k in ("max_abs", "norm"):
        what = "max |x|" if k == "max_abs" else "L2 norm"
        text = (f"{what} > {number(spec.value)}" + (f" in {spec.pattern}" if spec.pattern else "")
                + (f"  ({spec.on})" if spec.on else ""))
    else:
        text = f"predicate {spec.pattern}"
    return text + (f", stops at hit {spec.skip + 1} (skips {spec.skip})" if spec.skip else "")
