"""engine.amp: mixed precision as torch.amp: `autocast` and `GradScaler`.

    scaler = engine.amp.GradScaler()
    with engine.autocast("cuda"):            # matmul, linear, conv run in float16; losses, softmax in float32
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)                   # skipped when a gradient is inf or NaN; the scale backs off
    scaler.update()

What autocast casts follows torch's op lists for each device, restricted to the ops the engine has
(`LOWER` and `FLOAT32` below): an op of the first list gets its float32 tensor inputs cast to the autocast
dtype, one of the second gets its float16 inputs cast to float32. float64 tensors, and tensors on another
device than the autocast's, are never cast. Casts are ordinary `to` ops, so gradients flow back through them.
The engine has no bfloat16: an autocast asking for it (CPU autocast's default) warns once and casts nothing.

Where the cast happens: entering the first enabled autocast (of any thread) installs a casting `apply` on
the listed op classes only, and leaving the last one removes it; `Function.apply` itself is untouched, so
with autocast off no op pays anything for it. The installed `apply` reads this thread's autocast state, so
another thread's ops are not cast.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from engine import dtypes
from engine.autograd.function import Function
from engine.backend import array_module
from engine.tensor import Tensor

_LOWER_COMMON = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                 "addmm", "matmul", "linear")
# torch's lists (aten/src/ATen/autocast_mode.cpp), op names as the engine spells them
LOWER = {"cuda": (*_LOWER_COMMON, "einsum"), "cpu": _LOWER_COMMON}
FLOAT32 = {
    "cuda": ("acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p", "reciprocal",
             "rsqrt", "sinh", "pow", "softplus", "layer_norm", "group_norm", "norm", "cdist", "logsumexp",
             "kl_div", "l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss", "nll_loss", "cross_entropy",
             "binary_cross_entropy_with_logits", "softmax", "log_softmax", "cumprod", "cumsum", "prod", "sum"),
    "cpu": ("prod", "cdist", "inverse", "cholesky", "solve", "solve_triangular", "svdvals", "avg_pool3d",
            "max_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d", "max_unpool2d", "max_unpool3d",
            "mse_loss", "nll_loss", "smooth_l1_loss", "cross_entropy", "l1_loss", "huber_loss", "kl_div",
            "binary_cross_entropy", "binary_cross_entropy_with_logits"),
}
_DEFAULT_DTYPE = {"cuda": "float16", "cpu": "bfloat16"}

_local = threading.local()  # .modes: this thread's stack of (device_type, dtype or None)
_lock = threading.Lock()
_installed: dict[type, object] = {}  # op class -> what its own __dict__ held under "apply" (or _MISSING)
_active = 0  # enabled autocast regions open over all threads
_MISSING = object()
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, UserWarning, stacklevel=3)


def _op_classes() -> dict[str, list[type]]:
    """Every op class by its op name (a subclass counts under its own name only)."""
    found: dict[str, list[type]] = defaultdict(list)
    todo = list(Function.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if "op" in cls.__dict__:
            found[cls.op].append(cls)
    return found


def _policy(device_type: str) -> dict[type, str]:
    """op class -> "lower" or "float32", for one device type."""
    classes = _op_classes()
    policy = {c: "float32" for name in FLOAT32[device_type] for c in classes.get(name, ())}
    policy.update({c: "lower" for name in LOWER[device_type] for c in classes.get(name, ())})
    return policy


@functools.cache
def _policies() -> dict[str, dict[type, str]]:
    return {d: _policy(d) for d in LOWER}


def _casting_apply(cls, *args, **options):
    """`apply` of an op class while autocast is installed: cast its inputs as this thread's autocast says."""
    modes = getattr(_local, "modes", None)
    mode = modes[-1] if modes else None
    if mode is not None and mode[1] is not None:
        rule = _policies()[mode[0]].get(cls)
        if rule is not None:
            target = mode[1] if rule == "lower" else dtypes.float32
            on_cpu = mode[0] == "cpu"
            args = tuple(_cast(a, target, on_cpu) for a in args)
    for base in cls.__mro__:
        original = _installed.get(base)
        if original is not None:
            break
    if original is _MISSING or original is None:
        return Function.apply.__func__(cls, *args, **options)
    return original.__func__(cls, *args, **options)


def _cast(a, target: dtypes.DType, on_cpu: bool):
    if not isinstance(a, Tensor):
        return a
    d = a.array.dtype
    if d.kind != "f" or d == np.float64 or d == target.np or (type(a.array) is np.ndarray) != on_cpu:
        return a
    return a.to(target)


def _install() -> None:
    classes = {c for policy in _policies().values() for c in policy}
    for cls in classes:
        _installed[cls] = cls.__dict__.get("apply", _MISSING)
    for cls in classes:
        cls.apply = classmethod(_casting_apply)


def _uninstall() -> None:
    for cls, original in _installed.items():
        if original is _MISSING:
            del cls.apply
        else:
            cls.apply = original
    _installed.clear()


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
        self._cast_to = self._target() if self._enabled else None
        self._entered: list[bool] = []

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
        global _active
        modes = _local.__dict__.setdefault("modes", [])
        # a disabled autocast nested in an enabled one turns casting off inside it, as in torch
        modes.append((self.device, self._cast_to))
        installs = self._cast_to is not None
        self._entered.append(installs)
        if installs:
            with _lock:
                if _active == 0:
                    _install()
                _active += 1
        return self

    def __exit__(self, *exc) -> None:
        global _active
        _local.modes.pop()
        if self._entered.pop():
            with _lock:
                _active -= 1
                if _active == 0:
                    _uninstall()

    def __call__(self, func: Callable) -> Callable:
        """Use as a decorator: `func` runs inside this autocast on every call."""

        @functools.wraps(func)
        def run(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled):
                return func(*args, **kwargs)

        return run


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """True inside an autocast of `device_type` that casts (as torch.is_autocast_enabled)."""
    modes = getattr(_local, "modes", None)
    return bool(modes) and modes[-1][0] == device_type and modes[-1][1] is not None


def get_autocast_dtype(device_type: str) -> dtypes.DType:
    """The dtype autocast of `device_type` casts to here: float16 inside an active one."""
    modes = getattr(_local, "modes", None)
    if modes and modes[-1][0] == device_type and modes[-1][1] is not None:
        return modes[-1][1]
    return dtypes.float16


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
                warnings.warn("engine.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                              UserWarning, stacklevel=2)
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
            return outputs * float(self._scale)
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
        state["found_inf"] = any(bool(f) for f in state["found_inf"])  # the one host sync of the step
        retval = None
        if not state["found_inf"]:
            retval = optimizer.step(*args, **kwargs)
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
            found = [s["found_inf"] for s in self._per_optimizer_states.values() if s["found_inf"] is not None]
            if not found:
                raise RuntimeError("No inf checks were recorded prior to update.")
            if any(f if isinstance(f, bool) else any(bool(x) for x in f) for f in found):
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
def _namespace(name: str, members: dict):
    import sys
    import types

    module = types.ModuleType(name, f"{name}: torch's older spelling of engine.amp for one device type.")
    module.__dict__.update(members)
    module.__all__ = sorted(members)
    sys.modules[name] = module
    return module


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


cuda_amp = _namespace("engine.cuda.amp", {"autocast": _cuda_autocast, "GradScaler": _cuda_grad_scaler})
cpu_amp = _namespace("engine.cpu.amp", {"autocast": _cpu_autocast})
