"""torch.utils.checkpoint's names (`from torch.utils.checkpoint import checkpoint`): gradient checkpointing.

The engine runs the checkpointed function as an ordinary call and keeps its activations: values and gradients
are exactly what checkpointing gives, the memory it would save is not saved. A debugger wants every op of the
forward recorded once, which recomputing in backward would record again.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

__all__ = ["checkpoint", "checkpoint_sequential"]


def checkpoint(function: Callable, *args, use_reentrant: bool | None = None, context_fn=None,
               determinism_check: str = "default", debug: bool = False, preserve_rng_state: bool = True, **kwargs):
    """`function(*args, **kwargs)`, as torch.utils.checkpoint.checkpoint computes it (see the module docstring:
    activations are kept, not recomputed)."""
    if use_reentrant is None:  # torch warns when it is not passed explicitly
        warnings.warn("torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly; the engine "
                      "runs the function as an ordinary call either way", stacklevel=2)
    if not callable(function):
        raise TypeError(f"checkpoint: expected a callable, got {type(function).__name__}")
    return function(*args, **kwargs)


def checkpoint_sequential(functions, segments: int, input, use_reentrant: bool | None = None, **kwargs):
    """Run `functions` (a Sequential or a list of modules) one after another on `input`, as
    torch.utils.checkpoint.checkpoint_sequential computes it (activations kept)."""
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be a positive int, got {segments!r}")
    children = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if not all(callable(f) for f in children):
        raise TypeError("checkpoint_sequential: functions must be a Sequential or a list of callables")
    for f in children:
        input = f(input)
    return input
