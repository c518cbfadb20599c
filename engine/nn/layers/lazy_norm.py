"""Lazy normalization layers: LazyBatchNorm1d/2d/3d and LazyInstanceNorm1d/2d/3d, whose num_features is the
channel dim of the first input, as in PyTorch.

Until then weight and bias are UninitializedParameters and running_mean and running_var UninitializedBuffers
(num_batches_tracked is a plain 0, as torch's). The first call shapes them, resets them (unless a checkpoint
was loaded first) and turns the layer into BatchNorm2d, InstanceNorm1d ..., as engine.nn.layers.lazy does for
the other lazy layers. Defaults are torch's: affine and track_running_stats True, for the instance norms too.
"""

from __future__ import annotations

from engine.nn.buffer import UninitializedBuffer
from engine.nn.layers.lazy import UninitializedParameter, _LazyMixin
from engine.nn.layers.norm import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    _NormBase,
)
from engine.nn.module import Module
from engine.tensor import Tensor

_LAZY_BUFFERS = ("running_mean", "running_var")


class _LazyNorm(_LazyMixin):
    """A normalization layer whose num_features is read from the first input."""

    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None) -> None:
        super().__init__(0, eps, momentum, affine, track_running_stats, device, dtype)
        self._make_lazy(("weight", "bias"))
        for name in _LAZY_BUFFERS:
            old = self._buffers[name]
            if old is not None:
                self._buffers[name] = UninitializedBuffer(False, old.device, old.dtype)

    def has_uninitialized_params(self) -> bool:
        """Whether any parameter or running statistic still waits for the first call."""
        return any(isinstance(t, (UninitializedParameter, UninitializedBuffer))
                   for t in (*self._parameters.values(), *self._buffers.values()))

    def reset_parameters(self) -> None:
        # nothing to reset before the first call (the base __init__ calls this with 0 features)
        if not self.has_uninitialized_params() and self.num_features:
            _NormBase.reset_parameters(self)

    def _channels(self, input: Tensor) -> int:
        raise NotImplementedError

    def initialize_parameters(self, input: Tensor) -> None:
        """Shape weight, bias and the running statistics as (C,), C the input's channel count."""
        self.num_features = self._channels(input)
        shape = (self.num_features,)
        for name in ("weight", "bias"):
            self._materialize(name, shape)
        for name in _LAZY_BUFFERS:
            buffer = self._buffers[name]
            if isinstance(buffer, UninitializedBuffer):
                buffer.materialize(shape)


class _LazyBatchNorm(_LazyNorm):
    def _channels(self, input: Tensor) -> int:
        self._check_input_dim(input)
        return input.shape[1]


class _LazyInstanceNorm(_LazyNorm):
    def _channels(self, input: Tensor) -> int:
        if input.ndim != self.dims + 2:
            raise ValueError(f"{type(self).__name__}: expected a {self.dims + 2}D (N, C{', *' * self.dims}) input, "
                             f"got shape {tuple(input.shape)}")
        return input.shape[1]


def _lazy(base: type[_LazyNorm], norm: type[Module]) -> type[Module]:
    """The Lazy version of normalization class `norm` (LazyBatchNorm2d for BatchNorm2d)."""
    name = f"Lazy{norm.__name__}"
    doc = f"{norm.__name__} whose num_features is the channel dim of the first input."
    return type(name, (base, norm), {"cls_to_become": norm, "__doc__": doc, "__module__": __name__,
                                     "__qualname__": name})


LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d = (
    _lazy(_LazyBatchNorm, n) for n in (BatchNorm1d, BatchNorm2d, BatchNorm3d))
LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d = (
    _lazy(_LazyInstanceNorm, n) for n in (InstanceNorm1d, InstanceNorm2d, InstanceNorm3d))
