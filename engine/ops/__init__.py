"""All ops as functions of tensors; `engine.tensor_methods` binds them to Tensor."""

from engine.creation import (  # noqa: F401  (re-exported: in-place methods use them)
    full_like,
    ones_like,
    rand_like,
    randn_like,
    zeros_like,
)
from engine.ops.activation import log_softmax, softmax  # noqa: F401
from engine.ops.convert import cast, clone, to_device  # noqa: F401
from engine.ops.elementwise import *  # noqa: F403
from engine.ops.index import *  # noqa: F403
from engine.ops.linalg import matmul  # noqa: F401
from engine.ops.reduce import *  # noqa: F403
from engine.ops.shape import *  # noqa: F403
from engine.tensor_methods import install as _install

_install()
