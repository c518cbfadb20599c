"""Devices and array-module dispatch: numpy on the CPU, CuPy (optional) on NVIDIA GPUs."""

from __future__ import annotations

import math

import numpy as np

_cupy = None
_cupy_checked = False


def cupy_module():
    """Return the cupy module, or None when CuPy is not installed."""
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy

            _cupy = cupy
        except Exception:  # not installed, or installed without a working CUDA
            _cupy = None
    return _cupy


class Device:
    """Where a tensor's data lives: `cpu` or `cuda:N`."""

    __slots__ = ("index", "type")

    def __init__(self, type: str, index: int | None = None) -> None:
        self.type = type
        self.index = index

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, Device) and self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = Device("cpu")


def device(spec) -> Device:
    """Parse "cpu", "cuda", "cuda:N" or a Device."""
    if spec is None:
        return CPU
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
    kind, _, idx = spec.partition(":")
    if kind == "cpu" and not idx:
        return CPU
    if kind == "cuda":
        if idx and not idx.isdigit():
            raise ValueError(f"invalid device {spec!r}: expected 'cuda' or 'cuda:N'")
        return Device("cuda", int(idx) if idx else 0)
    raise ValueError(f"unknown device {spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def array_module(x):
    """The array module (numpy or cupy) that owns array `x` (numpy for numpy scalars and plain numbers)."""
    # not cupy.get_array_module: its first call imports cupyx.scipy.sparse (a second or more), and a
    # numpy scalar (what a numpy reduction returns) would take that path
    if type(x) is np.ndarray or _cupy is None or not isinstance(x, _cupy.ndarray):
        return np
    return _cupy


def device_of(x) -> Device:
    """The device an array lives on."""
    if isinstance(x, np.ndarray | np.generic):
        return CPU
    return Device("cuda", x.device.id)


def require_cuda(dev: Device):
    """Return cupy for a CUDA device, or raise one clear error saying why it cannot be used."""
    cp = cupy_module()
    if cp is None:
        raise RuntimeError(
            f"device {dev} needs CuPy, which is not installed; install it with `pip install tapescope[gpu]`"
        )
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as err:
        raise RuntimeError(f"device {dev} is not available: CUDA reports {err}") from None
    if dev.index >= count:
        raise RuntimeError(f"device {dev} is not available: this machine has {count} CUDA device(s)")
    return cp


def module_for(dev: Device):
    """The array module serving a device."""
    return np if dev.type == "cpu" else require_cuda(dev)


def to_host(arr) -> np.ndarray:
    """A numpy array of `arr` (itself if it is one). Reading a GPU array back waits for the GPU anyway, so
    device-side checks still pending (a bad class index, see engine.kernels) are settled first and raise."""
    if isinstance(arr, np.ndarray):
        return arr
    if isinstance(arr, np.generic):  # what numpy arithmetic on 0-d arrays gives
        return np.asarray(arr)
    from engine import kernels  # kernels builds on this module

    kernels.settle_device_checks()
    return arr.get()


def to_device(arr, dev: Device):
    """Copy an array to a device (no copy when it is already there)."""
    if dev.type == "cpu":
        return to_host(arr)
    cp = require_cuda(dev)
    with cp.cuda.Device(dev.index):
        return cp.asarray(arr)


def rows_matmul(a, b):
    """a @ b for an N-D `a` and a 2-D `b`, as one 2-D product over a's rows: numpy multiplies each leading
    position's matrix on its own (5x slower for a (264, 3, 64) batch of sequences times a (64, 192) weight)."""
    if a.ndim <= 2:
        return a @ b
    return (as_rows(a) @ b).reshape(*a.shape[:-1], b.shape[-1])


def rows_gram(a, g):
    """a^T g summed over every leading position of N-D `a` (..., k) and `g` (..., n): a (k, n) weight gradient."""
    return as_rows(a).T @ as_rows(g)


def as_rows(a):
    """`a` as a matrix of its last dim's rows (a count, not -1: a reshape of no elements has no -1 to solve)."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def square_sum(a):
    """|a|^2 as a 0-d array on `a`'s device, made without waiting for it: a dot product on the CPU
    (half precision summed in float32), a float64 reduction on a GPU (kernels.SquareSum says why)."""
    flat = a.reshape(-1)
    if flat.dtype.itemsize < 4:
        flat = flat.astype("float32")
    if flat.__class__ is not np.ndarray:
        from engine import kernels  # it imports this module

        fused = kernels.get("square_sum", array_module(flat))
        if fused is not None:
            return fused(flat)
    return flat.dot(flat)


def update_squares(before, after, out: list) -> None:
    """Append |after - before|^2 and |after|^2 to `out` (0-d, on the device); `before` is overwritten.

    A subtraction in place and two dot products: three passes on top of the copy taken before the
    update, where norm() of a difference would allocate and make more."""
    flat = before.reshape(-1)
    array_module(after).subtract(after.reshape(-1), flat, out=flat)
    out.append(square_sum(flat))
    out.append(square_sum(after))


def host_floats(values: list) -> list[float]:
    """Numbers and 0-d arrays as Python floats, one transfer per GPU (a float() each would sync each time)."""
    out = [math.nan] * len(values)
    on_gpus: dict = {}
    for i, v in enumerate(values):
        if v.__class__.__module__.startswith("cupy"):
            on_gpus.setdefault(device_of(v), []).append(i)
        else:  # numpy values and Python numbers are on the host already
            out[i] = float(v)
    for idx in on_gpus.values():
        base = values[idx[0]].base
        slots = _slots_of(base, [values[i] for i in idx]) if base is not None else None
        if slots is not None:  # all of them in one array (kernels.SquareSum's slab): the span of them, copied
            lo = min(slots)
            host = to_device(base[lo:max(slots) + 1], CPU)[[s - lo for s in slots]]
        else:
            host = to_device(array_module(values[idx[0]]).stack([values[i] for i in idx]), CPU)
        for i, v in zip(idx, host.tolist()):
            out[i] = float(v)
    return out


def _slots_of(base, values: list) -> list[int] | None:
    """The index in 1-d `base` of each 0-d value, when every one is an element of it, else None."""
    if base.ndim != 1 or not base.flags.c_contiguous:
        return None
    start, size = base.data.ptr, base.itemsize
    slots = []
    for v in values:
        if v.base is not base or v.ndim or v.dtype != base.dtype:
            return None
        slots.append((v.data.ptr - start) // size)
    return slots


# ---- work in cache-sized blocks on the CPU ----------------------------------------------------------------------
# A long chain of numpy passes over a large array (a polynomial by Horner's rule) runs from memory, and each of its
# temporaries is a fresh array of that size, often fresh pages from the kernel: ~1.5 us to fault each 4 KiB page in,
# measured here. A block's passes run in cache and its temporaries come back from malloc's free lists (erfc of 1M
# float64 values: 13.1 ms of CPU time and 2000 page faults whole, 10.8 ms and 1100 faults by blocks of 1 MiB).
BLOCK_BYTES = 1 << 20


def blocks(xp, n: int, item_bytes: int) -> list[slice]:
    """range(n) as slices of about BLOCK_BYTES worth of `item_bytes` items on the CPU; one slice on a GPU, where
    each pass is a kernel launch and bigger is better."""
    step = max(1, BLOCK_BYTES // max(item_bytes, 1))
    if xp is not np or n <= step:
        return [slice(0, n)]
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def blockwise(fn, *arrays, temporaries: int = 8):
    """fn(*arrays) for an elementwise fn of same-shaped arrays, computed a block at a time on the CPU (see blocks;
    `temporaries` counts the arrays of a block's size that fn keeps alive at once)."""
    first = arrays[0]
    parts = blocks(array_module(first), first.size, first.itemsize * temporaries)
    if len(parts) == 1:
        return fn(*arrays)
    flat = [a.reshape(-1) for a in arrays]
    out = None
    for part in parts:
        got = fn(*(a[part] for a in flat))
        if out is None:
            out = np.empty(first.shape, got.dtype)
        out.reshape(-1)[part] = got
    return out


def max_kept(x, axis):
    """max over `axis` (an int, a tuple or None for every axis), kept as size 1; -inf over an empty axis, the
    identity numpy's max lacks (softmax and logsumexp over a size-0 dim give an empty tensor and -inf, as PyTorch)."""
    if x.size:
        return x.max(axis=axis, keepdims=True)
    axes = range(x.ndim) if axis is None else [a % x.ndim for a in (axis if isinstance(axis, tuple) else (axis,))]
    return array_module(x).full([1 if i in axes else n for i, n in enumerate(x.shape)], -math.inf, x.dtype)


# ---- reductions over the last dim: rows ------------------------------------------------------------------------------
# numpy reduces a short row at ~70 ns of overhead per row: max and sum over the last dim of 4096 rows of 256 float32
# take 0.35 and 0.18 ms, where argmax takes 0.09 and a product with ones (BLAS) 0.05, measured here. Softmax and
# layer and group norm reduce their rows through these; a C-contiguous array's rows go fastest.
def row_max(x):
    """max over the last dim of a non-empty `x`, kept as size 1; NaN where a row has one, as max gives."""
    if array_module(x) is not np:
        return x.max(axis=-1, keepdims=True)
    # argmax picks a row's first NaN, as max propagates it; the picks are read by flat index, as take_along_axis
    # builds an index array per dim (1 of the 3 ms of an attention-sized (32, 8, 128, 128) softmax's max)
    rows = as_rows(x)
    at = rows.argmax(axis=-1)
    at += np.arange(0, rows.size, rows.shape[-1])
    return rows.reshape(-1)[at].reshape(*x.shape[:-1], 1)


def row_sum(x):
    """sum over the last dim of a float32 or float64 `x`, kept as size 1."""
    ones = array_module(x).ones(x.shape[-1], x.dtype)
    return (as_rows(x) @ ones).reshape(*x.shape[:-1], 1)


def row_dot(a, b):
    """sum over the last dim of a * b, for float32 or float64 arrays of one shape, kept as size 1."""
    rows_a, rows_b = as_rows(a), as_rows(b)
    return (rows_a[:, None, :] @ rows_b[:, :, None]).reshape(*a.shape[:-1], 1)
