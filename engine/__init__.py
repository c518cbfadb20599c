"""Tapescope's tensor + autograd engine, with PyTorch's API; every op emits an event.

    import engine
    x = engine.randn(3, requires_grad=True)
    (x * x).sum().backward()
"""

import sys
import types
import warnings
from types import SimpleNamespace

from engine import checkpointing, cuda, data, ops, optim, tensorboard
from engine.allocator import keep_freed_memory
from engine.autograd.function import Function, ShapeError
from engine.autograd.grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from engine.backend import Device, device
from engine.creation import (
    arange,
    as_tensor,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    linspace,
    multinomial,
    normal,
    ones,
    ones_like,
    poisson,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from engine.dtypes import DType, bfloat16, bool_, float16, float32, float64, int8, int16, int32, int64, uint8
from engine.events import hub
from engine.inference import is_inference_mode_enabled
from engine.random import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)
from engine.serialization import CheckpointError, load, save
from engine.tape import record
from engine.tensor import (
    MemoryFormat,
    Size,
    Tensor,
    channels_last,
    channels_last_3d,
    contiguous_format,
    preserve_format,
)
from engine.tensor_props import COMPLEX_NAMES as _COMPLEX_NAMES
from engine.tensor_props import NO_COMPLEX as _NO_COMPLEX
from engine.tensor_props import NO_SPARSE as _NO_SPARSE
from engine.tensor_props import Layout as layout
from engine.tensor_props import strided

keep_freed_memory()  # a training step's large temporaries reuse freed pages: see engine.allocator

bool = bool_
half = float16
float = float32
double = float64
long = int64
int = int32
short = int16


def _namespace(name: str, members: dict, doc: str) -> types.ModuleType:
    """A submodule `engine.<name>` holding `members`, importable as `from engine.<name> import ...`."""
    module = types.ModuleType(f"engine.{name}", doc)
    module.__dict__.update(members)
    module.__all__ = sorted(members)
    sys.modules[module.__name__] = module
    return module


linalg = _namespace("linalg", ops.linalg.LINALG, "Linear algebra with torch.linalg's names.")
special = _namespace("special", ops.special.SPECIAL_NAMESPACE, "Special functions with torch.special's names.")
utils = _namespace("utils", {"data": data, "checkpoint": checkpointing, "tensorboard": tensorboard},
                   "torch.utils's names: utils.data is engine.data, utils.checkpoint engine.checkpointing, "
                   "utils.tensorboard engine.tensorboard.")
sys.modules["engine.utils.data"] = data
sys.modules["engine.utils.checkpoint"] = checkpointing
sys.modules["engine.utils.tensorboard"] = tensorboard

_OPS = [n for n in dir(ops) if not n.startswith("_") and callable(getattr(ops, n))
        and getattr(getattr(ops, n), "__module__", "").startswith("engine.")]
globals().update({n: getattr(ops, n) for n in _OPS if n not in globals()})

# Like PyTorch, ops make inf and NaN silently (log(0) is -inf): numpy's floating-point warnings, raised
# from inside the engine's kernels, would name engine internals rather than the user's line. Where
# non-finite values come from is engine.debug's job: its alerts name the op, module and source line.
warnings.filterwarnings("ignore", r".* encountered in ", RuntimeWarning,
                        r"engine\.(ops\.|autograd\.|nn\.|optim\.|debug\.|backend$)")

__version__ = "0.1.0"

# The switches scripts set for PyTorch's GPU libraries (`torch.backends.cudnn.benchmark = True`): the engine
# uses neither cuDNN nor MPS, so they are accepted and change nothing.
backends = SimpleNamespace(
    cudnn=SimpleNamespace(benchmark=False, deterministic=False, enabled=True, allow_tf32=True),
    cuda=SimpleNamespace(matmul=SimpleNamespace(allow_tf32=False)),
    mps=SimpleNamespace(is_available=lambda: False, is_built=lambda: False),
)


def is_tensor(obj) -> bool:
    """True when `obj` is an engine Tensor (a Parameter included), as torch.is_tensor."""
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    """The number of elements of `input`, as torch.numel."""
    return input.numel()


def is_floating_point(input: Tensor) -> bool:
    """True when `input` holds a floating-point dtype, as torch.is_floating_point."""
    return input.is_floating_point()


def __getattr__(name: str):
    # engine.nn and engine.distributions without importing them, as torch.nn after `import torch`: loaded on
    # first use, so that `import engine` does not pay for every layer and distribution at start-up
    if name == "vmap":  # torch.vmap is torch.func.vmap
        return func.vmap
    if name in ("nn", "distributions"):
        import importlib

        return importlib.import_module(f"engine.{name}")
    if name.startswith("sparse"):  # torch.sparse, sparse_coo_tensor, sparse_csr...
        raise AttributeError(f"module 'engine' has no attribute {name!r}: {_NO_SPARSE}")
    if name in _COMPLEX_NAMES:
        raise AttributeError(f"module 'engine' has no attribute {name!r}: {_NO_COMPLEX}")
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


# mixed precision and torch.func, with torch's addresses (torch.autocast, torch.cuda.amp, torch.cpu.amp); and
# torch.distributed and torch.jit as the engine has them (one process; run eagerly)
from engine import amp, distributed, func, jit  # noqa: E402
from engine.amp import GradScaler, autocast, get_autocast_dtype, is_autocast_enabled  # noqa: E402

_OLD_AMP = "torch's older spelling of engine.amp for one device type."
cuda.amp = _namespace("cuda.amp", amp.CUDA_AMP, f"engine.cuda.amp: {_OLD_AMP}")
cpu = _namespace("cpu", {"amp": _namespace("cpu.amp", amp.CPU_AMP, f"engine.cpu.amp: {_OLD_AMP}")},
                 "torch.cpu's names the engine has: engine.cpu.amp.")

# torch's namespace utilities and process-wide switches (engine.namespace_port, engine.switches), and its legacy
# typed constructors (engine.FloatTensor(...), engine.cuda.LongTensor(...): engine.legacy)
from engine.foreach import FOREACH as _FOREACH  # noqa: E402  (torch._foreach_add_ ...: engine.foreach)
from engine.legacy import CPU_TYPES as _CPU_TYPES  # noqa: E402
from engine.legacy import CUDA_TYPES as _CUDA_TYPES  # noqa: E402
from engine.namespace_port import *  # noqa: E402, F403

globals().update(_CPU_TYPES)
globals().update(_FOREACH)
for _name, _cls in _CUDA_TYPES.items():
    setattr(cuda, _name, _cls)
from engine.ops.fake_quant import _fake_quantize_learnable_per_tensor_affine  # noqa: E402
