"""ctc_loss: the connectionist temporal classification loss, as PyTorch's F.ctc_loss.

Each target l of length L is extended with blanks to l' = (blank, l1, blank, l2, ..., lL, blank). The
forward variable alpha_t(s), the log-probability of all alignments of l'[:s+1] with the first t+1 frames,
is computed for every sample and every position s at once, one time step after the other; the loss is
-log(alpha_{T-1}(2L) + alpha_{T-1}(2L-1)). The backward variable beta runs the same recursion from the
end, and alpha_t(s) beta_t(s) / p_t(l'_s) / p(l) is the probability that frame t emits position s.

The gradient is PyTorch's: exp(log_probs) minus that occupancy summed per class, which is the derivative
through a log_softmax that made log_probs (each frame's occupancies sum to one, so the log_softmax
backward leaves it unchanged), zero on frames past a sample's input length.
"""

from __future__ import annotations

import operator

import numpy as np

from engine import kernels
from engine.autograd.function import Function, ShapeError
from engine.backend import array_module, to_device, to_host
from engine.ops.index import scatter_add_into
from engine.ops.loss import check_reduction
from engine.tensor import Tensor

__all__ = ["ctc_loss"]


def _logsumexp(xp, *terms):
    """log(sum(exp(terms))) elementwise, -inf where every term is -inf (no warnings)."""
    m = terms[0]
    for t in terms[1:]:
        m = xp.maximum(m, t)
    m = xp.where(xp.isfinite(m), m, 0)
    total = sum(xp.exp(t - m) for t in terms)
    return xp.where(total > 0, m + xp.log(xp.where(total > 0, total, 1)), -np.inf)


def _step_host(a, b, c, skip, lp, first, phase, out) -> None:
    """One time step of either recursion, into `out`: logsumexp(a, b, c where skip) + lp where phase > 0,
    lp at the `first` positions where phase == 0 (a sample's first step), -inf where phase < 0."""
    s = _logsumexp(np, a, b, np.where(skip, c, -np.inf)) + lp
    out[...] = np.where(phase == 0, np.where(first, lp, -np.inf), np.where(phase > 0, s, -np.inf))


# the same step as one CUDA kernel: the recursions run T steps one after the other, and the dozen array
# operations of _step_host cost a launch each
_STEP_CUDA = """
const T inf = (T)__longlong_as_double(0x7ff0000000000000LL);  // NVRTC has no INFINITY
T cc = skip ? c : -inf;
T m = max(max(a, b), cc);
T s = (m == -inf) ? m : m + log(exp(a - m) + exp(b - m) + exp(cc - m));
y = phase == 0 ? (first ? lp : -inf) : (phase > 0 ? s + lp : -inf);
"""
_kernel = []

# Both whole recursions as one kernel each, one block per sample: a block's threads cover the positions s and
# wait for each other between time steps, so T steps cost one launch instead of T (~20 us of Python each).
# Used where a sample's 2S+1 positions fit one block.
_RECURSIONS_CUDA = r"""
#define NEG_INF ((REAL)__longlong_as_double(0x7ff0000000000000LL) * -1)
__device__ REAL lse3(REAL a, REAL b, REAL c) {
    REAL m = max(max(a, b), c);
    return m == NEG_INF ? m : m + log(exp(a - m) + exp(b - m) + exp(c - m));
}
extern "C" __global__ void ctc_alpha(const REAL* lp, const bool* skip, REAL* alpha, int t_len, int n, int width) {
    const int b = blockIdx.x;
    for (int t = 0; t < t_len; ++t) {
        const REAL* prev = alpha + ((long long)(t - 1) * n + b) * width;
        REAL* out = alpha + ((long long)t * n + b) * width;
        const REAL* l = lp + ((long long)t * n + b) * width;
        for (int s = threadIdx.x; s < width; s += blockDim.x) {
            if (t == 0) {
                out[s] = s < 2 ? l[s] : NEG_INF;
            } else {
                REAL c = (s >= 2 && skip[b * width + s]) ? prev[s - 2] : NEG_INF;
                out[s] = lse3(prev[s], s >= 1 ? prev[s - 1] : NEG_INF, c) + l[s];
            }
        }
        __syncthreads();
    }
}
extern "C" __global__ void ctc_beta(const REAL* lp, const bool* skip_back, const bool* ends, const long long* inputs,
                                    REAL* beta, int t_len, int n, int width) {
    const int b = blockIdx.x;
    for (int t = t_len - 1; t >= 0; --t) {
        const long long phase = inputs[b] - 1 - t;  // 0 at the sample's last frame, where its recursion starts
        const REAL* next = beta + ((long long)(t + 1) * n + b) * width;
        REAL* out = beta + ((long long)t * n + b) * width;
        const REAL* l = lp + ((long long)t * n + b) * width;
        for (int s = threadIdx.x; s < width; s += blockDim.x) {
            if (phase < 0) {
                out[s] = NEG_INF;
            } else if (phase == 0) {
                out[s] = ends[b * width + s] ? l[s] : NEG_INF;
            } else {
                REAL c = (s + 2 < width && skip_back[b * width + s]) ? next[s + 2] : NEG_INF;
                out[s] = lse3(next[s], s + 1 < width ? next[s + 1] : NEG_INF, c) + l[s];
            }
        }
        __syncthreads();
    }
}
"""
_recursions: dict = {}
BLOCK_MAX = 1024  # a block's threads: wider extended targets (over 511 labels) step one launch per frame


def _recursion_kernels(xp, lp):
    """(alpha, beta) kernels for the gathered log-probabilities `lp` (T, N, 2S+1): for float32 or float64 CuPy
    arrays whose positions fit a block; None for numpy, other dtypes, empty or wide ones, or while disabled."""
    dtype = lp.dtype
    if not kernels.active(xp) or dtype not in (np.float32, np.float64) or not lp.size or lp.shape[2] > BLOCK_MAX:
        return None
    key = np.dtype(dtype).name
    if key not in _recursions:
        module = xp.RawModule(code=_RECURSIONS_CUDA.replace("REAL", "float" if key == "float32" else "double"))
        _recursions[key] = module.get_function("ctc_alpha"), module.get_function("ctc_beta")
    return _recursions[key]


def _block(width: int) -> int:
    """Threads per block for `width` positions: whole warps, at most BLOCK_MAX."""
    return min(BLOCK_MAX, -(-width // 32) * 32)


def _stepper(xp):
    if xp is np:
        return _step_host
    if not _kernel:
        _kernel.append(xp.ElementwiseKernel("T a, T b, T c, bool skip, T lp, bool first, int64 phase", "T y",
                                            _STEP_CUDA, "ctc_step"))
    return _kernel[0]


class CtcLoss(Function):
    """Per-sample negative log-likelihood (N,) of the extended labels `ctx.labels` (N, 2S+1) under
    log_probs (T, N, C)."""

    op = "ctc_loss"

    def forward(ctx, log_probs):
        xp = array_module(log_probs)
        labels, skip = xp.asarray(ctx.labels), xp.asarray(ctx.skip)
        t_len, n = log_probs.shape[:2]
        width = labels.shape[1]
        lp = xp.take_along_axis(log_probs, xp.broadcast_to(labels[None], (t_len, n, width)), axis=2)
        fused = _recursion_kernels(xp, lp)
        if fused is not None:
            alpha = xp.empty((t_len, n, width), log_probs.dtype)
            fused[0]((n,), (_block(width),), (lp, skip, alpha, np.int32(t_len), np.int32(n), np.int32(width)))
        else:
            # two -inf columns in front: positions s - 1 and s - 2 of every s are views, not copies
            padded = xp.full((t_len, n, width + 2), -np.inf, log_probs.dtype)
            step = _stepper(xp)
            if t_len:
                padded[0, :, 2:4] = lp[0, :, :2]
            for t in range(1, t_len):
                a = padded[t - 1]
                step(a[:, 2:], a[:, 1:-1], a[:, :-2], skip, lp[t], skip, 1, padded[t, :, 2:])
            alpha = padded[:, :, 2:]
        inputs, targets = xp.asarray(ctx.input_lengths), xp.asarray(ctx.target_lengths)
        last = alpha[xp.maximum(inputs - 1, 0), xp.arange(n)]  # (N, 2S+1) at each sample's last frame
        end = xp.take_along_axis(last, (2 * targets)[:, None], axis=1)[:, 0]
        before = xp.take_along_axis(last, xp.maximum(2 * targets - 1, 0)[:, None], axis=1)[:, 0]
        nll = -xp.where(targets > 0, _logsumexp(xp, end, before), end)
        nll = xp.where(inputs > 0, nll, xp.where(targets > 0, np.inf, 0)).astype(log_probs.dtype)
        ctx.save(log_probs)
        ctx.alpha, ctx.lp, ctx.nll = alpha, lp, nll
        if ctx.zero_infinity:
            nll = xp.where(nll == np.inf, 0, nll).astype(log_probs.dtype)
        return nll

    def backward(ctx, grad):
        (log_probs,) = ctx.saved
        xp = array_module(grad)
        alpha, lp, nll = ctx.alpha, ctx.lp, ctx.nll
        labels, skip = xp.asarray(ctx.labels), xp.asarray(ctx.skip)
        inputs, targets = xp.asarray(ctx.input_lengths), xp.asarray(ctx.target_lengths)
        t_len, n, classes = log_probs.shape
        width = labels.shape[1]
        positions = xp.arange(width)
        ends = (positions == 2 * targets[:, None]) | ((positions == 2 * targets[:, None] - 1) & (targets[:, None] > 0))
        skip_back = xp.zeros_like(skip)
        skip_back[:, :-2] = skip[:, 2:]  # from s to s + 2 exactly where alpha may go from s + 2 back to s
        fused = _recursion_kernels(xp, lp)
        if fused is not None:
            beta = xp.empty((t_len, n, width), log_probs.dtype)
            fused[1]((n,), (_block(width),), (lp, skip_back, xp.ascontiguousarray(ends), inputs, beta,
                                             np.int32(t_len), np.int32(n), np.int32(width)))
        else:
            # two -inf columns behind (positions s + 1 and s + 2 as views) and a row of -inf after the last frame
            padded = xp.full((t_len + 1, n, width + 2), -np.inf, log_probs.dtype)
            step = _stepper(xp)
            for t in range(t_len - 1, -1, -1):  # phase 0 is a sample's last frame, where its recursion starts
                b = padded[t + 1]
                step(b[:, :-2], b[:, 1:-1], b[:, 2:], skip_back, lp[t], ends, (inputs - 1 - t)[:, None],
                     padded[t, :, :-2])
            beta = padded[:t_len, :, :-2]
        both = alpha + beta
        # where both alpha and beta vanish their sum is -inf, whatever nll is: the frame emits nothing there
        finite_nll = xp.where(nll < np.inf, nll, 0)[:, None]  # an infinite loss's rows are overwritten below
        emit = xp.where(both > -np.inf, xp.exp(both - lp + finite_nll), 0)
        cells = (xp.arange(t_len)[:, None] * n + xp.arange(n)[None, :]) * classes  # (T, N)
        occupancy = xp.zeros(t_len * n * classes, log_probs.dtype)
        scatter_add_into(xp)(occupancy, (cells[:, :, None] + labels[None]).ravel(), emit.ravel())
        g = xp.exp(log_probs) - occupancy.reshape(log_probs.shape)
        # no alignment at all (infinite loss): PyTorch's gradient is NaN there, or 0 with zero_infinity
        infinite = (nll == np.inf)[None, :, None]
        g = xp.where(infinite, 0 if ctx.zero_infinity else np.nan, g)
        g = xp.where((xp.arange(t_len)[:, None] < inputs[None, :])[:, :, None], g, 0)
        return (g * grad[None, :, None]).astype(log_probs.dtype, copy=False)


def _lengths(name: str, value, n: int) -> np.ndarray:
    """input_lengths / target_lengths as an int64 host array of n values."""
    if isinstance(value, Tensor):
        if value.dtype.is_floating_point:
            raise TypeError(f"ctc_loss: {name} must hold integers, got dtype {value.dtype.name}")
        arr = to_host(value.array)
    else:
        try:
            arr = np.array([operator.index(v) for v in (value if isinstance(value, tuple | list) else [value])])
        except TypeError:
            raise TypeError(f"ctc_loss: {name} must be a tuple of ints or an integer tensor, got {value!r}") from None
    arr = np.asarray(arr, dtype=np.int64).reshape(-1)
    if arr.size != n:
        raise ShapeError(f"ctc_loss: {name} must be of size batch_size ({n}), got {arr.size} values")
    if arr.size and arr.min() < 0:
        raise ShapeError(f"ctc_loss: Expected {name} to have value at least 0, but got value {int(arr.min())}")
    return arr


def _extended_labels(targets: np.ndarray, target_lengths: np.ndarray, blank: int, classes: int):
    """(labels, skip): the blank-extended targets (N, 2S+1), and where alpha may skip a blank (s odd, and
    l'[s] != l'[s-2])."""
    n = len(target_lengths)
    width = int(target_lengths.max()) if n else 0
    padded = np.full((n, width), blank, np.int64)
    inside = np.arange(width) < target_lengths[:, None]
    if targets.ndim == 1:  # concatenated
        starts = np.concatenate([[0], np.cumsum(target_lengths)[:-1]]).astype(np.int64)
        padded[inside] = targets[(starts[:, None] + np.arange(width))[inside]]
    else:
        padded[inside] = targets[:, :width][inside]
    used = padded[inside]
    if used.size and (used.min() < 0 or used.max() >= classes):
        bad = int(used[(used < 0) | (used >= classes)][0])
        raise IndexError(f"ctc_loss: target {bad} is out of range for {classes} classes (log_probs' last dim)")
    labels = np.full((n, 2 * width + 1), blank, np.int64)
    labels[:, 1::2] = padded
    skip = np.zeros(labels.shape, bool)
    skip[:, 3::2] = padded[:, 1:] != padded[:, :-1]
    return labels, skip


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """Connectionist temporal classification loss of log_probs (T, N, C) (or (T, C)) for targets padded
    (N, S) or concatenated (sum(target_lengths),), as F.ctc_loss; 'mean' divides each loss by its target
    length before averaging over the batch."""
    check_reduction("ctc_loss", reduction)
    if log_probs.ndim not in (2, 3):
        raise ShapeError(f"ctc_loss: log_probs must be (T, N, C) or unbatched (T, C), got shape "
                         f"{tuple(log_probs.shape)}")
    if not log_probs.dtype.is_floating_point:
        raise TypeError(f"ctc_loss: log_probs must be floating point, got {log_probs.dtype.name}")
    if not isinstance(targets, Tensor) or targets.dtype.name == "bool":
        raise TypeError("ctc_loss: targets must be a tensor of class indices, got "
                        + (targets.dtype.name if isinstance(targets, Tensor) else type(targets).__name__))
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
        if targets.ndim != 1:
            raise ShapeError(f"ctc_loss: for unbatched log_probs {tuple(log_probs.shape[::2])} targets must be "
                             f"1-D, got shape {tuple(targets.shape)}")
        targets = targets.unsqueeze(0)
    t_len, n, classes = log_probs.shape
    if not 0 <= blank < classes:
        raise ValueError(f"ctc_loss: blank must be in label range: got blank={blank} for {classes} classes")
    inputs = _lengths("input_lengths", input_lengths, n)
    lengths = _lengths("target_lengths", target_lengths, n)
    if n and inputs.max() > t_len:
        raise ShapeError(f"ctc_loss: Expected input_lengths to have value at most {t_len} (log_probs' T), but got "
                         f"value {int(inputs.max())}")
    host = to_host(targets.array)
    if host.dtype.kind == "f" and not np.array_equal(host, np.trunc(host)):  # whole-number floats are fine
        raise TypeError("ctc_loss: targets must be class indices, got a float tensor with fractional values")
    host = host.astype(np.int64)
    if host.ndim == 1:
        if host.shape[0] != lengths.sum():
            raise ShapeError(f"ctc_loss: concatenated targets must hold sum(target_lengths) = {int(lengths.sum())} "
                             f"labels, got {host.shape[0]}")
    elif host.ndim == 2:
        if host.shape[0] != n or (n and host.shape[1] < lengths.max()):
            raise ShapeError(f"ctc_loss: padded targets must be (N, S) with N = {n} and S at least the longest "
                             f"target length {int(lengths.max()) if n else 0}, got shape {host.shape}")
    else:
        raise ShapeError(f"ctc_loss: targets must be (N, S) or concatenated 1-D, got shape {host.shape}")
    labels, skip = _extended_labels(host, lengths, blank, classes)
    nll = CtcLoss.apply(log_probs, labels=labels, skip=skip, input_lengths=inputs, target_lengths=lengths,
                        zero_infinity=bool(zero_infinity))
    if reduction == "none":
        return nll[0] if unbatched else nll
    if reduction == "sum":
        return nll.sum()
    divisor = to_device(np.maximum(lengths, 1).astype(nll.array.dtype), nll.device)  # one copy, onto nll's device
    return (nll / Tensor._wrap(divisor)).mean()
