"""Plain data the debugger produces: records of what ran, stops, state, commands.

Everything here is made of numbers, strings, tuples, numpy arrays and the engine's own event
dataclasses, so it can be queued to a GUI, written to a tape or sent over a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from engine.debug.source import SourceFrame
from engine.debug.summary import TensorSummary
from engine.events import AlertEvent, BackwardEvent, ModuleEvent, OpEvent, OptimizerEvent

FORWARD, BACKWARD, OPTIMIZER = "forward", "backward", "optimizer"
PHASES = (FORWARD, BACKWARD, OPTIMIZER)
CAPTURES = ("structure", "summary", "values")


@dataclass(frozen=True, slots=True)
class IterationEvent:
    """An explicit iteration boundary (engine.debug.mark_iteration)."""

    seq: int
    iteration: int


class OpRecord(NamedTuple):
    """A forward op as the debugger saw it: the event, where it ran, and (by capture tier) its output.

    Records are named tuples: immutable plain data that costs little to make on every op.
    """

    event: OpEvent
    iteration: int
    depth: int  # how many module calls enclose the op
    source: SourceFrame | None  # the first frame outside the engine
    stack: tuple[SourceFrame, ...]  # user frames, innermost first
    summary: TensorSummary | None = None
    value: np.ndarray | None = None  # "values" tier, small outputs only

    @property
    def phase(self) -> str:
        return FORWARD

    @property
    def seq(self) -> int:
        return self.event.seq


class BackwardRecord(NamedTuple):
    """A backward node, linked to the forward op it differentiates."""

    event: BackwardEvent
    iteration: int
    depth: int
    forward: OpRecord | None  # None when the forward ran before the debugger attached
    grad_output: TensorSummary | None = None
    grad_inputs: tuple[TensorSummary | None, ...] = ()
    values: tuple[np.ndarray | None, ...] = ()  # "values" tier: grad_output first, then grad_inputs

    @property
    def phase(self) -> str:
        return BACKWARD

    @property
    def seq(self) -> int:
        return self.event.seq


class EventRecord(NamedTuple):
    """A module-call boundary, an optimizer step or an iteration mark, placed in iteration and phase."""

    event: ModuleEvent | OptimizerEvent | IterationEvent
    iteration: int
    phase: str
    depth: int  # for a module event: the depth of its caller
    source: SourceFrame | None = None  # an optimizer step's: the user's line that called step()
    stack: tuple[SourceFrame, ...] = ()

    @property
    def seq(self) -> int:
        return self.event.seq


Record = OpRecord | BackwardRecord | EventRecord


def source_of(rec) -> SourceFrame | None:
    """Where a record ran: an op's line, a backward node's forward op's, an optimizer step's (None where unknown)."""
    source = getattr(rec, "source", None)
    if source is None:
        forward = getattr(rec, "forward", None)
        source = forward.source if forward is not None else None
    return source


@dataclass(frozen=True, slots=True)
class Stop:
    """Why and where the engine thread stopped.

    reason: "step" (a step command arrived), "pause", "breakpoint" (`breakpoint` is its id), "alert",
    "explicit" (engine.debug.breakpoint()) or "python" (pause landed in plain Python code).
    """

    index: int  # the n-th stop of this debugger, from 1
    reason: str
    record: Record | None
    iteration: int
    phase: str
    breakpoint: int = 0
    alert: AlertEvent | None = None
    source: SourceFrame | None = None


@dataclass(frozen=True, slots=True)
class DebuggerState:
    """A snapshot: detached / running / paused, where, and the last record seen."""

    status: str
    iteration: int
    phase: str
    stop: Stop | None  # the current stop while paused, else the previous one
    last: Record | None


@dataclass(frozen=True, slots=True)
class Command:
    """A control command: step_into, step_over, step_out, run_to_phase, run_to_next_iteration, resume,
    pause or kill (raise DebuggerKilled in the engine thread)."""

    action: str


ACTIONS = ("step_into", "step_over", "step_out", "run_to_phase", "run_to_next_iteration", "resume", "pause",
           "kill")
