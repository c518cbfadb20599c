"""Fused CUDA kernels: one launch where an op's array formulas take several.

An op asks `get(name, xp)` and gets a kernel object when `xp` is CuPy, or None for numpy (or while
`disabled()`), in which case it runs its own formulas, the one definition of what it computes. The
kernels here follow those formulas term by term, in the same dtype, so the two paths agree to
rounding; tests compare them on one device with `disabled()`.

Element ops (activations and the unary ops that have a fused pair) are keyed by their Function
class name; the rest by what they compute: "adam_update", "cross_entropy", "tensor_summary",
"square_sum", "lstm_cell", "gru_cell".
Convolutions have no entry: CuPy 14 dropped cuDNN, so conv2d stays im2col + one cuBLAS matmul.

`device_checks(xp)` is the other thing here: checks of an op's input (class targets in bounds) run
on the GPU and read back later, so that no op makes the host wait for the GPU to validate its input.
"""

from __future__ import annotations

import collections
import contextlib
import math
import struct
import threading
from collections.abc import Iterator

import numpy as np

from engine import backend

_enabled = True
_built: dict[str, object] = {}


def get(name: str, xp):
    """The fused kernel `name` for arrays of module `xp`; None for numpy, while disabled, or if none."""
    if xp is np or not _enabled:
        return None
    kernel = _built.get(name)
    if kernel is None:
        build = _BUILDERS.get(name)
        if build is None:
            return None
        kernel = _built[name] = build(name, backend.cupy_module())
    return kernel


def active(xp) -> bool:
    """Whether ops on arrays of `xp` use their fused kernels (CuPy, and not inside `disabled()`)."""
    return xp is not np and _enabled


def names() -> tuple[str, ...]:
    """Every name `get` serves a kernel for."""
    return tuple(_BUILDERS)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run every op through its plain array formulas, on every device (to compare and time against)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


# ---- element ops: y = f(x) and gx = f'(g, saved) --------------------------------------------------
_PREAMBLE = r"""
__device__ __forceinline__ float _ncdf(float x) { return normcdff(x); }
__device__ __forceinline__ double _ncdf(double x) { return normcdf(x); }
template <typename F> __device__ __forceinline__ F _sigmoid(F x) {
    const F e = exp(-fabs(x));  // split by sign so exp never overflows, as in elementwise._sigmoid
    return x >= F(0) ? F(1) / (F(1) + e) : e / (F(1) + e);
}
"""

_K, _C = math.sqrt(2 / math.pi), 0.044715  # the tanh form of gelu, as in ops/activation.py
_GELU_TANH = f"const T th = tanh(T({_K!r}) * (x + T({_C!r}) * x * x * x));"

# What the op saves for backward: Unary ops in elementwise.py keep (x, y); a fused activation keeps x.
_UNARY, _ACTIVATION = ("x", "y"), ("x",)

# Function class -> (saved, ctx options, forward body, backward body). x is the input, y the output,
# g the incoming gradient, gx the input's gradient; options arrive as float64 and are used as T.
_ELEMENT_OPS = {
    "Relu": (_UNARY, (), "y = x < T(0) ? T(0) : x", "gx = x <= T(0) ? T(0) : g"),  # selected: inf g gives 0
    "Tanh": (_UNARY, (), "y = tanh(x)", "gx = g * (T(1) - y * y)"),
    "Sigmoid": (_UNARY, (), "y = _sigmoid(x)", "gx = g * y * (T(1) - y)"),
    "Gelu": (_ACTIVATION, (), "y = x * _ncdf(x)",
             f"gx = g * (_ncdf(x) + x * T({1 / math.sqrt(2 * math.pi)!r}) * exp(T(-0.5) * x * x))"),
    "GeluTanh": (_ACTIVATION, (), _GELU_TANH + "y = T(0.5) * x * (T(1) + th)",
                 _GELU_TANH + f"gx = g * (T(0.5) * (T(1) + th) + T({0.5 * _K!r}) * x * (T(1) - th * th)"
                              f" * (T(1) + T({3 * _C!r}) * x * x))"),
    "Silu": (_ACTIVATION, (), "const T s = _sigmoid(x); y = x * s",
             "const T s = _sigmoid(x); gx = g * s * (T(1) + x * (T(1) - s))"),
    "LeakyRelu": (_ACTIVATION, ("negative_slope",), "y = x > T(0) ? x : x * T(negative_slope)",
                  "gx = x > T(0) ? g : g * T(negative_slope)"),
    "Elu": (_ACTIVATION, ("alpha",), "y = x > T(0) ? x : T(alpha) * expm1(x)",
            "gx = x > T(0) ? g : g * T(alpha) * exp(x)"),
    # above the threshold softplus is the identity; below it, logaddexp(0, bx) / beta
    "Softplus": (_ACTIVATION, ("beta", "threshold"),
                 "const T bx = x * T(beta);"
                 "y = bx > T(threshold) ? x : ((bx > T(0) ? bx : T(0)) + log1p(exp(-fabs(bx)))) / T(beta)",
                 "const T bx = x * T(beta); gx = bx > T(threshold) ? g : g * _sigmoid(bx)"),
}


class ElementPair:
    """An element op's forward and backward, one kernel each; options are read from the op's ctx."""

    __slots__ = ("_backward", "_forward", "options", "saved")

    def __init__(self, name: str, cp) -> None:
        self.saved, self.options, forward, backward = _ELEMENT_OPS[name]
        opts = "".join(f", float64 {o}" for o in self.options)
        saved = "".join(f", T {s}" for s in self.saved)
        self._forward = cp.ElementwiseKernel("T x" + opts, "T y", forward, f"tapescope_{name}_forward",
                                             preamble=_PREAMBLE)
        self._backward = cp.ElementwiseKernel("T g" + saved + opts, "T gx", backward,
                                              f"tapescope_{name}_backward", preamble=_PREAMBLE)

    def forward(self, ctx, x):
        """f(x) in x's dtype."""
        return self._forward(x, *[float(getattr(ctx, o)) for o in self.options])

    def backward(self, ctx, grad, *saved):
        """The input's gradient from the output's and the arrays the op saved (`self.saved`)."""
        if grad.dtype != saved[0].dtype:
            grad = grad.astype(saved[0].dtype)
        return self._backward(grad, *saved, *[float(getattr(ctx, o)) for o in self.options])


# ---- Adam / AdamW ----------------------------------------------------------------------------------
# The update of optim/adam.py in one pass over p, g and the moments (PyTorch's "fused" idea).
_ADAM = """
T gr = maximize ? -g : g;
if (decoupled) p = p * T(decay);
else if (weight_decay != 0) gr = gr + T(weight_decay) * p;
m = m + T(one_minus_beta1) * (gr - m);
v = v * T(beta2);
v = v + T(one_minus_beta2) * gr * gr;
{second}
p = p - T(step_size) * m / (sqrt(second) / T(bias_correction2) + T(eps));
"""
_ADAM_IN = ("T g, float64 decay, float64 weight_decay, float64 one_minus_beta1, float64 beta2, "
            "float64 one_minus_beta2, float64 step_size, float64 bias_correction2, float64 eps, "
            "bool decoupled, bool maximize")


class AdamUpdate:
    """Adam's (or AdamW's) whole update of one parameter and its moments, in place, as one kernel."""

    def __init__(self, name: str, cp) -> None:
        plain = _ADAM.format(second="const T second = v;")
        amsgrad = _ADAM.format(second="vmax = vmax > v ? vmax : v; const T second = vmax;")
        self._plain = cp.ElementwiseKernel(_ADAM_IN, "T p, T m, T v", plain, "tapescope_adam")
        self._amsgrad = cp.ElementwiseKernel(_ADAM_IN, "T p, T m, T v, T vmax", amsgrad,
                                             "tapescope_adam_amsgrad")

    def __call__(self, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step: int, group: dict,
                 decoupled: bool) -> None:
        """Update `param`, `exp_avg`, `exp_avg_sq` (and `max_exp_avg_sq` unless None) for step `step`."""
        lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        args = (grad, 1 - lr * decay, float(decay), 1 - beta1, float(beta2), 1 - beta2,
                lr / (1 - beta1 ** step), math.sqrt(1 - beta2 ** step), float(eps), bool(decoupled),
                bool(group["maximize"]), param, exp_avg, exp_avg_sq)
        if max_exp_avg_sq is None:
            self._plain(*args)
        else:
            self._amsgrad(*args, max_exp_avg_sq)


# ---- softmax cross entropy over class indices ---------------------------------------------------
# Forward: one warp per row of the (M, C) logits (lanes stride over the classes, so reads coalesce):
# max, exp, sum, normalise, and the row's loss; the last block to finish reduces the rows in a fixed
# order (so the result is the same every run) and completes the target check. A row whose target is
# ignore_index or out of bounds adds no loss and no gradient, and nothing is read at a bad target.
# status (int64, zeroed by the caller): [rows - first bad row (0: none), that row's target as int64,
# rows counted, blocks finished]. Backward is elementwise over the (M, C) gradient.
_CE_FORWARD = r"""
typedef {T} T;
typedef {I} I;
typedef long long i64;
typedef unsigned long long u64;
extern "C" __global__ void tapescope_cross_entropy_forward(const T* z, const I* t, i64 rows, i64 classes,
                                                           i64 ignore, int reduce, T* p, T* loss,
                                                           T* reduced, i64* status) {{
    __shared__ u64 counted;
    __shared__ double partial[{warps}];
    __shared__ bool last;
    if (threadIdx.x == 0) counted = 0;
    __syncthreads();
    const i64 row = (blockIdx.x * (i64)blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (row < rows) {{  // every lane of a warp has the same row
        const T* zr = z + row * classes;
        T* pr = p + row * classes;
        T top = zr[0];
        for (i64 c = lane; c < classes; c += 32) {{ const T v = zr[c]; if (v > top) top = v; }}
        for (int o = 16; o > 0; o >>= 1) {{
            const T v = __shfl_xor_sync(0xffffffffu, top, o);
            if (v > top) top = v;
        }}
        T total = T(0);
        for (i64 c = lane; c < classes; c += 32) {{ const T e = exp(zr[c] - top); pr[c] = e; total += e; }}
        for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xffffffffu, total, o);
        for (i64 c = lane; c < classes; c += 32) pr[c] /= total;
        if (lane == 0) {{
            const i64 target = (i64)t[row];
            const bool in_bounds = target >= 0 && target < classes;
            const bool counts = in_bounds && target != ignore;
            loss[row] = counts ? T(log(total) - (zr[target] - top)) : T(0);
            if (counts) atomicAdd(&counted, 1ULL);
            else if (target != ignore) atomicMax((u64*)status, (u64)(rows - row));
        }}
    }}
    __threadfence();  // this thread's loss and flags reach every block before its block reports done
    __syncthreads();
    if (threadIdx.x == 0) {{
        if (counted) atomicAdd((u64*)status + 2, counted);
        __threadfence();
        last = atomicAdd((u64*)status + 3, 1ULL) == gridDim.x - 1;
    }}
    __syncthreads();
    if (!last) return;
    const volatile i64* done = status;  // written by other blocks: read past this SM's cache
    if (threadIdx.x == 0 && done[0]) status[1] = (i64)t[rows - done[0]];
    if (reduce == 0) return;
    const volatile T* rows_loss = loss;
    double s = 0;
    for (i64 i = threadIdx.x; i < rows; i += blockDim.x) s += (double)rows_loss[i];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) partial[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0) {{
        s = 0;
        for (int w = 0; w < {warps}; ++w) s += partial[w];
        reduced[0] = T(reduce == 2 ? s / (double)done[2] : s);  // mean: over the rows counted
    }}
}}
"""
# d/dz = a * g * (p - onehot(target)), a = 1 / (rows counted) for mean; for ignored and bad rows p * 0, whatever g
# is: 0, or NaN where the row's logits made p NaN, as the plain formulas and PyTorch's log_softmax backward give
_CE_BACKWARD = """
const ptrdiff_t row = (ptrdiff_t)i / classes;
const long long target = (long long)t[row];
if (target == ignore || target < 0 || target >= classes) {
    dz = p * T(0);
} else {
    const T ga = mean ? g * (T(1) / T(status[2])) : g;
    dz = p * ga;
    if ((ptrdiff_t)i % classes == target) dz -= ga;
}
"""
_CTYPES = {"float32": "float", "float64": "double", "int32": "int", "int64": "long long"}


class CrossEntropyRows:
    """log-softmax + nll over (M, C) rows with class-index targets: forward and backward one kernel each.

    The case ops/loss.py hands over: no class weights, no label smoothing, up to MAX_CLASSES classes
    (one warp walks a whole row). Rows whose target is `ignore_index` are left out, as in the plain
    formulas; so are rows whose target is out of bounds, which the returned `status` reports (see
    DeviceChecks) instead of making the host wait for the GPU to check them.
    """

    MAX_CLASSES = 8192
    THREADS = 256
    REDUCE = {"none": 0, "sum": 1, "mean": 2}

    def __init__(self, name: str, cp) -> None:
        self._cp = cp
        self._functions: dict[tuple, object] = {}
        self._backward = cp.ElementwiseKernel(
            "T p, T g, raw I t, int64 classes, int64 ignore, raw int64 status, bool mean", "T dz", _CE_BACKWARD,
            "tapescope_cross_entropy_backward")

    def forward(self, z, t, ignore_index: int, reduction: str):
        """(per-row loss, the reduced loss or None for 'none', softmax probabilities, status) of logits
        z (M, C) at integer targets t (M,); status[:2] is the target check: (M - first bad row, its
        target), (0, 0) when every target is a class or ignore_index."""
        cp = self._cp
        m, classes = z.shape
        if classes == 0:
            raise ValueError("cross entropy needs at least one class")
        key = (_CTYPES[z.dtype.name], _CTYPES[t.dtype.name])
        function = self._functions.get(key)
        if function is None:
            source = _CE_FORWARD.format(T=key[0], I=key[1], warps=self.THREADS // 32)
            function = cp.RawModule(code=source).get_function("tapescope_cross_entropy_forward")
            self._functions[key] = function
        z, t = cp.ascontiguousarray(z), cp.ascontiguousarray(t)
        loss, p = cp.empty(m, dtype=z.dtype), cp.empty((m, classes), dtype=z.dtype)
        reduced = None if reduction == "none" else cp.empty((), dtype=z.dtype)
        status = cp.zeros(4, dtype=cp.int64)
        blocks = -(-m * 32 // self.THREADS)
        if blocks:
            function((blocks,), (self.THREADS,),
                     (z, t, np.int64(m), np.int64(classes), np.int64(ignore_index),
                      np.int32(self.REDUCE[reduction]), p, loss, loss if reduced is None else reduced, status))
        elif reduced is not None:  # no rows: a sum of nothing, and a mean over no rows (0 / 0)
            reduced.fill(math.nan if reduction == "mean" else 0)
        return loss, reduced, p, status

    def backward(self, p, t, grad, ignore_index: int, status, mean: bool):
        """The logits' gradient from the saved probabilities; `grad` is a scalar or one per row."""
        g = grad if grad.ndim == 0 else grad.reshape(-1, 1)
        return self._backward(p, g.astype(p.dtype, copy=False), self._cp.ascontiguousarray(t), p.shape[1],
                              int(ignore_index), status, bool(mean))


# ---- verdicts of checks run on the device, read back without waiting for the GPU ----------------------
class Check:
    """One posted device check: where its values land, the event that says they have, and its verdict."""

    __slots__ = ("device", "due", "event", "host", "status", "verdict")

    def __init__(self, device: int, host, event, status, verdict) -> None:
        self.device, self.host, self.event, self.status, self.verdict = device, host, event, status, verdict
        self.due = False  # set by the op once backward has gone through it


class DeviceChecks:
    """Checks an op runs on the GPU (bounds of class targets, say) whose verdict the host reads later.

    `post(status, verdict)` queues a copy of the first WIDTH int64 of the device array `status` into
    pinned host memory behind the work already queued, and an event after it: nothing waits. Later,
    `settle()` takes the checks whose values have landed, oldest first, and raises the exception
    `verdict(values)` returns for the first failed one. It waits only for checks marked `due` (the
    op marks one when backward has gone through it, so the GPU is long past it), for all but the
    newest CAP, or for all of them with wait=True. Checks belong to the thread that posted them.

    Not a fused kernel: `disabled()` leaves it on, since the plain formulas post checks too.
    """

    WIDTH = 2
    SLOTS = 64  # pinned slots allocated at a time
    CAP = 8

    def __init__(self, cp) -> None:
        self._cp = cp
        self._free: dict[int, list] = {}  # per device: idle (pinned host row, event) pairs
        self._local = threading.local()

    def _pending(self) -> collections.deque:
        pending = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = collections.deque()
        return pending

    def _slot(self, device: int) -> tuple:
        free = self._free.setdefault(device, [])
        try:
            return free.pop()
        except IndexError:  # a block of slots at a time: pinned allocations may wait for the GPU
            import cupyx

            cp = self._cp
            with cp.cuda.Device(device):
                rows = cupyx.empty_pinned((self.SLOTS, self.WIDTH), dtype=np.int64)
                free.extend((row, cp.cuda.Event(block=False, disable_timing=True)) for row in rows[1:])
                return rows[0], cp.cuda.Event(block=False, disable_timing=True)

    def post(self, status, verdict) -> Check:
        """Read `status[:WIDTH]` back behind the queued work; `verdict(values)` -> exception or None."""
        cp = self._cp
        device = status.device.id
        host, event = self._slot(device)
        stream = cp.cuda.get_current_stream()
        cp.cuda.runtime.memcpyAsync(host.ctypes.data, status.data.ptr, host.nbytes,
                                    cp.cuda.runtime.memcpyDeviceToHost, stream.ptr)
        event.record(stream)
        check = Check(device, host, event, status, verdict)  # holding `status` until the copy has landed
        self._pending().append(check)
        return check

    def settle(self, wait: bool = False) -> None:
        """Raise the first failed verdict among the landed checks (see the class docstring)."""
        pending = getattr(self._local, "pending", None)
        if not pending:
            return
        must = len(pending) if wait else max(len(pending) - self.CAP, 0)
        for i, check in enumerate(pending):
            if check.due and i >= must:
                must = i + 1
        taken = 0
        while pending:
            check = pending[0]
            if not check.event.done:
                if taken >= must:
                    return  # still on its way: a later settle takes it
                check.event.synchronize()
            pending.popleft()
            taken += 1
            values = check.host.tolist()
            self._free[check.device].append((check.host, check.event))
            error = check.verdict(values)
            if error is not None:
                raise error


_checks: list = []


def device_checks(xp) -> DeviceChecks | None:
    """The DeviceChecks for arrays of module `xp`; None for numpy, whose checks run at once."""
    if xp is np:
        return None
    if not _checks:
        _checks.append(DeviceChecks(backend.cupy_module()))
    return _checks[0]


def settle_device_checks() -> None:
    """Wait for this thread's pending device checks and raise the first failed one (no-op without any).

    For the places where the host waits for the GPU anyway: reading a value, synchronize().
    """
    if _checks:
        _checks[0].settle(wait=True)


# ---- tensor summaries (engine.debug.summary) on the device ------------------------------------------
# Slots of the one uint64 buffer both passes write and the host reads in one copy. Doubles are stored
# as their bits; min and max as order-preserving integers so that atomicMax from 0 finds them.
_MIN, _MAX, _NAN, _INF, _NONZERO, _SUM, _SUMSQ, _M2, _SAMPLE0 = range(9)

_BLOCK_REDUCE = r"""
// Block-wide reductions (blockDim.x == 256): warp shuffles, then the first warp over 8 partials.
template <typename V, typename Op> __device__ V _block_reduce(V v, Op op, V* scratch) {
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
    __syncthreads();  // scratch may still be read by a previous reduction
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < (blockDim.x >> 5) ? scratch[threadIdx.x] : V(0);
        for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
    }
    return v;  // valid in thread 0
}
struct _Add { template <typename V> __device__ V operator()(V a, V b) const { return a + b; } };
"""

_SUMMARY = r"""
typedef {T} T;
typedef {R} R;
typedef unsigned long long u64;
#define SAMPLE0 {sample0}
#define SAMPLES {samples}
#define BINS {bins}
#define HIST0 (SAMPLE0 + SAMPLES)

__device__ __forceinline__ u64 _ordered(double x) {{  // unsigned order == float order
    const u64 b = (u64)__double_as_longlong(x);
    return (b >> 63) ? ~b : (b | 0x8000000000000000ULL);
}}
__device__ __forceinline__ u64 _umax(u64 a, u64 b) {{ return a > b ? a : b; }}
__device__ __forceinline__ double _decode(u64 e) {{
    return __longlong_as_double((long long)((e >> 63) ? (e & 0x7FFFFFFFFFFFFFFFULL) : ~e));
}}

{block_reduce}struct _Max {{ __device__ u64 operator()(u64 a, u64 b) const {{ return _umax(a, b); }} }};

// The sample of summary.py: finite values with rank r (among finite values) where r % stride == 0.
// rank: 1 + each value's index among the finite ones; null while every value is taken to be finite
// (then the rank is the index + 1, and the host runs again with a rank if the count says otherwise).
__device__ __forceinline__ long long _rank(const R* rank, long long i) {{
    return rank ? (long long)rank[i] : i + 1;
}}
__device__ __forceinline__ void _sampling(const R* rank, long long n, long long limit, long long& nf,
                                          long long& stride) {{
    nf = _rank(rank, n - 1);
    stride = nf > limit ? (nf + limit - 1) / limit : 1;
}}

extern "C" __global__ void tapescope_summary_stats(const T* x, const R* rank, long long n, long long limit,
                                                   long long sample_step, u64* out) {{
    __shared__ u64 su[8];
    __shared__ double sd[8];
    long long nf, stride;
    _sampling(rank, n, limit, nf, stride);
    u64 nan = 0, inf = 0, nonzero = 0, hi = 0, lo = 0;
    double sum = 0, sumsq = 0;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {{
        const T v = x[i];
        if (sample_step > 0 && i % sample_step == 0 && i / sample_step < SAMPLES)
            out[SAMPLE0 + i / sample_step] = (u64)__double_as_longlong((double)v);
        if (isnan(v)) {{ ++nan; continue; }}
        if (isinf(v)) {{ ++inf; continue; }}
        const double d = (double)v;
        sumsq += d * d;
        const u64 e = _ordered(d);
        hi = _umax(hi, e);
        lo = _umax(lo, ~e);
        if ((_rank(rank, i) - 1) % stride == 0) {{ sum += d; nonzero += (v != T(0)); }}
    }}
    nan = _block_reduce(nan, _Add(), su);
    inf = _block_reduce(inf, _Add(), su);
    nonzero = _block_reduce(nonzero, _Add(), su);
    hi = _block_reduce(hi, _Max(), su);
    lo = _block_reduce(lo, _Max(), su);
    sum = _block_reduce(sum, _Add(), sd);
    sumsq = _block_reduce(sumsq, _Add(), sd);
    if (threadIdx.x == 0) {{
        atomicAdd(out + {nan_slot}, nan);
        atomicAdd(out + {inf_slot}, inf);
        atomicAdd(out + {nonzero_slot}, nonzero);
        atomicMax(out + {max_slot}, hi);
        atomicMax(out + {min_slot}, lo);
        atomicAdd((double*)(out + {sum_slot}), sum);
        atomicAdd((double*)(out + {sumsq_slot}), sumsq);
    }}
}}

// Second pass, once min, max and the sample's sum are known: squared deviations and the histogram.
extern "C" __global__ void tapescope_summary_spread(const T* x, const R* rank, long long n, long long limit,
                                                    long long hist_limit, u64* out) {{
    __shared__ u64 bins[BINS + 1];
    __shared__ double sd[8];
    long long nf, stride;
    _sampling(rank, n, limit, nf, stride);
    if (nf == 0) return;
    const long long ns = (nf + stride - 1) / stride;
    const long long hstep = (ns + hist_limit - 1) / hist_limit;
    const double mean = __longlong_as_double((long long)out[{sum_slot}]) / (double)ns;
    // summary.py's histogram rule, in float64: bin floor((x - lo) / ((hi - lo) / BINS)), each step
    // rounded once (no fused multiply-add), so a value on a bin edge lands where the CPU puts it
    double lo = _decode(~out[{min_slot}]), hi = _decode(out[{max_slot}]);
    if (!(hi > lo)) {{ const double c = lo; lo = c - 0.5; hi = c + 0.5; }}
    const double width = __ddiv_rn(__dsub_rn(hi, lo), (double)BINS);
    for (int b = threadIdx.x; b <= BINS; b += blockDim.x) bins[b] = 0;
    __syncthreads();
    double m2 = 0;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {{
        const T v = x[i];
        if (!isfinite(v)) continue;
        const long long r = _rank(rank, i) - 1;
        if (r % stride) continue;
        const double d = (double)v - mean;
        m2 += d * d;
        if ((r / stride) % hstep == 0) {{
            long long b = (long long)__ddiv_rn(__dsub_rn((double)v, lo), width);  // >= 0: v >= lo
            b = b < 0 ? 0 : (b > BINS ? BINS : b);  // BINS: the maximum, moved to the last bin on the host
            atomicAdd(bins + b, 1ULL);
        }}
    }}
    m2 = _block_reduce(m2, _Add(), sd);
    if (threadIdx.x == 0) atomicAdd((double*)(out + {m2_slot}), m2);
    __syncthreads();
    for (int b = threadIdx.x; b <= BINS; b += blockDim.x)
        if (bins[b]) atomicAdd(out + HIST0 + b, bins[b]);
}}
"""


def summary_source(dtype: str, rank_dtype: str, bins: int, samples: int) -> str:
    """The CUDA source of the two summary kernels for float `dtype` and integer `rank_dtype`."""
    return _SUMMARY.format(T=_CTYPES[dtype], R=_CTYPES[rank_dtype], bins=bins, samples=samples,
                           block_reduce=_BLOCK_REDUCE,
                           sample0=_SAMPLE0, min_slot=_MIN, max_slot=_MAX, nan_slot=_NAN, inf_slot=_INF,
                           nonzero_slot=_NONZERO, sum_slot=_SUM, sumsq_slot=_SUMSQ, m2_slot=_M2)


_as_bits, _as_double = struct.Struct("<Q").pack, struct.Struct("<d").unpack


def _decode_ordered(e: int) -> float:
    bits = e & 0x7FFF_FFFF_FFFF_FFFF if e >> 63 else ~e & 0xFFFF_FFFF_FFFF_FFFF
    return _as_double(_as_bits(bits))[0]


class _Slabs:
    """Zeroed rows of shared blocks ("slabs"), handed out one at a time: kernels that accumulate into their row
    leave their results side by side, so that many come to the host in one copy; a full slab, or one of another
    shape or device, gives way to a fresh one (one allocation and memset for all its rows)."""

    def __init__(self, cp, rows: int, dtype) -> None:
        self._cp, self._rows, self._dtype = cp, rows, dtype
        self._slab = None
        self._used = 0

    def take(self, device, width: int | None = None) -> tuple:
        """(slab, index) of a zeroed row (`width` values; None: one value) on `device`."""
        slab = self._slab
        shape = (self._rows,) if width is None else (self._rows, width)
        if slab is None or self._used == self._rows or slab.shape != shape or slab.device != device:
            with device:
                slab = self._slab = self._cp.zeros(shape, dtype=self._dtype)
            self._used = 0
        self._used += 1
        return slab, self._used - 1


class TensorSummary:
    """summary.py's statistics of a flat float32/float64 CuPy array: two kernels, one copy to the host.

    Same definitions as engine.debug.summary (finite values only; mean, std and the zero count over
    every `stride`-th finite value; the histogram over at most `hist_limit` of those), so a GPU
    summary equals the CPU one; sums are accumulated in float64.

    `launch` starts the kernels and returns at once: each summary writes one row of a shared slab, so that
    the rows of many summaries come to the host in one copy (`decode` reads a row). A copy per summary made
    the host wait for the GPU at every op of a traced step.
    """

    THREADS, MAX_BLOCKS = 256, 1024
    SLAB_ROWS = 256  # summaries whose rows share one zeroed block (one memset and one copy for them all)

    def __init__(self, name: str, cp) -> None:
        self._cp = cp
        self._modules: dict[tuple, object] = {}
        self._rows = _Slabs(cp, self.SLAB_ROWS, cp.uint64)

    def _kernels(self, dtype, rank_dtype, bins: int, samples: int):
        key = (dtype, rank_dtype, bins, samples)  # dtypes, not their names: numpy computes .name on each access
        functions = self._modules.get(key)
        if functions is None:
            module = self._cp.RawModule(code=summary_source(dtype.name, rank_dtype.name, bins, samples))
            functions = self._modules[key] = (module.get_function("tapescope_summary_stats"),
                                              module.get_function("tapescope_summary_spread"))
        return functions

    def launch(self, flat, limit: int, bins: int, hist_limit: int, samples: int) -> tuple:
        """Start both kernels over `flat`, as if every value were finite: (slab, row) that they write; nothing
        waits for the GPU. `decode` the row once it is on the host."""
        slab, row = self._rows.take(flat.device, _SAMPLE0 + samples + bins + 1)
        self._launch(self._cp.ascontiguousarray(flat), _NO_RANK, limit, hist_limit, slab[row], bins, samples)
        return slab, row

    def decode(self, host: np.ndarray, flat, limit: int, bins: int, hist_limit: int, samples: int) -> tuple:
        """(min, max, mean, std, norm, nan, inf, zeros, counts[bins + 1], lo, hi, samples, stride) from `launch`'s
        row on the host. Where some values are not finite, the kernels run again over `flat` with each finite value's
        rank, and the host waits for them."""
        n = flat.size
        if host[_NAN] or host[_INF]:
            cp = self._cp
            flat = cp.ascontiguousarray(flat)
            rank = cp.cumsum(cp.isfinite(flat), dtype=np.int32 if n < 2**31 else np.int64)  # 1 + rank among finite
            with flat.device:
                out = cp.zeros(_SAMPLE0 + samples + bins + 1, dtype=cp.uint64)
            self._launch(flat, rank, limit, hist_limit, out, bins, samples)
            host = out.get()
        step = max(1, n // samples)
        as_float = host.view(np.float64)
        taken = tuple(as_float[_SAMPLE0:_SAMPLE0 + len(range(0, n, step)[:samples])].tolist())
        nan, inf = int(host[_NAN]), int(host[_INF])
        nf = n - nan - inf
        if nf == 0:
            return (math.nan,) * 5 + (nan, inf, 0, np.zeros(bins, np.int64), 0.0, 0.0, taken, 1)
        stride = -(-nf // limit)
        ns = -(-nf // stride)
        mn, mx = _decode_ordered(~int(host[_MIN]) & 0xFFFF_FFFF_FFFF_FFFF), _decode_ordered(int(host[_MAX]))
        lo, hi = (mn, mx) if mx > mn else (mn - 0.5, mn + 0.5)
        var = float(as_float[_M2]) / (ns - 1) if ns > 1 else 0.0  # the sample variance, as summary.sample_std
        zeros = round((ns - int(host[_NONZERO])) * (nf / ns))
        counts = host[_SAMPLE0 + samples:].astype(np.int64)
        return (mn, mx, float(as_float[_SUM]) / ns, math.sqrt(var) if var > 0 else 0.0,
                math.sqrt(float(as_float[_SUMSQ])), nan, inf, zeros, counts, lo, hi, taken, stride)

    def _launch(self, flat, rank, limit: int, hist_limit: int, out, bins: int, samples: int) -> None:
        """Both kernels over contiguous `flat` into the zeroed row `out` (rank: _NO_RANK or each value's)."""
        n = flat.size
        rank_dtype = np.dtype(np.int32 if n < 2**31 else np.int64)
        stats, spread = self._kernels(flat.dtype, rank_dtype, bins, samples)
        grid = (min(self.MAX_BLOCKS, -(-n // self.THREADS)),)
        step = max(1, n // samples)
        stats(grid, (self.THREADS,), (flat, rank, np.int64(n), np.int64(limit), np.int64(step), out))
        spread(grid, (self.THREADS,), (flat, rank, np.int64(n), np.int64(limit), np.int64(hist_limit), out))


_NO_RANK = np.uint64(0)  # a null rank pointer: every value taken to be finite


# ---- a time step of an LSTM or GRU layer (engine.ops.recurrent_fused's cell formulas) ----------------------
# One thread per (row, unit): it reads the unit's gate pre-activations of its row and writes the gates the
# backward keeps. As the array formulas, the sigmoid gates' pre-activations arrive halved, so a sigmoid is
# 0.5 tanh(x) + 0.5. gi, gh, gates, dgi, dgh: (rows, blocks * H); the rest (rows, H); all C-contiguous.
_CELLS = {
    "lstm_cell": (
        "raw T gi, raw T gh, raw T c, int64 H", "raw T gates, raw T c_prev, raw T tc, raw T h_new, raw T c_new",
        """
        const long long row = i / H, b = row * 4 * H + (i - row * H);
        const T ig = tanh(gi[b] + gh[b]) * T(0.5) + T(0.5);
        const T fg = tanh(gi[b + H] + gh[b + H]) * T(0.5) + T(0.5);
        const T gg = tanh(gi[b + 2 * H] + gh[b + 2 * H]);
        const T og = tanh(gi[b + 3 * H] + gh[b + 3 * H]) * T(0.5) + T(0.5);
        gates[b] = ig; gates[b + H] = fg; gates[b + 2 * H] = gg; gates[b + 3 * H] = og;
        const T c0 = c[i];
        const T c1 = fg * c0 + ig * gg;
        const T t = tanh(c1);
        c_prev[i] = c0; tc[i] = t; c_new[i] = c1; h_new[i] = og * t;
        """,
        "raw T gates, raw T c_prev, raw T tc, raw T dh, raw T dc, int64 H", "raw T dgi, raw T dc_prev",
        """
        const long long row = i / H, b = row * 4 * H + (i - row * H);
        const T ig = gates[b], fg = gates[b + H], gg = gates[b + 2 * H], og = gates[b + 3 * H];
        const T t = tc[i], d_h = dh[i];
        const T d_c = dc[i] + d_h * (og * (T(1) - t * t));
        dgi[b] = d_c * gg * (ig * (T(1) - ig));
        dgi[b + H] = d_c * c_prev[i] * (fg * (T(1) - fg));
        dgi[b + 2 * H] = d_c * ig * (T(1) - gg * gg);
        dgi[b + 3 * H] = d_h * t * (og * (T(1) - og));
        dc_prev[i] = d_c * fg;
        """),
    "gru_cell": (
        "raw T gi, raw T gh, raw T h, int64 H", "raw T gates, raw T nh, raw T h_new",
        """
        const long long row = i / H, b = row * 3 * H + (i - row * H);
        const T rg = tanh(gi[b] + gh[b]) * T(0.5) + T(0.5);
        const T zg = tanh(gi[b + H] + gh[b + H]) * T(0.5) + T(0.5);
        const T hn = gh[b + 2 * H];
        const T ng = tanh(gi[b + 2 * H] + rg * hn);
        gates[b] = rg; gates[b + H] = zg; gates[b + 2 * H] = ng; nh[i] = hn;
        h_new[i] = ng + zg * (h[i] - ng);
        """,
        "raw T gates, raw T nh, raw T h, raw T dh, int64 H", "raw T dgi, raw T dgh, raw T direct",
        """
        const long long row = i / H, b = row * 3 * H + (i - row * H);
        const T rg = gates[b], zg = gates[b + H], ng = gates[b + 2 * H], d = dh[i];
        const T dn = d * (T(1) - zg) * (T(1) - ng * ng);
        const T dr = dn * nh[i] * (rg * (T(1) - rg));
        const T dz = d * (h[i] - ng) * (zg * (T(1) - zg));
        dgi[b] = dr; dgi[b + H] = dz; dgi[b + 2 * H] = dn;
        dgh[b] = dr; dgh[b + H] = dz; dgh[b + 2 * H] = dn * rg;
        direct[i] = d * zg;
        """),
}


class RecurrentCell:
    """A time step of an LSTM ("lstm_cell") or GRU ("gru_cell") layer on a block of rows: `forward` and
    `backward` are one launch each, with the signatures of the cell functions in engine.ops.recurrent_fused
    (which keep their own derivative arrays in `prepare`; these compute them in the launch)."""

    def __init__(self, name: str, cp) -> None:
        fwd_in, fwd_out, fwd, back_in, back_out, back = _CELLS[name]
        self._cp, self._lstm = cp, name == "lstm_cell"
        self._fwd = cp.ElementwiseKernel(fwd_in, fwd_out, fwd, f"tapescope_{name}_forward")
        self._back = cp.ElementwiseKernel(back_in, back_out, back, f"tapescope_{name}_backward")

    def forward(self, xp, gi, gh, h, c, kept, scale):
        state = c if self._lstm else h  # an LSTM with proj_size: h is narrower than the cell
        n, hidden = state.shape
        h_new = xp.empty_like(state)
        c_new = xp.empty_like(c) if self._lstm else None
        if n * hidden:  # a launch of size 0 is refused
            extra = (c, hidden, *kept, h_new, c_new) if self._lstm else (h, hidden, *kept, h_new)
            self._fwd(gi, gh, *extra, size=n * hidden)
        return h_new, c_new

    def prepare(self, xp, kept) -> tuple:
        return ()

    def backward(self, xp, kept, pre, h, dh, dc, dgi, dgh):
        n, hidden = dh.shape
        dh = xp.ascontiguousarray(dh)
        if self._lstm:
            dc_prev = xp.empty_like(dc)
            if n * hidden:
                self._back(*kept, dh, dc, hidden, dgi, dc_prev, size=n * hidden)
            return None, dc_prev
        direct = xp.empty_like(dh)
        if n * hidden:
            self._back(*kept, h, dh, hidden, dgi, dgh, direct, size=n * hidden)
        return direct, None


class SquareSum:
    """|x|^2 of a flat CuPy array as a 0-d float64 array, summed in float64, left on the device.

    ndarray.dot (cuBLAS) hands its result to a host pointer, so each call waits for the GPU: the
    optimizer's three norms per parameter made a step wait that many times. This reduction does not
    wait; host_floats then copies all of a step's norms at once. Each sum is one slot of a shared zeroed
    slab (one kernel a sum, where a CuPy reduction spent four times as long on the host preparing it), so
    that the sums of a step lie side by side and come to the host in one copy.
    """

    THREADS, MAX_BLOCKS, SLOTS = 256, 256, 1024

    def __init__(self, name: str, cp) -> None:
        self._cp = cp
        self._functions: dict = {}
        self._slots = _Slabs(cp, self.SLOTS, cp.float64)

    def __call__(self, flat):
        cp = self._cp
        if flat.dtype.name not in ("float32", "float64"):  # complex (|x|^2 is conj(x) x) and the rest
            return cp.vdot(flat, flat).real
        function = self._functions.get(flat.dtype)
        if function is None:
            function = self._functions[flat.dtype] = cp.RawModule(code=_SQUARE_SUM.format(
                T=_CTYPES[flat.dtype.name], block_reduce=_BLOCK_REDUCE)).get_function("tapescope_square_sum")
        slab, slot = self._slots.take(flat.device)
        out = slab[slot]
        flat = cp.ascontiguousarray(flat)
        n = flat.size
        if n:
            function((min(self.MAX_BLOCKS, -(-n // self.THREADS)),), (self.THREADS,), (flat, np.int64(n), out))
        return out


_SQUARE_SUM = r"""
typedef {T} T;
{block_reduce}
extern "C" __global__ void tapescope_square_sum(const T* x, long long n, double* out) {{
    __shared__ double sd[8];
    double s = 0;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {{
        const double d = (double)x[i];
        s += d * d;
    }}
    s = _block_reduce(s, _Add(), sd);
    if (threadIdx.x == 0) atomicAdd(out, s);
}}
"""


_BUILDERS = {
    **dict.fromkeys(_ELEMENT_OPS, ElementPair),
    "adam_update": AdamUpdate,
    "cross_entropy": CrossEntropyRows,
    "tensor_summary": TensorSummary,
    "square_sum": SquareSum,
    "lstm_cell": RecurrentCell,
    "gru_cell": RecurrentCell,
}
