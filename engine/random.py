"""Random number generators, one per device, all seeded by `manual_seed`."""

from __future__ import annotations

import numpy as np

from engine import backend

_seed = None
_generators: dict = {}


def manual_seed(seed: int) -> None:
    """Seed every device's generator; the same seed gives the same numbers on the same device."""
    global _seed
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise TypeError(f"manual_seed expects an integer, got {type(seed).__name__}")
    _seed = int(seed)
    _generators.clear()


def initial_seed() -> int | None:
    """The seed last given to `manual_seed` (None when never seeded)."""
    return _seed


def generator(device) -> object:
    """The generator of a device: numpy's PCG64 on the CPU, CuPy's on a GPU."""
    dev = backend.device(device)
    g = _generators.get(dev)
    if g is None:
        if dev.type == "cpu":
            g = np.random.default_rng(_seed)
        else:
            cp = backend.require_cuda(dev)
            with cp.cuda.Device(dev.index):
                # a different stream of numbers per GPU, all fixed by the one seed
                g = cp.random.default_rng(None if _seed is None else _seed + 1000003 * (dev.index + 1))
        _generators[dev] = g
    return g


def get_rng_state() -> dict:
    """A plain-data snapshot of the CPU generator, for `set_rng_state`."""
    return generator("cpu").bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore the CPU generator from `get_rng_state()`."""
    generator("cpu").bit_generator.state = state
