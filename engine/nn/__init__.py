"""engine.nn: neural-network building blocks, as in torch.nn (`engine.nn.functional` holds the functions)."""

from engine.nn import (  # noqa: F401
    functional,
    init,
    utils,
)
from engine.nn.containers import ModuleDict, ModuleList, Sequential  # noqa: F401
from engine.nn.layers import *  # noqa: F403
from engine.nn.module import Module  # noqa: F401
from engine.nn.parameter import Parameter  # noqa: F401
from engine.nn.settings import Setting  # noqa: F401
