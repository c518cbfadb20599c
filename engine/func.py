"""engine.func, as torch.func: `functional_call` runs a module with other parameters and buffers,
`stack_module_state` stacks an ensemble's for vmap; the transforms (grad, jacrev, jacfwd, hessian, vjp, vmap)
are engine.func_transforms'."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from engine.tensor import Tensor

_MISSING = object()


def functional_call(module, parameter_and_buffer_dicts: Mapping[str, Tensor] | tuple | list,
                    args: Any = None, kwargs: dict | None = None, *, tie_weights: bool = True,
                    strict: bool = False):
    """`module(*args, **kwargs)` with the named tensors standing in for its parameters and buffers.

    As in PyTorch, a name that is neither (unless `strict`) is set as an attribute for the call, and the
    name of a parametrized tensor ("weight" of a weight-normed Linear) stands in for what its
    parametrization computes. The module is left as it was afterwards (also when forward raises);
    gradients flow to the tensors passed in, not to the module's own parameters.
    """
    given = _merged(parameter_and_buffer_dicts)
    for name, value in given.items():
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"functional_call: {name!r} must be a Tensor, got {type(value).__name__}")
    slots = {}  # dotted name -> (table dict, key, original tensor)
    _collect(module, "", slots)
    swap = {k: v for k, v in given.items() if k in slots}
    if tie_weights:  # a tensor shared under several names follows the one name it was given under
        swap = _untied(slots, swap)
    unexpected = [k for k in given if k not in slots]
    if strict:
        missing = [k for k in slots if k not in swap]
        errors = ([f"Unexpected key(s): {', '.join(map(repr, unexpected))}."] if unexpected else []) + \
                 ([f"Missing key(s): {', '.join(map(repr, missing))}."] if missing else [])
        if errors:
            raise RuntimeError(f"Error(s) in reparametrizing for {type(module).__name__}:\n\t" + "\n\t".join(errors))
    others = [(*_owner(module, name), given[name]) for name in unexpected]
    saved = [(slots[k][0], slots[k][1], slots[k][2]) for k in swap]
    with ExitStack() as restore:
        for owner, attr, value in others:
            restore.enter_context(_stand_in(owner, attr, value))
        try:
            for name, value in swap.items():
                table, key, _ = slots[name]
                table[key] = value
            if args is None:
                args = ()
            elif not isinstance(args, tuple):
                args = (args,)
            return module(*args, **(kwargs or {}))
        finally:
            for table, key, original in saved:
                table[key] = original


def _merged(dicts) -> dict:
    """One dict of the tensors given as a dict or a list/tuple of dicts (a name in two is an error)."""
    if isinstance(dicts, Mapping):
        return dict(dicts)
    if not isinstance(dicts, tuple | list):
        raise ValueError(f"Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but "
                         f"got {type(dicts).__name__}")
    given = {}
    for d in dicts:
        if not isinstance(d, Mapping):
            raise ValueError(f"functional_call: expected a dict of tensors, got {type(d).__name__}")
        clash = set(given) & set(d)
        if clash:
            raise ValueError(f"{sorted(clash)} appeared in multiple dictionaries; behavior of "
                             "functional call is ambiguous")
        given.update(d)
    return given


def _untied(slots: dict, swap: dict) -> dict:
    """`swap` with every other name of a tied tensor given the value one of its names got; two different
    values for one tied tensor is an error, as in PyTorch."""
    names_of: dict[int, list[str]] = {}
    for name, (_, _, original) in slots.items():
        names_of.setdefault(id(original), []).append(name)
    out = dict(swap)
    for names in names_of.values():
        if len(names) < 2:
            continue
        values = [swap[n] for n in names if n in swap]
        if len({id(v) for v in values}) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(names)}, which are tied. "
                             "Consider using tie_weights=False")
        if values:
            for n in names:
                out.setdefault(n, values[0])
    return out


def _owner(module, name: str) -> tuple:
    """The module that holds dotted `name`, and the name's last part."""
    path, _, attr = name.rpartition(".")
    try:
        return module.get_submodule(path), attr
    except AttributeError as err:
        raise AttributeError(f"functional_call was given {name!r}: {err}") from None


class _stand_in:
    """For one call: a parametrized tensor's name gives `value` in place of what its parametrization computes;
    any other name not a parameter or buffer is an attribute holding `value` (the old one put back after)."""

    def __init__(self, owner, attr: str, value) -> None:
        self.owner, self.attr, self.value = owner, attr, value

    def __enter__(self) -> None:
        from engine.nn.utils import parametrize

        owner, attr = self.owner, self.attr
        if parametrize.is_parametrized(owner, attr):
            # the property reads this cache while a `cached()` block is open: the given tensor is what it
            # returns, and its gradient flows to that tensor, not to the parametrization's originals
            self.block = parametrize.cached()
            self.block.__enter__()
            self.key = (id(owner), attr)
            self.before = parametrize._cache.get(self.key, _MISSING)
            parametrize._cache[self.key] = self.value
            return
        self.block = None
        old = owner.__dict__.get(attr, _MISSING)
        current = getattr(owner, attr, None) if old is _MISSING else old
        if current is not None and not isinstance(current, Tensor):
            raise TypeError(f"functional_call: attribute `{attr}` of {type(owner).__name__} is not a Tensor")
        self.before = old
        owner.__dict__[attr] = self.value

    def __exit__(self, *exc) -> None:
        from engine.nn.utils import parametrize

        if self.block is not None:
            if self.before is _MISSING:
                parametrize._cache.pop(self.key, None)
            else:
                parametrize._cache[self.key] = self.before
            self.block.__exit__(*exc)
        elif self.before is _MISSING:
            self.owner.__dict__.pop(self.attr, None)
        else:
            self.owner.__dict__[self.attr] = self.before


def _collect(module, prefix: str, slots: dict) -> None:
    for key, t in module._parameters.items():
        if t is not None:
            slots.setdefault(prefix + key, (module._parameters, key, t))
    for key, t in module._buffers.items():
        if t is not None:
            slots.setdefault(prefix + key, (module._buffers, key, t))
    for key, child in module._modules.items():
        if child is not None:
            _collect(child, prefix + key + ".", slots)


def stack_module_state(models) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(parameters, buffers) of same-class models, each name's tensors stacked along a new first dim: the
    state of an ensemble that `vmap(functional_call)` runs at once. Stacked parameters are new leaves that
    require grad (an optimizer over them trains every member); buffers are stacked as they are."""
    from engine.ops import stack

    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: expected at least one model, got none")
    kind = type(models[0])
    if any(type(m) is not kind for m in models):
        raise RuntimeError(f"stack_module_state: every model must be a {kind.__name__}, got "
                           f"{sorted({type(m).__name__ for m in models})}")
    if len({m.training for m in models}) > 1:
        raise RuntimeError("stack_module_state: the models mix training and eval mode; call train() or eval() "
                           "on all of them")

    def stacked(named_lists) -> dict:
        out = {}
        for name in named_lists[0]:
            tensors = [named[name] for named in named_lists]
            grads = {t.requires_grad for t in tensors}
            if len(grads) > 1:
                raise RuntimeError(f"stack_module_state: {name!r} requires grad in some models and not in others")
            out[name] = stack(tensors).detach().requires_grad_() if grads == {True} else stack(tensors)
        return out

    return (stacked([dict(m.named_parameters()) for m in models]),
            stacked([dict(m.named_buffers()) for m in models]))


_TRANSFORMS = ("grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "vjp", "vmap")
_FORWARD = ("jvp", "linearize")


def __getattr__(name: str):
    # the transforms (engine.func_transforms, engine.func_forward) load on first use: `import engine` does not pay
    # for them
    if name in _TRANSFORMS or name in _FORWARD:
        from engine import func_forward, func_transforms

        return getattr(func_transforms if name in _TRANSFORMS else func_forward, name)
    raise AttributeError(f"module 'engine.func' has no attribute {name!r}")
