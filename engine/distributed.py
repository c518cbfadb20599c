"""torch.distributed's names for a script that guards its multi-process code (rank-0 printing, a
DistributedSampler only when launched by torchrun): the engine runs in one process, so no process group exists.

`is_available()` is False and `is_initialized()` False, so `if dist.is_available() and dist.is_initialized():`
takes the single-process path. `init_process_group` is refused, saying so, and the collectives and rank queries
raise torch's error for a process group that was never initialised (a ValueError, as torch's).
"""

from __future__ import annotations

_NOT_INITIALIZED = ("Default process group has not been initialized, please make sure to call init_process_group. "
                    "(The engine runs in one process: it has no process groups; use rank 0 of 1.)")


class ReduceOp:
    """The reduction names the collectives take (`dist.ReduceOp.SUM`)."""

    SUM, PRODUCT, MIN, MAX, AVG = "sum", "product", "min", "max", "avg"
    BAND, BOR, BXOR, PREMUL_SUM = "band", "bor", "bxor", "premul_sum"


class Backend:
    """Backend names (`dist.Backend.NCCL`), for scripts that choose one before asking whether they can."""

    GLOO, NCCL, MPI, UCC = "gloo", "nccl", "mpi", "ucc"


def is_available() -> bool:
    """False: the engine has no distributed runtime."""
    return False


def is_initialized() -> bool:
    """False: no process group was (or can be) made."""
    return False


def is_torchelastic_launched() -> bool:
    """False: the script was not started by torchrun (the engine runs it as one process)."""
    return False


def init_process_group(*args, **kwargs) -> None:
    """Refused: the engine runs in one process."""
    raise RuntimeError("init_process_group: the engine runs in one process and has no distributed backend; run the "
                       "script as a single process (the engine's debugger follows one process's ops)")


def _not_initialized(*args, **kwargs):
    raise ValueError(_NOT_INITIALIZED)


# what torch raises for these before init_process_group, which can never be called here
get_rank = get_world_size = barrier = all_reduce = broadcast = all_gather = all_gather_object = reduce = \
    gather = scatter = reduce_scatter = all_to_all = broadcast_object_list = destroy_process_group = \
    new_group = get_backend = _not_initialized
