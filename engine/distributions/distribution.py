"""Distribution: the base class of every distribution, with torch.distributions.Distribution's API."""

from __future__ import annotations

import numbers

import numpy as np

import engine
from engine.autograd.grad_mode import no_grad
from engine.distributions import constraints
from engine.tensor import Tensor

_default_validate_args = __debug__


def _size(shape, what: str) -> engine.Size:
    if isinstance(shape, numbers.Integral) or not isinstance(shape, tuple | list):
        raise TypeError(f"{what} must be a tuple of ints such as (5,) or engine.Size([5]), got "
                        f"{type(shape).__name__} {shape!r}")
    return engine.Size(int(n) for n in shape)


def _first_bad(value: Tensor, valid) -> str:
    """The first value that fails a check, with its index, for a one-line error."""
    bad = np.logical_not(valid.get() if hasattr(valid, "get") else np.asarray(valid))
    arr = value._host()
    if bad.ndim == 0:
        return np.array2string(arr, threshold=8, separator=", ").replace("\n", "")
    where = tuple(int(i[0]) for i in np.nonzero(bad))
    try:
        hit = np.asarray(arr[where])
    except IndexError:  # the check broadcast the value against other parameters
        return np.array2string(arr, threshold=8, separator=", ").replace("\n", "")
    shown = hit.item() if hit.ndim == 0 else np.array2string(hit, threshold=8, separator=", ")
    return f"{shown} at index {where}".replace("\n", "")


class Distribution:
    """A batch of probability distributions: `batch_shape` independent ones, each over `event_shape` values."""

    has_rsample = False
    has_enumerate_support = False
    arg_constraints: dict = {}
    support = None
    _validate_args = __debug__

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Whether new distributions check their parameters and log_prob's values (True by default)."""
        if value not in (True, False):
            raise ValueError(f"set_default_validate_args expects True or False, got {value!r}")
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args: bool | None = None) -> None:
        self._batch_shape = _size(batch_shape, "batch_shape")
        self._event_shape = _size(event_shape, "event_shape")
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            for param, constraint in self.arg_constraints.items():
                if constraints.is_dependent(constraint):
                    continue
                if param not in self.__dict__ and isinstance(getattr(type(self), param, None), property | _lazy()):
                    continue  # made from another parameter on first use, and valid when that one is
                value = getattr(self, param)
                valid = constraint.check(value).array
                if not bool(valid.all()):
                    raise ValueError(
                        f"Expected parameter {param} ({type(value).__name__} of shape {tuple(value.shape)}) "
                        f"of distribution {self!r} to satisfy the constraint {constraint!r}, but found invalid "
                        f"values: {_first_bad(value, valid)}")

    # ---- shapes -------------------------------------------------------------------------------------------
    @property
    def batch_shape(self) -> engine.Size:
        """The shape over which parameters are batched."""
        return self._batch_shape

    @property
    def event_shape(self) -> engine.Size:
        """The shape of a single sample (without batching)."""
        return self._event_shape

    def _extended_shape(self, sample_shape=()) -> engine.Size:
        return engine.Size(_size(sample_shape, "sample_shape") + self._batch_shape + self._event_shape)

    def expand(self, batch_shape, _instance=None) -> Distribution:
        """A new distribution with its batch dims expanded to `batch_shape` (parameters are not copied)."""
        batch_shape = _size(batch_shape, "batch_shape")
        new = _instance if _instance is not None else type(self).__new__(type(self))
        for name, constraint in self.arg_constraints.items():
            if name in self.__dict__:  # a parameter keeps its event dims (a constraint's event_dim) on the right
                v, extra = self.__dict__[name], constraint.event_dim
                new.__dict__[name] = v.expand(tuple(batch_shape) + tuple(v.shape[v.ndim - extra:]))
        self._expand_extra(new, batch_shape)
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _expand_extra(self, new, batch_shape) -> None:
        """Copy attributes other than parameters onto an expanded instance."""

    # ---- statistics ---------------------------------------------------------------------------------------
    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement mean")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement mode")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement variance")

    @property
    def stddev(self) -> Tensor:
        """The standard deviation, sqrt(variance)."""
        return self.variance.sqrt()

    def entropy(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement entropy")

    def perplexity(self) -> Tensor:
        """exp(entropy)."""
        return self.entropy().exp()

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement log_prob")

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement cdf")

    def icdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement icdf")

    def enumerate_support(self, expand: bool = True) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement enumerate_support")

    # ---- sampling -----------------------------------------------------------------------------------------
    def sample(self, sample_shape=()) -> Tensor:
        """Samples of shape sample_shape + batch_shape + event_shape, outside autograd."""
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        """Reparameterised samples: gradients flow back to the parameters."""
        raise NotImplementedError(f"{type(self).__name__} has no rsample (has_rsample is False); use sample(), "
                                  "and a score-function estimator such as REINFORCE for gradients")

    def sample_n(self, n: int) -> Tensor:
        """n samples (deprecated in PyTorch: use sample((n,)))."""
        return self.sample((n,))

    # ---- checks -------------------------------------------------------------------------------------------
    def _validate_sample(self, value) -> None:
        """Raise ValueError when `value` has the wrong type or shape or lies outside the support."""
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event_dim_start = len(value.shape) - len(self._event_shape)
        if tuple(value.shape[event_dim_start:]) != tuple(self._event_shape):
            raise ValueError(f"The right-most size of value must match event_shape: {tuple(value.shape)} vs "
                             f"{tuple(self._event_shape)}.")
        actual = tuple(value.shape)
        expected = tuple(self._batch_shape + self._event_shape)
        for i, j in zip(reversed(actual), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: {actual} vs {expected}.")
        support = self.support
        if support is None or constraints.is_dependent(support):
            return
        valid = support.check(value).array
        if not bool(valid.all()):
            raise ValueError(f"Expected value argument ({type(value).__name__} of shape {actual}) to be within the "
                             f"support ({support!r}) of the distribution {self!r}, but found invalid values: "
                             f"{_first_bad(value, valid)}")

    def __repr__(self) -> str:
        params = [(k, self.__dict__[k]) for k in self.arg_constraints if k in self.__dict__]
        args = ", ".join(f"{k}: {v.item() if v.numel() == 1 else engine.Size(v.shape)}" for k, v in params)
        return f"{type(self).__name__}({args})"


def _lazy():
    from engine.distributions.utils import lazy_property

    return lazy_property
