"""Tensor properties and methods that ported PyTorch scripts read: memory layout (stride, storage_offset,
data_ptr, dim_order), device and dtype queries, the complex views of a real tensor, per-element Python
callables (apply_, map_), shared memory (a mark) and the no-ops of pinned and stream-ordered memory.

Installed onto Tensor by engine.tensor_methods.install().
"""

from __future__ import annotations

import itertools
import numbers
import weakref

import numpy as np

from engine import creation, dtypes
from engine.inference import is_inference
from engine.tensor import MemoryFormat, Tensor, channels_last, channels_last_3d, contiguous_format


def _ptr(a) -> int:
    """The address of an array's first element (numpy or CuPy)."""
    return a.__array_interface__["data"][0] if isinstance(a, np.ndarray) else a.data.ptr


def _contiguous_strides(shape: tuple) -> tuple[int, ...]:
    """Strides in elements of a C-ordered tensor of `shape` (an empty dimension counts as 1, as in torch)."""
    out, step = [], 1
    for n in reversed(shape):
        out.append(step)
        step *= max(n, 1)
    return tuple(reversed(out))


def _strides(self: Tensor) -> tuple[int, ...]:
    a = self.array
    if a.size == 0:  # numpy gives an empty array zero strides; torch the contiguous ones
        return _contiguous_strides(a.shape)
    return tuple(s // a.itemsize for s in a.strides)


def stride(self: Tensor, dim: int | None = None):
    """The step in elements between neighbours along each dimension (a tuple), or along `dim`."""
    strides = _strides(self)
    if dim is None:
        return strides
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"stride(): argument 'dim' (position 1) must be int, not {type(dim).__name__}")
    n = self.ndim
    if n == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return strides[dim]


def storage_offset(self: Tensor) -> int:
    """Where this tensor starts in its storage, in elements (non-zero for a view into the middle of a tensor)."""
    a = self.array
    if isinstance(a, np.ndarray):
        root = a
        while isinstance(root.base, np.ndarray):
            root = root.base
        start = _ptr(root)
    else:  # CuPy: a view's pointer lies inside the allocation it shares
        start = a.data.mem.ptr
    return (_ptr(a) - start) // a.itemsize if a.size else 0


def data_ptr(self: Tensor) -> int:
    """The address of the first element (0 for an empty tensor, as torch)."""
    return _ptr(self.array) if self.array.size else 0


def is_set_to(self: Tensor, tensor: Tensor) -> bool:
    """Whether both tensors view the same memory with the same offset, shape and strides."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"is_set_to(): argument 'tensor' (position 1) must be Tensor, not {type(tensor).__name__}")
    a, b = self.array, tensor.array
    return (self.device == tensor.device and a.dtype == b.dtype and a.shape == b.shape
            and a.strides == b.strides and _ptr(a) == _ptr(b))


_LAYOUTS = {contiguous_format: None, channels_last: (0, 2, 3, 1), channels_last_3d: (0, 2, 3, 4, 1)}


def laid_out_as(self: Tensor, memory_format: MemoryFormat) -> bool:
    """Whether the tensor is dense in the dimension order of `memory_format` (size-1 dims anywhere)."""
    if memory_format is contiguous_format and self.array.size == 0:
        return True  # as torch: an empty tensor is contiguous whatever its strides
    order = _LAYOUTS[memory_format] or tuple(range(self.ndim))
    if len(order) != self.ndim:
        return False
    strides, step = _strides(self), 1
    for d in reversed(order):
        if self.shape[d] != 1 and strides[d] != step:
            return False
        step *= self.shape[d]
    return True


def dim_order(self: Tensor, *, ambiguity_check: bool | list = False) -> tuple[int, ...]:
    """The dimensions from outermost to innermost in memory, as torch's Tensor.dim_order; with ambiguity_check
    (True, or a list of memory formats of which exactly one must fit) an ambiguous order is an error."""
    if not isinstance(ambiguity_check, bool) and not (
            isinstance(ambiguity_check, list) and all(isinstance(f, MemoryFormat) and f in _LAYOUTS
                                                      for f in ambiguity_check)):
        raise TypeError("The ambiguity_check argument must be a bool or a list of memory formats.")
    strides = _strides(self)
    if ambiguity_check is not False:
        ambiguous = any(n == 1 for n in self.shape) or any(s == t for s, t in itertools.pairwise(strides))
        formats = ambiguity_check if isinstance(ambiguity_check, list) else []
        if ambiguous and sum(laid_out_as(self, f) for f in formats) != 1:
            raise RuntimeError("The tensor does not have unique dim order, or cannot map to exact one of the given "
                               "memory formats.")
    order, ambiguous = _physical_order(self, strides, bool(ambiguity_check))
    if ambiguous:
        raise RuntimeError("The tensor does not have unique dim order.")
    return order


def _physical_order(self: Tensor, strides: tuple[int, ...], check: bool) -> tuple[tuple[int, ...], bool]:
    """torch's order of dims by stride (compute_elementwise_output_logical_to_physical_perm): an insertion sort
    that leaves dims it cannot compare (a zero stride, equal strides of equal sizes) in place, so ties come out
    as torch's; with `check`, also whether a neighbouring pair is left unordered."""
    n, shape = self.ndim, self.shape
    if n <= 1:
        return tuple(range(n)), False
    contiguous, last = laid_out_as(self, contiguous_format), laid_out_as(self, channels_last)
    if contiguous != last:
        return (tuple(range(n)) if contiguous else _LAYOUTS[channels_last]), False

    def ge(a: int, b: int) -> bool:
        return b == 0 or (a != 0 and (a >= b or a % b == 0))

    def should_swap(a: int, b: int) -> int:
        if strides[a] == 0 or strides[b] == 0:
            return 0
        if strides[a] == strides[b]:
            return 0 if ge(shape[b], shape[a]) else 1
        return -1 if ge(strides[b], strides[a]) else 1 if ge(strides[a], strides[b]) else 0

    perm = list(reversed(range(n)))  # innermost first
    for i in range(1, n):
        j = i
        for k in reversed(range(i)):
            cmp = should_swap(perm[k], perm[j])
            if cmp > 0:
                perm[k], perm[j] = perm[j], perm[k]
                j = k
            elif cmp < 0:
                break
    ambiguous = check and any(should_swap(a, b) != -1 for a, b in itertools.pairwise(perm))
    return tuple(reversed(perm)), ambiguous


def new_empty_strided(self: Tensor, size, stride, dtype=None, device=None, requires_grad: bool = False,
                      layout=None, pin_memory: bool = False) -> Tensor:
    """An uninitialised tensor of `size` with this tensor's dtype and device unless given; the strides are
    checked and ignored (engine arrays are C-ordered), as engine.empty_strided."""
    shape = check_strided("new_empty_strided", size, stride)
    return creation.new_empty(self, shape, dtype=dtype, device=device, requires_grad=requires_grad)


def check_strided(op: str, size, stride) -> tuple[int, ...]:
    """`size` as a shape, checked with its strides as torch.empty_strided checks them."""
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise RuntimeError(f"{op}: dimensionality of sizes ({len(size)}) must match dimensionality of strides "
                           f"({len(stride)})")
    for n in (*size, *stride):
        if not isinstance(n, numbers.Integral) or isinstance(n, bool):
            raise TypeError(f"{op}: sizes and strides must be ints, got {type(n).__name__}")
    if any(n < 0 for n in size):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(size)}: {list(size)}")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"{op}: strides must be non-negative, got {list(stride)}")
    return tuple(int(n) for n in size)


# ---- apply_ and map_: a Python callable per element ------------------------------------------------------
def _writable_on_cpu(t: Tensor, op: str) -> None:
    if t.device.type != "cpu":
        raise TypeError(f"{op} is only implemented on CPU tensors")
    if t.requires_grad:
        raise RuntimeError(f"Can't call {op}() on Variable that requires grad. Use var.detach().{op}() instead.")


def _store(self: Tensor, values: list, op: str) -> Tensor:
    out = np.array(values)
    if out.dtype.kind not in "biuf":
        raise TypeError(f"{op}: the callable must return numbers, got {out.dtype}")
    self.array[...] = out.reshape(self.array.shape).astype(self.array.dtype, copy=False)
    self._vc[0] += 1
    return self


def apply_(self: Tensor, callable) -> Tensor:
    """Replace each element x by callable(x) (Python numbers in and out), in place; CPU tensors only."""
    _writable_on_cpu(self, "apply_")
    return _store(self, [callable(x) for x in self.array.ravel().tolist()], "apply_")


def map_(self: Tensor, tensor: Tensor, callable) -> Tensor:
    """Replace each element a by callable(a, b), b the matching element of `tensor` broadcast to this shape,
    in place; CPU tensors of one dtype only."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"map_(): argument 'other' (position 1) must be Tensor, not {type(tensor).__name__}")
    _writable_on_cpu(self, "map_")
    _writable_on_cpu(tensor, "map_")
    if tensor.dtype is not self.dtype:
        raise TypeError(f"map_: expected {self.dtype} for 'other' (got {tensor.dtype})")
    try:
        other = np.broadcast_to(tensor.array, self.array.shape)
    except ValueError:
        raise RuntimeError(f"map_: the tensor of shape {tuple(tensor.shape)} does not broadcast to this tensor's "
                           f"shape {tuple(self.shape)}") from None
    pairs = zip(self.array.ravel().tolist(), other.ravel().tolist())
    return _store(self, [callable(a, b) for a, b in pairs], "map_")


# ---- complex views of a real tensor, and queries ---------------------------------------------------------
def _imag(self: Tensor) -> Tensor:
    raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")


def as_subclass(self: Tensor, cls: type) -> Tensor:
    """A tensor of class `cls` sharing this one's data and graph; only engine.Tensor itself is possible."""
    if not (isinstance(cls, type) and issubclass(cls, Tensor)):
        raise TypeError("Creating a Tensor subclass from a class that does not inherit from Tensor is not "
                        "possible. Make sure your class inherits from Tensor.")
    if cls is not Tensor:
        raise TypeError(f"as_subclass({cls.__name__}): the engine does not re-class tensors (it has no "
                        "__torch_function__ dispatch); wrap the tensor in your class instead")
    return self.view_as(self)


def _identity(self: Tensor) -> Tensor:
    return self


def _false(self: Tensor, *args) -> bool:
    return False


def _no_op(self: Tensor, *args) -> None:
    return None


# the host storages share_memory_ was called on (by id of the array that owns the memory, kept while it lives)
_SHARED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def storage_of(a):
    """The array that owns `a`'s memory (a itself unless it is a view; numpy or cupy): two views of one memory
    have the same."""
    while getattr(a, "base", None) is not None and hasattr(a.base, "shape"):
        a = a.base
    return a


def share_memory_(self: Tensor) -> Tensor:
    """Mark this tensor's storage as shared (is_shared() is then True for it and its views). The memory is not
    moved: the engine hands tensors to no other process that would need it."""
    if isinstance(self.array, np.ndarray):
        root = storage_of(self.array)
        _SHARED[id(root)] = root
    return self


def is_shared(self: Tensor) -> bool:
    """True on a GPU (as torch) and for host storage that share_memory_ marked."""
    return self.device.type == "cuda" or _SHARED.get(id(storage_of(self.array))) is not None


_UNSIGNED = (dtypes.bool_, dtypes.uint8)

NO_SPARSE = ("the engine has no sparse tensors: build the matrix dense (torch's .to_dense()) and multiply with @ or "
             "engine.mm")
NO_COMPLEX = ("the engine has no complex dtypes and no FFT: keep real and imaginary parts as two real tensors, and "
              "compute a long convolution with F.conv1d")
# torch's names that need complex numbers: its dtypes, the fft namespace, and the conversions to and from pairs
COMPLEX_NAMES = frozenset({"complex32", "complex64", "complex128", "chalf", "cfloat", "cdouble", "complex", "fft",
                           "view_as_real", "view_as_complex", "polar", "stft", "istft"})


class Layout:
    """How a tensor lays its elements out, as torch.layout: the engine has one, engine.strided (dense)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"engine.{self.name}"

    def __reduce__(self):  # pickled by name, as a dtype is: the one instance comes back
        return self.name


strided = Layout("strided")


def to_sparse(self: Tensor, *args, **kwargs):
    """Refused with what to do instead (the engine has no sparse tensors)."""
    raise RuntimeError(f"to_sparse: {NO_SPARSE}")

# name -> property getter (torch's attributes)
PROPERTIES = {
    "is_cpu": lambda self: self.device.type == "cpu",
    # dense, always (a guard `torch.sparse.mm(a, h) if a.is_sparse else a @ h` takes the dense path)
    "is_sparse": _false,
    "is_sparse_csr": _false,
    "layout": lambda self: strided,
    "itemsize": lambda self: self.array.itemsize,
    "nbytes": lambda self: self.array.size * self.array.itemsize,
    "real": _identity,
    "imag": _imag,
}
# name -> method
METHODS = {
    "ndimension": lambda self: self.array.ndim,
    "data_ptr": data_ptr,
    "get_device": lambda self: -1 if self.device.type == "cpu" else self.device.index,
    "stride": stride,
    "storage_offset": storage_offset,
    "is_set_to": is_set_to,
    "dim_order": dim_order,
    "new_empty_strided": new_empty_strided,
    "as_subclass": as_subclass,
    "apply_": apply_,
    "map_": map_,
    "is_signed": lambda self: self.dtype not in _UNSIGNED,
    # the engine has no complex dtypes, nor lazy negation or conjugation
    "is_complex": _false,
    "is_neg": _false,
    "is_conj": _false,
    "is_inference": is_inference,
    "conj": _identity,
    "resolve_conj": _identity,
    "resolve_neg": _identity,
    # host memory is not pinned: the copy to a GPU works from any host array, and the engine runs GPU work on
    # the current stream, so there is no other stream to record
    "pin_memory": lambda self, device=None: self,
    "is_pinned": _false,
    "share_memory_": share_memory_,
    "is_shared": is_shared,
    "record_stream": _no_op,
    "to_dense": lambda self, dtype=None, *, masked_grad=None: self if dtype is None else self.to(dtype),
    "to_sparse": to_sparse,
    "to_sparse_coo": to_sparse,
    "to_sparse_csr": to_sparse,
}


def install(cls: type) -> None:
    """Attach the properties and methods above to the Tensor class."""
    for name, getter in PROPERTIES.items():
        setattr(cls, name, property(getter))
    for name, fn in METHODS.items():
        setattr(cls, name, fn)

