"""Hook handles, and the machinery behind `Module.register_full_backward_hook` and its pre hook.

A full backward hook needs the gradients with respect to one module call's inputs and outputs only, all
at once, as PyTorch gives them. The call's outputs that need a gradient pass through one junction, and so
do its positional inputs: an identity node per tensor that shares its array (no copy), all fed from one
gate node whose backward runs after theirs. The gate's hook sees exactly the gradients that flowed through
this call (not those other consumers of the same tensors add), all of them together, and whatever it
returns flows on: backward pre hooks run at the output junction, full hooks at the input junction.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from engine.autograd.function import Function
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


class HookGate(Function):
    """The node where every gradient of one junction meets: its output is an empty token, and it runs once
    each pass-through of the junction has run, so its backward sees all of the call's gradients at once."""

    op = "backward_hook"

    def forward(ctx, *xs):
        return array_module(xs[0]).empty(0, dtype=xs[0].dtype)

    def backward(ctx, grad):
        # views (owning no data): the hooks may keep what they saw, so the backward pass must copy a
        # gradient before storing it in a .grad or adding into it
        return tuple(g.array.view() for g in ctx.junction.fire())


class HookPass(Function):
    """One tensor of a junction passed on as is (no copy): its gradient waits in the junction, and the
    gate's token gets an empty one, so that the gate runs after every pass-through that got a gradient."""

    op = "backward_hook"

    def forward(ctx, x, token):
        return x

    def backward(ctx, grad):
        ctx.junction.arrive(ctx.slot, grad)
        return None, array_module(grad).empty(0, dtype=grad.dtype)


@differentiable(HookGate)
def _gate_backward(ctx, g: Tensor) -> tuple:
    """create_graph: the gradients the hooks settled on, each with its own graph."""
    return tuple(ctx.junction.fire())


@differentiable(HookPass)
def _pass_backward(ctx, g: Tensor) -> tuple:
    """create_graph: the gradient waits in the junction, as in the array backward."""
    ctx.junction.arrive(ctx.slot, g)
    return None, Tensor._wrap(array_module(g.array).empty(0, dtype=g.array.dtype))


class _Junction:
    """Tensors routed through one gate, so that a hook there sees all of their gradients at once and may
    replace any of them (what PyTorch's single BackwardHookFunction node gives), without copying them.

    Each tensor passes through its own identity node (HookPass, sharing the array); the gradients those
    nodes receive wait here, and the gate, made before them and fed by all of them, runs `on_grads` with
    the whole list once they are in and sends the result into the tensors the junction took.
    """

    def __init__(self, tensors: list[Tensor], on_grads: Callable[[list], list]) -> None:
        self.on_grads = on_grads
        self.grads: list = [None] * len(tensors)
        self.xp = array_module(tensors[0].array)
        self.meta = [(t.array.shape, t.array.dtype) for t in tensors]
        gate = HookGate.apply(*tensors, junction=self)
        self.parts = [HookPass.apply(t, gate, junction=self, slot=i) for i, t in enumerate(tensors)]

    def arrive(self, slot: int, grad) -> None:
        """Keep the gradient that reached tensor `slot` (an array, or a Tensor under create_graph)."""
        self.grads[slot] = grad

    def fire(self) -> list:
        """Run the hooks on the gradients that arrived (None for those that got none) and return theirs,
        zeros in place of None: every node the junction feeds must get a gradient, or backward stalls there
        (PyTorch gives zeros to such an input too)."""
        grads = [g if g is None or isinstance(g, Tensor) else Tensor._wrap(g) for g in self.grads]
        self.grads = [None] * len(grads)
        out = []
        for g, (shape, dtype) in zip(self.on_grads(grads), self.meta):
            if g is None:
                g = Tensor._wrap(self.xp.zeros(shape, dtype))
            out.append(g if isinstance(g, Tensor) else Tensor._wrap(self.xp.asarray(g)))
        return out


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
        self.inputs = _Junction([args[i] for i in slots], self._inputs_hook(slots))
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
        junction = _Junction([tensors[i] for i in slots], self._outputs_hook(slots, len(tensors)))
        for i, part in zip(slots, junction.parts):
            tensors[i] = part
        replacements = iter(tensors)
        return _map_tensors(out, lambda t: next(replacements))

    def _outputs_hook(self, slots: list[int], n_outputs: int):
        def hook(grads: list) -> list:
            grad_out = [None] * n_outputs
            for i, g in zip(slots, grads):
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
            return [self.grad_outputs[i] for i in slots]

        return hook

    def _inputs_hook(self, slots: list[int]):
        def hook(grads: list) -> list:
            grad_in = [None] * self.n_inputs
            for i, g in zip(slots, grads):
                grad_in[i] = g
            result = before = tuple(grad_in)
            for full_hook in self.hooks:
                new = _as_tuple(full_hook(self.module, result, self.grad_outputs), len(before),
                                "backward hook", "positional input")
                if new is not None:
                    result = new
            return [result[i] for i in slots]

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
