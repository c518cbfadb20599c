"""How an alert is made and worded: its event from a record, where an op is, parameters by name."""

from __future__ import annotations

import math

from engine.debug.records import OpRecord
from engine.events import AlertEvent, next_seq


def make_alert(kind: str, message: str, rec, value: float = math.nan, inputs: tuple = ()) -> AlertEvent:
    fwd = rec if isinstance(rec, OpRecord) else rec.forward
    ev = fwd.event if fwd is not None else None
    src = fwd.source if fwd is not None else None
    return AlertEvent(
        next_seq(), kind, message, ev.op if ev else rec.event.op, ev.key if ev else rec.event.key,
        ev.module if ev else "", ev.seq if ev else 0, rec.iteration,
        src.file if src else "", src.line if src else 0, src.text if src else "", float(value), inputs,
    )


def where(rec) -> str:
    fwd = rec if isinstance(rec, OpRecord) else rec.forward
    if fwd is None:
        return f"'{rec.event.key}'"
    ev, src = fwd.event, fwd.source
    module = f" in module '{ev.module}'" if ev.module else ""
    line = f" at {src.file}:{src.line} ({src.text})" if src else ""
    return f"'{ev.op}' ({ev.key}){module}{line}"


def step_alert(rec, kind: str, name: str, message: str) -> AlertEvent:
    """An alert about parameter `name` at an optimizer step, placed at the user's line that called step()."""
    src = rec.source
    return AlertEvent(next_seq(), kind, message, "", name, "", 0, rec.iteration, src.file if src else "",
                      src.line if src else 0, src.text if src else "", math.nan)


def optimizer_text(opt, group: int) -> str:
    """"SGD, lr=0.1" (the parameter's group's learning rate)."""
    lr = opt.param_groups[group].get("lr")
    return f"{type(opt).__name__}, lr={lr:g}" if isinstance(lr, int | float) else type(opt).__name__


def ordinal(i: int) -> str:
    """The position of input `i` (from 0) in words: '1st', '2nd', '3rd', '4th'."""
    n = i + 1
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def and_names(names) -> str:
    """" (and 'a', 'b')" after a first name (empty for none)."""
    names = list(names)
    return f" (and {names_text(names)})" if names else ""


def names_text(names: list[str], most: int = 4) -> str:
    """Parameters by name, the first few: "'0.weight', '0.bias' and 3 more"."""
    shown = ", ".join(f"'{n}'" for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def others_text(names: list[str], most: int = 3) -> str:
    """", and in 'a', 'b' and 2 more" (empty for none)."""
    if not names:
        return ""
    shown = ", ".join(f"'{n}'" for n in names[:most])
    return f" (and in {shown}" + (f" and {len(names) - most} more)" if len(names) > most else ")")
