"""A stop that nothing can resume, and breakpoints on a debugger that never ran.

A script that attaches a Debugger to its own thread (`with dbg:`) and adds a breakpoint has nobody to send the
command that ends a stop: no app, no on_stop callback, no other thread waiting for stops. The engine thread would
wait forever. Instead it does what Python's breakpoint() does: with a terminal on stdin, a one-line header on
stderr (which breakpoint hit, where, with what value) and pdb at the person's line, where `c` goes on, `n` runs
to that line's next one and `q` ends the run (bdb.BdbQuit). Without a terminal (CI, a pipe) the header alone, and
the run goes on. Either way the stop is kept in Debugger.stops.

PYTHONBREAKPOINT is followed as sys.breakpointhook follows it: "0" turns pdb off; another name
(`ipdb.set_trace`, `mypackage.hooks.stop`, `print`: a builtin) is imported and called with no arguments, with or
without a terminal, in the person's frame as it goes on (its next line; see _call_in); a name that cannot be
imported is warned about (RuntimeWarning, once per name) and the run goes on.
"""

from __future__ import annotations

import bdb
import importlib
import math
import os
import pdb
import sys
import warnings

from engine.debug.breakpoints import CONDITIONS, Breakpoint, describe, tripped
from engine.debug.records import BackwardRecord, OpRecord, Stop, source_of
from engine.debug.source import ENGINE, USER, SourceFrame, frame_kind


def header(stop: Stop, spec: Breakpoint | None) -> str:
    """One line: what stopped, at which op (iteration, phase), with what value, at which line of the script."""
    rec = stop.record
    if stop.reason == "breakpoint" and spec is not None:
        what = f"breakpoint {stop.breakpoint} ({describe(spec)}) hit"
    elif stop.reason == "alert" and stop.alert is not None:
        what = f"alert {stop.alert.kind} ({stop.alert.message.splitlines()[0][:120]}) stopped"
    elif stop.reason == "explicit":
        what = "engine.debug.breakpoint() stopped"
    else:
        what = f"{stop.reason} stopped"
    line = f"tapescope: {what}"
    if rec is not None:
        line += f" at {_where(rec)}"
    line += f" (iteration {stop.iteration}, {stop.phase})"
    value = _value(spec, rec)
    if value:
        line += f": {value}"
    source = stop.source or source_of(rec)
    if source is not None:
        line += f", {source.file}:{source.line}"
    return line


def _where(rec) -> str:
    event = rec.event
    if isinstance(rec, OpRecord | BackwardRecord):
        return event.key + (" (backward)" if isinstance(rec, BackwardRecord) else "")
    path = getattr(event, "path", None)
    if path is not None:
        return f"module {path} ({'enter' if event.enter else 'exit'})"
    return f"{getattr(event, 'optimizer', 'the')} step"


def _value(spec: Breakpoint | None, rec) -> str:
    """The value that tripped a condition breakpoint, else the op output's largest magnitude where known."""
    if spec is not None and spec.kind in CONDITIONS:
        hit = tripped(spec, rec)
        if hit is not None:
            side, s = hit
            if spec.kind == "norm":
                return f"{side} norm {s.norm:.4g}"
            if spec.kind == "nonfinite" or not s.finite:
                return f"{side} has {s.nan_count} NaN, {s.inf_count} Inf"
            return f"{side} max |x| {s.abs_max:.4g}"
    s = getattr(rec, "summary", None)
    if s is not None and not math.isnan(s.abs_max):
        return f"output max |x| {s.abs_max:.4g}"
    return ""


_unimportable: set[str] = set()  # the PYTHONBREAKPOINT names warned about


def stopped(stop: Stop, spec: Breakpoint | None) -> None:
    """Deal with `stop`, which nothing can resume: pdb at the person's line on a terminal, else a line on stderr;
    or what PYTHONBREAKPOINT says instead."""
    text = header(stop, spec)
    frame = _person_frame(sys._getframe(1))
    name = "" if sys.flags.ignore_environment else os.environ.get("PYTHONBREAKPOINT", "")  # -E: as Python ignores it
    if name == "0":
        _goes_on(f"{text}; PYTHONBREAKPOINT=0, so the run goes on")
        return
    if name and name != "pdb.set_trace":  # (that one is the default)
        hook = _hook(name, frame)
        if hook is None:
            _goes_on(f"{text}; PYTHONBREAKPOINT={name} cannot be imported, so the run goes on")
            return
        print(f"{text}; PYTHONBREAKPOINT={name} is called as the script goes on (Debugger.stops keeps the stop)",
              file=sys.stderr, flush=True)
        _call_in(frame, hook)
        return
    stdin = sys.stdin
    terminal = stdin is not None and not stdin.closed and stdin.isatty()
    if not terminal or frame is None:
        _goes_on(f"{text}; nothing can resume a stop here (no terminal for pdb), so the run goes on")
        return
    print(text, file=sys.stderr, flush=True)
    _pdb_at(frame)


def _goes_on(text: str) -> None:
    print(f"{text} (Debugger.stops keeps it)", file=sys.stderr, flush=True)


def _hook(name: str, frame):
    """The callable PYTHONBREAKPOINT names, imported as sys.breakpointhook imports it ("module.attr"; a name without
    a dot is a builtin); None where it cannot be, warned about once per name, at the person's line."""
    module, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module or "builtins"), attr)
    except (ImportError, AttributeError):
        if name not in _unimportable:
            _unimportable.add(name)
            message = f'Ignoring unimportable $PYTHONBREAKPOINT: "{name}"'  # Python's own words
            if frame is not None:
                warnings.warn_explicit(message, RuntimeWarning, frame.f_code.co_filename, frame.f_lineno,
                                       frame.f_globals.get("__name__"))
            else:
                warnings.warn(message, RuntimeWarning, stacklevel=2)
        return None


def _call_in(frame, hook) -> None:
    """Call `hook()` in the person's `frame`, as breakpoint() there would: at the first thing the frame does once the
    stop is over (its next line, its return), not under the engine's frames now; a debugger the hook starts
    (ipdb.set_trace takes its caller's frame) then stops in the person's code, at that line. No frame: call it now."""
    if frame is None:
        hook()
        return
    previous, theirs = sys.gettrace(), frame.f_trace

    def arrived(f, event, arg):
        sys.settrace(previous)
        f.f_trace = theirs
        hook()
        tracer = f.f_trace  # the one the hook set for this frame, if any: this event is its first
        return tracer(f, event, arg) if tracer is not None else None

    frame.f_trace = arrived
    sys.settrace(previous or _untraced)  # (a frame's own trace function runs only while the thread is traced)


def _untraced(frame, event, arg) -> None:
    """A global trace function that traces no new frame."""
    return None


def _person_frame(f):
    """The innermost frame of the person's code on this stack (else the innermost outside the engine)."""
    outside = None
    while f is not None:
        kind = frame_kind(f.f_code)
        if kind == USER:
            return f
        if kind != ENGINE and outside is None:
            outside = f
        f = f.f_back
    return outside


def _pdb_at(frame) -> None:
    """pdb at `frame` while the engine thread waits under it, its frames set up as pdb.set_trace(frame) sets them
    (the engine's own skipped by stepping); the thread is traced only after the prompt, where a command (`n`, `s`,
    a pdb breakpoint) needs it, so that what the prompt evaluates runs untraced."""
    debugger = pdb.Pdb(skip=["engine", "engine.*"])
    debugger.reset()
    f = frame
    while f is not None:
        f.f_trace = debugger.trace_dispatch
        debugger.botframe = f
        f = f.f_back
    debugger.interaction(frame, None)
    if debugger.quitting:  # `q`: end the run, as quitting pdb ends a script
        raise bdb.BdbQuit
    if debugger.stoplineno != -1 or debugger.breaks:  # not `c` alone: stop where the command says
        sys.settrace(debugger.trace_dispatch)
        return
    f = frame
    while f is not None:
        f.f_trace = None
        f = f.f_back


def never_attached(table, where: SourceFrame | None) -> None:
    """Warn (once, when the Debugger goes) that its breakpoints stopped nothing: it was never attached."""
    specs = [b.spec for b in table.list() if b.enabled]
    if not specs:
        return
    message = (f"engine.debug: a Debugger with {len(specs)} breakpoint{'s' if len(specs) > 1 else ''} "
               f"({'; '.join(describe(s) for s in specs[:3])}{'; ...' if len(specs) > 3 else ''}) was "
               "never attached, so nothing stopped: run the code in `with dbg:` (or after dbg.attach()), or "
               "through dbg.run_callable(fn)")
    if where is not None:
        warnings.warn_explicit(message, RuntimeWarning, where.file, where.line)
    else:
        warnings.warn(message, RuntimeWarning, stacklevel=2)
