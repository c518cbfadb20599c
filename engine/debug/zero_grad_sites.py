"""Which zero_grad() call, an optimizer's or a module's (model.zero_grad()), the alerts on a training step blame: the
one that dropped the gradients of the last backward before the step used them, or the last one of parameters whose
gradients pile up (it runs outside the loop); and how the script wrote it ("net.zero_grad()")."""

from __future__ import annotations

import linecache
import re

from engine.optim.optimizer import Optimizer
from engine.zero_grads import latest_zero_grads

_CALL = re.compile(r"([A-Za-z_][\w.]*)\.zero_grad\(")


def holds(owner, ids: set[int]) -> bool:
    """Whether `owner`, an optimizer or a module, holds any of the parameters whose ids are `ids`."""
    params = (p for group in owner.param_groups for p in group["params"]) if isinstance(owner, Optimizer) else \
        owner.parameters()
    return any(id(p) in ids for p in params)


def dropped_since(count: int, ids: set[int]) -> tuple[str, int] | None:
    """(file, line) of the newest zero_grad() that dropped gradients (to None, or to zeros) of the parameters `ids`
    after zero_grads_so_far() was `count` (as the last backward began), or None."""
    for after, file, line, owner, dropped in latest_zero_grads():
        if after <= count:
            break
        if dropped and holds(owner, ids):
            return file, line
    return None


def last_call(ids: set[int]) -> tuple[str, int] | None:
    """(file, line) of the newest zero_grad() remembered of an optimizer or module holding any of the parameters
    `ids` (whether or not it found gradients to drop), or None."""
    return next(((file, line) for _, file, line, owner, _ in latest_zero_grads() if holds(owner, ids)), None)


def call_text(site: tuple[str, int] | None, default: str = "optimizer.zero_grad()") -> str:
    """The zero_grad() call at `site` as the script writes it ("model.zero_grad()"), else `default`."""
    found = _CALL.search(linecache.getline(*site)) if site else None
    return f"{found.group(1)}.zero_grad()" if found else default

