"""Process-wide switches with torch's names: threads, deterministic algorithms, anomaly mode, print options,
warnings, float32 matmul precision and the default device.

Where the engine has nothing to switch (its float32 matmuls are always full precision), the setting is
checked and recorded, so a ported script runs and reads back what it set; each docstring says which.
"""

from __future__ import annotations

import numbers
import os
import warnings

from engine import autograd as _autograd
from engine import backend, printing
from engine.autograd.inplace import forget as forget_writes
from engine.autograd.inplace import note_forward
from engine.events import BackwardEvent, OpEvent, hub


def _flag(op: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{op}(): argument '{name}' must be bool, not {type(value).__name__}")
    return value


# ---- threads ---------------------------------------------------------------------------------------------
_threads = {"intra": None, "interop": None}


def _count(op: str, n) -> int:
    if not isinstance(n, numbers.Integral):
        raise RuntimeError(f"{op} expects an int, but got {type(n).__name__}")
    if n <= 0:
        raise RuntimeError(f"{op} expects a positive integer")
    return int(n)


def set_num_threads(int: int, /) -> None:
    """Limit the threads of the CPU's numpy (BLAS) kernels: applied through threadpoolctl when it is installed,
    else only recorded (numpy's BLAS then uses what OMP_NUM_THREADS etc. gave it at start-up)."""
    n = _count("set_num_threads", int)
    _threads["intra"] = n
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: the engine does not depend on it
        return
    threadpool_limits(limits=n)


def get_num_threads() -> int:
    """What set_num_threads set, else os.cpu_count()."""
    return _threads["intra"] or os.cpu_count() or 1


def set_num_interop_threads(int: int, /) -> None:
    """Recorded only: the engine runs ops one after another on the calling thread."""
    _threads["interop"] = _count("set_num_interop_threads", int)


def get_num_interop_threads() -> int:
    """What set_num_interop_threads set, else os.cpu_count()."""
    return _threads["interop"] or os.cpu_count() or 1


# ---- determinism -----------------------------------------------------------------------------------------
_deterministic = {"mode": False, "warn_only": False}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Recorded only: the engine's CPU kernels are deterministic, and no GPU kernel is refused or warned about."""
    _deterministic["mode"] = _flag("use_deterministic_algorithms", "mode", mode)
    _deterministic["warn_only"] = mode and _flag("use_deterministic_algorithms", "warn_only", warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    """What use_deterministic_algorithms set."""
    return _deterministic["mode"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """Whether use_deterministic_algorithms was given warn_only=True (with mode=True)."""
    return _deterministic["warn_only"]


# ---- anomaly mode ----------------------------------------------------------------------------------------
_anomaly = {"enabled": False, "check_nan": True, "undo": None}
_node_names: dict[str, str] = {}


def _note_node_name(cls) -> None:
    # classes may share an op name (div and its rounded form, softmax and attention's): the one named for the op
    # ("Div" for "div") names its nodes, whatever order the classes are found in
    if cls.op not in _node_names or cls.__name__.lower() == cls.op.replace("_", ""):
        _node_names[cls.op] = cls.name()


def _node_name(op: str) -> str:
    """The backward node's name ("SqrtBackward0") of an op name ("sqrt")."""
    if not _node_names:  # every op class so far, then each one defined later as it is
        from engine.autograd.function import NEW_OP_LISTENERS, op_classes

        for cls in op_classes():
            _note_node_name(cls)
        NEW_OP_LISTENERS.append(_note_node_name)
    return _node_names.get(op, op)


def _anomaly_listener(event, inputs, outputs) -> None:
    """Anomaly mode: keep each forward op's line (the in-place modification error names it), and with check_nan
    raise as torch does when a backward node returns NaN (a slice's gradient holds `values`)."""
    kind = event.__class__
    if kind is OpEvent:
        note_forward(event)
    elif kind is BackwardEvent and _anomaly["check_nan"]:
        from engine.debug.nonfinite import has_nan  # (anomaly mode only: engine.debug is not loaded at start-up)

        for i, g in enumerate(outputs):
            g = getattr(g, "values", g)
            if g is not None and has_nan(g):
                raise RuntimeError(f"Function '{_node_name(event.op)}' returned nan values in its {i}th output.")


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    """Turn anomaly mode on or off: ops then emit events, which slows them, and keep their lines, so that the
    in-place modification error names the line that saved the tensor; with check_nan, backward raises at the
    first node whose gradient holds NaN (naming it as torch does). engine.debug.watch names the forward op and
    source line where NaN started."""
    _flag("set_anomaly_enabled", "enabled", enabled)
    _flag("set_anomaly_enabled", "check_nan", check_nan)
    if enabled and _anomaly["undo"] is None:
        _anomaly["undo"] = hub.listen_tensors(_anomaly_listener)
    elif not enabled and _anomaly["undo"] is not None:
        undo, _anomaly["undo"] = _anomaly["undo"], None
        undo()
        forget_writes()
    _anomaly["enabled"], _anomaly["check_nan"] = enabled, check_nan


def is_anomaly_enabled() -> bool:
    """Whether anomaly mode is on."""
    return _anomaly["enabled"]


def is_anomaly_check_nan_enabled() -> bool:
    """Whether anomaly mode checks backward for NaN."""
    return _anomaly["enabled"] and _anomaly["check_nan"]


class set_detect_anomaly:
    """Anomaly mode on or off, as torch.autograd.set_detect_anomaly: a call, or a context manager that restores."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev = (_anomaly["enabled"], _anomaly["check_nan"])
        set_anomaly_enabled(mode, check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        set_anomaly_enabled(*self.prev)


class detect_anomaly:
    """Context manager (and decorator) with anomaly mode on, as torch.autograd.detect_anomaly."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> None:
        self.prev = (_anomaly["enabled"], _anomaly["check_nan"])
        set_anomaly_enabled(True, self.check_nan)

    def __exit__(self, *exc) -> None:
        set_anomaly_enabled(*self.prev)

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


# ---- printing --------------------------------------------------------------------------------------------
_PROFILES = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80), "full": (4, float("inf"), 3, 80)}


def set_printoptions(precision: int | None = None, threshold: float | None = None, edgeitems: int | None = None,
                     linewidth: int | None = None, profile: str | None = None, sci_mode: bool | None = None) -> None:
    """How tensors print, as torch.set_printoptions: digits after the point, the element count above which
    tensors are summarized with '...', entries kept at each end, line width, a profile ('default', 'short',
    'full') and sci_mode (True/False forces scientific notation on/off, None chooses)."""
    if profile is not None and profile not in _PROFILES:
        raise ValueError(f"set_printoptions: unknown profile {profile!r}; expected one of {', '.join(_PROFILES)}")
    given = {"precision": precision, "threshold": threshold, "edgeitems": edgeitems, "linewidth": linewidth}
    for name, value in given.items():
        kind = numbers.Real if name == "threshold" else numbers.Integral
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise TypeError(f"set_printoptions: {name} must be {'a number' if name == 'threshold' else 'an int'}, "
                            f"got {type(value).__name__}")
        if value is not None and value < 0:
            raise ValueError(f"set_printoptions: {name} must be non-negative, got {value}")
    if sci_mode is not None and not isinstance(sci_mode, bool):
        raise TypeError(f"set_printoptions: sci_mode must be True, False or None, got {sci_mode!r}")
    if profile is not None:
        printing.PRECISION, printing.THRESHOLD, printing.EDGEITEMS, printing.LINEWIDTH = _PROFILES[profile]
    for name, value in given.items():
        if value is not None:
            setattr(printing, name.upper(), value)
    printing.SCI_MODE = sci_mode


# ---- warnings, matmul precision, default device -----------------------------------------------------------
_state = {"warn_always": False, "matmul_precision": "highest"}


def set_warn_always(b: bool, /) -> None:
    """Recorded only: the engine's warn-once warnings (engine.amp's) still warn once."""
    if not isinstance(b, bool):
        raise RuntimeError(f"set_warn_always expects a bool, but got {type(b).__name__}")
    _state["warn_always"] = b


def is_warn_always_enabled() -> bool:
    """What set_warn_always set."""
    return _state["warn_always"]


def set_float32_matmul_precision(precision: str) -> None:
    """Recorded only ('highest', 'high' or 'medium'): the engine's float32 matmuls (numpy, CuPy without TF32)
    always run in full float32 precision."""
    if not isinstance(precision, str):
        raise RuntimeError(f"set_float32_matmul_precision expects a str, but got {type(precision).__name__}")
    if precision not in ("highest", "high", "medium"):
        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current "
                      "set_float32_matmul_precision call has no effect.", UserWarning, stacklevel=2)
        return
    _state["matmul_precision"] = precision


def get_float32_matmul_precision() -> str:
    """What set_float32_matmul_precision set ('highest' by default)."""
    return _state["matmul_precision"]


def get_default_device() -> backend.Device:
    """engine.device('cpu'): where creation functions put tensors when given no device."""
    return backend.CPU


def set_default_device(device) -> None:
    """Accepts 'cpu' (or None); another default device is refused: creation functions take device='cuda'."""
    try:
        dev = backend.device(device)
    except ValueError as err:
        raise RuntimeError(str(err)) from None
    if dev.type != "cpu":
        raise RuntimeError(f"set_default_device({str(dev)!r}): the engine creates tensors on the CPU unless told "
                           "otherwise; pass device= to creation functions or move tensors with .to(device)")


# torch.autograd's spellings of anomaly mode, where ported scripts look for them
_autograd.detect_anomaly = detect_anomaly
_autograd.set_detect_anomaly = set_detect_anomaly

__all__ = [
    "are_deterministic_algorithms_enabled", "get_default_device", "get_float32_matmul_precision",
    "get_num_interop_threads", "get_num_threads", "is_anomaly_check_nan_enabled", "is_anomaly_enabled",
    "is_deterministic_algorithms_warn_only_enabled", "is_warn_always_enabled", "set_anomaly_enabled",
    "set_default_device", "set_float32_matmul_precision", "set_num_interop_threads", "set_num_threads",
    "set_printoptions", "set_warn_always", "use_deterministic_algorithms",
]
