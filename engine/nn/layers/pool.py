"""Pooling layers: max, average, adaptive, Lp pooling and max unpooling (the functional is the class's data)."""

from __future__ import annotations

from collections.abc import Callable

from engine.nn import functional as F
from engine.nn.module import Module
from engine.tensor import Tensor


class _MaxPoolNd(Module):
    """The maximum over each kernel_size window."""

    function: Callable[..., Tensor]

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor):
        return self.function(input, self.kernel_size, self.stride, self.padding, self.dilation,
                             ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max pooling of (N, C, L) inputs."""

    function = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """Max pooling of (N, C, H, W) inputs."""

    function = staticmethod(F.max_pool2d)


class MaxPool3d(_MaxPoolNd):
    """Max pooling of (N, C, D, H, W) inputs."""

    function = staticmethod(F.max_pool3d)


class _AvgPoolNd(Module):
    """The mean over each kernel_size window."""

    function: Callable[..., Tensor]

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return self.function(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                             self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Average pooling of (N, C, L) inputs."""

    function = staticmethod(F.avg_pool1d)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        # torch keeps these as 1-tuples here (and only here), which its repr shows
        stride = kernel_size if stride is None else stride
        kernel_size, stride, padding = (v if isinstance(v, tuple) else (v,)
                                        for v in (kernel_size, stride, padding))
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """Average pooling of (N, C, H, W) inputs; `divisor_override` replaces the window size."""

    function = staticmethod(F.avg_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return self.function(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                             self.count_include_pad, self.divisor_override)


class AvgPool3d(AvgPool2d):
    """Average pooling of (N, C, D, H, W) inputs; `divisor_override` replaces the window size."""

    function = staticmethod(F.avg_pool3d)


class _AdaptiveAvgPoolNd(Module):
    """Average pooling to a fixed output size, whatever the input size."""

    function: Callable[..., Tensor]

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return self.function(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling of (N, C, L) inputs to L_out."""

    function = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling of (N, C, H, W) inputs to (H_out, W_out)."""

    function = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Adaptive average pooling of (N, C, D, H, W) inputs to (D_out, H_out, W_out)."""

    function = staticmethod(F.adaptive_avg_pool3d)


class _AdaptiveMaxPoolNd(_AdaptiveAvgPoolNd):
    """Max pooling to a fixed output size; with `return_indices`, also where each max was."""

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input: Tensor):
        return self.function(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Adaptive max pooling of (N, C, L) inputs to L_out."""

    function = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Adaptive max pooling of (N, C, H, W) inputs to (H_out, W_out)."""

    function = staticmethod(F.adaptive_max_pool2d)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Adaptive max pooling of (N, C, D, H, W) inputs to (D_out, H_out, W_out)."""

    function = staticmethod(F.adaptive_max_pool3d)


class _MaxUnpoolNd(Module):
    """Partial inverse of max pooling: each value at the index its max pooling returned, zeros elsewhere."""

    function: Callable[..., Tensor]
    spatial: int

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = (
            tuple(v) if isinstance(v, tuple | list) else (v,) * self.spatial
            for v in (kernel_size, kernel_size if stride is None else stride, padding))

    def forward(self, input: Tensor, indices: Tensor, output_size=None) -> Tensor:
        return self.function(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Max unpooling of (N, C, L) inputs (the indices of MaxPool1d(return_indices=True))."""

    function = staticmethod(F.max_unpool1d)
    spatial = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """Max unpooling of (N, C, H, W) inputs (the indices of MaxPool2d(return_indices=True))."""

    function = staticmethod(F.max_unpool2d)
    spatial = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """Max unpooling of (N, C, D, H, W) inputs (the indices of MaxPool3d(return_indices=True))."""

    function = staticmethod(F.max_unpool3d)
    spatial = 3


class _LPPoolNd(Module):
    """Power-average pooling: (sum of x**norm_type over each window)**(1/norm_type)."""

    function: Callable[..., Tensor]

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        return self.function(input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    """Lp pooling of (N, C, L) inputs."""

    function = staticmethod(F.lp_pool1d)


class LPPool2d(_LPPoolNd):
    """Lp pooling of (N, C, H, W) inputs."""

    function = staticmethod(F.lp_pool2d)


class LPPool3d(_LPPoolNd):
    """Lp pooling of (N, C, D, H, W) inputs."""

    function = staticmethod(F.lp_pool3d)
