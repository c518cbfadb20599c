"""Tensor: an n-dimensional array on a device, with autograd (PyTorch's API)."""

from __future__ import annotations

import math
import operator
import warnings

import numpy as np

from engine import dtypes, user_warning
from engine.autograd import inplace as _inplace
from engine.autograd.grad_mode import state as _grad_state
from engine.backend import CPU, array_module, device_of, to_host
from engine.events import hub, next_tensor_id

_ndarray = np.ndarray
_tuple_new = tuple.__new__


def inherit_multi_out(view: Tensor, parent: Tensor) -> None:
    """A view of a view keeps the mark of an output of split/unbind (see Tensor), as torch's creation meta."""
    mark = getattr(parent, "_multi_out", None)
    if mark is not None:
        view._multi_out = mark


class Size(tuple):
    """A tensor's shape, as torch.Size: a tuple of ints (`t.shape == engine.Size([2, 3])`, `t.shape.numel()`).

    Unlike torch.Size, a slice (`t.shape[1:]`) is a plain tuple: overriding __getitem__ in Python would
    make every `t.shape[0]` about 100 ns slower (measured), for a repr and a `.numel()` on slices.
    """

    __slots__ = ()

    def __new__(cls, sizes=()) -> Size:
        try:
            return _tuple_new(cls, map(operator.index, sizes))
        except TypeError:
            bad = next((s for s in sizes if not hasattr(s, "__index__")), sizes)
            raise TypeError(f"engine.Size() takes an iterable of 'int' (got {type(bad).__name__} "
                            f"{bad!r})") from None

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds."""
        return math.prod(self)

    def __add__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return _tuple_new(Size, tuple.__add__(self, other))

    def __radd__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return _tuple_new(Size, tuple.__add__(other, self))

    def __mul__(self, n):
        return _tuple_new(Size, tuple.__mul__(self, n))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"engine.Size({list(self)})"

    __str__ = __repr__


# Sizes are immutable, so one per distinct shape serves every tensor: a dict hit costs less than making one
_sizes: dict[tuple, Size] = {}


def _size(shape: tuple) -> Size:
    """The Size of a plain shape tuple (made once per shape, while at most 4096 are kept)."""
    s = _sizes.get(shape)
    if s is None:
        if len(_sizes) >= 4096:
            _sizes.clear()
        s = _sizes[shape] = _tuple_new(Size, shape)
    return s


def _as_array(x):
    # numpy reductions return numpy scalars; a Tensor always holds an ndarray (or a cupy array)
    if isinstance(x, np.generic):
        return np.asarray(x)
    return x


class MemoryFormat:
    """A layout hint, as torch.memory_format (`engine.channels_last`): accepted, and changes nothing.

    The engine's kernels work on C-ordered arrays whatever a script asks for, and values never depend on the
    layout, so `model.to(memory_format=engine.channels_last)` from a PyTorch script runs as it is.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"engine.{self.name}"


contiguous_format = MemoryFormat("contiguous_format")
channels_last = MemoryFormat("channels_last")
channels_last_3d = MemoryFormat("channels_last_3d")
preserve_format = MemoryFormat("preserve_format")


def _check_memory_format(memory_format, caller: str) -> None:
    if not isinstance(memory_format, MemoryFormat):
        raise TypeError(f"{caller}: memory_format must be engine.contiguous_format, engine.channels_last, "
                        f"engine.channels_last_3d or engine.preserve_format, got {memory_format!r}")



_warned_float = False  # float() of a tensor that requires grad warned already

class Tensor:
    """An n-dimensional array with autograd. Create one with `engine.tensor(...)`."""

    # _view_v: for a view (_base set), the version of the storage when its history was last taken; a
    # later version means an in-place change since, and the view's history is taken again at next use.
    # _multi_out: set only on a differentiable output of a function returning several views (split, unbind) and on
    # views of it: "Output i of Split", for the error of changing it in place (engine.ops.view_write)
    __slots__ = ("__weakref__", "_base", "_hooks", "_id", "_multi_out", "_retains_grad", "_vc", "_view_v", "array",
                 "grad", "grad_fn", "requires_grad")
    __array_ufunc__ = None  # numpy defers `ndarray + Tensor` to Tensor.__radd__

    def __init__(self, *data, device=None, requires_grad: bool = False) -> None:
        """torch.Tensor(...): `Tensor(2, 3)` a tensor of that shape (zeros), `Tensor([[1, 2]])` the values of a
        sequence or array, `Tensor()` an empty one, all in the default float dtype; `Tensor(t)` shares t's
        values. `engine.tensor` and `engine.empty` say which they mean: prefer them."""
        if len(data) == 1 and isinstance(data[0], Tensor) and device is None:
            # torch's alias of t: a view, so one storage and version counter, and gradients reach t
            alias = data[0].view_as(data[0])
            for name in Tensor.__slots__[1:]:  # every slot but __weakref__
                if hasattr(alias, name):
                    setattr(self, name, getattr(alias, name))
            return
        from engine.legacy import legacy_array

        self._hold(legacy_array(data, device, dtypes.default_float, "Tensor"), requires_grad)

    @classmethod
    def _of(cls, data, requires_grad: bool = False) -> Tensor:
        """Wrap an array as it is (its dtype and device kept), checked: the engine's own constructor."""
        t = object.__new__(cls)
        t._hold(data, requires_grad)
        return t

    def _hold(self, data, requires_grad: bool = False) -> None:
        """Make this tensor hold array `data` (a numpy or CuPy array, or a numpy scalar), as a fresh leaf."""
        data = _as_array(data)
        # CuPy arrays stay on the device (CuPy 14 has no __array_namespace__, so look for CUDA's protocol)
        if not isinstance(data, _ndarray) and not hasattr(data, "__cuda_array_interface__") \
                and not hasattr(data, "__array_namespace__"):
            data = np.asarray(data)
        dtypes.from_numpy(data.dtype)
        self.array = data
        self.grad = None
        self.grad_fn = None
        self.requires_grad = False
        self._vc = [0]
        self._id = 0
        self._base = None
        self._hooks = None
        self._retains_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data, requires_grad: bool = False, base: Tensor | None = None) -> Tensor:
        """Fast constructor for op outputs (no checks)."""
        t = object.__new__(cls)
        if data.__class__ is not _ndarray:
            data = _as_array(data)
        t.array = data
        t.grad = None
        t.grad_fn = None
        t.requires_grad = requires_grad
        t._id = 0
        t._hooks = None
        t._retains_grad = False
        if base is None:
            t._vc = [0]
            t._base = None
        else:  # a view shares its base's storage, so it shares the version counter
            t._vc = base._vc
            if base._base is None:
                t._base = base
            else:
                t._base = base._base
                inherit_multi_out(t, base)
            t._view_v = base._vc[0]
        return t

    # ---- metadata ---------------------------------------------------------------------------
    @property
    def id(self) -> int:
        """A process-unique id used in events (assigned on first use)."""
        if not self._id:
            self._id = next_tensor_id()
        return self._id

    @property
    def shape(self) -> Size:
        try:  # _size(shape) inlined, since this is read in loops: a subscript is the cheapest hit
            return _sizes[self.array.shape]
        except KeyError:
            return _size(self.array.shape)

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def dtype(self) -> dtypes.DType:
        return dtypes.from_numpy(self.array.dtype)

    @property
    def device(self):
        return CPU if self.array.__class__ is _ndarray else device_of(self.array)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (user-created, or not requiring grad)."""
        return self.grad_fn is None

    @property
    def _version(self) -> int:
        return self._vc[0]

    @property
    def T(self) -> Tensor:
        if self.ndim > 2:
            return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))
        return _ops.transpose(self, 0, 1) if self.ndim == 2 else self

    def t(self) -> Tensor:
        """Transpose a matrix (1-D and 0-D tensors are returned as they are), as torch.t."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return _ops.transpose(self, 0, 1) if self.ndim == 2 else self

    @property
    def mT(self) -> Tensor:
        """The last two dims swapped; a 0-d tensor as it is (deprecated, as torch warns)."""
        if self.ndim == 0:
            user_warning.warn("Tensor.mT is deprecated on 0-D tensors, as in PyTorch; it is the identity there")
            return self
        if self.ndim < 2:
            raise RuntimeError(
                f"tensor.mT is only supported on matrices or batches of matrices. Got {self.ndim}-D tensor.")
        return _ops.transpose(self, -2, -1)

    def dim(self) -> int:
        return self.array.ndim

    def numel(self) -> int:
        return int(self.array.size)

    def nelement(self) -> int:
        return int(self.array.size)

    def element_size(self) -> int:
        return self.array.itemsize

    def size(self, dim: int | None = None):
        """The shape as an engine.Size, or the length of dimension `dim`."""
        if dim is None:
            try:
                return _sizes[self.array.shape]
            except KeyError:
                return _size(self.array.shape)
        if not -self.array.ndim <= dim < self.array.ndim:
            raise IndexError(f"size: dimension {dim} is out of range for a {self.array.ndim}-d tensor")
        return self.array.shape[dim]

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def __len__(self) -> int:
        if self.array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    # ---- conversion -------------------------------------------------------------------------
    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise RuntimeError(
                f"a Tensor with {self.array.size} elements cannot be converted to Scalar; item() needs exactly one"
            )
        return to_host(self.array).reshape(()).item()

    def tolist(self):
        return self._host().tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The data as a numpy array sharing memory (CPU tensors that do not require grad only); force=True:
        `detach().cpu().numpy()`, a copy from a GPU (plotting code's spelling)."""
        if force:
            return self._host()
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if self.device.type != "cpu":
            raise TypeError(
                f"can't convert {self.device} tensor to numpy. Use Tensor.cpu() to copy it to the host first.")
        return self.array

    def _host(self) -> np.ndarray:
        return self.array if self.array.__class__ is _ndarray else to_host(self.array)

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:  # as torch: a view of it would change a leaf behind autograd's back
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        a = self._host()
        if dtype is not None and a.dtype != dtype:
            return a.astype(dtype)
        return a.copy() if copy else a  # np.array(t) asks for a copy; np.asarray(t) shares

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.array.size} values is ambiguous")
        return bool(self.array.reshape(()).item())

    def __float__(self) -> float:
        global _warned_float
        if self.requires_grad and _grad_state.enabled and not _warned_float:
            _warned_float = True  # as torch: once a process, and silent in item(), int() and under no_grad
            warnings.warn("float() of a tensor that requires grad gives a plain number, cut from the graph: "
                          "gradients will not flow through it. Call .detach() first to say so", UserWarning,
                          stacklevel=2)
        a = self.array
        if a.__class__ is _ndarray and not a.ndim:  # float(loss): a third of the time item() takes
            return float(a)
        return float(self.item())

    def __format__(self, spec: str) -> str:
        # f"{loss:.4f}" and f"{loss}": a 0-d tensor formats as its number, as in torch; others as their repr
        if self.array.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec) if spec else str(self)

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self.array.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __hash__(self) -> int:
        return id(self)

    def __iter__(self):
        if self.array.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.array.shape[0]))

    def __dlpack__(self, *args, **kwargs):
        return self.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    # ---- autograd ---------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Turn gradient tracking on or off for this leaf tensor, in place."""
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients, this one is {self.dtype}; "
                "convert it first, e.g. t.float()"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; use detach() to get a tensor "
                "that does not require grad"
            )
        self.requires_grad = bool(requires_grad)
        return self

    @property
    def data(self) -> Tensor:
        """This tensor's memory as a Tensor outside autograd, as in PyTorch: `w.data.mul_(0.5)`.

        Autograd does not see writes through it: unlike `detach()`, it does not share the version
        counter, so a write between a forward and its backward goes unnoticed. `.array` is the array itself.
        """
        return Tensor._wrap(self.array)

    @data.setter
    def data(self, value: Tensor) -> None:
        """Make this tensor hold `value`'s memory (any shape), as PyTorch's `p.data = other` does."""
        if isinstance(value, Tensor):
            value = value.array
        elif not isinstance(value, _ndarray) and not hasattr(value, "__cuda_array_interface__"):
            raise TypeError(f"Tensor.data must be set to a Tensor or an array, not {type(value).__name__}")
        dtypes.from_numpy(value.dtype)
        self.array = value

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut from the graph. It shares the version counter (a write
        through it is caught by a backward that saved this tensor), but it is no view: a write through it
        is not recorded on this tensor's history."""
        t = Tensor._wrap(self.array)
        t._vc = self._vc
        return t

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    def retain_grad(self) -> None:
        """Keep `.grad` on this non-leaf tensor after backward."""
        if self._base is not None and self._vc[0] != self._view_v:
            _view_write.take_view_history(self)
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None or self._retains_grad:
            return
        self._retains_grad = True
        self.grad_fn.__dict__.setdefault("_retain", []).append(self)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, fn):
        """Call `fn(grad)` when this tensor's gradient is computed; a returned tensor replaces it."""
        if self._base is not None and self._vc[0] != self._view_v:
            _view_write.take_view_history(self)
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            hooks = self.grad_fn.__dict__.setdefault("_pre_hooks", [])
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        hooks.append(fn)
        return _RemovableHandle(hooks, fn)

    def register_post_accumulate_grad_hook(self, hook):
        """Call `hook(self)` each time a backward has accumulated this leaf's gradient into `.grad`."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        from engine.autograd.engine import post_accumulate_hooks

        hooks = post_accumulate_hooks(self)
        hooks.append(hook)
        return _RemovableHandle(hooks, hook)

    def backward(self, gradient=None, retain_graph: bool | None = None, create_graph: bool = False,
                 inputs=None) -> None:
        """Compute gradients of this tensor with respect to the graph's leaves, into their `.grad`; with
        `create_graph` those gradients are differentiable Tensors (`retain_graph` then defaults to True)."""
        from engine.autograd.engine import backward

        if retain_graph is None:
            retain_graph = create_graph
        backward(self, gradient, retain_graph=bool(retain_graph), inputs=inputs, create_graph=create_graph)

    def zero_(self) -> Tensor:
        return self._write(lambda t: _ops.zeros_like(t), check_leaf=True)

    # ---- in-place machinery -----------------------------------------------------------------
    def _write(self, compute, check_leaf: bool = True, replaces: bool = False) -> Tensor:
        """Run `compute(self)` out of place, then store the result in this tensor's storage. `replaces`: the result
        does not depend on this tensor's old value (copy_, fill_), whatever it depends on."""
        a = self.array
        shared = _view_write.shares_elements(a)
        if shared and a.size > 1 and any(s == 0 and n > 1 for s, n in zip(a.strides, a.shape)):
            raise RuntimeError(f"in-place write into a tensor of shape {tuple(self.array.shape)} whose elements share "
                               "memory (an expand() or broadcast_to() view); clone() it first")
        recording = _grad_state.enabled
        if recording and check_leaf and self.requires_grad and self.grad_fn is None:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation; "
                "wrap it in `with engine.no_grad():` or use an out-of-place op"
            )
        if recording and self._base is not None:
            _view_write.refuse_inplace(self)
        out = compute(self)
        if recording and self.requires_grad and (replaces or out.grad_fn is None):
            # the new value does not depend on the old one (fill_, zero_, copy_): as in PyTorch, the old
            # history gets a zero gradient, not the gradient of the value written over it
            keep_new = Tensor._of(array_module(self.array).ones((), dtype=bool))  # broadcast: no full-size mask
            out = _ops.where(keep_new, out if out.grad_fn is not None else out.detach(), self)
        if out.array.shape != self.array.shape:
            raise RuntimeError(
                f"output with shape {tuple(self.array.shape)} doesn't match the broadcast shape "
                f"{tuple(out.array.shape)}")
        if out.array.dtype != self.array.dtype and dtypes.from_numpy(out.array.dtype).category > self.dtype.category:
            raise RuntimeError(f"result type {out.dtype} can't be cast to the desired output type {self.dtype}")
        node = out.grad_fn
        if node is not None:
            saved = node.__dict__.get("saved")
            if saved:  # keep the pre-write values the node saved from this tensor
                node.saved = tuple(s.copy() if s is self.array else s for s in saved)
                node._versions = [entry for entry in node._versions if entry[0] is not self._vc]
        if shared:  # unfold's windows: stored place by place, as a whole another window's old value would land last
            _view_write.write_shared(self, out)
            return self
        if recording and self._base is not None and (node is not None or self._base.requires_grad):
            # a view: the change is recorded on its base, whose other elements keep their history
            _view_write.write_through_view(self, out)
            _save_written(node, out, self)
            return self
        self.array[...] = out.array
        if out._id:  # an event named the written value: this tensor now holds it, so it takes its id
            self._id = out._id
        elif self._id and hub.active:
            # no event made the value (fill_, zero_): a new id, so that the ops after it do not hang from the op
            # that made the old value; the graph shows it as an input
            self._id = 0
        if self._base is not None and self._base._id and hub.active:
            self._base._id = 0  # its elements changed through this view (under no_grad): the same, for the base
        self._vc[0] += 1
        if hub.active:
            _inplace.note_write(self)
        if node is not None:
            self.grad_fn = node
            self.requires_grad = True
            _save_written(node, out, self)
        return self

    def __setitem__(self, index, value) -> None:
        a = self.array
        if _view_write.shares_elements(a) and 0 not in a.strides:
            # windows sharing elements (unfold's, detached or not); expand's views are _write's to refuse
            _view_write.setitem_shared(self, index, value)
            return
        self._write(lambda t: _ops.setitem(t, index, value))

    # ---- device and dtype -------------------------------------------------------------------
    def to(self, *args, **kwargs) -> Tensor:
        """`to(device)`, `to(dtype)`, `to(device, dtype)` or `to(other_tensor)`; differentiable."""
        device, dtype = parse_to(args, kwargs)
        t = self
        if dtype is not None:
            t = _ops.cast(t, dtypes.as_dtype(dtype))
        if device is not None:
            t = _ops.to_device(t, device)
        return t

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device=None) -> Tensor:
        return self.to("cuda" if device is None else device if isinstance(device, str) else f"cuda:{device}")

    def type(self, dtype=None):
        """With no argument the legacy type name ('engine.FloatTensor'); else this tensor cast to `dtype` (a
        dtype, engine.LongTensor, or a name such as 'torch.cuda.FloatTensor'), as torch's Tensor.type."""
        from engine import legacy

        return legacy.type_name(self) if dtype is None else legacy.converted(self, dtype)

    def bfloat16(self) -> Tensor:
        """Refused with a one-line error: the engine has no bfloat16 (see engine.dtypes)."""
        return dtypes.refuse_absent(dtypes.bfloat16)

    def half(self) -> Tensor:
        return _ops.cast(self, dtypes.float16)

    def float(self) -> Tensor:
        return _ops.cast(self, dtypes.float32)

    def double(self) -> Tensor:
        return _ops.cast(self, dtypes.float64)

    def long(self) -> Tensor:
        return _ops.cast(self, dtypes.int64)

    def int(self) -> Tensor:
        return _ops.cast(self, dtypes.int32)

    def short(self) -> Tensor:
        return _ops.cast(self, dtypes.int16)

    def char(self) -> Tensor:
        return _ops.cast(self, dtypes.int8)

    def byte(self) -> Tensor:
        return _ops.cast(self, dtypes.uint8)

    def bool(self) -> Tensor:
        return _ops.cast(self, dtypes.bool_)

    def clone(self) -> Tensor:
        return _ops.clone(self)

    def contiguous(self, memory_format: MemoryFormat = contiguous_format) -> Tensor:
        """This tensor when its data is C-contiguous, else a contiguous copy (so `.view` works after it)."""
        _check_memory_format(memory_format, "contiguous()")
        return self if self.array.flags.c_contiguous else _ops.clone(self)

    def is_contiguous(self, memory_format: MemoryFormat = contiguous_format) -> bool:
        """Whether the data is dense in row-major order, or in that of `memory_format` (engine.channels_last:
        N, H, W, C); the engine lays tensors out row-major, whatever format `to()` was given."""
        if memory_format is contiguous_format:
            return bool(self.array.flags.c_contiguous)
        _check_memory_format(memory_format, "is_contiguous()")
        from engine.tensor_props import laid_out_as

        return laid_out_as(self, memory_format)

    # ---- repr -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        from engine.printing import tensor_repr

        return tensor_repr(self)


def _save_written(node, out: Tensor, t: Tensor) -> None:
    """`t` now holds `out`, the output of `node`. When the node saved it for backward (sigmoid_, exp_), it saves t
    instead, at t's version now, as torch's node does: a later in-place change of t is then an error at backward
    rather than a change the gradient silently leaves out."""
    versions = node.__dict__.get("_versions")
    made = out.array
    if not versions or made.dtype != t.array.dtype:
        return
    for i, (vc, _, role) in enumerate(versions):
        if role < 0 and vc is out._vc:  # the output is among the saved arrays
            node.saved = tuple(t.array if s is made else s for s in node.saved)
            versions[i] = (t._vc, t._vc[0], -1)
            return


def parse_to(args: tuple, kwargs: dict, caller: str = "to()") -> tuple:
    """(device, dtype), each None when not given, from the arguments `to()` takes (Tensor.to, Module.to)."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    _check_memory_format(kwargs.pop("memory_format", preserve_format), caller)
    if kwargs:
        raise TypeError(f"{caller} got unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, dtypes.DType) or a in (float, int, bool):
            dtype = a
        else:
            device = a
    return device, dtype


class _RemovableHandle:
    """Returned by `register_hook`; `remove()` unregisters the hook."""

    def __init__(self, hooks: list, fn) -> None:
        self._hooks, self._fn = hooks, fn

    def remove(self) -> None:
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


def _xp(t: Tensor):
    return array_module(t.array)


_ops = None  # engine.ops, set by engine.tensor_methods.install() once the ops exist
_view_write = None  # engine.ops.view_write, set with it
