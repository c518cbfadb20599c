"""Keep freed host memory for the next training step instead of handing it back to the OS at once.

glibc's malloc returns the free memory at the top of its heap to the kernel as soon as it passes a
threshold. A training step allocates large temporaries (a conv net's im2col columns, activations,
gradients), frees them at its end and allocates them again in the next step, so the kernel faults the
same pages back in one 4 KiB page at a time: on a small CNN (conv8-conv16-fc, batch 32, 28x28) that was
about 1,000 page faults and 2-3 ms of kernel time per step, a quarter of the step. A top pad keeps up to
`TOP_PAD` bytes of freed heap for reuse (as PyTorch users get from jemalloc or tcmalloc through LD_PRELOAD);
memory is still returned past it.

Applied once, on import of `engine`, on glibc only, and never over a person's own choice: any MALLOC_*_
tunable in the environment, or TAPESCOPE_MALLOC=system, leaves malloc as it is.
"""

from __future__ import annotations

import ctypes
import os
import sys

TOP_PAD = 64 << 20
_M_TOP_PAD = -2  # glibc's mallopt parameter number (malloc.h)
_TUNABLES = ("MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory(environ=os.environ) -> bool:
    """Set glibc's top pad to TOP_PAD unless the person chose otherwise; True when it was set."""
    if not sys.platform.startswith("linux") or environ.get("TAPESCOPE_MALLOC") == "system":
        return False
    if any(name in environ for name in _TUNABLES):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):  # another C library (musl has no mallopt): nothing to tune
        return False
    return bool(mallopt(_M_TOP_PAD, TOP_PAD))
