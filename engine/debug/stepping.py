"""Where a step ends: the one rule that the live debugger and a tape's replay both follow.

A step in progress is a mode, (kind, depth, phase, iteration) of the record it started at. Ops, backward
nodes and optimizer steps are places to stop; module boundaries and iteration marks are not, but a step
out watches them: it ends at whatever runs after the module call it started in returns, which may be a
sibling module's first op (the next layer of a Sequential), not only an op of the caller itself.

At top level no module call encloses the record, and the iteration is the frame a step out leaves: it runs to
the iteration's end, its optimizer step (where none comes, as in a loop that updates by hand, the next
iteration's first stop). At the optimizer step the iteration has ended and there is nothing to step out of:
step_mode says so, and the step stays where it is (a debugger steps out of main the same way only by running
the program to its end, which here would be to leave the iteration the person is looking at).
"""

from __future__ import annotations

from engine.debug.records import OPTIMIZER, EventRecord
from engine.events import ModuleEvent

STEP_KINDS = {"step_into": "into", "step_over": "over", "step_out": "out", "run_to_phase": "phase",
              "run_to_next_iteration": "iteration"}


def step_mode(action: str, depth: int, phase: str, iteration: int) -> tuple[bool, tuple | None]:
    """(whether `action`, "resume" or a key of STEP_KINDS, taken at a record of this depth, phase and iteration
    goes anywhere, the mode it runs in: None runs freely). A step out where nothing is left to step out of (see
    nothing_to_step_out) goes nowhere: it ends where it starts."""
    if action == "resume":
        return True, None
    if action == "step_out" and depth == 0:
        if nothing_to_step_out(depth, phase):
            return False, None
        return True, ("end", depth, phase, iteration)  # nothing encloses top-level code: finish the iteration
    return True, (STEP_KINDS[action], depth, phase, iteration)


def nothing_to_step_out(depth: int, phase: str) -> bool:
    """Whether a step out at a record of this depth and phase has nowhere to go: the optimizer step ends the
    iteration, and no module call encloses it."""
    return depth == 0 and phase == OPTIMIZER


def step_end(mode: tuple, rec) -> tuple[bool, tuple]:
    """(whether the step `mode` ends at record `rec`, the mode to go on with)."""
    kind, depth, phase, iteration = mode
    if rec.__class__ is EventRecord and rec.phase != OPTIMIZER:
        event = rec.event
        if kind == "out" and event.__class__ is ModuleEvent and not event.enter and rec.depth < depth:
            return False, ("into", depth, phase, iteration)  # the call stepped out of returned
        return False, mode
    hit = (kind == "into" or (kind == "over" and rec.depth <= depth) or (kind == "out" and rec.depth < depth)
           or (kind == "phase" and (rec.phase != phase or rec.iteration != iteration))
           or (kind == "iteration" and rec.iteration > iteration)
           or (kind == "end" and (rec.phase == OPTIMIZER or rec.iteration > iteration)))
    return hit, mode
