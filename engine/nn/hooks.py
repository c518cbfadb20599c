"""Hook handles, and the machinery behind `Module.register_full_backward_hook` and its pre hook.

A full backward hook needs the gradients with respect to one module call's inputs and outputs only.
Each input and output tensor of the call passes through an identity op; a tensor hook on each
identity's output sees exactly the gradient that flowed through this call (not gradients other
consumers of the same tensor add), and the module hook runs once every input gradient has arrived.
A backward pre hook runs once the output gradients are known, before they flow into the module.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from engine.autograd.function import Function
from engine.autograd.grad_mode import is_grad_enabled
from engine.tensor import Tensor

_hook_ids = itertools.count()


class RemovableHandle:
    """Returned by `register_*_hook`; `remove()` (or leaving a `with` block) unregisters the hook."""

    def __init__(self, hooks: dict, *extra: dict | set) -> None:
        self.id = next(_hook_ids)
        self._hooks = hooks
        self._extra = extra  # other tables keyed by this id (e.g. which hooks take kwargs)

    def remove(self) -> None:
        """Unregister the hook (a second call does nothing)."""
        self._hooks.pop(self.id, None)
        for table in self._extra:
            if isinstance(table, dict):
                table.pop(self.id, None)
            else:
                table.discard(self.id)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def add_hook(hooks: dict, hook: Callable, prepend: bool, *extra: dict | set) -> RemovableHandle:
    """Put `hook` into an ordered hook table (first when `prepend`) and return its handle."""
    handle = RemovableHandle(hooks, *extra)
    hooks[handle.id] = hook
    if prepend:
        items = list(hooks.items())
        hooks.clear()
        hooks[handle.id] = hook
        hooks.update(items[:-1])
    return handle


class BackwardHook(Function):
    """Identity whose node marks where gradients enter or leave one module call."""

    op = "backward_hook"

    def forward(ctx, x):
        return x

    def backward(ctx, grad):
        return grad


class BackwardHookCall:
    """Collects one call's input and output gradients and runs the module's backward hooks."""

    def __init__(self, module, hooks: list[Callable], pre_hooks: list[Callable] = ()) -> None:
        self.module = module
        self.hooks = hooks
        self.pre_hooks = list(pre_hooks)
        self.pre_fired = False
        self.grad_inputs: list = []
        self.grad_outputs: list = []
        self.waiting: set[int] = set()
        self.outputs_waiting: set[int] = set()
        self.fired = False

    def wrap_inputs(self, args: tuple) -> tuple:
        """Route each positional tensor input that needs a gradient through an identity node."""
        self.grad_inputs = [None] * len(args)
        if not is_grad_enabled():
            return args
        wrapped = list(args)
        for i, a in enumerate(args):
            if isinstance(a, Tensor) and a.requires_grad:
                wrapped[i] = BackwardHook.apply(a)
                wrapped[i].register_hook(self._input_hook(i))
                self.waiting.add(i)
        return tuple(wrapped)

    def wrap_outputs(self, out):
        """Route each output tensor that needs a gradient through an identity node; same structure back."""
        tensors = []
        out = _map_tensors(out, lambda t: self._wrap_output(t, tensors))
        self.grad_outputs = [None] * len(tensors)
        return out

    def _wrap_output(self, t: Tensor, seen: list) -> Tensor:
        i = len(seen)
        seen.append(t)
        if not (t.requires_grad and is_grad_enabled()):
            return t
        w = BackwardHook.apply(t)
        w.register_hook(self._output_hook(i))
        self.outputs_waiting.add(i)
        return w

    def _output_hook(self, i: int):
        def hook(grad: Tensor):
            self.grad_outputs[i] = grad
            self.outputs_waiting.discard(i)
            replaced = None
            if not self.outputs_waiting:
                replaced = self._fire_pre(i)
            if not self.waiting and not self.outputs_waiting:  # no input needs a gradient
                self._fire(None)
            return replaced

        return hook

    def _fire_pre(self, last: int | None):
        """Run the backward pre hooks on the output gradients; returns the new gradient of output `last`."""
        if self.pre_fired:
            return None
        self.pre_fired = True
        replaced = None
        for hook in self.pre_hooks:
            grad_out = tuple(self.grad_outputs)
            result = hook(self.module, grad_out)
            if result is None:
                continue
            result = tuple(result) if isinstance(result, tuple | list) else (result,)
            if len(result) != len(grad_out):
                raise RuntimeError(
                    f"backward pre hook of {type(self.module).__name__} returned {len(result)} gradients, "
                    f"expected {len(grad_out)} (one per output)")
            for j, (new, old) in enumerate(zip(result, grad_out)):
                if new is not old and j != last:
                    raise RuntimeError(
                        f"backward pre hook of {type(self.module).__name__}: the engine can replace the gradient "
                        "of only one output (the last to arrive, and none when an output is unused); "
                        "return the other gradients unchanged")
            self.grad_outputs = list(result)
            replaced = result[last]
        return replaced

    def _input_hook(self, i: int):
        def hook(grad: Tensor):
            self.grad_inputs[i] = grad
            self.waiting.discard(i)
            self._fire_pre(None)  # an output was unused: its gradient never came
            if self.waiting:
                return None
            return self._fire(i)

        return hook

    def _fire(self, last: int | None):
        if self.fired:
            return None
        self.fired = True
        grad_in, grad_out = tuple(self.grad_inputs), tuple(self.grad_outputs)
        replaced = None
        for hook in self.hooks:
            result = hook(self.module, grad_in, grad_out)
            if result is None:
                continue
            result = tuple(result) if isinstance(result, tuple | list) else (result,)
            if len(result) != len(grad_in):
                raise RuntimeError(
                    f"backward hook of {type(self.module).__name__} returned {len(result)} gradients, "
                    f"expected {len(grad_in)} (one per positional input)"
                )
            for i, (new, old) in enumerate(zip(result, grad_in)):
                if new is not old and i != last:
                    raise RuntimeError(
                        f"backward hook of {type(self.module).__name__}: the engine can replace the gradient "
                        "of only one input (the last to arrive); return the other gradients unchanged"
                    )
            grad_in = result
            replaced = result[last] if last is not None else None
        return replaced


def _map_tensors(obj, fn):
    """Apply `fn` to every Tensor inside nested tuples, lists and dicts; keep the structure."""
    if isinstance(obj, Tensor):
        return fn(obj)
    if isinstance(obj, tuple):
        mapped = [_map_tensors(o, fn) for o in obj]
        return type(obj)(*mapped) if hasattr(obj, "_fields") else tuple(mapped)
    if isinstance(obj, list):
        return [_map_tensors(o, fn) for o in obj]
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    return obj


def tensor_ids(obj) -> tuple[int, ...]:
    """Event ids of every Tensor inside nested tuples, lists and dicts, in order."""
    if isinstance(obj, Tensor):
        return (obj.id,)
    ids: list[int] = []
    _collect_ids(obj, ids)
    return tuple(ids)


def _collect_ids(obj, ids: list[int]) -> None:
    if isinstance(obj, Tensor):
        ids.append(obj.id)
    elif isinstance(obj, tuple | list):
        for o in obj:
            _collect_ids(o, ids)
    elif isinstance(obj, dict):
        for o in obj.values():
            _collect_ids(o, ids)
