"""engine.debug: the headless debugger core (no Qt). The GUI and the .tape recorder both build on it.

    from engine.debug import Debugger, Breakpoint, watch

    with watch(model, on_nonfinite="raise"):      # CI: NonFiniteError names the op that made the NaN
        train()

    dbg = Debugger("summary", model=model, optimizer=opt)
    dbg.add_breakpoint(Breakpoint.module("MLP.fc2"))
    run = dbg.run_callable(train)
    stop = dbg.wait_for_stop(timeout=10)
    dbg.step_into(); dbg.step_over(); dbg.step_out(); dbg.run_to_phase(); dbg.resume()
    dbg.edit(SetOptimizer("lr", 1e-3))
    values = dbg.fetch(stop.record.event.output)

`breakpoint()` stops like Python's breakpoint() when an interactive debugger is attached, and
`mark_iteration()` marks an iteration boundary for loops without an optimizer step.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator

from engine.debug.alerts import AlertSettings
from engine.debug.breakpoints import Breakpoint, BreakpointInfo
from engine.debug.cache import ValueCache, ValueUnavailable
from engine.debug.debugger import Debugger, _attached
from engine.debug.edits import EditParam, EditRejected, Freeze, Reinit, SetOptimizer, SetSetting, SwapModule
from engine.debug.records import (
    BackwardRecord,
    Command,
    DebuggerState,
    EventRecord,
    IterationEvent,
    OpRecord,
    Stop,
)
from engine.debug.runner import DebuggerKilled, EngineRun
from engine.debug.source import USER, SourceFrame, frame_kind
from engine.debug.summary import TensorSummary, summarize
from engine.events import AlertEvent, hub

__all__ = [
    "AlertSettings", "BackwardRecord", "Breakpoint", "BreakpointInfo", "Command", "Debugger",
    "DebuggerKilled", "DebuggerState", "EditParam", "EditRejected", "EngineRun", "EventRecord", "Freeze",
    "IterationEvent", "NonFiniteError", "OpRecord", "Reinit", "SetOptimizer", "SetSetting",
    "SourceFrame", "Stop", "SwapModule", "TensorSummary", "ValueCache", "ValueUnavailable", "breakpoint",
    "mark_iteration", "summarize", "watch",
]


class NonFiniteError(FloatingPointError):
    """NaN or infinity appeared; `alert` names the origin (op, module path, source line, the input or
    parameter it came in by, or the optimizer step) and the iteration."""

    def __init__(self, alert: AlertEvent) -> None:
        super().__init__(alert.message)
        self.alert = alert


def breakpoint() -> None:
    """Stop here when an interactive Debugger traces this thread (like Python's breakpoint()); else nothing."""
    for dbg in tuple(_attached):
        if dbg.interactive and not dbg._foreign():
            dbg._explicit(sys._getframe(1))
            return


def mark_iteration() -> None:
    """End this thread's current iteration (for loops without optimizer.step(); once used, steps stop
    counting): the debuggers tracing this thread start the next one, those tracing another do not."""
    for dbg in tuple(_attached):
        if not dbg._foreign():
            dbg._mark()
    hub.reset_top_level()


def _warn(alert: AlertEvent) -> None:
    """Warn about `alert` at the user's line that caused it (not at the debugger that noticed it)."""
    if alert.file and alert.line:
        warnings.warn_explicit(alert.message, RuntimeWarning, alert.file, alert.line)
        return
    f, level = sys._getframe(1), 1  # no source line (an optimizer step's alert): the user's frame running now
    while f is not None and frame_kind(f.f_code) != USER:
        f, level = f.f_back, level + 1
    warnings.warn(alert.message, RuntimeWarning, stacklevel=level + 1 if f is not None else 2)


@contextlib.contextmanager
def watch(model=None, *, optimizer=None, on_nonfinite: str = "raise", capture: str = "structure",
          alerts: AlertSettings | None = None) -> Iterator[Debugger]:
    """Watch training headlessly (scripts, CI): yields the Debugger, whose `alerts` collect what it saw.

    It watches the thread that enters the block: other threads' ops (a data loader's) are not checked
    where they run, and non-finite values they make are reported where they enter this thread's ops.

    on_nonfinite: "raise" a NonFiniteError at the op (or backward node) where NaN/Inf first appear, at
    the op they enter from outside the graph (the data, a parameter, a tensor made before), or at the
    optimizer step that made a parameter non-finite; "warn", or "record" only. Other alerts (gradient
    norms, updates and a loss that a learning rate far too high blows up, dead ReLUs) are recorded and warned about.

    Without a model it takes the first root module called and the optimizer that trains it (Debugger's
    discover), so the checks of parameters run as with watch(model); where it finds neither (a loop that
    updates plain tensors by hand), it warns once, at the block's end, that those checks did not run.
    """
    if on_nonfinite not in ("raise", "warn", "record"):
        raise ValueError(f"watch: on_nonfinite must be 'raise', 'warn' or 'record', got {on_nonfinite!r}")

    def react(alert: AlertEvent) -> None:
        if alert.kind.startswith("nonfinite"):
            if on_nonfinite == "raise":
                raise NonFiniteError(alert)
            if on_nonfinite == "record":
                return
        _warn(alert)

    dbg = Debugger(capture, model=model, optimizer=optimizer, alerts=alerts or AlertSettings(),
                   interactive=False, cache_bytes=0, discover=model is None, on_alert=react)
    with dbg:
        yield dbg
    if dbg.model is None and dbg.optimizer is None and dbg.passes:
        warnings.warn("watch() found no model (no nn.Module was called) and no optimizer (none stepped), so the "
                      "checks of parameters did not run (gradient norms, update sizes, steps without a gradient, "
                      "identical units, parameters no gradient reaches): they need one of them, watch(model) or "
                      "watch(optimizer=optimizer)", RuntimeWarning, stacklevel=3)
