"""Hook handles, and the machinery behind `Module.register_full_backward_hook` and its pre hook.

A full backward hook needs the gradients with respect to one module call's inputs and outputs only, all
at once, as PyTorch gives them. The call's outputs that need a gradient pass through one junction node
(an identity for a single tensor; a flat join, then one part per tensor, for several), and so do its
positional inputs. A hook on the junction sees exactly the gradients that flowed through this call (not
those other consumers of the same tensors add), all of them together, and whatever it returns flows on:
backward pre hooks run at the output junction, full hooks at the input junction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

from engine.autograd.function import Function, RegionGrad
from engine.autograd.grad_mode import is_grad_enabled
from engine.autograd.higher import differentiable
from engine.backend import array_module
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


class JoinHook(Function):
    """Several tensors of one module call as one flat vector: the node where all their gradients meet."""

    op = "backward_hook"

    def forward(ctx, *xs):
        xp = array_module(xs[0])
        ctx.parts = [(x.shape, x.dtype) for x in xs]
        dtype = xp.result_type(*xs)
        return xp.concatenate([x.reshape(-1).astype(dtype, copy=False) for x in xs])

    def backward(ctx, grad):
        return tuple(_split(grad, ctx.parts))


class PartHook(Function):
    """One tensor back out of a JoinHook's vector: cells start .. start + size, in its shape and dtype."""

    op = "backward_hook"

    def forward(ctx, joined):
        ctx.joined = joined.shape, joined.dtype
        return joined[ctx.start:ctx.start + math.prod(ctx.shape)].reshape(ctx.shape).astype(ctx.dtype)

    def backward(ctx, grad):
        shape, dtype = ctx.joined
        cells = slice(ctx.start, ctx.start + grad.size)
        return RegionGrad(shape, cells, grad.reshape(-1).astype(dtype, copy=False))


@differentiable(BackwardHook)
def _identity_backward(ctx, g: Tensor) -> tuple:
    """create_graph: the gradient passes through, recorded."""
    return (g,)


@differentiable(JoinHook)
def _join_backward(ctx, g: Tensor) -> tuple:
    """create_graph: the joined gradient split back into each tensor's part, recorded."""
    starts = itertools.accumulate((math.prod(shape) for shape, _ in ctx.parts[:-1]), initial=0)
    return tuple(PartHook.apply(g, start=s, shape=shape, dtype=dtype) for s, (shape, dtype) in zip(starts, ctx.parts))


@differentiable(PartHook)
def _part_backward(ctx, g: Tensor) -> tuple:
    """create_graph: a part's gradient placed among zeros of the joined vector, recorded."""
    (size,), dtype = ctx.joined
    xp = array_module(g.array)
    before = Tensor._wrap(xp.zeros(ctx.start, dtype))
    after = Tensor._wrap(xp.zeros(size - ctx.start - g.numel(), dtype))
    return (JoinHook.apply(before, g, after),)


def _split(flat, parts):
    """The arrays a JoinHook vector holds, each in its shape and dtype (copies)."""
    out, start = [], 0
    for shape, dtype in parts:
        size = math.prod(shape)
        out.append(flat[start:start + size].reshape(shape).astype(dtype))
        start += size
    return out


class _Junction:
    """Tensors routed through one node, so that a hook there sees all of their gradients at once and may
    replace any of them (what PyTorch's single BackwardHookFunction node gives)."""

    def __init__(self, tensors: list[Tensor]) -> None:
        self.arrived = [False] * len(tensors)
        if len(tensors) == 1:
            self.node = BackwardHook.apply(tensors[0])
            self.parts = [self.node]
        else:
            self.node = JoinHook.apply(*tensors)
            starts = itertools.accumulate((t.numel() for t in tensors[:-1]), initial=0)
            self.parts = [PartHook.apply(self.node, start=s, shape=t.array.shape, dtype=t.array.dtype)
                          for s, t in zip(starts, tensors)]
        for i, part in enumerate(self.parts):  # runs before the junction's hook: a part got a gradient
            part.register_hook(self._arrive(i))

    def _arrive(self, i: int):
        def hook(grad: Tensor) -> None:
            self.arrived[i] = True

        return hook

    def split(self, grad: Tensor) -> list[Tensor | None]:
        """The gradient of each tensor, None for those that got none; ready for the next backward pass."""
        if len(self.parts) == 1:
            grads = [grad]
        else:
            arrays = _split(grad.array, [(p.array.shape, p.array.dtype) for p in self.parts])
            grads = [Tensor._wrap(a) if came else None for a, came in zip(arrays, self.arrived)]
        self.arrived = [False] * len(self.parts)
        return grads

    def join(self, grads, before: list) -> Tensor | None:
        """The junction's gradient made of `grads` (None counts as zeros); None when nothing was replaced."""
        if all(new is old for new, old in zip(grads, before)):
            return None
        arrays = [array_module(p.array).zeros_like(p.array) if g is None else g.array if isinstance(g, Tensor)
                  else g for g, p in zip(grads, self.parts)]
        if len(arrays) == 1:
            return Tensor._wrap(arrays[0])
        xp = array_module(arrays[0])
        return Tensor._wrap(xp.concatenate([a.reshape(-1).astype(self.node.array.dtype) for a in arrays]))


class BackwardHookCall:
    """Collects one call's input and output gradients and runs the module's backward hooks.

    The outputs that need a gradient pass through one junction node, and so do the positional inputs: the
    pre hooks run once every output gradient is in (None for an output the loss did not use) and may
    replace any of them; the full hooks run once every input gradient is in and may replace any of those.
    """

    def __init__(self, module, hooks: list[Callable], pre_hooks: list[Callable] = ()) -> None:
        self.module = module
        self.hooks = hooks
        self.pre_hooks = list(pre_hooks)
        self.n_inputs = 0
        self.inputs: _Junction | None = None
        self.grad_outputs: tuple = ()

    def wrap_inputs(self, args: tuple) -> tuple:
        """Route the positional tensor inputs that need a gradient through one junction."""
        self.n_inputs = len(args)
        slots = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        if not slots or not is_grad_enabled():
            return args
        self.inputs = _Junction([args[i] for i in slots])
        self.inputs.node.register_hook(self._inputs_hook(slots))
        wrapped = list(args)
        for i, part in zip(slots, self.inputs.parts):
            wrapped[i] = part
        return tuple(wrapped)

    def wrap_outputs(self, out):
        """Route the output tensors that need a gradient through one junction; same structure back."""
        tensors: list[Tensor] = []
        _map_tensors(out, tensors.append)
        slots = [i for i, t in enumerate(tensors) if t.requires_grad]
        if not slots or not is_grad_enabled():
            return out
        junction = _Junction([tensors[i] for i in slots])
        junction.node.register_hook(self._outputs_hook(junction, slots, len(tensors)))
        for i, part in zip(slots, junction.parts):
            tensors[i] = part
        replacements = iter(tensors)
        return _map_tensors(out, lambda t: next(replacements))

    def _outputs_hook(self, junction: _Junction, slots: list[int], n_outputs: int):
        def hook(grad: Tensor):
            grad_out = [None] * n_outputs
            for i, g in zip(slots, junction.split(grad)):
                grad_out[i] = g
            self.grad_outputs = before = tuple(grad_out)
            for pre_hook in self.pre_hooks:
                result = _as_tuple(pre_hook(self.module, self.grad_outputs), len(before),
                                   "backward pre hook", "output")
                if result is not None:
                    self.grad_outputs = result
            if self.inputs is None:  # no input needs a gradient: the full hooks run now, with None for each
                for full_hook in self.hooks:
                    result = full_hook(self.module, (None,) * self.n_inputs, self.grad_outputs)
                    if result is not None and not all(g is None for g in _as_tuple(result, None, "", "")):
                        raise RuntimeError(
                            f"backward hook of {type(self.module).__name__}: no input of this call requires a "
                            "gradient, so the hook must return None (or None for every input)")
            return junction.join([self.grad_outputs[i] for i in slots], [before[i] for i in slots])

        return hook

    def _inputs_hook(self, slots: list[int]):
        def hook(grad: Tensor):
            grad_in = [None] * self.n_inputs
            for i, g in zip(slots, self.inputs.split(grad)):
                grad_in[i] = g
            result = before = tuple(grad_in)
            for full_hook in self.hooks:
                new = _as_tuple(full_hook(self.module, result, self.grad_outputs), len(before),
                                "backward hook", "positional input")
                if new is not None:
                    result = new
            return self.inputs.join([result[i] for i in slots], [before[i] for i in slots])

        return hook


def _as_tuple(result, expected: int | None, what: str, per: str) -> tuple | None:
    """A hook's returned gradients as a tuple (None: nothing returned), checked to hold one per `per`."""
    if result is None:
        return None
    result = tuple(result) if isinstance(result, tuple | list) else (result,)
    if expected is not None and len(result) != expected:
        raise RuntimeError(f"{what} returned {len(result)} gradients, expected {expected} (one per {per})")
    return result


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
