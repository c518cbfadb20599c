"""Grad mode: whether ops record a graph (per thread, as in PyTorch)."""

from __future__ import annotations

import functools
import threading


class _GradState(threading.local):
    enabled = True
    inference = False  # inside inference_mode (not inference_mode(False)): new tensors are inference tensors


state = _GradState()


def is_grad_enabled() -> bool:
    """True when ops on tensors that require grad record a graph."""
    return state.enabled


class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.prev = state.enabled
        state.enabled = self.mode  # like PyTorch, also works as a plain function call

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        state.enabled = self.prev

    def __call__(self, fn):
        state.enabled = self.prev  # used as a decorator: the mode applies inside `fn` only

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self.mode):
                return fn(*args, **kwargs)

        return wrapper


class _Mode:
    mode = True  # what recording becomes inside; None leaves it as it is

    def __new__(cls, fn=None):
        # `@no_grad` without parentheses decorates `fn` directly, as in PyTorch
        self = super().__new__(cls)
        return self if fn is None else self(fn)

    def __enter__(self) -> None:
        self.prev = state.enabled
        state.enabled = self.prev if self.mode is None else self.mode  # None: leave it as it is

    def __exit__(self, *exc) -> None:
        state.enabled = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = state.enabled  # kept per call: recursion and threads are safe
            state.enabled = prev if self.mode is None else self.mode
            try:
                return fn(*args, **kwargs)
            finally:
                state.enabled = prev

        return wrapper


class no_grad(_Mode):
    """Context manager and decorator: ops inside record no graph."""

    mode = False


class enable_grad(_Mode):
    """Context manager and decorator: ops inside record a graph even within `no_grad`."""

    mode = True


class inference_mode(_Mode):
    """Context manager and decorator: as no_grad, and the tensors made inside are inference tensors
    (`is_inference()`, see engine.inference); `inference_mode(False)` leaves recording as it is."""

    mode = False
    on = True

    def __new__(cls, mode=True):
        if callable(mode):  # `@inference_mode` without parentheses
            return _Mode.__new__(cls, mode)
        self = _Mode.__new__(cls)
        self.mode = False if mode else None
        self.on = bool(mode)
        return self

    def __enter__(self) -> None:
        from engine import inference

        super().__enter__()
        self.prev_inference = state.inference
        state.inference = self.on
        inference.enter()

    def __exit__(self, *exc) -> None:
        from engine import inference

        inference.leave()
        state.inference = self.prev_inference
        super().__exit__(*exc)

    def __call__(self, fn):
        on = self.on

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(on):
                return fn(*args, **kwargs)

        return wrapper
