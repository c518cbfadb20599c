"""Plain tensors an optimizer trains, named as the script holds them: a hand-written RNN's `Wh` and `Wx`, where the
optimizer alone can only call them "group0.1" and "group0.0" (and an alert said "in layer 'group0'").

The names are read once per optimizer, at its first step, from the frames that called it: the training loop's
variables first, then its callers' up to the script's module level, each frame's in the order its code first
assigns them (`for p in params` comes after `Wh = ...`). A name already given to another tensor, or one that starts
with "_", names nothing. A tensor held by no variable (only inside a list or a generator) keeps its position,
which an alert words as "parameter 2 of the optimizer's group 0".
"""

from __future__ import annotations

import re

from engine.debug.source import USER, frame_kind

_POSITIONAL = re.compile(r"group(\d+)\.(\d+)")


def script_names(params: list, frame) -> dict[int, str]:
    """id of each of `params` that a variable holds -> that variable's name, searched from `frame` outwards through
    the user's frames (see the module docstring)."""
    wanted = {id(p) for p in params}
    found: dict[int, str] = {}
    taken: set[str] = set()
    f = frame
    while f is not None and len(found) < len(wanted):
        if frame_kind(f.f_code) == USER:
            for name, value in list(f.f_locals.items()):
                key = id(value)
                if key in wanted and key not in found and name not in taken and not name.startswith("_"):
                    found[key] = name
                    taken.add(name)
        f = f.f_back
    return found


def positional(name: str) -> bool:
    """Whether `name` is an optimizer's name of a parameter by its place ("group0.1")."""
    return _POSITIONAL.fullmatch(name) is not None


def positional_text(name: str) -> str:
    """How an alert names a parameter: "parameter 2 of the optimizer's group 0" for its positional name "group0.1"
    (its place in the optimizer, counted from 1 as a person counts), else the name quoted."""
    found = _POSITIONAL.fullmatch(name)
    if found is None:
        return f"'{name}'"
    return f"parameter {int(found[2]) + 1} of the optimizer's group {found[1]}"
