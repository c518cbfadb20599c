"""DataLoader workers, run in the loading process: which worker is fetching (`get_worker_info`).

A DataLoader with `num_workers=N` here fetches in the main process, one batch at a time, but as N
workers would in PyTorch: batch k of a map-style dataset is fetched "by" worker k % N, an IterableDataset
is iterated once per worker (each worker's `get_worker_info()` tells it which share of the stream is its
own), batches come round-robin from the workers still running, and `worker_init_fn(worker_id)` runs for
each worker when an epoch starts (once, with `persistent_workers`). So the batches and their order are
PyTorch's. Each worker has its own random streams, as a worker process has: while it runs, the engine's
default generator is the worker's, seeded with `WorkerInfo.seed` (a new base each epoch, so `initial_seed()` there
is the worker's and the usual `np.random.seed(torch.initial_seed() % 2**32)` in `worker_init_fn` draws other
augmentations each epoch), and so are Python's `random` (the same seed) and numpy's global generator (seeded from
it); the main process's streams are as the worker found them. What differs: `dataset` is the loader's own object
(not a copy), and `timeout`, `prefetch_factor`, `pin_memory` and `multiprocessing_context` change nothing. No
sample, dataset or function is ever pickled.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from engine import random as _engine_random


@dataclass(frozen=True)
class WorkerInfo:
    """Which DataLoader worker is running: `id` of `num_workers`, its `seed`, and the `dataset`."""

    id: int
    num_workers: int
    seed: int
    dataset: object
    worker_method: str = "in-process"


_current = threading.local()


def get_worker_info() -> WorkerInfo | None:
    """The WorkerInfo of the DataLoader worker fetching now; None outside of one (or with num_workers=0)."""
    return getattr(_current, "info", None)


class Streams:
    """A worker's random streams while it is not running: the engine's default generator (seed and numpy
    generator), numpy's global state and Python's, started from the worker's seed as torch seeds a worker."""

    __slots__ = ("numpy", "python", "rng", "seed")

    def __init__(self, seed: int) -> None:
        self.seed, self.rng = seed, None  # the engine's generator is made from the seed at its first draw
        self.numpy = np.random.RandomState(np.random.SeedSequence(seed).generate_state(1)[0]).get_state()
        self.python = random.Random(seed).getstate()


@contextmanager
def as_worker(info: WorkerInfo | None, streams: Streams | None = None) -> Iterator[None]:
    """Run the body as worker `info` (nothing changes for None), drawing from its `streams` when given."""
    before = get_worker_info()
    _current.info = info if info is not None else before
    if streams is not None:
        g = _engine_random.default_generator
        main = (g._seed, g._rng, np.random.get_state(), random.getstate())
        g._seed, g._rng = streams.seed, streams.rng
        np.random.set_state(streams.numpy)
        random.setstate(streams.python)
    try:
        yield
    finally:
        _current.info = before
        if streams is not None:
            streams.seed, streams.rng, streams.numpy, streams.python = \
                g._seed, g._rng, np.random.get_state(), random.getstate()
            g._seed, g._rng = main[0], main[1]
            np.random.set_state(main[2])
            random.setstate(main[3])
