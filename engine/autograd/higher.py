"""Higher-order gradients: backward written in engine ops, so that `create_graph=True` records it.

An op's `backward(ctx, grad)` works on raw arrays and leaves no trace. For `create_graph=True` the
scheduler here runs instead, and for each node it calls the op's Tensor-level backward from the registry
below, `fn(ctx, grad) -> gradients`, whose engine ops record the graph of the gradient itself. An op
opts in with `@differentiable(OpClass)` (higher_ops.py and the other higher_*.py files hold them); an op without one is
named in an error before anything runs, never differentiated wrongly.

Inside a Tensor-level backward, `saved_input` and `saved_output` turn the arrays a node saved back into
Tensors on the graph: a Tensor whose grad_fn is the node that made the array (or the leaf itself), so a
gradient of the gradient flows to where the array came from. `derived` does the same for an array the
node computed from its inputs (cols of a convolution, probabilities of cross_entropy), through a node of
the op that computes it.
"""

from __future__ import annotations

import heapq

from engine.autograd.function import _FREED, Function, _node_seq
from engine.autograd.grad_mode import enable_grad
from engine.events import hub
from engine.tensor import Tensor

_BACKWARDS: dict[type, tuple] = {}  # op class -> (Tensor-level backward, when(ctx) -> bool or None)


def differentiable(*classes: type, when=None):
    """Register the decorated `fn(ctx, grad) -> gradients` as the Tensor-level backward of `classes`;
    `when(ctx)` limits it to the nodes it handles (others are named in the error)."""
    def register(fn):
        for cls in classes:
            _BACKWARDS[cls] = (fn, when)
        return fn
    return register


def _registry() -> dict:
    # imported on first use: they import every op module, which import this package
    import engine.autograd.higher_acts
    import engine.autograd.higher_index
    import engine.autograd.higher_linalg
    import engine.autograd.higher_linalg_port
    import engine.autograd.higher_losses
    import engine.autograd.higher_math
    import engine.autograd.higher_math2
    import engine.autograd.higher_more
    import engine.autograd.higher_nn
    import engine.autograd.higher_ops
    import engine.autograd.higher_pointwise
    import engine.autograd.higher_scan  # noqa: F401  (each registers its ops' Tensor-level backwards)

    return _BACKWARDS


def check(nodes) -> None:
    """Raise for the first node whose backward cannot be recorded, before any node runs."""
    registry = _registry()
    for node in sorted(nodes, key=lambda n: -n._seq):
        entry = registry.get(type(node))
        if entry is None or (entry[1] is not None and not entry[1](node)):
            raise NotImplementedError(
                f"create_graph=True: the backward of {node.op} ({node.name()}) is not differentiable in the engine "
                "yet; compute this gradient without create_graph, or build the term from ops that support it")


# ---- the arrays a node saved, as Tensors on the graph -------------------------------------------------
def saved_input(ctx: Function, i: int, value):
    """Input `i` of `ctx`, whose array `value` the node saved, as a Tensor that leads back to that input."""
    if value is None or not hasattr(value, "dtype"):
        return value  # a Python number, or nothing saved
    edge = ctx._next[i]
    if edge is None:
        return Tensor._wrap(value)
    shape, dtype = ctx._meta[i]
    if isinstance(edge, Tensor):
        if edge.array is value:
            return edge
    elif value.dtype == dtype and value.shape == shape:
        t = Tensor._wrap(value, True)
        t.grad_fn = edge
        return t
    # promoted to another dtype, or a leaf's copy: through an identity node, which casts back
    from engine.autograd.higher_ops import Alias

    return derived(ctx, Alias, value, (i,))


def saved_inputs(ctx: Function, *saved) -> tuple:
    """The arrays of inputs 0, 1, ... that `ctx` saved, as `saved_input` gives each."""
    return tuple(saved_input(ctx, i, a) for i, a in enumerate(saved))


def saved_output(ctx: Function, value) -> Tensor:
    """The output of `ctx`, whose array `value` the node saved, as a Tensor whose grad_fn is `ctx`."""
    t = Tensor._wrap(value, True)
    t.grad_fn = ctx
    return t


def derived(ctx: Function, cls: type, value, inputs: tuple[int, ...], saved=None, **options) -> Tensor:
    """`value`, computed by op `cls` from inputs `inputs` of `ctx`, as a Tensor on the graph: its grad_fn is
    a `cls` node on those inputs' edges, holding `saved` and `options` as its forward would have."""
    edges = [ctx._next[i] for i in inputs]
    if all(e is None for e in edges):
        return Tensor._wrap(value)
    node = object.__new__(cls)
    node.__dict__.update(options)
    node.needs_input_grad = [e is not None for e in edges]
    node._next = edges
    node._meta = [ctx._meta[i] for i in inputs]
    node._seq = next(_node_seq)
    if saved is not None:
        node.saved = saved
    return saved_output(node, value)


# ---- Tensor versions of the scheduler's array helpers ---------------------------------------------------
def fit(g: Tensor, meta: tuple) -> Tensor:
    """`g` summed back to the input's shape (undoing broadcasting) and cast to its dtype, as engine ops."""
    shape, dtype = meta
    if g.array.shape != shape:
        lead = g.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, n in enumerate(shape) if n == 1 and g.array.shape[i + lead] != 1)
        if axes:
            g = g.sum(dim=axes, keepdim=True)
        if lead:
            g = g.reshape(shape)
    if g.array.dtype != dtype:
        g = g.to(dtype=dtype)
    return g


def as_tensor(r) -> Tensor:
    """A hook's or backward's result as a Tensor (arrays are constants of the graph)."""
    return r if isinstance(r, Tensor) else Tensor._wrap(r)


# ---- the scheduler ---------------------------------------------------------------------------------------
def run(roots: dict, retain_graph: bool, only, capture=None) -> None:
    """As engine._run, with Tensor gradients that record their own graph: `roots` maps nodes to Tensors."""
    from engine.autograd.engine import _count_dependencies, _emit_backward, _saved_intact

    deps = _count_dependencies(roots)
    if capture is None:
        check(k for k in deps if isinstance(k, Function))
        buffers = dict(roots)
    else:
        roots = capture.select(roots, deps)
        check(capture.needed)
        buffers = dict(roots)
        for key, g in capture.seeds.items():
            if deps.get(key):  # gradient flows into this leaf output from the graph too: it adds up there
                buffers[key] = g
            else:
                capture.take_tensor(key, leaf_hooks(capture.leaves[key], g))
    ready = [(-node._seq, node) for node in roots if not deps[node]]
    heapq.heapify(ready)
    registry = _registry()
    stored: set[int] = set()  # ids of Tensors kept in a .grad by this run: a second keeper gets a copy
    start = True  # until the pass's first node is emitted (BackwardEvent.pass_start)
    with enable_grad():
        while ready:
            _, node = heapq.heappop(ready)
            grad = buffers.pop(node)
            d = node.__dict__
            if "_pre_hooks" in d:
                for fn in d["_pre_hooks"]:
                    r = fn(grad)
                    if r is not None:
                        grad = as_tensor(r)
            if "_retain" in d:
                for t in d["_retain"]:
                    store(t, grad, stored)
            if capture is not None:
                if node in capture.slots:
                    capture.take_tensor(node, grad)
                if node not in capture.needed:
                    continue
            saved = _saved_intact(node)
            grads = registry[type(node)][0](node, grad)
            if grads.__class__ is not tuple:
                grads = (grads,)
            if hub.active:
                _emit_backward(node, grad.array, tuple(None if g is None else g.array for g in grads),
                               capture is not None, start)
                start = False
            if not retain_graph and saved:
                node.saved = _FREED
            for edge, g, meta in zip(node._next, grads, node._meta):
                if edge is None:
                    continue
                leaf = isinstance(edge, Tensor)
                key = id(edge) if leaf else edge
                if g is not None:
                    g = fit(as_tensor(g), meta)
                    buffers[key] = buffers[key] + g if key in buffers else g
                deps[key] -= 1
                if deps[key] or key not in buffers:
                    continue
                if not leaf:
                    if capture is None or edge in capture.wanted:
                        heapq.heappush(ready, (-edge._seq, edge))
                elif capture is not None:
                    if key in capture.slots:
                        capture.take_tensor(key, leaf_hooks(edge, buffers.pop(key)))
                elif only is None or key in only:
                    store(edge, leaf_hooks(edge, buffers.pop(key)), stored)


def leaf_hooks(t: Tensor, g: Tensor) -> Tensor:
    """The leaf's gradient after its tensor hooks (each may replace it)."""
    if t._hooks:
        for fn in t._hooks:
            r = fn(g)
            if r is not None:
                g = as_tensor(r)
    return g


def store(t: Tensor, g: Tensor, stored: set[int]) -> None:
    """Add `g` into `t.grad` out of place, as PyTorch does under create_graph (the sum stays differentiable)."""
    if t.grad is not None:
        t.grad = t.grad + g
        return
    if id(g) in stored or g.grad_fn is None:
        g = g.clone() if g.requires_grad else Tensor._wrap(g.array.copy())  # one Tensor never sits in two .grads
    stored.add(id(g))
    t.grad = g
