"""Activation layers. Each is one functional plus its constructor arguments, declared as data."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from engine.nn import functional as F
from engine.nn.module import Module
from engine.nn.settings import Setting
from engine.tensor import Tensor


class _Activation(Module):
    """`forward(x) = function(x, *arguments)`, where `arguments` are (name, default) pairs in the
    functional's order; the constructor takes the same names, and repr shows them as torch does."""

    function: Callable[..., Tensor]
    arguments: tuple[tuple[str, Any], ...] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        cls.__signature__ = inspect.Signature(
            [inspect.Parameter(name, kind, default=default) for name, default in cls.arguments])
        cls._names = tuple(name for name, _ in cls.arguments)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        try:
            bound = self.__signature__.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{type(self).__name__}: {err}") from None
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            setattr(self, name, value)

    def forward(self, input: Tensor) -> Tensor:
        return self.function(input, *[getattr(self, name) for name in self._names])

    def extra_repr(self) -> str:
        parts = [f"{name}={getattr(self, name)!r}" for name in self._names if name != "inplace"]
        if getattr(self, "inplace", False):
            parts.append("inplace=True")
        return ", ".join(parts)


class ReLU(_Activation):
    """max(0, x)."""

    function = staticmethod(F.relu)
    arguments = (("inplace", False),)


class LeakyReLU(_Activation):
    """x for x >= 0, negative_slope * x otherwise."""

    function = staticmethod(F.leaky_relu)
    arguments = (("negative_slope", 0.01), ("inplace", False))
    settings = (Setting("negative_slope", float, doc="slope of the negative part"),)


class ELU(_Activation):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    function = staticmethod(F.elu)
    arguments = (("alpha", 1.0), ("inplace", False))
    settings = (Setting("alpha", float, doc="value the negative part saturates to (as -alpha)"),)


class Hardtanh(_Activation):
    """x clipped to [min_val, max_val]."""

    function = staticmethod(F.hardtanh)
    arguments = (("min_val", -1.0), ("max_val", 1.0), ("inplace", False))
    settings = (
        Setting("min_val", float, doc="lower end of the linear region"),
        Setting("max_val", float, doc="upper end of the linear region"),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.min_val > self.max_val:
            raise ValueError(f"Hardtanh: min_val cannot be greater than max_val (got {self.min_val} and "
                             f"{self.max_val})")


class ReLU6(_Activation):
    """min(max(x, 0), 6)."""

    function = staticmethod(F.relu6)
    arguments = (("inplace", False),)


class GELU(_Activation):
    """x * Phi(x), exactly or with the tanh approximation."""

    function = staticmethod(F.gelu)
    arguments = (("approximate", "none"),)
    settings = (Setting("approximate", str, choices=("none", "tanh"), doc="erf or tanh form"),)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {self.approximate!r}")


class SiLU(_Activation):
    """x * sigmoid(x) (swish)."""

    function = staticmethod(F.silu)
    arguments = (("inplace", False),)


class Tanh(_Activation):
    """tanh(x)."""

    function = staticmethod(F.tanh)


class Sigmoid(_Activation):
    """1 / (1 + exp(-x))."""

    function = staticmethod(F.sigmoid)


class Softplus(_Activation):
    """log(1 + exp(beta * x)) / beta; linear where beta * x > threshold."""

    function = staticmethod(F.softplus)
    arguments = (("beta", 1.0), ("threshold", 20.0))
    settings = (
        Setting("beta", float, low=0.0, low_open=True, doc="sharpness of the curve"),
        Setting("threshold", float, doc="above beta * x > threshold the output is x"),
    )


class Softmax(_Activation):
    """exp(x) / sum(exp(x)) along `dim`."""

    function = staticmethod(F.softmax)
    arguments = (("dim", None),)


class LogSoftmax(_Activation):
    """log(softmax(x)) along `dim`, computed stably."""

    function = staticmethod(F.log_softmax)
    arguments = (("dim", None),)


class GLU(_Activation):
    """The first half of `dim` times the sigmoid of the second half."""

    function = staticmethod(F.glu)
    arguments = (("dim", -1),)


class PReLU(Module):
    """x for x > 0, a * x otherwise, with `a` learned: one slope, or one per channel (`num_parameters`)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25) -> None:
        super().__init__()
        from engine.creation import full
        from engine.nn.parameter import Parameter

        self.num_parameters = num_parameters
        self.weight = Parameter(full((num_parameters,), float(init)))

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class _Silent(_Activation):
    """An activation whose repr shows no arguments (torch's Hardswish and Hardsigmoid hide `inplace`)."""

    def extra_repr(self) -> str:
        return ""


class _Shrink(_Activation):
    """Torch's shrink layers show only the threshold, unnamed: `Hardshrink(0.5)`."""

    arguments = (("lambd", 0.5),)
    settings = (Setting("lambd", float, low=0.0, doc="half-width of the band around 0 that maps to 0"),)

    def extra_repr(self) -> str:
        return str(self.lambd)


class Mish(_Activation):
    """x * tanh(softplus(x))."""

    function = staticmethod(F.mish)
    arguments = (("inplace", False),)


class Hardswish(_Silent):
    """x * relu6(x + 3) / 6."""

    function = staticmethod(F.hardswish)
    arguments = (("inplace", False),)


class Hardsigmoid(_Silent):
    """relu6(x + 3) / 6."""

    function = staticmethod(F.hardsigmoid)
    arguments = (("inplace", False),)


class SELU(_Activation):
    """scale * elu(x, alpha) with the self-normalizing constants."""

    function = staticmethod(F.selu)
    arguments = (("inplace", False),)


class CELU(_Activation):
    """x for x > 0, alpha * (exp(x / alpha) - 1) otherwise."""

    function = staticmethod(F.celu)
    arguments = (("alpha", 1.0), ("inplace", False))
    settings = (Setting("alpha", float, doc="value the negative part saturates to (as -alpha)"),)


class Softsign(_Activation):
    """x / (1 + |x|)."""

    function = staticmethod(F.softsign)


class Tanhshrink(_Activation):
    """x - tanh(x)."""

    function = staticmethod(F.tanhshrink)


class LogSigmoid(_Activation):
    """log(sigmoid(x))."""

    function = staticmethod(F.logsigmoid)


class Threshold(_Activation):
    """x where x > threshold, else value."""

    function = staticmethod(F.threshold)
    arguments = (("threshold", inspect.Parameter.empty), ("value", inspect.Parameter.empty), ("inplace", False))
    settings = (
        Setting("threshold", float, doc="inputs at or below it are replaced"),
        Setting("value", float, doc="what replaces them"),
    )


class Hardshrink(_Shrink):
    """x where |x| > lambd, else 0."""

    function = staticmethod(F.hardshrink)


class Softshrink(_Shrink):
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""

    function = staticmethod(F.softshrink)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.lambd < 0:
            raise ValueError(f"Softshrink: lambda must be greater or equal to 0, but found to be {self.lambd}")


class RReLU(_Activation):
    """Leaky relu with a random negative slope from U(lower, upper) in training, their mean in eval."""

    function = staticmethod(F.rrelu)
    arguments = (("lower", 1.0 / 8), ("upper", 1.0 / 3), ("inplace", False))
    settings = (
        Setting("lower", float, doc="lower bound of the random negative slope"),
        Setting("upper", float, doc="upper bound of the random negative slope"),
    )

    def forward(self, input: Tensor) -> Tensor:
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)


class Softmin(_Activation):
    """exp(-x) / sum(exp(-x)) along `dim`."""

    function = staticmethod(F.softmin)
    arguments = (("dim", None),)


class Softmax2d(_Activation):
    """softmax over the channels (dim -3) of a (C, H, W) or (N, C, H, W) input."""

    function = staticmethod(F.softmax)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.ndim}D instead")
        return F.softmax(input, -3)
