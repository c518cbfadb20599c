"""Lazy layers: LazyLinear, LazyConv1d/2d/3d, LazyConvTranspose1d/2d/3d, whose input size is read from the
first call, as in PyTorch.

Until then their weight and bias are UninitializedParameters (empty, `<UninitializedParameter>` in a
repr, listed by parameters() and state_dict()). The first call gives them their shape and PyTorch's
default init, in place, so the objects stay the same (an optimizer built from them still holds them),
and turns the module into the plain layer it stands for (LazyLinear becomes Linear). That happens in a
forward pre hook registered at construction, as in PyTorch, so the user's pre hooks see shaped parameters.
"""

from __future__ import annotations

from engine import creation
from engine.nn.layers.conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from engine.nn.layers.linear import Linear
from engine.nn.module import Module
from engine.nn.parameter import Parameter
from engine.tensor import Tensor


class UninitializedParameter(Parameter):
    """A parameter whose shape is not known yet; `materialize(shape)` makes it an ordinary Parameter."""

    __slots__ = ()

    def __init__(self, requires_grad: bool = True, device=None, dtype=None) -> None:
        super().__init__(creation.empty(0, device=device, dtype=dtype), requires_grad=requires_grad)

    def materialize(self, shape: tuple[int, ...]) -> None:
        """Give the parameter `shape` (uninitialised values, same device and dtype) and make it a Parameter."""
        fresh = creation.empty(tuple(shape), device=self.device, dtype=self.dtype)
        self.array = fresh.array
        self._vc[0] += 1
        self.__class__ = Parameter

    def __deepcopy__(self, memo: dict) -> UninitializedParameter:
        # still without a shape (Parameter's deepcopy would make it an empty, shaped Parameter)
        if id(self) not in memo:
            memo[id(self)] = UninitializedParameter(self.requires_grad, self.device, self.dtype)
        return memo[id(self)]

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


class _LazyMixin:
    """Reads the input size at the first call, shapes and initializes the parameters, and becomes
    `cls_to_become`."""

    cls_to_become: type[Module]

    def _make_lazy(self, names: tuple[str, ...]) -> None:
        for name in names:
            old = getattr(self, name)
            if old is not None:
                setattr(self, name, UninitializedParameter(old.requires_grad, old.device, old.dtype))
        # shaped in a forward pre hook registered now, as in PyTorch: the user's own pre hooks, registered
        # later, already see the shaped parameters (and a non-lazy module's call pays nothing for this)
        self._initialize_hook = self.register_forward_pre_hook(_infer_parameters)

    def has_uninitialized_params(self) -> bool:
        """Whether any parameter still waits for the first call."""
        return any(isinstance(p, UninitializedParameter) for p in self.parameters(recurse=False))

    def reset_parameters(self) -> None:
        # nothing to initialize before the first call (the base __init__ calls this with 0 input features)
        if not self.has_uninitialized_params() and self.weight.numel():
            super().reset_parameters()

    def _materialize(self, name: str, shape: tuple[int, ...]) -> None:
        """Shape parameter `name` unless it has its shape already (loaded from a checkpoint)."""
        p = getattr(self, name)
        if isinstance(p, UninitializedParameter):
            p.materialize(shape)

    def _infer(self, input: Tensor) -> None:
        """Shape (and, unless loaded from a checkpoint, initialize) the parameters; become the plain layer."""
        fresh = self.has_uninitialized_params()  # not when a checkpoint was loaded before the first call
        self.initialize_parameters(input)
        if fresh:
            self.reset_parameters()
        handle = self.__dict__.pop("_initialize_hook", None)
        if handle is not None:
            handle.remove()
        self.__class__ = self.cls_to_become

    def forward(self, input: Tensor, *args, **kwargs):
        # reached only when forward is called directly, without the module call that runs the pre hook
        self._infer(input)
        return self.forward(input, *args, **kwargs)


def _infer_parameters(module: _LazyMixin, args: tuple) -> None:
    """The forward pre hook of a lazy layer: shape its parameters from the first call's input."""
    if not args or not isinstance(args[0], Tensor):
        raise TypeError(f"{type(module).__name__}: the first call needs the input tensor as its first positional "
                        f"argument, to read the input size from")
    module._infer(args[0])


class LazyLinear(_LazyMixin, Linear):
    """Linear whose in_features is the last dim of the first input."""

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(0, out_features, bias, device, dtype)
        self._make_lazy(("weight", "bias"))

    def initialize_parameters(self, input: Tensor) -> None:
        """Shape the weight as (out_features, input.shape[-1])."""
        if input.ndim < 1:
            raise ValueError(f"LazyLinear: expected an input with at least 1 dim, got shape {tuple(input.shape)}")
        self.in_features = input.shape[-1]
        self._materialize("weight", (self.out_features, self.in_features))
        if self.bias is not None:
            self._materialize("bias", (self.out_features,))


class _LazyConv(_LazyMixin):
    """A convolution whose in_channels is the channel dim of the first input."""

    def __init__(self, out_channels: int, kernel_size, *args, **kwargs) -> None:
        super().__init__(0, out_channels, kernel_size, *args, **kwargs)
        self._make_lazy(("weight", "bias"))

    def initialize_parameters(self, input: Tensor) -> None:
        """Shape the weight from the input's channel count."""
        name, n = type(self).__name__, self.dims
        if input.ndim not in (n + 1, n + 2):
            raise ValueError(f"{name}: expected a {n + 1}D (unbatched) or {n + 2}D (batched) input, got "
                             f"shape {tuple(input.shape)}")
        channels = input.shape[-n - 1]
        if channels % self.groups:
            raise ValueError(f"{name}: the input's {channels} channels must be divisible by groups "
                             f"({self.groups}); input shape {tuple(input.shape)}")
        self.in_channels = channels
        if self.transposed:
            shape = (channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            shape = (self.out_channels, channels // self.groups, *self.kernel_size)
        self._materialize("weight", shape)
        if self.bias is not None:
            self._materialize("bias", (self.out_channels,))


def _lazy(conv: type[Module]) -> type[Module]:
    """The Lazy version of convolution class `conv` (LazyConv2d for Conv2d)."""
    name = f"Lazy{conv.__name__}"
    doc = f"{conv.__name__} whose in_channels is the channel dim of the first input."
    return type(name, (_LazyConv, conv), {"cls_to_become": conv, "__doc__": doc, "__module__": __name__,
                                          "__qualname__": name})


LazyConv1d, LazyConv2d, LazyConv3d = map(_lazy, (Conv1d, Conv2d, Conv3d))
LazyConvTranspose1d, LazyConvTranspose2d, LazyConvTranspose3d = map(
    _lazy, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d))
