"""Inference tensors: the tensors made inside `engine.inference_mode()`, as in torch.

Their mark is the type of their version counter (`_vc`, shared by a storage's views and detached aliases), so a
view of an inference tensor is one too and a view made in inference mode of a normal tensor is not, as in torch;
and no tensor carries anything more. While some thread is in inference mode, `Tensor._wrap` and `Tensor._hold`
are replaced by versions that mark what they make there; outside it they are the plain ones, so making a tensor
costs nothing more. A version bump of an inference tensor outside inference mode (every in-place write does one)
raises torch's error; since the bump comes after the write, the tensor then already holds the new values.
"""

from __future__ import annotations

import threading

from engine.autograd.grad_mode import state
from engine.tensor import Tensor

_INPLACE_ERROR = ("Inplace update to inference tensor outside InferenceMode is not allowed. You can make a clone to "
                  "get a normal tensor before doing inplace update.")


class InferenceVersion(list):
    """The version counter of an inference tensor's storage: a list as every `_vc`, whose type is the mark."""

    __slots__ = ()

    def __setitem__(self, index, value) -> None:
        if not state.inference:
            raise RuntimeError(_INPLACE_ERROR)
        list.__setitem__(self, index, value)


def is_inference_mode_enabled() -> bool:
    """True inside `engine.inference_mode()`, unless an `inference_mode(False)` inside it is open."""
    return state.inference


def is_inference(t: Tensor) -> bool:
    """True for a tensor made in inference mode, or a view of one (Tensor.is_inference)."""
    return t._vc.__class__ is InferenceVersion


_plain_wrap = Tensor.__dict__["_wrap"].__func__
_plain_hold = Tensor.__dict__["_hold"]


def _marking_wrap(cls, data, requires_grad: bool = False, base: Tensor | None = None) -> Tensor:
    t = _plain_wrap(cls, data, requires_grad, base)
    if base is None and state.inference:
        t._vc = InferenceVersion(t._vc)
    return t


def _marking_hold(self: Tensor, data, requires_grad: bool = False) -> None:
    _plain_hold(self, data, requires_grad)
    if state.inference:
        self._vc = InferenceVersion(self._vc)


_lock = threading.Lock()
_inside = 0  # how many inference_mode blocks are open, in all threads


def enter() -> None:
    """An inference_mode block opens: the first one installs the marking constructors."""
    global _inside
    with _lock:
        if not _inside:
            Tensor._wrap = classmethod(_marking_wrap)
            Tensor._hold = _marking_hold
        _inside += 1


def leave() -> None:
    """An inference_mode block closes: the last one puts the plain constructors back."""
    global _inside
    with _lock:
        _inside -= 1
        if not _inside:
            Tensor._wrap = classmethod(_plain_wrap)
            Tensor._hold = _plain_hold
