"""engine.amp: mixed precision as torch.amp: `autocast` and `GradScaler`.

    scaler = engine.amp.GradScaler()
    with engine.autocast("cuda"):            # matmul, linear, conv run in float16; losses, softmax in float32
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)                   # skipped when a gradient is inf or NaN; the scale backs off
    scaler.update()

What autocast casts follows torch's op lists for each device, restricted to the ops the engine has
(`LOWER` and `FLOAT32` below, by op name): an op of the first list gets its float32 tensor inputs cast to the
autocast dtype, one of the second gets its float16 inputs cast to float32. float64 tensors are never cast.
Each device type has its own autocast state, as in torch, and the device of an op's tensors picks the one
that applies. Casts are ordinary `to` ops, so gradients flow back through them; inside the outermost region
the float16 copy of a leaf that requires grad (a weight) is made once and reused, until its next in-place
change (`cache_enabled=False` turns that off). The engine has no bfloat16: an autocast asking for it (CPU
autocast's default) warns once and casts nothing.

Where the cast happens: the first autocast that casts (in any thread) installs a casting `apply` on the op
classes whose name is listed, and (through `function.NEW_OP_LISTENERS`) on those defined later, and leaves
it there: entering and leaving a region only sets this thread's state, which that `apply` reads, so other
threads' ops are not cast. A process that never casts has nothing installed, and `Function.apply` itself is
untouched, so unlisted ops never pay for autocast.
"""

from __future__ import annotations

import functools
import threading
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from engine import dtypes, user_warning
from engine.autograd.function import NEW_OP_LISTENERS, op_classes
from engine.autograd.grad_mode import state as _grad_state
from engine.backend import array_module
from engine.tensor import Tensor

_LOWER_COMMON = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                           "conv_transpose3d", "addmm", "matmul", "linear"})
# torch's lists (aten/src/ATen/autocast_mode.cpp), op names as the engine spells them
LOWER = {"cuda": _LOWER_COMMON | {"einsum"}, "cpu": _LOWER_COMMON}
FLOAT32 = {
    "cuda": frozenset({"acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p",
                       "reciprocal", "rsqrt", "sinh", "pow", "softplus", "layer_norm", "group_norm", "norm",
                       "cdist", "logsumexp", "kl_div", "l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss",
                       "nll_loss", "cross_entropy", "binary_cross_entropy_with_logits", "softmax",
                       "log_softmax", "cumprod", "cumsum", "prod", "sum"}),
    "cpu": frozenset({"prod", "cdist", "inverse", "cholesky", "solve", "solve_triangular", "svdvals",
                      "avg_pool3d", "max_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d", "max_unpool2d",
                      "max_unpool3d", "mse_loss", "nll_loss", "smooth_l1_loss", "cross_entropy", "l1_loss",
                      "huber_loss", "kl_div", "binary_cross_entropy", "binary_cross_entropy_with_logits"}),
}
# op name -> True: cast to the autocast dtype, False: cast to float32
_RULES = {d: {**dict.fromkeys(FLOAT32[d], False), **dict.fromkeys(LOWER[d], True)} for d in LOWER}
_NAMES = frozenset().union(*LOWER.values(), *FLOAT32.values())
_DEFAULT_DTYPE = {"cuda": "float16", "cpu": "bfloat16"}


class _ThreadState(threading.local):
    """This thread's autocast: what each device type casts to, the cast cache, how deep regions nest."""

    cast: dict | None = None  # {"cpu": float16} for the device types whose autocast casts; None if none does
    cache_enabled = True
    cache: dict | None = None  # (id, version, grad mode) of a weight -> (weight, its cast), per outer region;
    # holding the weight keeps its id from being reused while the entry lives
    depth = 0


_state = _ThreadState()
_lock = threading.Lock()
_originals: dict[type, object] = {}  # op class -> what its own __dict__ held under "apply" (or None)
_installed = False
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        user_warning.warn(message)  # at the script's `with autocast(...)` line, whichever engine frames lie between


def _cast_inputs(op: str, cast: dict, args: tuple) -> tuple:
    """`args` with tensors cast as the autocast of their device type says for `op`."""
    on_cpu = True
    for a in args:  # CPU scalars may join CUDA tensors; any CUDA tensor makes it a CUDA op, as in torch
        if isinstance(a, Tensor) and not isinstance(a.array, np.ndarray):
            on_cpu = False
            break
    device = "cpu" if on_cpu else "cuda"
    dtype = cast.get(device)
    lower = _RULES[device].get(op)
    if dtype is None or lower is None:
        return args
    target = dtype if lower else dtypes.float32
    cache = _state.cache if lower and _state.cache_enabled else None
    return tuple(_cast(a, target, on_cpu, cache) for a in args)


def _cast(a, target: dtypes.DType, on_cpu: bool, cache: dict | None):
    if not isinstance(a, Tensor):
        return a
    d = a.array.dtype
    if d.kind != "f" or d == np.float64 or d == target.np or isinstance(a.array, np.ndarray) != on_cpu:
        return a
    if cache is None or not a.requires_grad or a.grad_fn is not None or a._base is not None:
        return a.to(target)
    # torch casts a weight once per region; the version (and grad mode) in the key make an in-place update,
    # or a cast made under no_grad, not be reused
    key = (id(a), a._vc[0], _grad_state.enabled)
    hit = cache.get(key)
    if hit is not None:
        return hit[1]
    out = a.to(target)
    cache[key] = (a, out)
    return out


def _casting_apply(cls: type) -> classmethod:
    """An `apply` for op class `cls` that casts its inputs, then runs the `apply` it replaces."""
    for base in cls.__mro__:
        original = _originals[base] if base in _originals else base.__dict__.get("apply")
        if original is not None:
            break
    if isinstance(original, classmethod):
        run = original.__func__
    else:  # a user's op with its own staticmethod or plain-function apply
        def run(owner, *args, **options):
            return original.__get__(None, owner)(*args, **options)

    def autocast_apply(owner, *args, **options):
        """Run the op on tensors and Python scalars, cast as this thread's autocast says."""
        cast = _state.cast
        if cast is not None:
            args = _cast_inputs(owner.op, cast, args)
        return run(owner, *args, **options)

    return classmethod(autocast_apply)


def _wrap(cls: type) -> None:
    if cls not in _originals:
        _originals[cls] = cls.__dict__.get("apply")
        cls.apply = _casting_apply(cls)


def _install() -> None:
    """Give every listed op class, and each one defined from now on, its casting `apply` (once)."""
    global _installed
    with _lock:
        if _installed:
            return
        for cls in op_classes():
            if cls.op in _NAMES:
                _wrap(cls)
        NEW_OP_LISTENERS.append(_wrap_if_listed)
        _installed = True


def _wrap_if_listed(cls: type) -> None:
    if cls.op in _NAMES:
        _wrap(cls)


class autocast:  # torch's name
    """Run ops in mixed precision inside a `with` block or a decorated function, as torch.autocast."""

    def __init__(self, device_type: str, dtype: dtypes.DType | None = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        device_type = device_type.split(":")[0]
        if device_type not in LOWER:
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'; "
                               "the engine's autocast supports 'cuda' and 'cpu'")
        if dtype is not None and not isinstance(dtype, dtypes.DType):
            raise TypeError(f"autocast: dtype must be an engine dtype (engine.float16), got {dtype!r}")
        self.device = device_type
        self.fast_dtype = dtype
        self._enabled = bool(enabled)
        self._cache_enabled = _state.cache_enabled if cache_enabled is None else bool(cache_enabled)
        self._cast_to = self._target() if self._enabled else None
        self._saved: list[tuple] = []

    def _target(self) -> dtypes.DType | None:
        """The dtype this autocast casts to, or None (with a one-line warning) when it cannot cast."""
        device = self.device
        if device == "cuda":
            from engine import cuda

            if not cuda.is_available():
                _warn_once("User provided device_type of 'cuda', but CUDA is not available. Disabling")
                return None
        if self.fast_dtype is None:
            if _DEFAULT_DTYPE[device] == "bfloat16":
                _warn_once(f"autocast('{device}') defaults to bfloat16, which the engine does not have: ops "
                           "run in their own dtypes; pass dtype=engine.float16 to run them in float16")
                return None
            return dtypes.float16
        if self.fast_dtype is not dtypes.float16:
            _warn_once(f"In {device.upper()} autocast, but the target dtype is not supported. Disabling "
                       "autocast. The engine's autocast supports engine.float16 (it has no bfloat16)")
            return None
        return dtypes.float16

    def __enter__(self) -> autocast:
        state = _state
        self._saved.append((state.cast, state.cache_enabled))
        cast = dict(state.cast or ())
        # a disabled autocast nested in an enabled one of its device type turns casting off inside it, as in
        # torch; another device type's autocast is left alone
        if self._cast_to is None:
            cast.pop(self.device, None)
        else:
            cast[self.device] = self._cast_to
            if not _installed:
                _install()
        state.cast = cast or None
        state.cache_enabled = self._cache_enabled
        if state.depth == 0:
            state.cache = {}
        state.depth += 1
        return self

    def __exit__(self, *exc) -> None:
        state = _state
        state.depth -= 1
        if state.depth == 0:
            state.cache = None  # the casts made in the region die with it
        state.cast, state.cache_enabled = self._saved.pop()

    def __call__(self, func: Callable) -> Callable:
        """Use as a decorator: `func` runs inside this autocast on every call."""

        @functools.wraps(func)
        def run(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled, self._cache_enabled):
                return func(*args, **kwargs)

        return run


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """True inside an autocast of `device_type` that casts (as torch.is_autocast_enabled)."""
    cast = _state.cast
    return cast is not None and device_type in cast


def get_autocast_dtype(device_type: str) -> dtypes.DType:
    """The dtype autocast of `device_type` casts to: inside an active one its dtype, else torch's default for the
    device type (engine.bfloat16 for 'cpu', which turns autocast off here, float16 for the others)."""
    if not isinstance(device_type, str):
        raise TypeError(f"get_autocast_dtype(): argument 'device_type' must be str, not {type(device_type).__name__}")
    cast = _state.cast
    if cast is not None and device_type in cast:
        return cast[device_type]
    return dtypes.bfloat16 if _DEFAULT_DTYPE.get(device_type) == "bfloat16" else dtypes.float16


# ---- GradScaler ---------------------------------------------------------------------------------------
_READY, _UNSCALED, _STEPPED = 0, 1, 2


def _fresh_state() -> dict:
    return {"stage": _READY, "found_inf": None}


class GradScaler:
    """Loss scaling for float16 training, as torch.amp.GradScaler: scale, unscale_, step, update."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True) -> None:
        self._device = str(device).split(":")[0]
        self._enabled = bool(enabled)
        if self._enabled and self._device == "cuda":
            from engine import cuda

            if not cuda.is_available():
                user_warning.warn("engine.amp.GradScaler is enabled, but CUDA is not available.  Disabling.")
                self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise ValueError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise ValueError("The backoff factor must be < 1.0.")
        self._init_scale = init_scale
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._scale: np.float32 | None = None  # float32 as torch's scale tensor, so sequences match bit for bit
        self._growth_tracker = 0
        self._per_optimizer_states: dict[int, dict] = defaultdict(_fresh_state)

    def _check_enabled(self, what: str) -> None:
        if self._scale is None:
            raise RuntimeError(f"Attempted {what} but _scale is None.  This may indicate your script did not "
                               "use scaler.scale(loss or outputs) earlier in the iteration.")

    def scale(self, outputs):
        """`outputs` (a tensor, or a list/tuple of them) multiplied by the scale factor."""
        if not self._enabled:
            return outputs
        if self._scale is None:
            self._scale = np.float32(self._init_scale)
        if isinstance(outputs, Tensor):
            # a float32 0-dim tensor, as torch's scale: a float16 loss scales into float32, not to inf
            return outputs * Tensor._wrap(array_module(outputs.array).asarray(self._scale))
        if isinstance(outputs, list | tuple):
            return type(outputs)(self.scale(o) for o in outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def unscale_(self, optimizer) -> None:
        """Divide `optimizer`'s gradients by the scale, in place, and note whether any is inf or NaN."""
        if not self._enabled:
            return
        self._check_enabled("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] is _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv_scale = np.float32(1.0 / np.float64(self._scale))
        found: dict = {}  # per array module, one flag that stays on the device until step() reads it
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.array
                if g.dtype == np.float16:
                    raise ValueError("Attempting to unscale FP16 gradients.")
                xp = array_module(g)
                bad = ~xp.isfinite(g).all()
                found[xp] = found[xp] | bad if xp in found else bad
                g *= g.dtype.type(inv_scale)
                p.grad._vc[0] += 1
        state["found_inf"] = list(found.values())
        state["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """`optimizer.step()` unless a gradient is inf or NaN (unscaling first if not done yet)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_enabled("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is _READY:
            self.unscale_(optimizer)
        if not state["found_inf"]:
            raise AssertionError("No inf checks were recorded for this optimizer.")  # torch's words
        state["found_inf"] = any(bool(f) for f in state["found_inf"])  # the one host sync of the step
        retval = None
        if not state["found_inf"]:
            retval = optimizer.step(*args, **kwargs)
        else:  # skipped, yet in its place: a scheduler stepped next is in order (torch warns here)
            optimizer._opt_called = True
        state["stage"] = _STEPPED
        return retval

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Grow the scale after `growth_interval` clean steps, back it off after a step with inf/NaN."""
        if not self._enabled:
            return
        self._check_enabled("update")
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1 or new_scale.requires_grad:
                    raise ValueError("new_scale should be a Python float or a 1-element tensor that does not "
                                     "require grad")
                new_scale = new_scale.item()
            self._scale = np.float32(new_scale)
        else:
            found = []  # per optimizer: its flag after step(), or its flags per array module after unscale_()
            for s in self._per_optimizer_states.values():
                f = s["found_inf"]
                found += () if f is None else [f] if isinstance(f, bool) else f
            if not found:
                raise RuntimeError("No inf checks were recorded prior to update.")
            if any(bool(f) for f in found):
                self._scale = np.float32(np.float64(self._scale) * self._backoff_factor)
                self._growth_tracker = 0
            else:
                successful = self._growth_tracker + 1
                if successful == self._growth_interval:
                    grown = np.float32(np.float64(self._scale) * self._growth_factor)
                    if np.isfinite(grown):
                        self._scale = grown
                    self._growth_tracker = 0
                else:
                    self._growth_tracker = successful
        self._per_optimizer_states = defaultdict(_fresh_state)

    def get_scale(self) -> float:
        """The current scale as a Python float (1.0 when disabled)."""
        if not self._enabled:
            return 1.0
        return float(self._init_scale if self._scale is None else self._scale)

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        return self._growth_tracker if self._enabled else 0

    def is_enabled(self) -> bool:
        """Whether this scaler scales (False when built with enabled=False or without CUDA for "cuda")."""
        return self._enabled

    def state_dict(self) -> dict:
        """scale, growth_factor, backoff_factor, growth_interval, _growth_tracker ({} when disabled)."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what `state_dict` returned."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        missing = {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"} - set(state_dict)
        if missing:
            raise KeyError(f"GradScaler state_dict lacks {sorted(missing)}")
        self._init_scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
        if self._scale is not None:
            self._scale = np.float32(self._init_scale)


# ---- torch.cuda.amp and torch.cpu.amp: the older spellings ----------------------------------------------
def _cuda_autocast(enabled: bool = True, dtype: dtypes.DType = dtypes.float16,
                   cache_enabled: bool = True) -> autocast:
    """torch.cuda.amp.autocast: autocast("cuda", ...)."""
    return autocast("cuda", dtype, enabled, cache_enabled)


def _cpu_autocast(enabled: bool = True, dtype: dtypes.DType | None = None, cache_enabled: bool = True) -> autocast:
    """torch.cpu.amp.autocast: autocast("cpu", ...) (bfloat16 by default, which the engine lacks)."""
    return autocast("cpu", dtype, enabled, cache_enabled)


def _cuda_grad_scaler(init_scale: float = 2.0**16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                      growth_interval: int = 2000, enabled: bool = True) -> GradScaler:
    """torch.cuda.amp.GradScaler: GradScaler("cuda", ...)."""
    return GradScaler("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)


# engine/__init__.py makes them the modules engine.cuda.amp and engine.cpu.amp
CUDA_AMP = {"autocast": _cuda_autocast, "GradScaler": _cuda_grad_scaler}
CPU_AMP = {"autocast": _cpu_autocast}
