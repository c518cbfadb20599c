"""Where a step ends: the one rule that the live debugger and a tape's replay both follow.

A step in progress is a mode, (kind, depth, phase, iteration) of the record it started at. Ops, backward
nodes and optimizer steps are places to stop; module boundaries and iteration marks are not, but a step
out watches them: it ends at whatever runs after the module call it started in returns, which may be a
sibling module's first op (the next layer of a Sequential), not only an op of the caller itself.
"""

from __future__ import annotations

from engine.debug.records import OPTIMIZER, EventRecord
from engine.events import ModuleEvent

STEP_KINDS = {"step_into": "into", "step_over": "over", "step_out": "out", "run_to_phase": "phase",
              "run_to_next_iteration": "iteration"}


def step_mode(action: str, depth: int, phase: str, iteration: int) -> tuple:
    """The mode of step `action` (a key of STEP_KINDS) taken at a record of this depth, phase and iteration."""
    if action == "step_out" and depth == 0:
        action = "run_to_phase"  # nothing encloses top-level code: leave the phase instead
    return STEP_KINDS[action], depth, phase, iteration


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
           or (kind == "iteration" and rec.iteration > iteration))
    return hit, mode
