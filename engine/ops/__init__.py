"""All ops as functions of tensors; `engine.tensor_methods` binds them to Tensor."""

from engine.creation import (
    full_like,
    ones_like,
    rand_like,
    randn_like,
    zeros_like,
)
from engine.ops.activation import log_softmax, softmax
from engine.ops.activation_more import (
    celu,
    celu_,
    hardshrink,
    rms_norm,
    rrelu,
    rrelu_,
    selu,
    selu_,
    threshold,
    threshold_,
)
from engine.ops.attention import scaled_dot_product_attention
from engine.ops.bitwise import *  # noqa: F403
from engine.ops.cholesky_ex import *  # noqa: F403
from engine.ops.convert import cast, clone, to_device
from engine.ops.elementwise import *  # noqa: F403
from engine.ops.fake_quant import *  # noqa: F403
from engine.ops.gather_scatter import *  # noqa: F403
from engine.ops.index import *  # noqa: F403
from engine.ops.index_port import *  # noqa: F403
from engine.ops.linalg import (
    addmm,
    bmm,
    cholesky,
    det,
    diag,
    diag_embed,
    diagonal,
    dot,
    einsum,
    logdet,
    matmul,
    mm,
    mv,
    outer,
    slogdet,
    tril,
    triu,
)
from engine.ops.linalg import inv as inverse
from engine.ops.linalg_decomp_port import *  # noqa: F403
from engine.ops.linalg_eig import *  # noqa: F403
from engine.ops.linalg_exp import *  # noqa: F403
from engine.ops.linalg_more import *  # noqa: F403
from engine.ops.linalg_port import *  # noqa: F403
from engine.ops.math_more import *  # noqa: F403
from engine.ops.nn import one_hot
from engine.ops.order import *  # noqa: F403
from engine.ops.pointwise import *  # noqa: F403
from engine.ops.pointwise_port import *  # noqa: F403
from engine.ops.reduce import *  # noqa: F403
from engine.ops.scan import *  # noqa: F403
from engine.ops.search import *  # noqa: F403
from engine.ops.sequence import *  # noqa: F403
from engine.ops.shape import *  # noqa: F403
from engine.ops.shape_more import *  # noqa: F403
from engine.ops.shape_port import *  # noqa: F403
from engine.ops.similarity import cdist, cosine_similarity, normalize
from engine.ops.sort import *  # noqa: F403
from engine.ops.special import *  # noqa: F403
from engine.ops.stats_port import *  # noqa: F403
from engine.ops.torch_level import *  # noqa: F403
from engine.ops.windows import *  # noqa: F403
from engine.tensor_methods import install as _install

_install()
