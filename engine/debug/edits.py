"""Runtime edits: plain command dataclasses, each checked in full before it changes anything.

`prepare(edit, model, optimizer)` validates an edit against the live model and returns a function that
applies it; a problem raises EditRejected with a message, and nothing has been touched. The debugger
runs both on the engine thread at a safe point (between ops, or while paused).

Parameter values (EditParam, Reinit, Restore) are written out of place: the parameter gets a new array
and a graph in flight keeps the one its forward saved. An edit that lands between a forward and its
backward (a run going on, a pause mid-iteration) so changes what the next forward uses, and that backward
still computes the gradients of the forward that ran; an in-place write would make it refuse to run.

A value edit with a `snapshot` name keeps the values before and after it on the engine side (the newest
SNAPSHOT_BYTES of them), so Restore(snapshot) puts them back bit for bit: that is how value edits undo.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields

from engine.backend import array_module
from engine.nn.module import root_name

Value = float | int | str | bool | None


class EditRejected(ValueError):
    """An edit that cannot be applied; nothing was changed."""


@dataclass(frozen=True, slots=True)
class SetSetting:
    """module.set_setting(name, value) on the module at `module` (a dotted path)."""

    module: str
    name: str
    value: Value


@dataclass(frozen=True, slots=True)
class Freeze:
    """Stop (or, with frozen=False, restart) gradients for a module's parameters or one parameter."""

    target: str
    frozen: bool = True


@dataclass(frozen=True, slots=True)
class SwapModule:
    """Replace the module at `module` by engine.nn.<cls>(**kwargs), keeping its trained parameters.

    Compatible means the same parameter names and shapes (none, for activations): the new module
    takes over the old Parameter objects, so the optimizer and its state stay valid.
    """

    module: str
    cls: str
    kwargs: tuple[tuple[str, Value], ...] = ()


@dataclass(frozen=True, slots=True)
class Reinit:
    """Re-initialise a module's parameters (reset_parameters() of it, or of each submodule that has one).

    snapshot: a name to keep the values before and after under, for Restore (undo, redo); '' keeps none.
    """

    module: str
    snapshot: str = ""


@dataclass(frozen=True, slots=True)
class EditParam:
    """Change a parameter's values in place: action "scale" (multiply) or "fill" (assign).

    indices: element coordinates to touch (all elements when empty); value: one finite number, or one
    per index for "fill" (setting individual elements); snapshot: as for Reinit.
    """

    param: str
    action: str
    value: float | tuple[float, ...]
    indices: tuple[tuple[int, ...], ...] = ()
    snapshot: str = ""


@dataclass(frozen=True, slots=True)
class Restore:
    """Put back the parameter values kept under `snapshot` by an EditParam or Reinit: those from before
    it (undo) or, with after=True, those it made (redo). `target`: what that edit named (its event's target)."""

    target: str
    snapshot: str
    after: bool = False


@dataclass(frozen=True, slots=True)
class SetOptimizer:
    """Set a hyper-parameter (lr, momentum, weight_decay, ...) of one param group (-1: all groups)."""

    name: str
    value: float | bool
    group: int = 0


Edit = SetSetting | Freeze | SwapModule | Reinit | EditParam | SetOptimizer | Restore
EDITS = (SetSetting, Freeze, SwapModule, Reinit, EditParam, SetOptimizer, Restore)
KIND = {SetSetting: "set_setting", Freeze: "freeze", SwapModule: "swap", Reinit: "reinit", EditParam: "param",
        SetOptimizer: "optimizer", Restore: "restore"}
SNAPSHOT_BYTES = 256 * 2**20  # values kept for Restore, newest first; older snapshots are dropped


def describe(edit: Edit) -> tuple[str, str, tuple]:
    """(kind, target, (name, value) pairs) of an edit, for its EditEvent."""
    args = tuple((f.name, getattr(edit, f.name)) for f in fields(edit))
    return KIND[type(edit)], str(args[0][1]), args


def prepare(edit, model, optimizer) -> Callable[[], str]:
    """Validate `edit`; return the function that applies it (and says what it did)."""
    handler = _HANDLERS.get(type(edit))
    if handler is None:
        raise EditRejected(f"unknown edit {type(edit).__name__}; expected one of "
                           f"{', '.join(c.__name__ for c in EDITS)}")
    if not isinstance(edit, SetOptimizer) and model is None:
        raise EditRejected(f"{type(edit).__name__}: no model attached; pass Debugger(model=...)")
    return handler(edit, model, optimizer)


# ---- finding things -------------------------------------------------------------------------------
def _relative(model, path: str) -> str:
    """A path from the model: event paths start with the root's name ("MLP.fc1", "MLP_2.fc1")."""
    root = root_name(model)
    if path == root and root not in model._modules:
        return ""
    if path.startswith(root + ".") and root not in model._modules:
        return path[len(root) + 1:]
    return path


def _module(model, path: str):
    try:
        return model.get_submodule(_relative(model, path))
    except AttributeError as err:
        raise EditRejected(f"no module '{path}': {err}") from None


def _param(model, name: str):
    try:
        return model.get_parameter(_relative(model, name))
    except AttributeError as err:
        raise EditRejected(f"no parameter '{name}': {err}") from None


def _number(what: str, value, allow_bool: bool = False) -> float:
    if (isinstance(value, bool) and not allow_bool) or not isinstance(value, numbers.Real):
        raise EditRejected(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):  # a NaN or inf written into a weight poisons every later step
        raise EditRejected(f"{what} must be a finite number, got {value!r}")
    return float(value)


# ---- writing values out of place, and keeping them for Restore --------------------------------------
_snapshots: OrderedDict[str, dict] = OrderedDict()  # engine thread only: name -> {param name: (before, after)}


def _write(params: dict, change: Callable[[], None], snapshot: str) -> None:
    """Give each parameter a copy of its values, run `change` (which writes into them), and keep the values
    before and after under `snapshot`. The arrays a graph in flight saved stay as they were."""
    before = {name: p.array for name, p in params.items()}
    versions = {name: p._vc[0] for name, p in params.items()}
    for p in params.values():
        p.array = p.array.copy()
    change()
    for name, p in params.items():  # nothing saved the new arrays yet: no graph needs to notice the write
        p._vc[0] = versions[name]
    if snapshot:
        _snapshots.pop(snapshot, None)
        _snapshots[snapshot] = {name: (before[name], p.array.copy()) for name, p in params.items()}
        total = sum(b.nbytes + a.nbytes for kept in _snapshots.values() for b, a in kept.values())
        while len(_snapshots) > 1 and total > SNAPSHOT_BYTES:
            _, dropped = _snapshots.popitem(last=False)
            total -= sum(b.nbytes + a.nbytes for b, a in dropped.values())


# ---- the edits ------------------------------------------------------------------------------------
def _set_setting(edit: SetSetting, model, optimizer):
    module = _module(model, edit.module)
    names = [s["name"] if isinstance(s, dict) else s for s in module.editable_settings()]
    if edit.name not in names:
        raise EditRejected(f"{type(module).__name__} at '{edit.module}' has no editable setting "
                           f"'{edit.name}'; editable: {', '.join(names) or 'none'}")
    setting = next(s for s in type(module).settings if s.name == edit.name)
    try:  # check first (set_setting checks too, but the edit must be refused before anything changes)
        setting.validate(type(module).__name__, edit.value)
    except (TypeError, ValueError) as err:
        raise EditRejected(str(err)) from None

    def apply() -> str:
        old = getattr(module, edit.name)
        module.set_setting(edit.name, edit.value)
        return f"{edit.module}.{edit.name}: {old!r} -> {getattr(module, edit.name)!r}"

    return apply


def _freeze(edit: Freeze, model, optimizer):
    try:
        params, single = [_param(model, edit.target)], True
    except EditRejected:
        params, single = list(_module(model, edit.target).parameters()), False
    if not params:
        raise EditRejected(f"'{edit.target}' has no parameters to {'freeze' if edit.frozen else 'unfreeze'}")
    if any(p.grad_fn is not None or not p.dtype.is_floating_point for p in params):
        raise EditRejected(f"'{edit.target}': only floating-point leaf parameters can be frozen or unfrozen")

    def apply() -> str:
        for p in params:
            p.requires_grad_(not edit.frozen)
        verb = 'froze' if edit.frozen else 'unfroze'
        return f"{verb} '{edit.target}'" if single else f"{verb} {len(params)} parameter(s) of '{edit.target}'"

    return apply


def _swap(edit: SwapModule, model, optimizer):
    import engine.nn as nn

    rel = _relative(model, edit.module)
    if not rel:
        raise EditRejected("the model itself cannot be swapped; name one of its submodules")
    old = _module(model, edit.module)
    cls = getattr(nn, edit.cls, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise EditRejected(f"engine.nn has no module class '{edit.cls}'")
    try:
        new = cls(**dict(edit.kwargs))
    except (TypeError, ValueError) as err:
        raise EditRejected(f"{edit.cls}({', '.join(f'{k}={v!r}' for k, v in edit.kwargs)}): {err}") from None
    old_params = dict(old.named_parameters())
    new_shapes = {n: tuple(p.shape) for n, p in new.named_parameters()}
    if {n: tuple(p.shape) for n, p in old_params.items()} != new_shapes:
        raise EditRejected(f"{edit.cls} is not compatible with the {type(old).__name__} at '{edit.module}': "
                           f"parameters {new_shapes} instead of "
                           f"{ {n: tuple(p.shape) for n, p in old_params.items()} }")
    parent_path, _, name = rel.rpartition(".")
    parent = model.get_submodule(parent_path)

    def apply() -> str:
        for pname, p in old_params.items():  # the optimizer keeps pointing at these
            owner_path, _, leaf = pname.rpartition(".")
            new.get_submodule(owner_path)._parameters[leaf] = p
        for bname, b in old.named_buffers():
            owner_path, _, leaf = bname.rpartition(".")
            owner = dict(new.named_modules()).get(owner_path)
            mine = owner._buffers.get(leaf) if owner is not None else None
            if mine is not None and tuple(mine.shape) == tuple(b.shape):  # running statistics carry over
                owner._buffers[leaf] = b
        new.train(old.training)
        parent._modules[name] = new
        return f"'{edit.module}': {type(old).__name__} -> {edit.cls}"

    return apply


def _reinit(edit: Reinit, model, optimizer):
    module = _module(model, edit.module)
    targets = [m for m in module.modules() if callable(getattr(type(m), "reset_parameters", None))]
    if not targets:
        raise EditRejected(f"'{edit.module}' ({type(module).__name__}) has nothing to re-initialise")
    prefix = _relative(model, edit.module)
    params = {f"{prefix}.{n}" if prefix else n: p for n, p in module.named_parameters()}

    def apply() -> str:
        def change() -> None:
            for m in targets:
                m.reset_parameters()

        _write(params, change, edit.snapshot)
        return f"re-initialised {len(params)} parameter(s) of '{edit.module}'"

    return apply


def _edit_param(edit: EditParam, model, optimizer):
    p = _param(model, edit.param)
    if edit.action not in ("scale", "fill"):
        raise EditRejected(f"parameter edit: action must be 'scale' or 'fill', got {edit.action!r}")
    shape = tuple(p.shape)
    for idx in edit.indices:
        if len(idx) != len(shape) or not all(isinstance(i, numbers.Integral) and not isinstance(i, bool)
                                             and -n <= i < n for i, n in zip(idx, shape)):
            raise EditRejected(f"index {idx} is out of range for '{edit.param}' of shape {shape}")
    values = edit.value if isinstance(edit.value, tuple) else None
    if values is not None:
        if edit.action != "fill" or len(values) != len(edit.indices):
            raise EditRejected(f"one value per index ({len(edit.indices)}) is needed to fill elements of "
                               f"'{edit.param}', got {len(values)}" if edit.action == "fill" else
                               "scale takes one factor, not a tuple")
        for v in values:
            _number("a value", v)
    else:
        _number("the value", edit.value)

    def apply() -> str:
        def change() -> None:
            data = p.array
            xp = array_module(data)
            where = tuple(xp.asarray(axis) for axis in zip(*edit.indices)) if edit.indices else ...
            if edit.action == "scale":
                data[where] *= edit.value
            else:
                data[where] = xp.asarray(values, dtype=data.dtype) if values is not None else edit.value

        _write({_relative(model, edit.param): p}, change, edit.snapshot)
        count = len(edit.indices) if edit.indices else p.array.size
        if edit.action == "scale":
            return f"scaled {count} element(s) of '{edit.param}' by {edit.value!r}"
        return f"filled {count} element(s) of '{edit.param}' with {edit.value!r}"

    return apply


def _set_optimizer(edit: SetOptimizer, model, optimizer):
    if optimizer is None:
        raise EditRejected("no optimizer attached; pass Debugger(optimizer=...)")
    groups = optimizer.param_groups
    if not (-1 <= edit.group < len(groups)):
        raise EditRejected(f"the optimizer has {len(groups)} param group(s); "
                           f"group {edit.group} does not exist")
    chosen = groups if edit.group == -1 else [groups[edit.group]]
    for g in chosen:
        if edit.name in ("params", "param_names") or edit.name not in g:
            names = ", ".join(k for k in g if k not in ("params", "param_names"))
            raise EditRejected(f"{type(optimizer).__name__} has no hyper-parameter '{edit.name}'; "
                               f"it has {names}")
        current = g[edit.name]
        if isinstance(current, bool) != isinstance(edit.value, bool):
            raise EditRejected(f"'{edit.name}' is {type(current).__name__}, got {edit.value!r}")
        if not isinstance(current, bool) and not (isinstance(edit.value, numbers.Real)
                                                  and math.isfinite(edit.value)):
            raise EditRejected(f"'{edit.name}' must be a finite number, got {edit.value!r}")
        try:
            optimizer._check_group({**g, edit.name: edit.value})
        except (TypeError, ValueError) as err:
            raise EditRejected(f"{type(optimizer).__name__}: {err}") from None

    def apply() -> str:
        for g in chosen:
            g[edit.name] = edit.value
        return f"{type(optimizer).__name__} {edit.name} = {edit.value!r} in {len(chosen)} group(s)"

    return apply


def _restore(edit: Restore, model, optimizer):
    what = f"'{edit.target}'"
    kept = _snapshots.get(edit.snapshot)
    if kept is None:
        raise EditRejected(f"the values of {what} were not kept (only the newest "
                           f"{SNAPSHOT_BYTES // 2**20} MiB of edited values are), so they cannot be put back")
    params = {}
    for name, (before, _after) in kept.items():
        p = _param(model, name)
        if tuple(p.shape) != tuple(before.shape) or p.array.dtype != before.dtype:
            raise EditRejected(f"'{name}' is {tuple(p.shape)} {p.array.dtype} now, not "
                               f"{tuple(before.shape)} {before.dtype} as kept: its values cannot be put back")
        params[name] = p

    def apply() -> str:
        for name, p in params.items():  # out of place, as every value edit
            p.array = kept[name][1 if edit.after else 0].copy()
        _snapshots.move_to_end(edit.snapshot)
        return f"put back {len(params)} parameter(s) of {what} as they were {'after' if edit.after else 'before'} " \
               "the edit"

    return apply


_HANDLERS = {SetSetting: _set_setting, Freeze: _freeze, SwapModule: _swap, Reinit: _reinit,
             EditParam: _edit_param, SetOptimizer: _set_optimizer, Restore: _restore}
