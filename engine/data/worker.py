"""DataLoader workers, run in the loading process: which worker is fetching (`get_worker_info`).

A DataLoader with `num_workers=N` here fetches in the main process, one batch at a time, but as N
workers would in PyTorch: batch k of a map-style dataset is fetched "by" worker k % N, an IterableDataset
is iterated once per worker (each worker's `get_worker_info()` tells it which share of the stream is its
own), batches come round-robin from the workers still running, and `worker_init_fn(worker_id)` runs for
each worker when an epoch starts (once, with `persistent_workers`). So the batches and their order are
PyTorch's. What differs: the workers share this process's random generators (PyTorch seeds each worker
from `WorkerInfo.seed`), `dataset` is the loader's own object (not a copy), and `timeout`,
`prefetch_factor`, `pin_memory` and `multiprocessing_context` change nothing. No sample, dataset or
function is ever pickled.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


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


@contextmanager
def as_worker(info: WorkerInfo | None) -> Iterator[None]:
    """Run the body as worker `info` (nothing changes for None)."""
    before = get_worker_info()
    _current.info = info if info is not None else before
    try:
        yield
    finally:
        _current.info = before
