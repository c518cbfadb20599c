"""torch.jit's names, as the engine runs them: eagerly. The engine shows every op to its debugger, so a function
or module given to `script` or `trace` is returned as it is and runs op by op; the decorators that steer TorchScript
(`ignore`, `unused`, `export`) return what they decorate. Saving or loading TorchScript archives is refused: save a
state_dict with engine.save instead.
"""

from __future__ import annotations

from collections.abc import Callable


def script(obj=None, *args, **kwargs):
    """`obj` itself (a function or module run eagerly); also as a bare decorator."""
    return obj


def trace(func, example_inputs=None, *args, **kwargs):
    """`func` itself, run eagerly on whatever inputs it gets later (nothing is recorded from `example_inputs`)."""
    if not callable(func):
        raise TypeError(f"trace: expected a function or module, got {type(func).__name__}")
    return func


def _passthrough(fn: Callable | None = None, **kwargs):
    return fn if fn is not None else (lambda f: f)


ignore = unused = export = _passthrough


def is_scripting() -> bool:
    """False: nothing is compiled to TorchScript."""
    return False


def is_tracing() -> bool:
    """False: nothing is traced."""
    return False


def annotate(the_type, the_value):
    """`the_value` (a type hint for TorchScript, which the engine does not compile)."""
    return the_value


def _no_archives(*args, **kwargs):
    raise RuntimeError("the engine has no TorchScript archives: save the model's state_dict with engine.save and "
                       "load it into the model's class with engine.load")


save = load = _no_archives
