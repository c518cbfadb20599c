"""The layer functions torch also has at its top level (torch.conv2d, torch.batch_norm, torch.kl_div ...), so that
`engine.conv2d` works as `torch.conv2d` does, and the few functionals that are new here (channel_shuffle,
bilinear, relu_, constant_pad_nd, convolution, conv_tbc).

Where torch's top-level function is the functional itself (torch.conv2d is F.conv2d) the engine's is F's too.
Where torch's differs (the ATen signature: torch.batch_norm puts weight and bias before the running statistics,
losses take `reduction` as an int 0/1/2, torch.embedding takes the weight first), the function here has
torch's signature and calls the functional. All of it lives in engine.ops, so `import engine` needs no engine.nn.
"""

from __future__ import annotations

from engine.autograd.function import ShapeError
from engine.backend import array_module
from engine.ops import elementwise as _elementwise
from engine.ops import loss as _loss
from engine.ops import margin_loss as _margin
from engine.ops import nn as _nn
from engine.ops.activation import dropout as _dropout
from engine.ops.activation import dropout2d as _dropout2d
from engine.ops.activation import prelu
from engine.ops.conv import (
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from engine.ops.ctc import ctc_loss as _ctc_loss
from engine.ops.dropout_more import alpha_dropout as _alpha_dropout
from engine.ops.dropout_more import feature_alpha_dropout as _feature_alpha_dropout
from engine.ops.embedding_bag import embedding as _embedding
from engine.ops.embedding_bag import embedding_bag as _embedding_bag
from engine.ops.fold import pixel_unshuffle
from engine.ops.norm_instance import instance_norm as _instance_norm
from engine.ops.pool import adaptive_avg_pool1d, avg_pool1d
from engine.ops.pool import adaptive_max_pool1d as _adaptive_max_pool1d
from engine.ops.pool import max_pool1d as _max_pool1d
from engine.ops.pool import max_pool2d as _max_pool2d
from engine.ops.pool import max_pool3d as _max_pool3d
from engine.ops.shape import pad, pixel_shuffle
from engine.ops.similarity import cosine_similarity
from engine.tensor import Tensor

__all__ = [
    "adaptive_avg_pool1d", "adaptive_max_pool1d", "alpha_dropout", "avg_pool1d", "batch_norm",
    "bilinear", "binary_cross_entropy_with_logits", "channel_shuffle", "constant_pad_nd", "conv1d", "conv2d",
    "conv3d", "conv_tbc", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "convolution",
    "cosine_embedding_loss", "cosine_similarity", "ctc_loss", "dropout", "embedding", "embedding_bag",
    "feature_alpha_dropout", "feature_dropout", "group_norm", "hinge_embedding_loss", "instance_norm", "kl_div",
    "layer_norm", "margin_ranking_loss", "max_pool1d", "max_pool2d", "max_pool3d", "native_channel_shuffle",
    "pairwise_distance", "pixel_shuffle", "pixel_unshuffle", "poisson_nll_loss", "prelu", "relu_",
    "triplet_margin_loss",
]

pairwise_distance = _margin.pairwise_distance

REDUCTIONS = ("none", "mean", "sum")  # torch's at::Reduction enum: 0, 1, 2


def _reduction(op: str, reduction) -> str:
    """torch's int reduction (0 none, 1 mean, 2 sum) as the functional's string."""
    if isinstance(reduction, bool) or not isinstance(reduction, int):
        raise TypeError(f"{op}(): argument 'reduction' must be int (0 none, 1 mean, 2 sum), not "
                        f"{type(reduction).__name__}; the string form is engine.nn.functional.{op}'s")
    if reduction not in range(len(REDUCTIONS)):
        raise ValueError(f"{op}: reduction must be 0 (none), 1 (mean) or 2 (sum), got {reduction}")
    return REDUCTIONS[reduction]


# ---- new functionals, the same function at the top level and in F (as torch's are) -------------------------
def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Split the C channels of (N, C, *) into `groups` groups and interleave them (ShuffleNet's shuffle)."""
    if input.ndim < 3:
        raise RuntimeError(f"channel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"sizes {list(input.shape)}")
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    n, c, *rest = input.shape
    if c % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(input.shape)


def native_channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """channel_shuffle (torch's name for the kernel without the quantized-tensor dispatch)."""
    return channel_shuffle(input, groups)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y_k = x1^T W_k x2 + b_k over the last dims, W of shape (out, in1, in2), as torch.nn.functional.bilinear."""
    if weight.ndim != 3:
        raise ShapeError(f"bilinear(): weight must be three-dimensional, got shape {tuple(weight.shape)}")
    if input1.shape[:-1] != input2.shape[:-1]:
        raise ShapeError(f"bilinear(): input batch dimensions do not match: got {tuple(input1.shape[:-1])} "
                         f"and {tuple(input2.shape[:-1])}")
    o, i, j = weight.shape
    if input1.shape[-1] != i or input2.shape[-1] != j:
        raise ShapeError(f"bilinear(): input sizes {input1.shape[-1]} and {input2.shape[-1]} do not match the "
                         f"weight's (in1, in2) = ({i}, {j}) of shape {tuple(weight.shape)}")
    # x1 @ W seen as (in1, out * in2): one matmul, then a product with x2 summed over in2
    mixed = input1 @ weight.permute(1, 0, 2).reshape(i, o * j)
    out = (mixed.unflatten(-1, (o, j)) * input2.unsqueeze(-2)).sum(-1)
    return out if bias is None else out + bias


def relu_(input: Tensor) -> Tensor:
    """In-place relu."""
    return input._write(_elementwise.relu)


def constant_pad_nd(input: Tensor, pad: list[int], value: float = 0) -> Tensor:
    """Pad the trailing dims by the (before, after) pairs of `pad`, last dim first, with `value`."""
    return _pad(input, pad, "constant", value)


_pad = pad


# ---- top-level signatures that differ from the functional's ------------------------------------------------
_CONV = {(False, 1): conv1d, (False, 2): conv2d, (False, 3): conv3d,
         (True, 1): conv_transpose1d, (True, 2): conv_transpose2d, (True, 3): conv_transpose3d}


def convolution(input: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, dilation, transposed: bool,
                output_padding, groups: int) -> Tensor:
    """Any convolution, picked by `transposed` and the weight's spatial dims, as torch.convolution."""
    conv = _CONV.get((bool(transposed), weight.ndim - 2))
    if conv is None:
        raise ShapeError(f"convolution: expected a 3-D, 4-D or 5-D weight, got shape {tuple(weight.shape)}")
    if transposed:
        return conv(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return conv(input, weight, bias, stride, padding, dilation, groups)


def conv_tbc(input: Tensor, weight: Tensor, bias: Tensor, pad: int = 0) -> Tensor:
    """1-D convolution of a (time, batch, channels) input by a (width, in, out) weight, as torch.conv_tbc."""
    if input.ndim != 3 or weight.ndim != 3 or bias.ndim != 1:
        raise ShapeError(f"conv_tbc: expected a 3-D input, 3-D weight and 1-D bias, got shapes "
                         f"{tuple(input.shape)}, {tuple(weight.shape)}, {tuple(bias.shape)}")
    if input.shape[2] != weight.shape[1] or bias.shape[0] != weight.shape[2]:
        raise ShapeError(f"conv_tbc: input channels {input.shape[2]} and bias {bias.shape[0]} must match the "
                         f"weight's (width, in, out) = {tuple(weight.shape)}")
    out = conv1d(input.permute(1, 2, 0), weight.permute(2, 1, 0), bias, padding=pad)
    return out.permute(2, 0, 1)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5, cudnn_enable: bool = True) -> Tensor:
    """As torch.layer_norm (cudnn_enable is accepted and changes nothing)."""
    return _nn.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5, cudnn_enabled: bool = True) -> Tensor:
    """As torch.group_norm (cudnn_enabled is accepted and changes nothing)."""
    return _nn.group_norm(input, num_groups, weight, bias, eps)


def batch_norm(input: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
               running_var: Tensor | None, training: bool, momentum: float, eps: float,
               cudnn_enabled: bool) -> Tensor:
    """As torch.batch_norm: the weight and bias come before the running statistics."""
    return _nn.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                  running_var: Tensor | None, use_input_stats: bool, momentum: float, eps: float,
                  cudnn_enabled: bool) -> Tensor:
    """As torch.instance_norm: the weight and bias come before the running statistics."""
    return _instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """As torch.dropout."""
    return _dropout(input, p, train)


def alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """As torch.alpha_dropout."""
    return _alpha_dropout(input, p, train)


def feature_alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """As torch.feature_alpha_dropout."""
    return _feature_alpha_dropout(input, p, train)


def feature_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """Zero whole channels of an (N, C, *) input with probability p (one draw per sample and channel), scaling
    the rest by 1/(1-p), as torch.feature_dropout; as torch's, p = 1 (input * 0) and the no-ops take any shape."""
    if not 0 <= p <= 1:
        raise ValueError(f"feature_dropout: p must be a probability between 0 and 1, got {p}")
    if not train or p == 0 or input.numel() == 0:
        return input
    if p == 1:
        return input * 0
    if input.ndim < 2:
        raise ShapeError(f"feature_dropout: expected an input with at least 2 dims (N, C, *), got shape "
                         f"{tuple(input.shape)}")
    maps = input.reshape(*input.shape[:2], -1, 1)  # each channel's values as one (size, 1) image
    return _dropout2d(maps, p, True).reshape(input.shape)


def embedding(weight: Tensor, indices: Tensor, padding_idx: int = -1, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Tensor:
    """As torch.embedding: the weight comes first, and padding_idx -1 means none."""
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not supported")
    return _embedding(indices, weight, None if padding_idx == -1 else padding_idx)


EMBEDDING_BAG_MODES = ("sum", "mean", "max")  # torch.embedding_bag's int mode


def _fast_sum(weight: Tensor, per_sample_weights: Tensor | None, padding_idx) -> bool:
    """Whether torch's CPU kernel sums on its fast path, which leaves offset2bag empty: float32/16 or bfloat16
    weights with unit inner stride, no padding_idx, per-sample weights (if any) with unit stride."""
    def unit(t: Tensor, dim: int) -> bool:
        return t.array.strides[dim] == t.array.itemsize

    return (weight.dtype.name in ("float32", "float16", "bfloat16") and unit(weight, 1) and padding_idx is None
            and (per_sample_weights is None or unit(per_sample_weights, 0)))


def embedding_bag(weight: Tensor, indices: Tensor, offsets: Tensor, scale_grad_by_freq: bool = False,
                  mode: int = 0, sparse: bool = False, per_sample_weights: Tensor | None = None,
                  include_last_offset: bool = False, padding_idx: int | None = None):
    """As torch.embedding_bag: (output, offset2bag, bag_size, max_indices), the last three as torch's CPU kernel
    gives them. offset2bag: each index's bag (empty where torch sums on its fast path, see _fast_sum). bag_size:
    each bag's count of indices other than padding_idx (in sum mode zeros, one per offset). max_indices: bag_size
    again in mean mode (zeros in sum mode); in max mode the row each column's maximum came from, the first among
    ties, 0 for a bag of padding only."""
    if mode not in range(3):
        raise ValueError(f"embedding_bag: mode must be 0 (sum), 1 (mean) or 2 (max), got {mode}")
    out = _embedding_bag(indices, weight, offsets, None, 2, scale_grad_by_freq, EMBEDDING_BAG_MODES[mode], sparse,
                         per_sample_weights, include_last_offset, padding_idx)
    xp = array_module(indices.array)
    idx = indices.array.reshape(-1)
    starts = offsets.array[:-1] if include_last_offset else offsets.array
    bags = starts.shape[0]
    bag = xp.searchsorted(starts, xp.arange(idx.size), side="right") - 1
    offset2bag = Tensor._wrap(bag.astype(xp.int64) if mode or not _fast_sum(weight, per_sample_weights, padding_idx)
                              else xp.zeros(0, xp.int64))
    if mode == 0:
        zeros = xp.zeros(offsets.shape[0], xp.int64)
        return out, offset2bag, Tensor._wrap(zeros), Tensor._wrap(zeros.copy())
    counted = bag >= 0
    if padding_idx is not None:
        counted &= idx != (padding_idx + weight.shape[0] if padding_idx < 0 else padding_idx)
    sizes = xp.bincount(bag[counted], minlength=bags)[:bags].astype(xp.int64)
    if mode == 1:
        return out, offset2bag, Tensor._wrap(sizes), Tensor._wrap(sizes.copy())
    hit = (weight.array[idx] == out.array[bag]) & counted[:, None]  # rows that hold their bag's maximum
    before = xp.cumsum(hit, axis=0) - hit  # per column, the hits before each row
    first = hit & (before == before[starts[bag]])  # no hit between the bag's start and the row
    row, column = xp.nonzero(first)
    winners = xp.zeros(out.shape, xp.int64)
    winners[bag[row], column] = idx[row]
    return out, offset2bag, Tensor._wrap(sizes), Tensor._wrap(winners)


def max_pool1d(input: Tensor, kernel_size, stride=(), padding=0, dilation=1, ceil_mode: bool = False) -> Tensor:
    """As torch.max_pool1d (an empty stride means the kernel size)."""
    return _max_pool1d(input, kernel_size, stride or None, padding, dilation, ceil_mode)


def max_pool2d(input: Tensor, kernel_size, stride=(), padding=0, dilation=1, ceil_mode: bool = False) -> Tensor:
    """As torch.max_pool2d (an empty stride means the kernel size)."""
    return _max_pool2d(input, kernel_size, stride or None, padding, dilation, ceil_mode)


def max_pool3d(input: Tensor, kernel_size, stride=(), padding=0, dilation=1, ceil_mode: bool = False) -> Tensor:
    """As torch.max_pool3d (an empty stride means the kernel size)."""
    return _max_pool3d(input, kernel_size, stride or None, padding, dilation, ceil_mode)


def adaptive_max_pool1d(input: Tensor, output_size):
    """As torch.adaptive_max_pool1d: (values, indices)."""
    return _adaptive_max_pool1d(input, output_size, return_indices=True)


def kl_div(input: Tensor, target: Tensor, reduction: int = 1, *, log_target: bool = False) -> Tensor:
    """As torch.kl_div (reduction 1 is 'mean': the mean over all elements, not over the batch)."""
    return _loss.kl_div_unwarned(input, target, _reduction("kl_div", reduction), log_target)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          reduction: int = 1) -> Tensor:
    """As torch.cosine_embedding_loss, with an int reduction."""
    return _margin.cosine_embedding_loss(input1, input2, target, margin,
                                         reduction=_reduction("cosine_embedding_loss", reduction))


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, reduction: int = 1) -> Tensor:
    """As torch.hinge_embedding_loss, with an int reduction."""
    return _margin.hinge_embedding_loss(input, target, margin,
                                        reduction=_reduction("hinge_embedding_loss", reduction))


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        reduction: int = 1) -> Tensor:
    """As torch.margin_ranking_loss, with an int reduction."""
    return _margin.margin_ranking_loss(input1, input2, target, margin,
                                       reduction=_reduction("margin_ranking_loss", reduction))


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, reduction: int = 1) -> Tensor:
    """As torch.triplet_margin_loss, with an int reduction."""
    return _margin.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                       reduction=_reduction("triplet_margin_loss", reduction))


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool, full: bool, eps: float,
                     reduction: int) -> Tensor:
    """As torch.poisson_nll_loss: every argument given, reduction an int."""
    return _margin.poisson_nll_loss(input, target, log_input, full, eps=eps,
                                    reduction=_reduction("poisson_nll_loss", reduction))


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     pos_weight: Tensor | None = None, reduction: int = 1) -> Tensor:
    """As torch.binary_cross_entropy_with_logits, with an int reduction."""
    return _loss.binary_cross_entropy_with_logits(
        input, target, weight, pos_weight=pos_weight,
        reduction=_reduction("binary_cross_entropy_with_logits", reduction))


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: int = 1, zero_infinity: bool = False) -> Tensor:
    """As torch.ctc_loss, with an int reduction."""
    return _ctc_loss(log_probs, targets, input_lengths, target_lengths, blank,
                     _reduction("ctc_loss", reduction), zero_infinity)

