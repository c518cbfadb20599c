"""engine.nn.utils, as torch.nn.utils: gradient clipping, padding sequences, parameters as one vector."""

from engine.nn.utils import rnn
from engine.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from engine.nn.utils.rnn import pad_sequence
from engine.nn.utils.vector import parameters_to_vector, vector_to_parameters

__all__ = ["clip_grad_norm_", "clip_grad_value_", "pad_sequence", "parameters_to_vector", "rnn",
           "vector_to_parameters"]
