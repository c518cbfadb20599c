"""engine.nn.utils, as torch.nn.utils: gradient clipping, padding and packing sequences, parameters as one
vector, parametrizations (weight and spectral normalisation)."""

from engine.nn.utils import parametrizations, parametrize, rnn
from engine.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from engine.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)
from engine.nn.utils.vector import parameters_to_vector, vector_to_parameters
from engine.nn.utils.weight_norm import remove_weight_norm, weight_norm

__all__ = ["PackedSequence", "clip_grad_norm_", "clip_grad_value_", "pack_padded_sequence", "pack_sequence",
           "pad_packed_sequence", "pad_sequence", "parameters_to_vector", "parametrizations", "parametrize",
           "remove_weight_norm", "rnn", "unpack_sequence", "unpad_sequence", "vector_to_parameters", "weight_norm"]
