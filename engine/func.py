"""engine.func, as torch.func: `functional_call` runs a module with other parameters and buffers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.tensor import Tensor


def functional_call(module, parameter_and_buffer_dicts: Mapping[str, Tensor] | tuple | list,
                    args: Any = None, kwargs: dict | None = None, *, tie_weights: bool = True,
                    strict: bool = False):
    """`module(*args, **kwargs)` with the named tensors standing in for its parameters and buffers.

    The module is left as it was afterwards (also when forward raises); gradients flow to the tensors
    passed in, not to the module's own parameters.
    """
    if isinstance(parameter_and_buffer_dicts, Mapping):
        given = dict(parameter_and_buffer_dicts)
    elif isinstance(parameter_and_buffer_dicts, tuple | list):
        given = {}
        for d in parameter_and_buffer_dicts:
            if not isinstance(d, Mapping):
                raise ValueError(f"functional_call: expected a dict of tensors, got {type(d).__name__}")
            clash = set(given) & set(d)
            if clash:
                raise ValueError(f"{sorted(clash)} appeared in multiple dictionaries; behavior of "
                                 "functional call is ambiguous")
            given.update(d)
    else:
        raise ValueError(f"Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but "
                         f"got {type(parameter_and_buffer_dicts).__name__}")
    slots = {}  # dotted name -> (table dict, key, original tensor)
    _collect(module, "", slots)
    unknown = [k for k in given if k not in slots]
    if unknown:
        raise KeyError(f"functional_call: {type(module).__name__} has no parameter or buffer named "
                       f"{', '.join(map(repr, unknown))}")
    for name, value in given.items():
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"functional_call: {name!r} must be a Tensor, got {type(value).__name__}")
    if strict:
        missing = [k for k in slots if k not in given]
        if missing:
            raise RuntimeError(f"Error(s) in reparametrizing for {type(module).__name__}:\n\t"
                               f"Missing key(s): {', '.join(map(repr, missing))}.")
    swap = dict(given)
    if tie_weights:  # a tensor shared under several names follows the one name it was given under
        by_original = {id(slots[k][2]): v for k, v in given.items()}
        for name, (_, _, original) in slots.items():
            if name not in swap and id(original) in by_original:
                swap[name] = by_original[id(original)]
    saved = [(slots[k][0], slots[k][1], slots[k][2]) for k in swap]
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
