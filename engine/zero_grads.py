"""The zero_grad() calls of a run, an optimizer's or a module's (model.zero_grad()): how many dropped gradients so far,
and where the latest were made, at the person's line. A debugger names the one between loss.backward() and
optimizer.step(), which leaves the step nothing, and the one outside the loop, which lets gradients pile up."""

from __future__ import annotations

import sys
import weakref
from collections import deque

from engine.events import hub
from engine.user_warning import caller_site

_count = [0]  # zero_grad() calls that dropped gradients so far
# (zero_grads_so_far() after it, file, line, weak reference to the optimizer or module, whether it dropped any) of the
# latest calls, oldest first: enough for a loop that clears a few modules between two steps
_recent: deque = deque(maxlen=16)


def zero_grads_so_far() -> int:
    """How many zero_grad() calls (of optimizers and modules) have dropped gradients so far (in this process)."""
    return _count[0]


def called(owner, dropped: bool) -> None:
    """Note a zero_grad() of `owner` (an optimizer or a module) that `dropped` gradients or found none, made at the
    person's line (the first frame outside the engine above it)."""
    _count[0] += dropped
    if not hub.active:  # no debugger asks where: an untraced loop pays for the count alone
        return
    file, line = caller_site(sys._getframe(2)) or ("", 0)
    _recent.append((_count[0], file, line, weakref.ref(owner), dropped))


def latest_zero_grads() -> list[tuple[int, str, int, object, bool]]:
    """(zero_grads_so_far() after it, file, line, optimizer or module, whether it dropped gradients) of the latest
    zero_grad() calls remembered, newest first; those whose owner is gone are left out."""
    found = []
    for count, file, line, ref, dropped in reversed(tuple(_recent)):
        owner = ref()
        if owner is not None:
            found.append((count, file, line, owner, dropped))
    return found
