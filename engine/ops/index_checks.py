"""Index bounds checks that never make the host wait for a GPU.

On the CPU an op checks its indices at once and raises. On a GPU reading the verdict back would stall
every step, so the op computes it on the device, posts it to engine.kernels' DeviceChecks, uses
indices that are safe to read with meanwhile, and a later call (or a read of any value back to the
host) raises the error: see cross_entropy and embedding.
"""

from __future__ import annotations

import math

import numpy as np

from engine import kernels

UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def out_of_range(t, n: int):
    """Where integer array `t` is outside [0, n): viewed as unsigned, negatives are huge, so one compare."""
    return t.view(UNSIGNED[t.dtype.itemsize]) >= n


def all_below(t, n: int) -> bool:
    """True when every entry of `t` is in [0, n) (one reduction, read back at once: the CPU's check)."""
    return not t.size or int(t.view(UNSIGNED[t.dtype.itemsize]).max()) < n


def first_bad(xp, bad, t):
    """A device int64 pair for DeviceChecks: (size - position of the first True in flat `bad`, the value
    of flat `t` there), or (0, 0) when `bad` is all False."""
    status = xp.zeros(2, dtype=xp.int64)
    m = bad.size
    if m:
        first = bad.argmax()  # the first bad entry, or 0 when there is none
        status[0] = xp.take(bad, first) * (m - first)
        status[1] = xp.take(t, first)
    return status


def position(name: str, shape: tuple, key: int) -> str:
    """'name[i, j]' for the entry that first_bad's `key` points at in an array of `shape`."""
    if not shape:
        return name
    where = np.unravel_index(math.prod(shape) - key, shape)
    return f"{name}[{', '.join(str(int(i)) for i in where)}]"


def settled_checks(xp):
    """The GPU's DeviceChecks once any failed earlier check has been raised; None on the CPU."""
    checks = kernels.device_checks(xp)
    if checks is not None:
        checks.settle()
    return checks


LATER = "(on a GPU the check does not wait for the device, so its error comes at a later call)"
