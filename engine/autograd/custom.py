"""torch.autograd.Function: a differentiable op a person writes in Tensor code (gradient reversal, straight-through
estimators, custom kernels), built on the engine's internal op base (engine.autograd.function.Function).

    class GradReverse(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x, alpha):
            ctx.alpha = alpha
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return -ctx.alpha * grad, None

Each subclass gets a node class, "GradReverseBackward" as in torch, whose instance is both the `ctx` its forward and
backward see and the output's grad_fn. The forward runs with grad mode off and the hub silenced, so the graph and the
debugger get one op named after the class, whose source line is the `.apply` call. The node's backward runs the
person's backward on Tensors: under create_graph=True its ops are recorded (engine.autograd.higher), so the
gradient of the gradient flows through it, unless it is decorated with @once_differentiable.

A node of the engine has one output. A Function with several differentiable outputs gets one more node per output
(the same class): each adds its output's gradient into a flat buffer of all of them (a RegionGrad, as a slice's
backward does), which the main node splits again; so `a.grad_fn is b.grad_fn` is False there, unlike torch.

A debugger watches these Functions through watch_backwards, to check each class's hand-written backward against its
forward once (engine.debug.custom_backward).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from engine import dtypes
from engine.autograd import higher
from engine.autograd.function import _FREED, RegionGrad, _emit_op, _node_seq, current
from engine.autograd.function import Function as _Op
from engine.autograd.grad_mode import no_grad
from engine.autograd.grad_mode import state as _grad_state
from engine.backend import array_module
from engine.events import hub
from engine.ops.shape import cat
from engine.tensor import Tensor

__all__ = ["BackwardCFunction", "Function", "FunctionCtx", "once_differentiable"]

_ONCE = "trying to differentiate twice a function that was marked with @once_differentiable"
_watchers: tuple = ()  # what watch_backwards registered: engine.debug's check of hand-written backwards


def watch_backwards(watcher) -> Callable[[], None]:
    """Show `watcher` the custom Functions that run; returns the undo.

    At an apply that records a node, `watcher.keep(cls, args, kwargs)` runs before forward (it copies what it needs
    of the inputs, or returns None), and `watcher.applied(ctx, kept, out, dirty)` after it with what keep returned;
    `watcher.backward(ctx, grads, results)` runs after each backward, with its checked results."""
    global _watchers
    _watchers = (*_watchers, watcher)

    def undo() -> None:
        global _watchers
        _watchers = tuple(w for w in _watchers if w is not watcher)

    return undo


def _quiet(fn, *args):
    """fn(*args) with the hub silenced: the ops a custom Function runs inside are its own, not the debugger's."""
    with hub.silenced():
        return fn(*args)


class FunctionCtx:
    """What `ctx` offers a custom Function's forward, setup_context and backward (torch's FunctionCtx)."""

    materialize_grads = True
    _to_save = _dirty = _non_diff = ()

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors (or None) for backward, as `ctx.saved_tensors`; an in-place change to one is caught there."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {i} is of type "
                                f"{type(t).__name__}")
        self._to_save = tensors

    def mark_dirty(self, *tensors) -> None:
        """Say that forward changed these inputs in place (and returns them)."""
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        """Say that these outputs carry no gradient (indices, masks)."""
        self._non_diff = tensors

    def set_materialize_grads(self, value: bool) -> None:
        """False: backward gets None, not zeros, for outputs whose gradient nothing computed."""
        self.materialize_grads = bool(value)

    @property
    def saved_tensors(self) -> tuple:
        """The tensors save_for_backward kept; raises if one was changed in place since, or backward freed them."""
        saved = self.__dict__.get("saved", ())
        if saved is _FREED:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved tensors after they "
                "have already been freed); specify retain_graph=True on the first backward() if you need to do this")
        return tuple(None if e is None else self._unpack_saved(*e) for e in saved)


class BackwardCFunction(FunctionCtx, _Op):
    """The node class of a custom Function (one subclass per Function, named "<Function>Backward")."""

    _forward_cls = None
    _slot = None  # on the extra node of one of several differentiable outputs: its place among them

    @classmethod
    def name(cls) -> str:
        return cls.__name__  # torch names these without the 0 of its built-in nodes

    @property
    def next_functions(self) -> tuple:
        """One `(node, 0)` pair per Tensor input (torch leaves the other arguments out)."""
        return tuple(p for p, is_tensor in zip(_Op.next_functions.fget(self), self._is_tensor) if is_tensor)

    # ---- backward, on arrays (the scheduler) or on Tensors (create_graph=True, engine.autograd.higher) --------
    def backward(self, grad):
        if self._slot is not None:
            return self._to_buffer(grad, False)
        results = self._call_backward(self._grad_outputs(grad, False))
        return tuple(None if r is None else r.array for r in results)

    def _tensor_backward(self, grad: Tensor) -> tuple:
        if self._slot is not None:
            return self._to_buffer(grad, True)
        return self._call_backward(self._grad_outputs(grad, True))

    def _call_backward(self, grads: list) -> tuple:
        fn = self._forward_cls._backward_fn
        results = self._checked(_quiet(fn, self, *grads))
        for watcher in _watchers:
            watcher.backward(self, grads, results)
        return results

    def _to_buffer(self, g, graph: bool):
        """An output's gradient placed in the main node's flat buffer of all output gradients."""
        main = self._next[0]
        main._arrived.add(self._slot)
        start = main._offsets[self._slot]
        (total,), dtype = self._meta[0]
        flat = g.reshape(-1)
        if not graph:
            return RegionGrad((total,), slice(start, start + flat.shape[0]), flat)
        xp = array_module(g.array)
        pad = [Tensor._wrap(xp.zeros(n, dtype)) for n in (start, total - start - flat.shape[0])]
        return cat([pad[0], flat.to(dtype=dtypes.from_numpy(dtype)), pad[1]])

    def _grad_outputs(self, grad, graph: bool) -> list:
        """One gradient per output of forward: zeros (or None, see set_materialize_grads) where none came."""
        given = {}
        if len(self._diff) == 1:
            given[self._diff[0]] = grad
        else:
            for k in self._arrived:
                i = self._diff[k]
                shape, dtype = self._outs[i]
                g = grad[self._offsets[k]:self._offsets[k + 1]].reshape(shape)
                if (g.array.dtype if graph else g.dtype) != dtype:
                    g = g.to(dtype=dtypes.from_numpy(dtype)) if graph else g.astype(dtype)
                given[i] = g
            self._arrived = set()
        xp = array_module(grad.array if graph else grad)
        grads = []
        for i, meta in enumerate(self._outs):
            g = given.get(i)
            if g is None and meta is not None and self.materialize_grads:
                g = xp.zeros(*meta)
            grads.append(g if g is None or isinstance(g, Tensor) else Tensor._wrap(g))
        return grads

    def _checked(self, results) -> tuple:
        """backward's results, one per input, as torch checks them (count, type, shape)."""
        if not isinstance(results, tuple):
            results = (results,)
        n = len(self._next)
        if len(results) > n and all(r is None for r in results[n:]):
            results = results[:n]
        if len(results) != n:
            raise RuntimeError(f"function {self.name()} returned an incorrect number of gradients (expected {n}, "
                               f"got {len(results)})")
        out = []
        for i, (r, edge, meta) in enumerate(zip(results, self._next, self._meta)):
            if r is not None and not isinstance(r, Tensor):
                raise RuntimeError(f"function {self.name()} returned {type(r).__name__} as gradient {i}: expected a "
                                   "Tensor or None")
            if r is not None and not self._is_tensor[i]:
                raise RuntimeError(f"function {self.name()} returned a gradient different than None at position "
                                   f"{i + 1}, but the corresponding forward input was not a Variable")
            if r is None or edge is None:
                out.append(None)
                continue
            if r.array.shape != meta[0] and not _expandable(meta[0], r.array.shape):
                raise RuntimeError(f"Function {self.name()} returned an invalid gradient at index {i} - got "
                                   f"{list(r.array.shape)} but expected shape compatible with {list(meta[0])}")
            out.append(r)
        return tuple(out)

    # ---- saved tensors -----------------------------------------------------------------------------------
    def _unpack_saved(self, tensor, array, vc, version, out_index):
        if vc[0] != version:
            t = tensor if tensor is not None else Tensor._wrap(array)
            fn = tensor.grad_fn if tensor is not None else self
            which = f", which is output 0 of {fn.name()}," if fn is not None else ""
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace operation: "
                f"[{t.type()} {list(array.shape)}]{which} is at version {vc[0]}; expected version {version} instead. "
                "Hint: clone() the tensor before changing it in place, or change it out of place")
        if tensor is not None:
            return tensor
        node = None
        if out_index in self._diff:  # the output, on the graph again: its gradient flows back through this node
            k = self._diff.index(out_index)
            node = self if len(self._diff) == 1 else self._slot_node(k)
        t = Tensor._wrap(array, node is not None)
        t._vc = vc
        t.grad_fn = node
        return t

    def _slot_node(self, k: int) -> BackwardCFunction:
        """The node of differentiable output k of several: it adds that output's gradient into this node's buffer."""
        node = object.__new__(type(self))
        node._slot = k
        node.needs_input_grad = (True,)
        node._next = [self]
        node._meta = [((self._offsets[-1],), self._buffer_dtype)]
        node._is_tensor = (True,)
        node._seq = next(_node_seq)
        for name in ("_event_seq", "_key"):
            if name in self.__dict__:
                setattr(node, name, self.__dict__[name])
        return node


@functools.lru_cache(maxsize=256)
def _signature(forward) -> inspect.Signature:
    return inspect.signature(forward)


def _expandable(shape: tuple, to: tuple) -> bool:
    """Whether a tensor of `shape` broadcasts to `to` (so that a gradient of shape `to` sums back to it)."""
    if len(shape) > len(to):
        return False
    return all(s == t or s == 1 for s, t in zip(shape[::-1], to[::-1]))


class Function:
    """Base class of a custom differentiable op, as torch.autograd.Function: subclass it with static `forward`
    and `backward` (or `forward` without ctx plus `setup_context`), and call `.apply(*args)`."""

    _backward_cls: type = BackwardCFunction

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        node_cls = type(cls.__name__ + "Backward", (BackwardCFunction,),
                        {"_forward_cls": cls, "op": cls.__name__, "__module__": cls.__module__})
        cls._backward_cls = node_cls
        higher.differentiable(node_cls)(BackwardCFunction._tensor_backward)

    @staticmethod
    def forward(*args, **kwargs):
        """The op's output(s) from its inputs, on Tensors (grad mode is off inside)."""
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs: tuple, output) -> None:
        """Save what backward needs from the inputs and output (forward then takes no ctx)."""
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        """The gradient of each input (None for non-Tensor inputs) from the gradient of each output."""
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    vjp = backward

    @classmethod
    def _backward_fn(cls, ctx, *grads):
        fn = cls.backward if cls.backward is not Function.backward else cls.vjp
        return fn(ctx, *grads)

    def __call__(self, *args, **kwargs):
        raise RuntimeError("Legacy autograd function with non-static forward method is deprecated. Please use "
                           "new-style autograd function with static forward method: call MyFunction.apply(...)")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run forward on `args` and record one node whose backward is this class's backward."""
        setup = cls.setup_context is not Function.setup_context
        if setup:  # torch binds defaults here, so that setup_context sees every input
            bound = _signature(cls.forward).bind(*args, **kwargs)
            bound.apply_defaults()
            args, kwargs = bound.args, bound.kwargs
            inputs = args
        else:
            inputs = args + tuple(kwargs.values())
        ctx = object.__new__(cls._backward_cls)
        record = _grad_state.enabled
        edges, metas = [], []
        for a in inputs:
            if isinstance(a, Tensor) and record and current(a).requires_grad:
                edges.append(a.grad_fn or a)  # taken before forward: an in-place forward replaces a's history
                metas.append((a.array.shape, a.array.dtype))
            else:
                edges.append(None)
                metas.append(None)
        ctx.needs_input_grad = tuple(e is not None for e in edges)
        kept = _keep(cls, args, kwargs) if _watchers and any(ctx.needs_input_grad) else ()
        with no_grad():
            if setup:
                out = _quiet(functools.partial(cls.forward, *args, **kwargs))
                _quiet(cls.setup_context, ctx, inputs, out)
            else:
                out = _quiet(functools.partial(cls.forward, ctx, *args, **kwargs))
        dirty = bool(ctx._dirty)
        result = _finish(ctx, inputs, out, edges, metas)
        for watcher, copies in kept:
            watcher.applied(ctx, copies, out, dirty)
        return result


def _keep(cls: type, args: tuple, kwargs: dict) -> list:
    """(watcher, what it kept of the inputs) for each watcher that keeps something of this apply."""
    return [(w, copies) for w in _watchers if (copies := w.keep(cls, args, kwargs)) is not None]


def _finish(ctx: BackwardCFunction, inputs: tuple, out, edges: list, metas: list):
    """Wrap forward's outputs, record the node when a graph is wanted, and emit the op."""
    multiple = isinstance(out, tuple)
    outs = list(out) if multiple else [out]
    dirty, non_diff = ctx._dirty, ctx._non_diff
    recorded = any(e is not None for e in edges)
    for t in dirty:
        if not any(t is o for o in outs):
            raise RuntimeError("Some elements marked as dirty during the forward method were not returned as output. "
                               "The inputs that are modified inplace must all be outputs of the Function.")
    originals = list(outs)
    diff = []
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            continue
        if any(o is t for t in dirty):
            if recorded and o.requires_grad and o.grad_fn is None:
                raise RuntimeError("a leaf Variable that requires grad has been used in an in-place operation.")
            if recorded and o._base is not None:
                raise RuntimeError(f"{type(ctx).__name__}: mark_dirty on a view is not supported by the engine; "
                                   "clone() the view before the call")
            o._vc[0] += 1  # as torch counts the change of a dirty input
        elif o._base is not None or o.requires_grad or any(o is t for t in (*inputs, *originals[:i])):
            # an input (or a tensor with a history of its own) returned as it is, an output returned twice, or a
            # view made inside forward: a new tensor on the same memory and version counter, whose history is this
            # node's (a view's history would be retaken from its base)
            alias = Tensor._wrap(o.array)
            alias._vc = o._vc
            outs[i] = alias
        if recorded and o.array.dtype.kind == "f" and not any(o is t for t in non_diff):
            diff.append(i)
    first = next((o for o in outs if isinstance(o, Tensor)), None)
    if recorded and diff:
        _record(ctx, inputs, outs, originals, diff, edges, metas)
    if hub.active and first is not None:
        _emit_op(type(ctx), [a for a in inputs if isinstance(a, Tensor)], first, ctx if recorded and diff else None)
        for i in diff:
            node = outs[i].grad_fn
            if node is not ctx:
                node._event_seq, node._key = ctx._event_seq, ctx._key
    return tuple(outs) if multiple else outs[0]


def _record(ctx, inputs, outs, originals, diff, edges, metas) -> None:
    ctx._seq = next(_node_seq)
    ctx._next, ctx._meta = edges, metas
    ctx._is_tensor = tuple(isinstance(a, Tensor) for a in inputs)
    ctx._outs = [(o.array.shape, o.array.dtype) if isinstance(o, Tensor) else None for o in outs]
    ctx._diff = diff
    if len(diff) > 1:  # the flat buffer the extra nodes of the outputs add their gradients into
        sizes = [outs[i].array.size for i in diff]
        ctx._offsets = [sum(sizes[:k]) for k in range(len(sizes) + 1)]
        ctx._buffer_dtype = array_module(outs[diff[0]].array).result_type(*[outs[i].array.dtype for i in diff])
        ctx._arrived = set()
    for k, i in enumerate(diff):
        outs[i].grad_fn = ctx if len(diff) == 1 else ctx._slot_node(k)
        outs[i].requires_grad = True
    saved = []
    dirty = ctx._dirty
    for t in ctx._to_save:
        if t is None:
            saved.append(None)
            continue
        k = next((i for i, o in enumerate(originals) if o is t), None)
        if k is not None and (any(t is d for d in dirty) or not any(t is a for a in inputs)):
            saved.append((None, outs[k].array, outs[k]._vc, outs[k]._vc[0], k))  # rebuilt when read: no cycle
        else:
            saved.append((t, t.array, t._vc, t._vc[0], None))
    if saved:
        ctx.saved = tuple(saved)
    for name in ("_to_save", "_dirty", "_non_diff"):
        ctx.__dict__.pop(name, None)


# ---- @once_differentiable -------------------------------------------------------------------------------------
class DelayedError(_Op):
    """The identity whose backward raises: what a @once_differentiable backward's results hang from."""

    def forward(ctx, a):
        return a

    def backward(ctx, grad):
        raise RuntimeError(_ONCE)


@higher.differentiable(DelayedError)
def _delayed_error(ctx, grad):
    raise RuntimeError(_ONCE)


def once_differentiable(fn):
    """Decorate a custom Function's backward that cannot itself be differentiated: it runs without recording,
    and differentiating its results again raises (as torch.autograd.function.once_differentiable)."""

    @functools.wraps(fn)
    def wrapper(ctx, *args, **kwargs):
        with no_grad():
            outputs = fn(ctx, *args, **kwargs)
        if not _grad_state.enabled or not any(isinstance(a, Tensor) and a.requires_grad for a in args):
            return outputs
        many = isinstance(outputs, tuple)
        wrapped = tuple(DelayedError.apply(Tensor._wrap(o.array, True))
                        if isinstance(o, Tensor) and o.array.dtype.kind == "f" else o
                        for o in (outputs if many else (outputs,)))
        return wrapped if many else wrapped[0]

    return wrapper
