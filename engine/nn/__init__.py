"""engine.nn: neural-network building blocks, as in torch.nn (`engine.nn.functional` holds the functions)."""

from engine.nn import (
    functional,
    init,
    utils,
)
from engine.nn.buffer import Buffer, UninitializedBuffer
from engine.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from engine.nn.layers import *  # noqa: F403
from engine.nn.module import Module
from engine.nn.parameter import Parameter
from engine.nn.settings import Setting
