"""engine.nn.utils, as torch.nn.utils: gradient clipping, padding and packing sequences, parameters as one
vector, parametrizations (weight and spectral normalisation)."""

from engine.nn.utils import parametrizations, parametrize, prune, rnn, stateless
from engine.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from engine.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights
from engine.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)
from engine.nn.utils.skip_init import skip_init
from engine.nn.utils.spectral_norm_hook import remove_spectral_norm, spectral_norm
from engine.nn.utils.vector import parameters_to_vector, vector_to_parameters
from engine.nn.utils.weight_norm import remove_weight_norm, weight_norm

__all__ = ["PackedSequence", "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "fuse_conv_bn_eval",
           "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights", "get_total_norm",
           "pack_padded_sequence", "pack_sequence", "pad_packed_sequence", "pad_sequence", "parameters_to_vector",
           "parametrizations", "parametrize", "remove_weight_norm", "rnn", "skip_init", "stateless",
           "unpack_sequence", "unpad_sequence", "vector_to_parameters", "weight_norm"]
__all__ += ["remove_spectral_norm", "spectral_norm"]
