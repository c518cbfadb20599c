"""engine.nn.functional: PyTorch's functional API (`import engine.nn.functional as F`).

Names, argument orders and defaults follow torch.nn.functional. Most functions are one op of the
engine (one node in the graph), implemented in engine.ops (activation, nn, loss, conv, pool, shape);
normalize, cosine_similarity, scaled_dot_product_attention, pairwise_distance and the margin, embedding
and likelihood losses (margin_ranking_loss to gaussian_nll_loss) are composed of several; interpolate
is in engine.ops.interpolate.
"""

from engine.nn import functional_port
from engine.nn.functional_port import *  # noqa: F403
from engine.ops import pool
from engine.ops.activation import (
    dropout,
    dropout2d,
    elu,
    gelu,
    glu,
    hardtanh,
    leaky_relu,
    log_softmax,
    logsigmoid,
    prelu,
    relu,
    relu6,
    silu,
    softmax,
    softplus,
)
from engine.ops.activation_more import (
    celu,
    celu_,
    gumbel_softmax,
    hardshrink,
    hardsigmoid,
    hardswish,
    local_response_norm,
    mish,
    rms_norm,
    rrelu,
    rrelu_,
    selu,
    selu_,
    softmin,
    softshrink,
    softsign,
    tanhshrink,
    threshold,
    threshold_,
)
from engine.ops.attention import scaled_dot_product_attention
from engine.ops.conv import conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d
from engine.ops.ctc import ctc_loss
from engine.ops.dropout_more import alpha_dropout, dropout1d, dropout3d, feature_alpha_dropout
from engine.ops.elementwise import sigmoid, tanh
from engine.ops.embedding_bag import embedding, embedding_bag
from engine.ops.fold import fold, pixel_unshuffle, unfold
from engine.ops.grid_sample import affine_grid, grid_sample
from engine.ops.interpolate import interpolate
from engine.ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from engine.ops.margin_loss import (
    cosine_embedding_loss,
    gaussian_nll_loss,
    hinge_embedding_loss,
    margin_ranking_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    pairwise_distance,
    poisson_nll_loss,
    soft_margin_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from engine.ops.nn import batch_norm, group_norm, layer_norm, linear, one_hot
from engine.ops.norm_instance import instance_norm
from engine.ops.pool import *  # noqa: F403  (pool.__all__: every pooling function)
from engine.ops.shape import pad, pixel_shuffle
from engine.ops.similarity import cosine_similarity, normalize
from engine.ops.stats_port import pdist

__all__ = [
    "affine_grid", "alpha_dropout", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "celu", "celu_", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "cosine_embedding_loss", "cosine_similarity", "cross_entropy", "ctc_loss", "dropout", "dropout1d", "dropout2d",
    "dropout3d", "elu", "embedding", "embedding_bag", "feature_alpha_dropout", "fold", "gaussian_nll_loss", "gelu",
    "glu", "grid_sample", "group_norm", "gumbel_softmax", "hardshrink", "hardsigmoid", "hardswish", "hardtanh",
    "hinge_embedding_loss", "huber_loss", "instance_norm", "interpolate", "kl_div", "l1_loss", "layer_norm",
    "leaky_relu", "linear", "local_response_norm", "log_softmax", "logsigmoid", "margin_ranking_loss", "mish",
    "mse_loss", "multi_margin_loss", "multilabel_margin_loss",
    "multilabel_soft_margin_loss", "nll_loss", "normalize", "one_hot", "pad", "pairwise_distance", "pdist",
    "pixel_shuffle",
    "pixel_unshuffle", "poisson_nll_loss", "prelu", "relu", "relu6", "rms_norm", "rrelu", "rrelu_",
    "scaled_dot_product_attention", "selu", "selu_", "sigmoid", "silu", "smooth_l1_loss", "soft_margin_loss",
    "softmax", "softmin", "softplus", "softshrink", "softsign", "tanh", "tanhshrink", "threshold", "threshold_",
    "triplet_margin_loss", "triplet_margin_with_distance_loss", "unfold",
]
__all__ += pool.__all__ + functional_port.__all__
