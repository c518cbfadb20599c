"""Function: one differentiable op, whose instance is also its node in the backward graph.

An op subclasses Function and writes `forward(ctx, *arrays)` and `backward(ctx, grad)` on raw
arrays (numpy or cupy). `Op.apply(*tensors_or_scalars, **options)` unwraps tensors, promotes dtypes,
runs forward, wraps the result and records the node when a graph is needed. Gradients returned by
`backward` are summed back to each input's shape and cast to its dtype here, once, for every op.
"""

from __future__ import annotations

import itertools
import operator

import numpy as np

from engine import dtypes
from engine.autograd.grad_mode import state as _grad_state
from engine.backend import array_module
from engine.events import OpEvent, hub, next_seq

_node_seq = itertools.count()
_FREED = object()
_ndarray = np.ndarray


def sum_to(grad, shape: tuple[int, ...]):
    """Sum a broadcast gradient back to `shape` (the one place broadcasting is undone)."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if lead:
        grad = grad.reshape(shape)
    return grad


class RegionGrad:
    """A gradient that is zero outside one region of its input: what a slice's backward returns.

    The backward scheduler adds `values` at `index` into one buffer per input, in place, so T slices of
    a tensor cost O(size of the slices) plus one full-size array, not T full-size arrays. Everything
    that needs a whole array (another node, a hook, a leaf's .grad) gets that buffer. Tensor listeners
    (the debugger) get the RegionGrad itself and summarise it from its region (engine.debug.regions); it
    is made whole only when its value is fetched.
    """

    __slots__ = ("index", "shape", "values")

    def __init__(self, shape: tuple[int, ...], index, values) -> None:
        self.shape, self.index, self.values = shape, index, values

    def add_to(self, out) -> None:
        """out[index] += values, in place (`out` has the input's shape)."""
        out[self.index] += self.values

    def dense(self):
        """The gradient as a full array: zeros with the region added in."""
        out = array_module(self.values).zeros(self.shape, self.values.dtype)
        self.add_to(out)
        return out


# called with each op class defined from now on (engine.amp gives listed ops their casting apply this way)
NEW_OP_LISTENERS: list = []


class Function:
    """Base class of every op. Subclasses define `forward(ctx, ...)` and `backward(ctx, grad)`.

    Graph traversal (PyTorch-compatible):
      - `node.name()` is the backward node's name, e.g. "MulBackward0".
      - `node.next_functions` is a tuple of `(node_or_None, 0)` pairs, one per input; a leaf tensor
        that requires grad appears as an `AccumulateGrad` node whose `.variable` is that tensor.
    """

    op = "function"  # the forward op's name in events and errors; defaults to the class name
    promotes = False  # elementwise ops: promote operand dtypes with PyTorch's rules first
    differentiable = True
    view = False  # the output is a view of the first input (basic indexing): it shares its versions

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "op" not in cls.__dict__:
            cls.op = cls.__name__.lower()
        for listener in NEW_OP_LISTENERS:
            listener(cls)

    # ---- what ops use --------------------------------------------------------------------
    def save(ctx, *arrays) -> None:
        """Keep arrays for backward; in-place changes to them are detected at backward."""
        ctx.saved = arrays

    @classmethod
    def name(cls) -> str:
        """The backward node's name, as PyTorch spells it ("AddBackward0")."""
        return cls.__name__ + "Backward0"

    # ---- running the op -----------------------------------------------------------------------
    @classmethod
    def apply(cls, *args, **options):
        """Run the op on tensors and Python scalars and return the output Tensor."""
        ctx = object.__new__(cls)
        if options:
            ctx.__dict__.update(options)
        record = cls.differentiable and _grad_state.enabled
        arrays = []
        tensors = []
        needs = []
        edges = []
        requires_grad = False
        for a in args:
            if isinstance(a, Tensor):
                if a._base is not None and a._vc[0] != a._view_v:
                    refresh_view(a)
                arrays.append(a.array)
                tensors.append(a)
                if record and a.requires_grad:
                    requires_grad = True
                    needs.append(True)
                    edges.append(a.grad_fn or a)  # a leaf that requires grad is its own edge
                else:
                    needs.append(False)
                    edges.append(None)
            else:
                if isinstance(a, np.generic):
                    # a numpy scalar (np.sqrt(d), an element of an array) counts as a Python number, as in
                    # PyTorch; numpy would keep its dtype and turn float32 * np.float64(2) into float64
                    a = a.item()
                    args = (*args[:len(arrays)], a, *args[len(arrays) + 1:])
                arrays.append(a)
                needs.append(False)
                edges.append(None)
        if len(tensors) > 1:
            _check_devices(cls, tensors)
        if cls.promotes and not _same_float_dtype(tensors):
            _promote(arrays, args)

        ctx.needs_input_grad = needs if requires_grad else None
        try:
            out = ctx.forward(*arrays)
        except ShapeError:
            raise
        except ValueError as err:  # numpy/cupy shape complaints: name the op, module and shapes
            raise ShapeError(describe_error(cls.op, args, err)) from None
        if requires_grad:
            if out.dtype.kind != "f":
                requires_grad = False  # integer and bool results never carry gradients
            elif out.__class__ is not _ndarray and isinstance(out, np.generic):
                out = _scalar_result(ctx, out)
        t = Tensor._wrap(out, requires_grad, args[0] if cls.view else None)
        if requires_grad:
            ctx._seq = next(_node_seq)
            ctx._next = edges
            ctx._meta = [(a.shape, a.dtype) if e is not None else None for a, e in zip(arrays, edges)]
            for i, e in enumerate(edges):  # unbroadcast to the input's own dtype, not the promoted one
                if e is not None and args[i].array.dtype != arrays[i].dtype:
                    ctx._meta[i] = (args[i].array.shape, args[i].array.dtype)
            saved = ctx.__dict__.get("saved")
            if saved:
                ctx._versions = _saved_versions(saved, tensors, t)
            t.grad_fn = ctx
        if hub.active:
            _emit_op(cls, tensors, t, ctx if requires_grad else None, None, options)
        return t

    def __repr__(self) -> str:
        return f"<{self.name()} object>"

    @property
    def next_functions(self) -> tuple:
        """One `(node, 0)` pair per input: its grad_fn, an AccumulateGrad for a leaf, or None."""
        return tuple(
            (AccumulateGrad(e) if isinstance(e, Tensor) else e, 0)
            for e in getattr(self, "_next", ())
        )

    @property
    def metadata(self) -> dict:
        """Free-form data attached to the node (as in PyTorch)."""
        if "_metadata" not in self.__dict__:
            self._metadata = {}
        return self._metadata

    def register_hook(self, fn) -> None:
        """Call `fn(grad_output)` each time this node runs; a returned array-like replaces it."""
        self.__dict__.setdefault("_pre_hooks", []).append(fn)




def op_classes() -> list[type]:
    """Every op class defined so far: Function and its subclasses at any depth (NEW_OP_LISTENERS hears of later
    ones)."""
    found, todo = [], [Function]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found

class AccumulateGrad:
    """The node that stores a leaf tensor's gradient in `.grad`."""

    __slots__ = ("variable",)

    def __init__(self, variable) -> None:
        self.variable = variable

    @staticmethod
    def name() -> str:
        return "AccumulateGrad"

    next_functions = ()

    def __eq__(self, other) -> bool:
        return isinstance(other, AccumulateGrad) and other.variable is self.variable

    def __hash__(self) -> int:
        return id(self.variable)

    def __repr__(self) -> str:
        return "<AccumulateGrad object>"


def _scalar_result(ctx, out):
    """The 0-d array of a NumPy scalar result (numpy's ufuncs give one for 0-d arrays), in the op's saved arrays
    too: the output tensor holds that array, so a later write into it is seen by the backward that saved it."""
    array = np.asarray(out)
    saved = ctx.__dict__.get("saved")
    if saved:
        ctx.saved = tuple(array if s is out else s for s in saved)
    return array


def refresh_view(view) -> None:
    """Take the history of a view again when its storage changed in place since (see view_write)."""
    from engine.ops.view_write import take_view_history

    take_view_history(view)


def current(t):
    """`t`, its history brought up to date first if it is a view whose storage changed in place since."""
    if t._base is not None and t._vc[0] != t._view_v:
        refresh_view(t)
    return t


def _same_float_dtype(tensors) -> bool:
    """The common case that needs no promotion: all operands share one floating dtype."""
    d = tensors[0].array.dtype
    if d.kind != "f":
        return False
    return all(t.array.dtype == d for t in tensors)


def _check_devices(cls, tensors) -> None:
    t0 = type(tensors[0].array)
    if t0 is _ndarray and all(type(t.array) is _ndarray for t in tensors):
        return
    for t in tensors[1:]:
        if type(t.array) is not t0 or t.device != tensors[0].device:
            raise RuntimeError(
                f"{cls.op}: expected all tensors on the same device, but found "
                f"{tensors[0].device} and {t.device}; move them with .to(device)"
            )


def _promote(arrays: list, args: tuple) -> None:
    target = promoted_dtype(*args).np
    for i, a in enumerate(arrays):
        if hasattr(a, "dtype") and a.dtype != target:
            arrays[i] = a.astype(target)


def promoted_dtype(*args) -> dtypes.DType:
    """The dtype PyTorch's promotion rules give for a mix of tensors and Python scalars."""
    dims, zero_dims, scalars = [], [], []
    for a in args:
        if isinstance(a, Tensor):
            (dims if a.array.ndim else zero_dims).append(a.dtype)
        else:
            scalars.append(a)
    return dtypes.result_type(dims, zero_dims, scalars)


def _saved_versions(saved, tensors, out) -> list:
    """(version counter, version now, which: input i or -1 for the output) of each input or output whose array
    the op saved."""
    versions = []
    for i, t in enumerate((*tensors, out)):
        d = t.array
        for s in saved:
            if s is d:
                versions.append((t._vc, t._vc[0], i if i < len(tensors) else -1))
                break
    return versions


def describe_error(op: str, args, err) -> str:
    """One line naming the op, the module it ran in and the input shapes."""
    shapes = ", ".join(str(tuple(a.shape)) if isinstance(a, Tensor) else repr(a) for a in args)
    where = f" in module '{hub.module_path}'" if hub.module_path else ""
    return f"{op}{where}: {err} (inputs: {shapes})"


class ShapeError(ValueError, RuntimeError):
    """Shapes that do not fit together; the message names the op and the shapes."""


_ids = operator.attrgetter("_id")  # C getters: a Python property call per tensor adds up on every op
_shapes = operator.attrgetter("array.shape")


_NO_OPTIONS: dict = {}
# what of an op's keyword options an OpEvent carries: settings (reduction, dim, keepdim), not the arrays and
# helper objects some ops pass themselves (sort's index, a LinearMap's geometry), which events must not keep alive
_PLAIN_OPTIONS = frozenset({str, int, float, bool, type(None), tuple})


def _emit_op(cls, tensors, out, ctx, input_ids=None, options=_NO_OPTIONS) -> None:
    """Emit the OpEvent of `out = cls(*tensors)`; `input_ids` when the inputs' ids changed since."""
    path, key = hub.node_key(cls.op)
    seq = next_seq()
    if ctx is not None:
        ctx._event_seq = seq
        ctx._key = key
    if input_ids is None:
        input_ids = tuple(map(_ids, tensors))
        if 0 in input_ids:  # a tensor seen for the first time gets its id now
            input_ids = tuple([t.id for t in tensors])
    data = out.array
    event = OpEvent(
        seq, cls.op, key, path, input_ids, out._id or out.id, tuple(map(_shapes, tensors)), data.shape,
        dtypes.from_numpy(data.dtype).name, "cpu" if data.__class__ is _ndarray else str(out.device),
        out.requires_grad,
        {k: v for k, v in options.items() if v.__class__ in _PLAIN_OPTIONS} if options else _NO_OPTIONS,
    )
    hub.emit_op(event)
    if hub.tensor_listeners:
        hub.emit_tensors(event, tuple(tensors), out)


from engine.tensor import Tensor  # noqa: E402  (tensor.py needs Function first)


def __getattr__(name: str):
    # torch.autograd.function's public names (once_differentiable, FunctionCtx), from engine.autograd.custom on first
    # use; `Function` here stays the engine's internal op base: the public one is engine.autograd.Function
    if name in ("once_differentiable", "FunctionCtx", "BackwardCFunction"):
        from engine.autograd import custom

        return getattr(custom, name)
    raise AttributeError(f"module 'engine.autograd.function' has no attribute {name!r}")
