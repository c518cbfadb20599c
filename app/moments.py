"""A node as it was at one event: the op and backward records that existed by then, so that the inspector of a run
scrubbed back never shows a gradient its backward had not computed yet (fc1's at fc2's backward). Qt-free.

A live session keeps its latest records by seq (`Session.by_seq`, in `Session._order`); a replay reads what lies
after its cursor from its tape."""

from __future__ import annotations

import bisect
from contextlib import closing
from dataclasses import dataclass

import app.session
import engine.tape
from engine.debug import BackwardRecord, OpRecord

SEARCH_LIMIT = 20_000  # records a replay reads ahead for a backward before it gives up (a huge iteration)


@dataclass(frozen=True)
class Moment:
    """Node records as of event `at`: its latest op record then, its backward's if that had run, and (`later`) the
    backward of that op that ran after `at`, in the same iteration."""

    at: int
    op: OpRecord | None = None
    back: BackwardRecord | None = None
    later: BackwardRecord | None = None


def consumer_of(key: str) -> tuple[str, int] | None:
    """The op a parameter's or input's node feeds and its argument slot ("Net.fc1/linear:0/in1" -> ("Net.fc1/linear:0",
    1)); None for an op's key."""
    consumer, sep, slot = key.rpartition("/in")
    return (consumer, int(slot)) if sep and consumer and slot.isdigit() else None


def moment_of(session, key: str, at: int) -> Moment:
    """Op `key` (as the engine names it) as of event `at`, from the records a live session still keeps."""
    order, kept = session._order, session.by_seq
    i = bisect.bisect_right(order, at) - 1
    op = None
    while i >= 0:
        rec = kept.get(order[i])
        if rec.__class__ is OpRecord and rec.event.key == key:
            op = rec
            break
        i -= 1
    if op is None:
        return Moment(at)
    back = _backward_kept(session, op)
    if back is not None and back.seq > at:
        return Moment(at, op, None, back)
    return Moment(at, op, back)


def kept_from_start(session) -> bool:
    """Whether a live session still keeps its records from its first event (none has been let go: it keeps
    app.session.HISTORY of them)."""
    return len(session._order) < app.session.HISTORY


def backward_after(session, op: OpRecord) -> BackwardRecord | None:
    """The backward record of `op` in its iteration, from a live session's records or a replay's tape (None: none
    ran, or it is not kept)."""
    if hasattr(session, "tape"):
        return _backward_on_tape(session.tape, op.seq, op.iteration)
    return _backward_kept(session, op)


def _backward_kept(session, op: OpRecord) -> BackwardRecord | None:
    order, kept = session._order, session.by_seq
    i = bisect.bisect_right(order, op.seq)
    while i < len(order):
        rec = kept.get(order[i])
        if rec is not None:
            if rec.iteration != op.iteration:
                return None
            if rec.__class__ is BackwardRecord and rec.event.forward_seq == op.seq:
                return rec
        i += 1
    return None


def _backward_on_tape(tape, seq: int, iteration: int) -> BackwardRecord | None:
    try:
        # the op's iteration only, and the reading closed at once: a generator left open held the tape's cursor
        with closing(tape.records(iteration=iteration)) as records:
            for n, rec in enumerate(records):
                if n > SEARCH_LIMIT:
                    return None
                if rec.__class__ is BackwardRecord and rec.event.forward_seq == seq:
                    return rec
    except engine.tape.TapeError:  # damaged past the cursor: not known
        return None
    return None
