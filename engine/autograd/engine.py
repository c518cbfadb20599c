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
    # the caller still holds its gradient tensor: storing that array in a .grad needs a copy
    handed = {id(grad)} if gradient is not None else set()
    with no_grad():
        if root.grad_fn is None:
            _accumulate(root, grad, handed, only)
        else:
            _run(root.grad_fn, grad, retain_graph, only, handed)


def _count_dependencies(start: Function) -> dict:
    """How many edges lead into each node, and into each leaf (keyed by `id(leaf)`)."""
    deps = {start: 0}
    stack = [start]
    while stack:
        node = stack.pop()
        for e in node._next:
            if e is None:
                continue
            key = e if isinstance(e, Function) else id(e)
            if key in deps:
                deps[key] += 1
            else:
                deps[key] = 1
                if key is e:
                    stack.append(e)
    return deps


def _run(start: Function, grad, retain_graph: bool, only, handed: set[int]) -> None:
    """Run every node reachable from `start`; `handed` holds ids of arrays referenced outside the run."""
    from engine.tensor import Tensor

    deps = _count_dependencies(start)
    buffers = {start: grad}
    ready = [(-start._seq, start)]
    while ready:
        _, node = heapq.heappop(ready)
        grad = buffers.pop(node)
        d = node.__dict__
        if "_pre_hooks" in d:
            for fn in d["_pre_hooks"]:
                r = fn(Tensor._wrap(grad))
                if r is not None:
                    grad = r.data if isinstance(r, Tensor) else r
                    handed.add(id(grad))  # the hook may keep the tensor it returned
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
            grads = _emit_backward(node, grad, grads)
        if not retain_graph and saved:
            node.saved = _FREED
        for edge, g, meta in zip(node._next, grads, node._meta):
            if edge is None:
                continue
            # a leaf, like a node, gets the sum of all its gradients at once, so its hooks run once
            leaf = edge.__class__ is Tensor or isinstance(edge, Tensor)
            key = id(edge) if leaf else edge
            if g is not None:
                shape, dtype = meta
                if g.shape != shape:
                    g = sum_to(g, shape)
                if g.dtype != dtype:
                    g = g.astype(dtype)
                buffers[key] = buffers[key] + g if key in buffers else g
            deps[key] -= 1
            if deps[key] or key not in buffers:  # more to come, or no gradient arrived at all
                continue
            if not leaf:
                heapq.heappush(ready, (-edge._seq, edge))
            elif only is None or key in only:
                _accumulate(edge, buffers.pop(key), handed, only)


def _store(t, g, handed: set) -> None:
    from engine.tensor import Tensor

    if id(g) in handed or not _owns(g):
        g = g.copy()
    handed.add(id(g))
    if t.grad is None:
        t.grad = Tensor._wrap(g)
    else:
        t.grad = Tensor._wrap(t.grad.data + g)


def _writeable(a) -> bool:
    return getattr(a.flags, "writeable", True)  # CuPy arrays are always writeable and lack the flag


def _owns(a) -> bool:
    flags = a.flags
    return flags.owndata and flags.c_contiguous and _writeable(a)


def _accumulate(t, g, handed: set, only) -> None:
    from engine.tensor import Tensor

    if t._hooks:
        for fn in t._hooks:
            r = fn(Tensor._wrap(g))
            if r is not None:
                g = r.data if isinstance(r, Tensor) else r
                handed.add(id(g))  # the hook may keep the tensor it returned
    if t.grad is None:
        if id(g) in handed or not _owns(g):
            g = g.copy()
        else:
            # kept without a copy, but it may still be in flight (an add hands one array to both
            # inputs): it must not be stored again, nor be added into in place, during this run
            handed.add(id(g))
        t.grad = Tensor._wrap(g)
    else:
        old = t.grad.data
        if _writeable(old) and old.dtype == g.dtype and old.shape == g.shape and id(old) not in handed:
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


def _emit_backward(node: Function, grad, grads) -> tuple:
    """Emit the node's BackwardEvent; returns its gradients (fitted when tensor listeners saw them)."""
    d = node.__dict__
    event = BackwardEvent(
        next_seq(), node.op, d.get("_key", ""), d.get("_event_seq", 0), next_tensor_id(),
        tuple([0 if g is None else next_tensor_id() for g in grads]),
    )
    hub.emit_op(event)
    if hub.tensor_listeners:  # the gradients as they reach each input: summed to its shape, in its dtype
        fitted = tuple([g if g is None or m is None or (g.shape == m[0] and g.dtype == m[1])
                        else sum_to(g, m[0]).astype(m[1], copy=False) for g, m in zip(grads, node._meta)])
        hub.emit_tensors(event, (grad,), fitted)
        return fitted
    return grads
