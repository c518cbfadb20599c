"""Padding and block-rearranging layers: F.pad, F.pixel_shuffle/unshuffle and F.fold/unfold as modules."""

from __future__ import annotations

from engine.nn import functional as F
from engine.nn.module import Module
from engine.tensor import Tensor

_SIDES = {1: "(left, right)", 2: "(left, right, top, bottom)",
          3: "(left, right, top, bottom, front, back)"}


class _PadNd(Module):
    """F.pad over the last `dims` dims; `padding` is one int for every side or 2*dims ints, last dim first."""

    mode = "constant"
    dims = 2

    def __init__(self, padding, value: float = 0.0) -> None:
        super().__init__()
        n = 2 * self.dims
        self.padding = (padding,) * n if isinstance(padding, int) else tuple(padding)
        if len(self.padding) != n or not all(isinstance(p, int) for p in self.padding):
            raise ValueError(f"{type(self).__name__}: padding must be an int or {n} ints {_SIDES[self.dims]}, "
                             f"got {padding!r}")
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        if self.mode != "constant" and input.ndim not in (self.dims + 1, self.dims + 2):
            raise ValueError(f"{type(self).__name__}: expected a {self.dims + 1}D (unbatched) or "
                             f"{self.dims + 2}D (batched) input, got shape {tuple(input.shape)}")
        return F.pad(input, self.padding, mode=self.mode, value=self.value)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ZeroPad(_PadNd):
    """Zeros around the last `dims` dims."""

    def __init__(self, padding) -> None:
        super().__init__(padding)


class _ConstantPad(_PadNd):
    """`value` around the last `dims` dims."""

    def __init__(self, padding, value: float) -> None:
        super().__init__(padding, value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class _ReflectionPad(_ZeroPad):
    """The last `dims` dims mirrored at their edges (the edge itself not repeated)."""

    mode = "reflect"


class _ReplicationPad(_ZeroPad):
    """The edge values of the last `dims` dims repeated outward."""

    mode = "replicate"


class _CircularPad(_ZeroPad):
    """The last `dims` dims wrapped around: the far edge's values padded onto the near side."""

    mode = "circular"


def _family(base: type, dims: int) -> type:
    """The `dims`-D layer of a padding family, named as in torch.nn (ZeroPad1d, ReflectionPad3d, ...)."""
    name = f"{base.__name__[1:]}{dims}d"
    doc = base.__doc__.replace("the last `dims` dims", f"the last {dims} dim{'s' if dims > 1 else ''}")
    return type(name, (base,), {"dims": dims, "__doc__": doc, "__module__": __name__, "__qualname__": name})


ZeroPad1d, ZeroPad2d, ZeroPad3d = (_family(_ZeroPad, d) for d in (1, 2, 3))
ConstantPad1d, ConstantPad2d, ConstantPad3d = (_family(_ConstantPad, d) for d in (1, 2, 3))
ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = (_family(_ReflectionPad, d) for d in (1, 2, 3))
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = (_family(_ReplicationPad, d) for d in (1, 2, 3))
CircularPad1d, CircularPad2d, CircularPad3d = (_family(_CircularPad, d) for d in (1, 2, 3))


class PixelShuffle(Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r)."""

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H r, W r) -> (*, C r^2, H, W)."""

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class Unfold(Module):
    """(N, C, H, W) -> (N, C*kh*kw, L): every sliding block as one column (F.unfold)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")


class Fold(Unfold):
    """(N, C*kh*kw, L) -> (N, C, H, W): columns summed back into an image of output_size (F.fold)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__(kernel_size, dilation, padding, stride)
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, " + super().extra_repr()
