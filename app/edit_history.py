"""Undo and redo of runtime edits (Qt-free), and the model's editable state as plain data.

Every edit enters the history with its inverse: the edits that put back what it changed (the
previous value of a setting or hyper-parameter, the previous frozen state, the previous module class).
Undo hands back the inverse to send; redo hands back the edit again, or, for a value edit kept under a
snapshot name (EditParam, Reinit), Restore(target, snapshot, after=True): the values it made the first time,
not a new random draw. An edit without an inverse is kept but cannot be undone, nor can anything
before it; the Undo menu item says so.

    history.push(SetSetting("MLP.drop", "p", 0.2), (SetSetting("MLP.drop", "p", 0.1),))
    for edit in history.undo(): session.edit(edit)

`describe_model(model, optimizer)` reads what the module editor shows (engine objects in, plain data
out); call it on the engine thread or while the run is paused, never while the model is changing.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from engine.debug.edits import Edit, EditParam, Freeze, Reinit, Restore, SetOptimizer, SetSetting, SwapModule
from engine.nn.module import root_name


@dataclass(frozen=True)
class EditEntry:
    """One edit in the history: the edit, what undoes it (None: nothing can) and a line for menus."""

    edit: Edit
    inverse: tuple[Edit, ...] | None
    text: str


class EditHistory:
    """Undo and redo stacks of EditEntry; newest last."""

    def __init__(self, limit: int = 500) -> None:
        self.limit = limit
        self._undo: list[EditEntry] = []
        self._redo: list[EditEntry] = []

    def push(self, edit: Edit, inverse: tuple[Edit, ...] | Edit | None, text: str = "") -> EditEntry:
        """Record an edit that was sent; redo history is dropped, as in every editor."""
        if inverse is not None and not isinstance(inverse, tuple):
            inverse = (inverse,)
        entry = EditEntry(edit, inverse, text or describe_edit(edit))
        self._undo.append(entry)
        del self._undo[:-self.limit]
        self._redo.clear()
        return entry

    @property
    def can_undo(self) -> bool:
        """Whether the newest edit can be undone."""
        return bool(self._undo) and self._undo[-1].inverse is not None

    @property
    def can_redo(self) -> bool:
        """Whether an undone edit can be made again."""
        return bool(self._redo)

    @property
    def undo_text(self) -> str:
        """'Undo <what>' for a menu; "Can't Undo <what>" when the newest edit has no inverse; '' when empty."""
        if not self._undo:
            return ""
        entry = self._undo[-1]
        return f"Undo {entry.text}" if entry.inverse is not None else f"Can't Undo {entry.text}"

    @property
    def redo_text(self) -> str:
        """'Redo <what>' for a menu ('' when nothing can be redone)."""
        return f"Redo {self._redo[-1].text}" if self._redo else ""

    def undo(self) -> tuple[Edit, ...]:
        """Take back the newest edit: returns the edits to send that restore the previous state."""
        if not self._undo:
            raise IndexError("nothing to undo")
        entry = self._undo[-1]
        if entry.inverse is None:
            raise ValueError(f"'{entry.text}' cannot be undone (its previous state was not kept)")
        self._undo.pop()
        self._redo.append(entry)
        return entry.inverse

    def redo(self) -> tuple[Edit, ...]:
        """Make the most recently undone edit again: returns the edits to send."""
        if not self._redo:
            raise IndexError("nothing to redo")
        entry = self._redo.pop()
        self._undo.append(entry)
        snapshot = getattr(entry.edit, "snapshot", "")
        if snapshot:  # the values it made, not a new draw (Reinit) or a new rounding
            target = entry.edit.module if isinstance(entry.edit, Reinit) else entry.edit.param
            return (Restore(target, snapshot, after=True),)
        return (entry.edit,)

    def discard(self, edit: Edit) -> bool:
        """Forget the newest entry for `edit` (the engine refused it); True when one was found."""
        for stack in (self._undo, self._redo):
            for i in range(len(stack) - 1, -1, -1):
                if stack[i].edit == edit:
                    del stack[i]
                    return True
        return False

    def entries(self) -> list[str]:
        """The texts of the undoable edits, oldest first."""
        return [e.text for e in self._undo]

    def clear(self) -> None:
        """Forget everything (a new session)."""
        self._undo.clear()
        self._redo.clear()


def describe_edit(edit: Edit) -> str:
    """A short line for an edit: 'MLP.drop.p = 0.2', 'freeze MLP.fc1', 'lr = 0.01'."""
    if isinstance(edit, SetSetting):
        return f"{edit.module}.{edit.name} = {edit.value!r}"
    if isinstance(edit, Freeze):
        return f"{'freeze' if edit.frozen else 'unfreeze'} {edit.target}"
    if isinstance(edit, SwapModule):
        return f"swap {edit.module} for {edit.cls}"
    if isinstance(edit, Reinit):
        return f"re-initialise {edit.module}"
    if isinstance(edit, SetOptimizer):
        group = "" if edit.group == 0 else " (all groups)" if edit.group == -1 else f" (group {edit.group})"
        return f"{edit.name} = {edit.value!r}{group}"
    if isinstance(edit, Restore):
        return f"put back {edit.target} as it was {'after' if edit.after else 'before'} an edit"
    if isinstance(edit, EditParam):
        where = "" if not edit.indices else f"[{edit.indices[0]}]" if len(edit.indices) == 1 else \
            f" ({len(edit.indices)} elements)"
        value = f"{len(edit.value)} values" if isinstance(edit.value, tuple) else repr(edit.value)
        return f"{edit.action} {edit.param}{where} {'by' if edit.action == 'scale' else 'with'} {value}"
    return f"edit {type(edit).__name__}"


# ---- the model as plain data ----------------------------------------------------------------------
def describe_model(model, optimizer=None) -> tuple[list[dict], dict | None]:
    """(modules, optimizer) as the module editor takes them (see widgets.module_editor).

    Module paths start with the root's name, as event paths do ("MLP.fc1").
    """
    root = root_name(model)
    swaps = _elementwise_activations()
    modules = []
    for name, m in model.named_modules():
        cls = type(m)
        is_activation = cls.__name__ in swaps
        modules.append({
            "path": f"{root}.{name}" if name else root,
            "cls": cls.__name__,
            "training": bool(m.training),
            "params": [(p_name, tuple(p.shape), bool(p.requires_grad))
                       for p_name, p in m.named_parameters(recurse=False)],
            "settings": m.editable_settings(),
            "swaps": [s for s in swaps if s != cls.__name__] if is_activation else [],
            "kwargs": _constructor_arguments(m) if is_activation else [],
            "reinit": callable(getattr(cls, "reset_parameters", None)),
        })
    return modules, describe_optimizer(optimizer) if optimizer is not None else None


def describe_optimizer(optimizer) -> dict:
    """{'cls': 'SGD', 'groups': [{hyper-parameter: value}]}: the numbers and flags of each group."""
    groups = [{k: v for k, v in g.items() if k not in ("params", "param_names")
               and isinstance(v, bool | int | float)} for g in optimizer.param_groups]
    return {"cls": type(optimizer).__name__, "groups": groups}


def _elementwise_activations() -> list[str]:
    """engine.nn activation classes that map each element on its own (so any one can replace another)."""
    import engine.nn as nn
    from engine.nn.layers import activation

    names = []
    for name in dir(nn):
        cls = getattr(nn, name)
        if isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__module__ == activation.__name__ \
                and not name.startswith("_") and "dim" not in inspect.signature(cls).parameters:
            names.append(name)
    return sorted(names)


def _constructor_arguments(module) -> list[tuple[str, object]]:
    """The module's constructor arguments with their current values (for swapping back to it)."""
    return [(p, getattr(module, p)) for p in inspect.signature(type(module)).parameters if hasattr(module, p)]
