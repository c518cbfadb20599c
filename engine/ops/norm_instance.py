"""instance_norm as torch.nn.functional.instance_norm, running statistics included.

With use_input_stats (training), each channel of each sample is normalized over its own values: group
norm with one group per channel, one node. Given running_mean and running_var, they also take in the
batch's per-sample statistics. Without use_input_stats, the running statistics normalize every sample:
batch norm in eval mode.
"""

from __future__ import annotations

import math

from engine.autograd.function import ShapeError
from engine.ops.nn import batch_norm, group_norm
from engine.tensor import Tensor


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel of each sample of (N, C, ...) by its own statistics (use_input_stats) or by
    the running ones, then a per-channel affine; running statistics given are updated when training."""
    if (running_mean is None) != (running_var is None):
        raise ValueError("instance_norm: running_mean and running_var must either both be None or neither be None")
    if not use_input_stats:
        if running_mean is None:
            raise ValueError("instance_norm: running_mean and running_var are required when use_input_stats=False")
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    if input.ndim < 3 or math.prod(input.shape[2:]) <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element when training, got input of shape "
                         f"{tuple(input.shape)}")
    out = group_norm(input, input.shape[1], weight, bias, eps)
    if running_mean is not None:
        _update_running_stats(input, running_mean, running_var, momentum)
    return out


def _update_running_stats(input: Tensor, running_mean: Tensor, running_var: Tensor, momentum: float) -> None:
    """Blend in the per-sample statistics averaged over the batch (unbiased variance), as PyTorch does."""
    channels = input.shape[1]
    for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
        if tuple(stat.shape) != (channels,):
            raise ShapeError(f"instance_norm: {name} has shape {tuple(stat.shape)} but the input has {channels} "
                             f"channels (input shape {tuple(input.shape)})")
    x = input.array
    spatial = tuple(range(2, x.ndim))
    # in place and without a version bump, as batch_norm does: buffers, not autograd inputs
    mean, var = running_mean.array, running_var.array
    mean *= 1 - momentum
    mean += momentum * x.mean(axis=spatial).mean(axis=0)
    var *= 1 - momentum
    var += momentum * x.var(axis=spatial, ddof=1).mean(axis=0)
