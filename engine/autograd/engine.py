"""The backward pass: an iterative scheduler over the recorded graph.

Nodes run in reverse creation order (a heap on the node's sequence number), each once all of its
consumers have contributed their gradient (dependency counting). No recursion, so a 100k-op chain
is fine. Each node that runs is an event, which is what lets a debugger step through backward.
"""

from __future__ import annotations

import heapq

from engine.autograd.function import _FREED, Function, sum_to
from engine.autograd.grad_mode import no_grad
from engine.backend import array_module
from engine.events import BackwardEvent, hub, next_seq, next_tensor_id


def backward(root, gradient=None, retain_graph: bool = False, inputs=None) -> None:
    """Accumulate d(root)/d(leaf) into every reachable leaf's `.grad`."""
    from engine.tensor import Tensor

    if not root.requires_grad:
        raise RuntimeError(
            "element 0 of tensors does not require grad and does not have a grad_fn; "
            "call requires_grad_() on a leaf before computing the output"
        )
    xp = array_module(root.data)
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs; this output has shape "
                f"{tuple(root.shape)}: pass backward(gradient=...) with a tensor of that shape"
            )
        grad = xp.ones_like(root.data)
    else:
        grad = gradient.data if isinstance(gradient, Tensor) else xp.asarray(gradient, dtype=root.data.dtype)
        if grad.shape != root.data.shape:
            raise RuntimeError(
                f"backward: gradient has shape {tuple(grad.shape)} but the output has shape {tuple(root.shape)}"
            )
        if grad.dtype != root.data.dtype:
            grad = grad.astype(root.data.dtype)
    only = None if inputs is None else {id(t) for t in (inputs if isinstance(inputs, list | tuple) else [inputs])}
    with no_grad():
        if root.grad_fn is None:
            _accumulate(root, grad, set(), only)
        else:
            _run(root.grad_fn, grad, retain_graph, only)


def _count_dependencies(start: Function) -> dict:
    deps = {start: 0}
    stack = [start]
    while stack:
        node = stack.pop()
        for e in node._next:
            if isinstance(e, Function):
                if e in deps:
                    deps[e] += 1
                else:
                    deps[e] = 1
                    stack.append(e)
    return deps


def _run(start: Function, grad, retain_graph: bool, only) -> None:
    from engine.tensor import Tensor

    deps = _count_dependencies(start)
    buffers = {start: grad}
    ready = [(-start._seq, start)]
    handed: set[int] = set()  # ids of arrays already stored somewhere; storing again needs a copy
    while ready:
        _, node = heapq.heappop(ready)
        grad = buffers.pop(node)
        d = node.__dict__
        if "_pre_hooks" in d:
            for fn in d["_pre_hooks"]:
                r = fn(Tensor._wrap(grad))
                if r is not None:
                    grad = r.data if isinstance(r, Tensor) else r
        if "_retain" in d:
            for t in d["_retain"]:
                _store(t, grad, handed)
        saved = d.get("saved")
        if saved is _FREED:
            raise RuntimeError(
                f"Trying to backward through the graph a second time ({node.name()}'s saved tensors were "
                "already freed); specify retain_graph=True on the first backward() if you need to do this"
            )
        if saved and "_versions" in d:
            _check_versions(node)
        grads = node.backward(grad)
        if grads.__class__ is not tuple:
            grads = (grads,)
        if hub.active:
            _emit_backward(node, grads)
        if not retain_graph and saved:
            node.saved = _FREED
        for edge, g, meta in zip(node._next, grads, node._meta):
            if edge is None or g is None:
                continue
            shape, dtype = meta
            if g.shape != shape:
                g = sum_to(g, shape)
            if g.dtype != dtype:
                g = g.astype(dtype)
            if edge.__class__ is Tensor or isinstance(edge, Tensor):
                if only is None or id(edge) in only:
                    _accumulate(edge, g, handed, only)
                continue
            if edge in buffers:
                buffers[edge] = buffers[edge] + g
            else:
                buffers[edge] = g
            deps[edge] -= 1
            if deps[edge] == 0:
                heapq.heappush(ready, (-edge._seq, edge))


def _store(t, g, handed: set) -> None:
    from engine.tensor import Tensor

    if id(g) in handed or not _owns(g):
        g = g.copy()
    handed.add(id(g))
    if t.grad is None:
        t.grad = Tensor._wrap(g)
    else:
        t.grad = Tensor._wrap(t.grad.data + g)


def _owns(a) -> bool:
    flags = a.flags
    return flags.owndata and flags.writeable and flags.c_contiguous


def _accumulate(t, g, handed: set, only) -> None:
    from engine.tensor import Tensor

    if t._hooks:
        for fn in t._hooks:
            r = fn(Tensor._wrap(g))
            if r is not None:
                g = r.data if isinstance(r, Tensor) else r
    if t.grad is None:
        if id(g) in handed or not _owns(g):
            g = g.copy()
        handed.add(id(g))
        t.grad = Tensor._wrap(g)
    else:
        old = t.grad.data
        if old.flags.writeable and old.dtype == g.dtype and old.shape == g.shape:
            old += g
            t.grad._vc[0] += 1
        else:
            t.grad = Tensor._wrap(old + g)


def _check_versions(node: Function) -> None:
    for vc, v in node._versions:
        if vc[0] != v:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: a tensor saved by {node.name()} is at version {vc[0]}; expected version {v} "
                "instead. Hint: clone() the tensor before changing it in place, or change it out of place"
            )


def _emit_backward(node: Function, grads) -> None:
    d = node.__dict__
    hub.emit(BackwardEvent(
        next_seq(), node.op, d.get("_key", ""), d.get("_event_seq", 0), next_tensor_id(),
        tuple(next_tensor_id() if g is not None else 0 for g in grads),
    ))
