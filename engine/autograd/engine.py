"""The backward pass: an iterative scheduler over the recorded graph.

Nodes run in reverse creation order (a heap on the node's sequence number), each once all of its
consumers have contributed their gradient (dependency counting). No recursion, so a 100k-op chain
is fine. Each node that runs is an event, which is what lets a debugger step through backward.
"""

from __future__ import annotations

import functools
import heapq
import weakref

import numpy as np

from engine.autograd.function import _FREED, Function, RegionGrad, current, sum_to
from engine.autograd.grad_mode import no_grad
from engine.autograd.inplace import freed, saved_changed
from engine.backend import array_module
from engine.events import BackwardEvent, hub, next_seq, next_tensor_id

_ndarray = np.ndarray


def backward(root, gradient=None, retain_graph: bool = False, inputs=None, create_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into every reachable leaf's `.grad`; with `create_graph` those gradients
    are Tensors with a graph of their own (engine.autograd.higher)."""
    current(root)
    if not root.requires_grad:
        raise RuntimeError(
            "element 0 of tensors does not require grad and does not have a grad_fn: it was computed without a "
            "graph, under engine.no_grad() or inference_mode() (an evaluation block around the training "
            "forward?), after a .detach(), or from tensors none of which requires grad (call requires_grad_() "
            "on an input only if you want its gradient)"
        )
    grad = _seed(root, gradient, "gradient", "the output", "backward(gradient=...)")
    only = None if inputs is None else {id(t) for t in (inputs if isinstance(inputs, list | tuple) else [inputs])}
    if create_graph:
        from engine.autograd import higher

        grad = _graph_seed(gradient, grad)
        if root.grad_fn is None:
            if only is None or id(root) in only:
                higher.store(root, higher.leaf_hooks(root, grad), set())
        else:
            higher.run({root.grad_fn: grad}, retain_graph, only)
        _pass_over()
        return
    # the caller still holds its gradient tensor: storing that array in a .grad needs a copy
    handed = {id(grad)} if gradient is not None else set()
    with no_grad():
        if root.grad_fn is None:
            _accumulate(root, grad, handed, only)
        else:
            _run({root.grad_fn: grad}, retain_graph, only, handed)
    _pass_over()


def _pass_over() -> None:
    """Tell the hub's pass listeners that a backward() pass is over."""
    if hub.active:
        for fn in hub.pass_listeners:
            fn()


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused: bool | None = None, materialize_grads: bool = False) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, as a tuple; no tensor's `.grad` changes.
    `only_inputs` is torch's deprecated argument (copied WGAN-GP penalties pass it): accepted, ignored, as there."""
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, but got: "
                         "allow_unused=False.")
    outputs = _tensors(outputs, "outputs")
    inputs = _tensors(inputs, "inputs")
    if not inputs:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors does not require grad: inputs[{i}] (shape "
                               f"{tuple(t.shape)}); call requires_grad_() on it before computing the outputs")
    grads = _grad_outputs(outputs, grad_outputs, create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    handed = {id(g) for g in grads}  # the caller keeps its grad_outputs: a result that is one gets a copy
    roots, seeds = {}, {}
    for out, g in zip(outputs, grads):
        into, key = (roots, out.grad_fn) if out.grad_fn is not None else (seeds, id(out))
        into[key] = into[key] + g if key in into else g
    capture = _Capture(inputs, seeds)
    if create_graph:
        from engine.autograd import higher

        higher.run(roots, bool(retain_graph), None, capture)
    else:
        with no_grad():
            _run(roots, bool(retain_graph), None, handed, capture)
    result = []
    for i, (t, g) in enumerate(zip(inputs, capture.grads)):
        if g is None and not (allow_unused or materialize_grads):
            raise RuntimeError(f"The differentiated Tensor at index {i} (shape {tuple(t.shape)}) appears to not "
                               "have been used in the graph. Set allow_unused=True if this is the desired behavior.")
        if g is None and materialize_grads:
            g = t._wrap(array_module(t.array).zeros_like(t.array))
        result.append(g)
    return tuple(result)


def _tensors(items, name: str) -> tuple:
    from engine.tensor import Tensor

    items = (items,) if isinstance(items, Tensor) else tuple(items)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad(): {name}[{i}] must be a Tensor, got {type(t).__name__}")
        current(t)
    return items


def _grad_outputs(outputs: tuple, grad_outputs, create_graph: bool = False) -> list:
    """The gradient arrays that start backward from each output (ones for a one-element output); Tensors
    for create_graph."""
    from engine.tensor import Tensor

    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    else:
        grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"got {len(outputs)} tensors and {len(grad_outputs)} gradients")
    grads = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if g is not None and not isinstance(g, Tensor):
            raise TypeError(f"gradients can be either Tensors or None, but got {type(g).__name__}")
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn; "
                               "call requires_grad_() on a leaf before computing the output")
        seed = _seed(out, g, f"grad_outputs[{i}]", f"outputs[{i}]", f"grad_outputs[{i}]=...")
        grads.append(_graph_seed(g, seed) if create_graph else seed)
    return grads


def _seed(root, gradient, name: str, root_name: str, hint: str):
    """The gradient that starts backward from `root`: ones for one element, else `gradient` in root's dtype."""
    from engine.tensor import Tensor

    xp = array_module(root.array)
    if gradient is None:
        if root.array.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs; {root_name} has shape "
                               f"{tuple(root.shape)}: pass {hint} with a tensor of that shape")
        return xp.ones_like(root.array)
    grad = gradient.array if isinstance(gradient, Tensor) else xp.asarray(gradient, dtype=root.array.dtype)
    if grad.shape != root.array.shape:
        raise RuntimeError(f"Mismatch in shape: {name} has shape {tuple(grad.shape)} but {root_name} has shape "
                           f"{tuple(root.shape)}")
    return grad if grad.dtype == root.array.dtype else grad.astype(root.array.dtype)


def _graph_seed(given, grad):
    """The starting gradient as a Tensor for create_graph: the caller's own when it is one (it may carry a
    graph), else the array `_seed` made."""
    from engine.tensor import Tensor

    return given if isinstance(given, Tensor) and given.array is grad else Tensor._wrap(grad)


class _Capture:
    """What autograd.grad collects in place of `.grad`: the gradient that reaches each of its inputs."""

    def __init__(self, inputs: tuple, seeds: dict) -> None:
        self.slots: dict = {}  # an input's node, or id(leaf input): its positions in inputs
        self.leaves = {}
        for i, t in enumerate(inputs):
            key = t.grad_fn if t.grad_fn is not None else id(t)
            self.slots.setdefault(key, []).append(i)
            if t.grad_fn is None:
                self.leaves[key] = t
        self.seeds = {k: g for k, g in seeds.items() if k in self.slots}  # outputs that are leaf inputs
        self.grads = [None] * len(inputs)
        self.needed: set = set()  # the nodes that lead to an input: they run
        self.wanted: set = set()  # those and the inputs' own nodes: their hooks run, as in PyTorch

    def select(self, roots: dict, deps: dict) -> dict:
        """Find the nodes to run; returns the roots among them."""
        slots, needed = self.slots, self.needed
        # children before parents (a node's inputs were made before it), so one pass settles each node
        for node in sorted((k for k in deps if isinstance(k, Function)), key=lambda n: n._seq):
            for e in node._next:
                key = e if e is None or isinstance(e, Function) else id(e)
                if key is not None and (key in slots or key in needed):
                    needed.add(node)
                    break
        self.wanted = needed | {k for k in slots if isinstance(k, Function)}
        return {node: g for node, g in roots.items() if node in self.wanted}

    def start(self, roots: dict, deps: dict, handed: set) -> tuple[dict, dict]:
        """Find the nodes to run; returns the roots among them and the first gradient buffers."""
        roots = self.select(roots, deps)
        buffers = dict(roots)
        for key, g in self.seeds.items():
            if deps.get(key):  # gradient flows into this leaf output from the graph too: it adds up there
                buffers[key] = g
            else:
                self.take(key, _leaf_hooks(self.leaves[key], g, handed), handed)
        return roots, buffers

    def take(self, key, g, handed: set) -> None:
        """Keep `g` as the gradient of the inputs at `key`."""
        from engine.tensor import Tensor

        t = Tensor._wrap(_own(g, handed))
        for i in self.slots[key]:
            self.grads[i] = t

    def take_tensor(self, key, g) -> None:
        """Keep the Tensor `g` (create_graph: it carries its own graph) as the gradient at `key`."""
        for i in self.slots[key]:
            self.grads[i] = g


def _count_dependencies(starts) -> dict:
    """How many edges lead into each node, and into each leaf (keyed by `id(leaf)`)."""
    deps = dict.fromkeys(starts, 0)
    stack = list(deps)
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


def _run(roots: dict, retain_graph: bool, only, handed: set[int], capture: _Capture | None = None) -> None:
    """Run every node reachable from `roots` ({node: its output's gradient}), or with `capture` only those
    that lead to its inputs; `handed` holds ids of arrays referenced outside the run."""
    from engine.tensor import Tensor

    deps = _count_dependencies(roots)
    owned = set()  # keys whose buffer this run made for slice gradients: others add into it in place
    if capture is None:
        buffers = dict(roots)
    else:
        roots, buffers = capture.start(roots, deps, handed)
    ready = [(-node._seq, node) for node in roots if not deps[node]]
    heapq.heapify(ready)
    # the pass's first emitted node is marked by the emitter it starts with; every node then rebinds the
    # steady one (a store, not a test, per node)
    emit, steady = _EMITTERS[capture is not None]
    while ready:
        _, node = heapq.heappop(ready)
        grad = buffers.pop(node)
        d = node.__dict__
        if "_pre_hooks" in d:
            for fn in d["_pre_hooks"]:
                r = fn(Tensor._wrap(grad))
                if r is not None:
                    grad = r.array if isinstance(r, Tensor) else r
                    handed.add(id(grad))  # the hook may keep the tensor it returned
        if "_retain" in d:
            for t in d["_retain"]:
                _store(t, grad, handed)
        if capture is not None:
            if node in capture.slots:
                capture.take(node, grad, handed)
            if node not in capture.needed:
                continue
        saved = _saved_intact(node)
        grads = node.backward(grad)
        if grads.__class__ is not tuple:
            grads = (grads,)
        if hub.active:
            grads = emit(node, grad, grads)
            emit = steady
        if not retain_graph and saved:
            node.saved = _FREED
        for edge, g, meta in zip(node._next, grads, node._meta):
            if edge is None:
                continue
            # a leaf, like a node, gets the sum of all its gradients at once, so its hooks run once
            leaf = edge.__class__ is Tensor or isinstance(edge, Tensor)
            key = id(edge) if leaf else edge
            if g is not None:
                if isinstance(g, RegionGrad):
                    _add_region(buffers, owned, key, g, meta)
                else:
                    shape, dtype = meta
                    if g.shape != shape:
                        g = sum_to(g, shape)
                    if g.dtype != dtype:
                        g = g.astype(dtype)
                    if key not in buffers:
                        buffers[key] = g
                    elif key in owned:
                        buffers[key] += g
                    else:
                        buffers[key] = buffers[key] + g
            deps[key] -= 1
            if deps[key] or key not in buffers:  # more to come, or no gradient arrived at all
                continue
            if not leaf:
                if capture is None or edge in capture.wanted:
                    heapq.heappush(ready, (-edge._seq, edge))
            elif capture is not None:
                if key in capture.slots:
                    capture.take(key, _leaf_hooks(edge, buffers.pop(key), handed), handed)
            elif only is None or key in only:
                _accumulate(edge, buffers.pop(key), handed, only)


def _add_region(buffers: dict, owned: set, key, region: RegionGrad, meta: tuple) -> None:
    """Add a slice's gradient into the buffer of its input in place; the first makes that buffer."""
    if key not in owned:
        shape, dtype = meta
        buf = buffers.get(key)
        # a buffer that came from another node may be held elsewhere too (an add hands one array to both
        # inputs): this run adds into its own copy, an array even where a 0-d gradient came as a NumPy scalar
        xp = array_module(region.values)
        buffers[key] = xp.zeros(shape, dtype) if buf is None else xp.array(buf)
        owned.add(key)
    region.add_to(buffers[key])


def _own(g, handed: set):
    """`g`, or a copy when something else holds it; either way marked as held from now on."""
    if id(g) in handed or not _owns(g):
        g = g.copy()
    handed.add(id(g))
    return g


def _store(t, g, handed: set) -> None:
    from engine.tensor import Tensor

    g = _own(g, handed)
    if t.grad is None:
        t.grad = Tensor._wrap(g)
    else:
        t.grad = Tensor._wrap(t.grad.array + g)


def _writeable(a) -> bool:
    return getattr(a.flags, "writeable", True)  # CuPy arrays are always writeable and lack the flag


def _owns(a) -> bool:
    flags = a.flags
    return flags.owndata and flags.c_contiguous and _writeable(a)


def _leaf_hooks(t, g, handed: set):
    """The leaf's gradient after its tensor hooks (each may replace it)."""
    from engine.tensor import Tensor

    if t._hooks:
        for fn in t._hooks:
            r = fn(Tensor._wrap(g))
            if r is not None:
                g = r.array if isinstance(r, Tensor) else r
                handed.add(id(g))  # the hook may keep the tensor it returned
    return g


# id(leaf) -> its post-accumulate-grad hooks (Tensor.register_post_accumulate_grad_hook); kept here, not on the
# tensor, so that tensors pay nothing for them: a backward checks this dict once per leaf, and only when non-empty
_post_hooks: dict[int, list] = {}


def post_accumulate_hooks(t) -> list:
    """The list of `t`'s post-accumulate-grad hooks, made on first use and dropped when `t` dies."""
    hooks = _post_hooks.get(id(t))
    if hooks is None:
        hooks = _post_hooks[id(t)] = []
        weakref.finalize(t, _post_hooks.pop, id(t), None)
    return hooks


def _accumulate(t, g, handed: set, only) -> None:
    from engine.tensor import Tensor

    g = _leaf_hooks(t, g, handed)
    if t.grad is None:
        if id(g) in handed or not _owns(g):
            g = g.copy()
        else:
            # kept without a copy, but it may still be in flight (an add hands one array to both
            # inputs): it must not be stored again, nor be added into in place, during this run
            handed.add(id(g))
        t.grad = Tensor._wrap(g)
    else:
        old = t.grad.array
        if _writeable(old) and old.dtype == g.dtype and old.shape == g.shape and id(old) not in handed:
            old += g
            t.grad._vc[0] += 1
        else:
            t.grad = Tensor._wrap(old + g)
    if _post_hooks and id(t) in _post_hooks:
        for fn in tuple(_post_hooks[id(t)]):  # a hook may remove itself
            if fn(t) is not None:
                raise RuntimeError("post accumulate grad hooks should return None (the hook changes the tensor or "
                                   "its .grad in place)")


def _saved_intact(node: Function):
    """The node's saved tensors, checked before its backward uses them: an error where an earlier backward freed
    them (retain_graph=False) or an in-place write changed one since it was saved."""
    d = node.__dict__
    saved = d.get("saved")
    if saved is _FREED:
        raise freed(node)
    if saved and "_versions" in d:
        for vc, v, role in node._versions:
            if vc[0] != v:
                raise saved_changed(node, vc, v, role)
    return saved


def _emit_backward(node: Function, grad, grads, grad_call: bool = False, pass_start: bool = False) -> tuple:
    """Emit the node's BackwardEvent; returns its gradients (fitted when tensor listeners saw them).
    grad_call: autograd.grad() runs the node (its root is no loss); pass_start: the pass's first node."""
    d = node.__dict__
    event = BackwardEvent(
        next_seq(), node.op, d.get("_key", ""), d.get("_event_seq", 0), next_tensor_id(),
        tuple([0 if g is None else next_tensor_id() for g in grads]), grad_call, pass_start,
    )
    hub.emit_op(event)
    if hub.tensor_listeners:  # the gradients as they reach each input: summed to its shape, in its dtype
        fitted = tuple([g if g is None or m is None or (g.__class__ is _ndarray and g.shape == m[0] and g.dtype == m[1])
                        else _fitted(g, m) for g, m in zip(grads, node._meta)])
        hub.emit_tensors(event, (grad,), fitted)
        return fitted
    return grads


def _emit_grad_call(node: Function, grad, grads) -> tuple:
    """_emit_backward for a node that autograd.grad() runs."""
    return _emit_backward(node, grad, grads, True)


# by whether autograd.grad() runs the pass: the emitter of the pass's first node, and of the others
_EMITTERS = {grad_call: (functools.partial(_emit_backward, grad_call=grad_call, pass_start=True),
                         _emit_grad_call if grad_call else _emit_backward) for grad_call in (False, True)}


def _fitted(g, meta: tuple):
    """`g` summed to the input's shape, in its dtype; a slice's RegionGrad stays one, so that listeners
    of T slices of one tensor get T regions, not T whole arrays (and backward stays linear)."""
    shape, dtype = meta
    if isinstance(g, np.generic):  # numpy arithmetic on 0-d arrays gives scalars (the gradient of x * 2)
        g = np.asarray(g)
    if isinstance(g, RegionGrad):
        if g.shape == shape and g.values.dtype == dtype:
            return g
        g = g.dense()
    return g if g.shape == shape and g.dtype == dtype else sum_to(g, shape).astype(dtype, copy=False)
