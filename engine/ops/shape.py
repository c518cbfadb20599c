"""Shape ops: reshapes and views, permutations, expand/repeat, joining and splitting, flip, roll, pad.

Most of these move no data: numpy (and cupy) hand back views, and the result shares its input's
version counter (`_as_view`), so an in-place change to one is seen by autograd through the other, as
with PyTorch's views. Ops that differ only in name (view, flatten, squeeze, ... are all reshapes)
are subclasses that change nothing but `op`, so events still say what the user called.
"""

from __future__ import annotations

import itertools
import math
import operator

import numpy as np

from engine.autograd.function import Function, RegionGrad, ShapeError
from engine.autograd.grad_mode import state as grad_state
from engine.backend import array_module
from engine.tensor import Size, Tensor, inherit_multi_out

__all__ = [
    "broadcast_shapes", "broadcast_to", "cat", "chunk", "expand", "expand_as", "flatten", "flip", "movedim",
    "narrow", "pad", "permute", "pixel_shuffle", "repeat", "reshape", "reshape_as", "roll", "select", "split",
    "squeeze", "stack", "swapaxes", "tile", "transpose", "unbind", "unflatten", "unsqueeze", "view", "view_as",
]


# ---- dims and sizes (also used by engine.ops.reduce) ----------------------------------------------
def _dim(dim, ndim: int, extra: int = 0) -> int:
    """A possibly negative dim as an index in [0, ndim + extra); 0-d tensors take 0 and -1, as in PyTorch."""
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"dim must be an int, got {type(dim).__name__} {dim!r}") from None
    n = max(ndim + extra, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n


def _dims(dim, ndim: int) -> tuple[int, ...]:
    """None (every dim), an int or a sequence of ints, as sorted non-negative axes of an ndim-d array."""
    if dim is None:
        return tuple(range(ndim))
    dims = [_dim(d, ndim) for d in (dim if isinstance(dim, tuple | list) else (dim,))]
    for d in dims:
        if dims.count(d) > 1:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims {tuple(dim)}")
    return tuple(sorted(dims)) if ndim else ()  # a 0-d array has no axes to name


def _sizes(op: str, sizes: tuple) -> tuple[int, ...]:
    """Sizes given as varargs `(2, 3)` or as one tuple/list `((2, 3),)`, as integers."""
    if len(sizes) == 1 and isinstance(sizes[0], tuple | list):
        sizes = sizes[0]
    try:
        return tuple(operator.index(s) for s in sizes)
    except TypeError:
        raise TypeError(f"{op}: sizes must be integers, got {tuple(sizes)!r}") from None


def _resolve(op: str, in_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with its -1 inferred, checked to hold exactly the elements of `in_shape`."""
    numel = math.prod(in_shape)
    where = f"{op}: cannot reshape a tensor of shape {tuple(in_shape)} ({numel} elements) into shape {shape}"
    for n in shape:
        if n < -1:
            raise ShapeError(f"{where}: invalid size {n}")
    if shape.count(-1) > 1:
        raise ShapeError(f"{where}: only one dimension can be inferred (-1)")
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        if known == 0 or numel % known:
            raise ShapeError(where + (": the -1 is ambiguous next to a size 0" if known == 0 else ""))
        shape = tuple(numel // known if n == -1 else n for n in shape)
    if math.prod(shape) != numel:
        raise ShapeError(where)
    return shape


def _as_view(out: Tensor, x: Tensor) -> Tensor:
    """Make `out` a view of `x` (one version counter) when their data share memory, or when it has no elements
    (as torch's views of no elements are views: an in-place change of one is refused as of any)."""
    if not out.array.size or array_module(x.array).may_share_memory(out.array, x.array):
        out._vc = x._vc
        if x._base is None:
            out._base = x
        else:
            out._base = x._base
            inherit_multi_out(out, x)
        out._view_v = x._vc[0]
    return out


def _several(views: tuple[Tensor, ...], x: Tensor, op: str) -> tuple[Tensor, ...]:
    """Mark the views a function returns several of (split, chunk, unbind): as in torch, autograd refuses to
    record an in-place change of one (their one node cannot be rewritten for a single output)."""
    if x.requires_grad and grad_state.enabled:
        for i, v in enumerate(views):
            v._multi_out = f"Output {i} of {op}"
    return views


# ---- reshapes ---------------------------------------------------------------------------------------
class Reshape(Function):
    def forward(ctx, x):
        ctx.in_shape = x.shape
        return x.reshape(ctx.shape)

    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape)


class View(Reshape):
    def forward(ctx, x):
        y = super().forward(x)
        if y.size and not array_module(x).may_share_memory(x, y):
            raise ShapeError(
                f"view: a tensor of shape {tuple(x.shape)} cannot be viewed as shape {ctx.shape}: its memory "
                "layout (e.g. after transpose or permute) needs a copy; use .reshape(...) instead"
            )
        return y


class Flatten(Reshape):
    pass


class Unflatten(Reshape):
    pass


class Squeeze(Reshape):
    pass


class Unsqueeze(Reshape):
    pass


def _reshaped(cls, x: Tensor, shape: tuple[int, ...]) -> Tensor:
    return _as_view(cls.apply(x, shape=tuple(shape)), x)


def reshape(x: Tensor, *shape) -> Tensor:
    """`x` with a new shape of the same number of elements (one size may be -1); a view when possible."""
    return _reshaped(Reshape, x, _resolve("reshape", x.array.shape, _sizes("reshape", shape)))


def view(x: Tensor, *shape) -> Tensor:
    """Like reshape, but always a view sharing `x`'s memory; raises when that needs a copy."""
    return _reshaped(View, x, _resolve("view", x.array.shape, _sizes("view", shape)))


def reshape_as(x: Tensor, other: Tensor) -> Tensor:
    """`x` reshaped to `other`'s shape."""
    return reshape(x, other.shape)


def view_as(x: Tensor, other: Tensor) -> Tensor:
    """`x` viewed with `other`'s shape."""
    return view(x, other.shape)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim (inclusive) into one."""
    if x.ndim == 0:
        return _reshaped(Flatten, x, (1,))
    a, b = _dim(start_dim, x.ndim), _dim(end_dim, x.ndim)
    if a > b:
        raise ValueError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim}) "
                         f"for a tensor of shape {tuple(x.shape)}")
    s = x.array.shape
    return _reshaped(Flatten, x, (*s[:a], math.prod(s[a:b + 1]), *s[b + 1:]))


def unflatten(x: Tensor, dim: int, sizes) -> Tensor:
    """Split dim `dim` into `sizes` (one of which may be -1)."""
    if not x.ndim:  # _dim lets a 0-d tensor name dim 0, but it has no dim to split
        raise RuntimeError(f"unflatten: dimension specified as {dim} but the tensor has no dimensions (a 0-d "
                           "tensor); reshape it instead")
    d = _dim(dim, x.ndim)
    n = x.shape[d]
    sizes = _sizes("unflatten", (sizes,))
    try:
        sizes = _resolve("unflatten", (n,), sizes)
    except ShapeError:
        raise ShapeError(f"unflatten: sizes {sizes} don't multiply up to the size of dim {dim} ({n}) of a "
                         f"tensor of shape {tuple(x.shape)}") from None
    return _reshaped(Unflatten, x, (*x.shape[:d], *sizes, *x.shape[d + 1:]))


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Drop dims of size 1: all of them, or those among `dim` (an int or a tuple)."""
    dims = _dims(dim, x.ndim)
    return _reshaped(Squeeze, x, tuple(n for i, n in enumerate(x.shape) if n != 1 or i not in dims))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a dim of size 1 at `dim` (counted in the result, so -1 appends)."""
    d = _dim(dim, x.ndim, extra=1)
    return _reshaped(Unsqueeze, x, (*x.shape[:d], 1, *x.shape[d:]))


# ---- permutations -----------------------------------------------------------------------------------
class Permute(Function):
    def forward(ctx, x):
        return x.transpose(ctx.perm)

    def backward(ctx, grad):
        inverse = sorted(range(len(ctx.perm)), key=ctx.perm.__getitem__)
        return grad.transpose(inverse)


class Transpose(Permute):
    pass


class Movedim(Permute):
    pass


def _permuted(cls, x: Tensor, perm) -> Tensor:
    return _as_view(cls.apply(x, perm=tuple(perm)), x)


def permute(x: Tensor, *dims) -> Tensor:
    """`x` with its dims reordered: result dim i is input dim dims[i]."""
    dims = _sizes("permute", dims)
    perm = [_dim(d, x.ndim) for d in dims]
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"permute: dims {dims} are not a permutation of the {x.ndim} dims of a tensor "
                         f"of shape {tuple(x.shape)}")
    return _permuted(Permute, x, perm)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """`x` with dims dim0 and dim1 swapped."""
    a, b = _dim(dim0, x.ndim), _dim(dim1, x.ndim)
    perm = list(range(x.ndim))
    if perm:
        perm[a], perm[b] = perm[b], perm[a]
    return _permuted(Transpose, x, perm)


swapaxes = transpose


def movedim(x: Tensor, source, destination) -> Tensor:
    """Move dim(s) `source` to position(s) `destination`, keeping the others in order."""
    src = source if isinstance(source, tuple | list) else (source,)
    dst = destination if isinstance(destination, tuple | list) else (destination,)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {tuple(src)} and destination {tuple(dst)} must have the same "
                         "length")
    _dims(src, x.ndim), _dims(dst, x.ndim)  # refuse repeated dims
    src, dst = [_dim(d, x.ndim) for d in src], [_dim(d, x.ndim) for d in dst]
    if not x.ndim:  # a 0-d tensor takes dim 0 (or -1), as in PyTorch: there is nothing to move
        return _permuted(Movedim, x, ())
    perm = [None] * x.ndim
    for s, d in zip(src, dst):
        perm[d] = s
    rest = iter(d for d in range(x.ndim) if d not in src)
    return _permuted(Movedim, x, [next(rest) if p is None else p for p in perm])


# ---- expand and repeat ------------------------------------------------------------------------------
class Expand(Function):
    def forward(ctx, x):
        xp = array_module(x)
        out = xp.broadcast_to(x, ctx.shape)
        # writable, unlike numpy's broadcast: as in torch, an expand that repeats nothing, or a slice of one that
        # repeats nothing, is written into; Tensor._write refuses a write into repeated elements itself
        return xp.lib.stride_tricks.as_strided(x, out.shape, out.strides)

    def backward(ctx, grad):
        return grad  # Function.apply sums it back to the input's shape


def expand(x: Tensor, *sizes) -> Tensor:
    """A view of `x` broadcast to `sizes` (-1 keeps a size; new dims go in front)."""
    sizes = _sizes("expand", sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ShapeError(f"expand: sizes {sizes} name fewer dims than the tensor of shape {tuple(x.shape)} "
                         "has")
    target = list(sizes)
    for i, s in enumerate(sizes):
        have = x.shape[i - lead] if i >= lead else None
        if s == -1 and have is not None:
            target[i] = have
        elif s < 0:
            raise ShapeError(f"expand: size {s} at dim {i} is invalid for sizes {sizes} (-1 is only "
                             f"allowed for an existing dim of the tensor of shape {tuple(x.shape)})")
        elif have not in (None, 1, s):
            raise ShapeError(f"expand: the expanded size ({s}) must match the existing size ({have}) at "
                             f"non-singleton dimension {i}; target sizes {sizes}, tensor shape "
                             f"{tuple(x.shape)}")
    return _as_view(Expand.apply(x, shape=tuple(target)), x)


def expand_as(x: Tensor, other: Tensor) -> Tensor:
    """`x` expanded to `other`'s shape."""
    return expand(x, other.shape)


def broadcast_to(x: Tensor, size) -> Tensor:
    """`x` expanded to `size` (torch.broadcast_to)."""
    return expand(x, size)


def broadcast_shapes(*shapes) -> Size:
    """The shape tensors of these shapes broadcast to (torch.broadcast_shapes); an int is a 1-d shape."""
    sizes = [(s,) if isinstance(s, int) else _sizes("broadcast_shapes", (s,)) for s in shapes]
    try:
        return Size(np.broadcast_shapes(*sizes))
    except ValueError:
        raise ShapeError(f"broadcast_shapes: shapes {', '.join(map(str, sizes))} cannot be broadcast "
                         "together") from None


class Repeat(Function):
    def forward(ctx, x):
        ctx.in_shape = x.shape
        return array_module(x).tile(x, ctx.reps)

    def backward(ctx, grad):
        # view the output as (reps0, n0, reps1, n1, ...) and add up the copies
        padded = (1,) * (len(ctx.reps) - len(ctx.in_shape)) + tuple(ctx.in_shape)
        interleaved = [v for pair in zip(ctx.reps, padded) for v in pair]
        copies = tuple(range(0, len(interleaved), 2))
        return grad.reshape(interleaved).sum(axis=copies).reshape(ctx.in_shape)


def repeat(x: Tensor, *sizes) -> Tensor:
    """`x` tiled `sizes[i]` times along each dim (extra sizes add leading dims)."""
    reps = _sizes("repeat", sizes)
    if len(reps) < x.ndim:
        raise ShapeError(f"repeat: got {len(reps)} repeat sizes {reps} for a tensor of shape "
                         f"{tuple(x.shape)}; give at least one per dim")
    if any(r < 0 for r in reps):
        raise ShapeError(f"repeat: repeat sizes must be non-negative, got {reps}")
    return Repeat.apply(x, reps=reps)


def tile(x: Tensor, dims) -> Tensor:
    """`x` repeated `dims[i]` times along each dim; fewer dims than x's repeat its trailing ones (torch.tile)."""
    reps = _sizes("tile", (dims,))
    return repeat(x, *((1,) * (x.ndim - len(reps)) + reps))


# ---- joining and splitting --------------------------------------------------------------------------
def _tensor_list(op: str, tensors) -> list[Tensor]:
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected a list of Tensors, but item {i} is {type(t).__name__}")
    return tensors


class Cat(Function):
    promotes = True

    def forward(ctx, *arrays):
        parts = [a for a, keep in zip(arrays, ctx.keep) if keep]
        ctx.offsets = list(itertools.accumulate(a.shape[ctx.dim] for a in parts))[:-1]
        return array_module(parts[0]).concatenate(parts, axis=ctx.dim)

    def backward(ctx, grad):
        xp = array_module(grad)
        pieces = iter(xp.split(grad, ctx.offsets, axis=ctx.dim))
        return tuple(next(pieces) if keep else xp.zeros((0,), grad.dtype) for keep in ctx.keep)


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dim; all other sizes must match. Dtypes promote as in PyTorch."""
    tensors = _tensor_list("cat", tensors)
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ShapeError(f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated")
    ref_i, ref = next(((i, t) for i, t in enumerate(tensors) if t.shape != (0,)), (0, tensors[0]))
    # PyTorch still skips legacy empty 1-D tensors, so `out = cat([tensor([]), x])` grows a buffer
    keep = tuple(ref.ndim == 1 or t.shape != (0,) for t in tensors)
    d = _dim(dim, ref.ndim)
    rest = ref.shape[:d] + ref.shape[d + 1:]
    for i, t in enumerate(tensors):
        if keep[i] and (t.ndim != ref.ndim or t.shape[:d] + t.shape[d + 1:] != rest):
            raise ShapeError(f"cat: sizes of tensors must match except in dimension {d}, but tensor {ref_i} "
                             f"has shape {tuple(ref.shape)} and tensor {i} has shape {tuple(t.shape)}")
    return Cat.apply(*tensors, dim=d, keep=keep)


class Stack(Function):
    promotes = True

    def forward(ctx, *arrays):
        return array_module(arrays[0]).stack(arrays, axis=ctx.dim)

    def backward(ctx, grad):
        moved = array_module(grad).moveaxis(grad, ctx.dim, 0)
        return tuple(moved[i] for i in range(moved.shape[0]))


def stack(tensors, dim: int = 0) -> Tensor:
    """Join equal-shaped tensors along a new dim `dim`."""
    tensors = _tensor_list("stack", tensors)
    ref = tensors[0]
    for i, t in enumerate(tensors):
        if t.shape != ref.shape:
            raise ShapeError(f"stack: expected each tensor to be equal size, but got {tuple(ref.shape)} at "
                             f"entry 0 and {tuple(t.shape)} at entry {i}")
    return Stack.apply(*tensors, dim=_dim(dim, ref.ndim, extra=1))


class Split(Function):
    """One piece of split/chunk: a slice along a dim; its gradient is that slice of the input's."""

    def forward(ctx, x):
        ctx.in_shape = x.shape
        return x[(*ctx.index, ...)]  # the Ellipsis keeps x[i] of a 1-d x a 0-d view, not a NumPy scalar (a copy)

    def backward(ctx, grad):
        return RegionGrad(ctx.in_shape, ctx.index, grad)


def _pieces(x: Tensor, d: int, lengths) -> tuple[Tensor, ...]:
    starts = itertools.accumulate(lengths, initial=0)
    lead = (slice(None),) * d
    return tuple(_as_view(Split.apply(x, index=(*lead, slice(s, s + n))), x) for s, n in zip(starts, lengths))


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of `x` along `dim`: of equal size (the last may be smaller) or of the given sizes."""
    return _several(unmarked_split(x, split_size_or_sections, dim), x, "Split")


def unmarked_split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    """split(), its pieces free to be changed in place while autograd records (torch.unsafe_split)."""
    if x.ndim == 0:
        raise ShapeError("split: expects at least a 1-dimensional tensor, got a 0-d tensor")
    d = _dim(dim, x.ndim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, tuple | list):
        lengths = [operator.index(s) for s in split_size_or_sections]
        if any(s < 0 for s in lengths) or sum(lengths) != n:
            raise ShapeError(f"split: sizes {tuple(lengths)} must be non-negative and sum to {n}, the size "
                             f"of dim {d} of a tensor of shape {tuple(x.shape)}")
    else:
        size = operator.index(split_size_or_sections)
        if size < 0 or (size == 0 and n):
            raise ShapeError(f"split: split size must be positive, got {size} for dim {d} of size {n}")
        lengths = [size] * (n // size) + ([n % size] if n % size else []) if n else [0]
    return _pieces(x, d, lengths)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """Up to `chunks` pieces of `x` along `dim`, each of size ceil(n / chunks) but the last."""
    return _several(unmarked_chunk(x, chunks, dim), x, "Split")


def unmarked_chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """chunk(), its pieces free to be changed in place while autograd records (torch.unsafe_chunk)."""
    if chunks <= 0:
        raise ValueError(f"chunk: expects `chunks` to be greater than 0, got {chunks}")
    if x.ndim == 0:
        raise ShapeError("chunk: expects at least a 1-dimensional tensor, got a 0-d tensor")
    d = _dim(dim, x.ndim)
    n = x.shape[d]
    return _pieces(x, d, [0] * chunks) if n == 0 else unmarked_split(x, -(-n // chunks), d)


class Unbind(Split):
    op = "unbind"


class Narrow(Split):
    op = "narrow"


class Select(Split):
    op = "select"


def select(x: Tensor, dim: int, index: int) -> Tensor:
    """The slice of `x` at `index` along `dim`, without that dim (a view), as torch.select."""
    if x.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _dim(dim, x.ndim)
    n = x.array.shape[d]
    i = operator.index(index)
    if not -n <= i < n:
        raise IndexError(f"select(): index {i} out of range for tensor of size {list(x.array.shape)} at dimension {d}")
    return _as_view(Select.apply(x, index=(*(slice(None),) * d, i % n)), x)


def unbind(x: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices of `x` along `dim`, each without that dim (views)."""
    if x.ndim == 0:
        raise ShapeError("unbind: expects at least a 1-dimensional tensor, got a 0-d tensor")
    d = _dim(dim, x.ndim)
    lead = (slice(None),) * d
    return _several(tuple(_as_view(Unbind.apply(x, index=(*lead, i)), x) for i in range(x.shape[d])), x, "Unbind")


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """The view of `x` holding `length` entries of `dim` from `start` (which may be negative)."""
    if x.ndim == 0:
        raise ShapeError("narrow: expects at least a 1-dimensional tensor, got a 0-d tensor")
    d = _dim(dim, x.ndim)
    n = x.shape[d]
    start, length = operator.index(start), operator.index(length)
    if not -n <= start <= n:
        raise IndexError(f"narrow: start {start} is out of range for dim {d} of size {n} "
                         f"(tensor of shape {tuple(x.shape)})")
    if start < 0:
        start += n
    if length < 0 or start + length > n:
        raise ShapeError(f"narrow: start ({start}) + length ({length}) exceeds dim {d} of size {n} "
                         f"(tensor of shape {tuple(x.shape)})")
    return _as_view(Narrow.apply(x, index=(*(slice(None),) * d, slice(start, start + length))), x)


# ---- flip, roll, pad --------------------------------------------------------------------------------
class Flip(Function):
    def forward(ctx, x):
        return array_module(x).flip(x, axis=ctx.dims).copy()  # PyTorch's flip copies; a view would alias

    def backward(ctx, grad):
        return array_module(grad).flip(grad, axis=ctx.dims)


def flip(x: Tensor, *args, dims=None) -> Tensor:
    """`x` with the order of elements reversed along `dims`: an int, a tuple, or several ints (`t.flip(0, 1)`)."""
    if (dims is None) == (not args):
        raise TypeError("flip() takes the dims to reverse once: flip(x, dims), flip(x, dims=...) or t.flip(0, 1)")
    if dims is None:
        dims = args[0] if len(args) == 1 else args
    return Flip.apply(x, dims=_dims(dims, x.ndim))


class Roll(Function):
    def forward(ctx, x):
        return array_module(x).roll(x, ctx.shifts, axis=ctx.dims)

    def backward(ctx, grad):
        back = -ctx.shifts if isinstance(ctx.shifts, int) else tuple(-s for s in ctx.shifts)
        return array_module(grad).roll(grad, back, axis=ctx.dims)


def roll(x: Tensor, shifts, dims=None) -> Tensor:
    """Shift elements cyclically by `shifts` along `dims` (the flattened tensor when dims is None)."""
    shift_t = shifts if isinstance(shifts, tuple | list) else (shifts,)
    if dims is None:
        if len(shift_t) != 1:
            raise ValueError(f"roll: without dims, shifts must be a single int, got {shifts!r}")
        return Roll.apply(x, shifts=operator.index(shift_t[0]), dims=None)
    dim_t = dims if isinstance(dims, tuple | list) else (dims,)
    if len(shift_t) != len(dim_t):
        raise ValueError(f"roll: shifts {tuple(shift_t)} and dims {tuple(dim_t)} must have the same length")
    return Roll.apply(x, shifts=tuple(operator.index(s) for s in shift_t),
                      dims=tuple(_dim(d, x.ndim) for d in dim_t))


class Pad(Function):
    """Constant padding; negative amounts crop. `src` and `dst` are the matching input/output slices."""

    def forward(ctx, x):
        ctx.in_shape = x.shape
        out = array_module(x).full(ctx.shape, ctx.value, dtype=x.dtype)
        out[ctx.dst] = x[ctx.src]
        return out

    def backward(ctx, grad):
        g = array_module(grad).zeros(ctx.in_shape, grad.dtype)
        g[ctx.src] = grad[ctx.dst]
        return g


# Non-constant modes read input position index(i, n) for output position i (i counted from the
# input's first element, so i < 0 and i >= n are the padding).
_PAD_INDEX = {
    "reflect": lambda i, n: (n - 1) - np.abs((n - 1) - np.abs(i)),  # mirror, edge not repeated
    "replicate": lambda i, n: np.clip(i, 0, n - 1),
    "circular": lambda i, n: i % n,
}
_PAD_FITS = {"reflect": lambda p, n: p < n, "replicate": lambda p, n: n > 0, "circular": lambda p, n: p <= n}


class PadIndexed(Function):
    """Reflect/replicate/circular padding: a gather along each padded dim; backward adds back."""

    op = "pad"

    def forward(ctx, x):
        xp = array_module(x)
        for axis, index in ctx.gathers:
            x = xp.take(x, xp.asarray(index), axis=axis)
        return x

    def backward(ctx, grad):
        # gather's transpose: a product with a one-hot (output position, input position) matrix
        xp = array_module(grad)
        for axis, index in reversed(ctx.gathers):
            onehot = xp.asarray(index)[:, None] == xp.arange(ctx.in_sizes[axis])[None, :]
            onehot = onehot.astype(grad.dtype)
            grad = xp.moveaxis(xp.moveaxis(grad, axis, -1) @ onehot, -1, axis)
        return grad


def pad(x: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last len(pad)//2 dims; `pad` runs (left, right) of the last dim first, as in PyTorch."""
    amounts = [operator.index(p) for p in pad]
    if len(amounts) % 2 or len(amounts) // 2 > x.ndim:
        raise ShapeError(f"pad: padding {tuple(amounts)} must hold a (before, after) pair for each of at "
                         f"most {x.ndim} dims of a tensor of shape {tuple(x.shape)}")
    if mode != "constant" and mode not in _PAD_INDEX:
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if mode != "constant" and value:
        raise ValueError(f'pad: padding mode "{mode}" doesn\'t take in value argument')
    widths = {x.ndim - 1 - k: (amounts[2 * k], amounts[2 * k + 1]) for k in range(len(amounts) // 2)}
    out_shape = [n + sum(widths.get(d, (0, 0))) for d, n in enumerate(x.shape)]
    if any(n < 0 for n in out_shape):
        raise ShapeError(f"pad: padding {tuple(amounts)} gives a negative size {tuple(out_shape)} for a "
                         f"tensor of shape {tuple(x.shape)}")
    if mode == "constant":
        src, dst = [], []
        for d, n in enumerate(x.shape):
            before, after = widths.get(d, (0, 0))
            lo, hi = max(0, -before), n + min(0, after)
            length = max(0, hi - lo)
            src.append(slice(lo, lo + length))
            dst.append(slice(lo + before, lo + before + length))
        return Pad.apply(x, shape=tuple(out_shape), value=value, src=tuple(src), dst=tuple(dst))
    fits = _PAD_FITS[mode]
    gathers = []
    for d, (before, after) in sorted(widths.items()):
        n = x.shape[d]
        if not (fits(before, n) and fits(after, n)):
            raise ShapeError(f"pad: {mode} padding ({before}, {after}) is too large for dimension {d} of "
                             f"size {n} (tensor shape {tuple(x.shape)}); reflect needs padding < size, "
                             "circular <= size")
        gathers.append((d, _PAD_INDEX[mode](np.arange(-before, n + after), n)))
    return PadIndexed.apply(x, gathers=tuple(gathers), in_sizes=tuple(x.shape))


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r): channels moved into space, as in sub-pixel upsampling."""
    r = operator.index(upscale_factor)
    if input.ndim < 3 or r <= 0 or input.shape[-3] % (r * r):
        raise ShapeError(f"pixel_shuffle: expected (*, C*{r}^2, H, W) with a positive factor, got shape "
                         f"{tuple(input.shape)} and upscale_factor={upscale_factor}")
    *lead, c, h, w = input.shape
    k = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)
