"""Padding and pixel-shuffle layers: F.pad and F.pixel_shuffle with their arguments kept."""

from __future__ import annotations

from engine.nn import functional as F
from engine.nn.module import Module
from engine.tensor import Tensor


class _Pad2d(Module):
    """F.pad over the last two dims; `padding` is one int for all four sides or (left, right, top, bottom)."""

    mode = "constant"

    def __init__(self, padding, value: float = 0.0) -> None:
        super().__init__()
        self.padding = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
        if len(self.padding) != 4:
            raise ValueError(f"{type(self).__name__}: padding must be an int or 4 ints (left, right, top, "
                             f"bottom), got {padding!r}")
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        return F.pad(input, self.padding, mode=self.mode, value=self.value)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(_Pad2d):
    """Zeros around the last two dims."""

    def __init__(self, padding) -> None:
        super().__init__(padding)


class ConstantPad2d(_Pad2d):
    """`value` around the last two dims."""

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ReflectionPad2d(_Pad2d):
    """The last two dims mirrored at their edges (the edge itself not repeated)."""

    mode = "reflect"

    def __init__(self, padding) -> None:
        super().__init__(padding)


class ReplicationPad2d(_Pad2d):
    """The edge values of the last two dims repeated outward."""

    mode = "replicate"

    def __init__(self, padding) -> None:
        super().__init__(padding)


class PixelShuffle(Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r)."""

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"
