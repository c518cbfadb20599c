"""DataLoader: batches of a dataset, shuffled reproducibly, collated into tensors."""

from __future__ import annotations

import itertools
import numbers
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext

import numpy as np

from engine import random as _random
from engine.backend import array_module
from engine.creation import tensor as _tensor
from engine.data.dataset import IterableDataset
from engine.data.sampler import BatchSampler, RandomSampler, SequentialSampler, _epoch
from engine.data.worker import Streams, WorkerInfo, as_worker
from engine.events import hub
from engine.tensor import Tensor


def default_collate(batch: list):
    """Stack a list of samples: tensors and arrays along a new first dimension, numbers into a tensor,
    tuples, lists and dicts element by element (as PyTorch's default_collate)."""
    if not batch:
        raise ValueError("default_collate: got an empty batch")
    first = batch[0]
    if isinstance(first, Tensor):
        return _stack([_checked(x, Tensor, first) for x in batch])
    if isinstance(first, np.ndarray):
        return _stack([Tensor._of(_tensor(_checked(x, np.ndarray, first)).array) for x in batch])
    if isinstance(first, bool | np.bool_ | numbers.Number):
        for x in batch:
            if not isinstance(x, bool | np.bool_ | numbers.Number):
                raise TypeError(f"default_collate: a batch mixes numbers and {type(x).__name__}")
        if isinstance(first, np.generic):  # numpy scalars keep their dtype
            return _tensor(np.array(batch, dtype=first.dtype))
        # Python floats become float64 and ints int64, as in PyTorch
        dtype = None if isinstance(first, bool | int) else np.float64
        return _tensor(np.array(batch, dtype=dtype))
    if isinstance(first, str | bytes):
        return batch  # as torch: a list stays a list, a column of a batch of tuples is a tuple
    if isinstance(first, Mapping):
        return {key: default_collate([_checked(x, Mapping, first)[key] for x in batch]) for key in first}
    if isinstance(first, Sequence):
        for x in batch:
            if not isinstance(x, Sequence) or len(x) != len(first):
                got = len(x) if isinstance(x, Sequence) else type(x).__name__
                raise ValueError("default_collate: each element in list of batch should be of equal size; "
                                 f"got lengths {len(first)} and {got}")
        columns = [default_collate(column) for column in zip(*batch)]
        return type(first)(*columns) if hasattr(first, "_fields") else columns  # a plain tuple: a list, as torch
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(first).__name__}; pass a collate_fn that handles it")


def default_convert(data):
    """Numpy arrays and numbers of numpy become tensors, inside dicts and sequences too; the rest is left as
    is (what a DataLoader without batching, batch_size=None, applies to each sample, as PyTorch's)."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "SUO":
        return Tensor._of(_tensor(data).array)
    if isinstance(data, np.generic) and not isinstance(data, np.str_ | np.bytes_):
        return _tensor(np.asarray(data))
    if isinstance(data, Mapping):
        converted = {key: default_convert(value) for key, value in data.items()}
        try:
            return type(data)(converted)
        except TypeError:  # a mapping type that cannot be built from a dict
            return converted
    if isinstance(data, tuple):
        items = [default_convert(d) for d in data]
        return type(data)(*items) if hasattr(data, "_fields") else items  # a plain tuple becomes a list, as torch
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        items = [default_convert(d) for d in data]
        try:
            return type(data)(items)
        except TypeError:
            return items
    return data


def _checked(x, kind, first):
    if not isinstance(x, kind):
        raise TypeError(f"default_collate: a batch mixes {type(first).__name__} and {type(x).__name__}")
    return x


def _stack(tensors: list[Tensor]) -> Tensor:
    shape = tensors[0].shape
    for t in tensors:
        if t.shape != shape:
            raise ValueError(f"default_collate: tensors in a batch have different shapes {tuple(shape)} and "
                             f"{tuple(t.shape)}; pad them, or pass a collate_fn")
    if any(t.requires_grad for t in tensors):
        from engine import ops  # the differentiable stack, only when a gradient can flow

        return ops.stack(tensors)
    xp = array_module(tensors[0].array)
    return Tensor._wrap(xp.stack([t.array for t in tensors]))


class DataLoader:
    """Iterate over a dataset in batches; `shuffle=True` draws a new order each epoch.

    The order comes from `generator` (an engine.Generator on the CPU, or a numpy Generator), from `seed`,
    or else from the engine's global CPU generator, so `engine.manual_seed(s)` makes shuffling
    reproducible, as `torch.manual_seed` does (the orders themselves are not PyTorch's: its generator is
    not numpy's).
    As in PyTorch, `sampler` (a SequentialSampler or RandomSampler unless given) picks the indices, and
    `batch_sampler` (a BatchSampler of it unless given; None with batch_size=None) groups them. An
    IterableDataset is batched as it streams. `num_workers > 0` runs its workers in this process, with
    PyTorch's batches and order (see engine.data.worker).
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Iterable[int] | None = None, batch_sampler: Iterable[list[int]] | None = None,
                 num_workers: int = 0, collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "", in_order: bool = True,
                 seed: int | None = None) -> None:
        streaming = isinstance(dataset, IterableDataset)
        if not streaming and (not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__")):
            raise TypeError(f"DataLoader needs a map-style dataset (with __getitem__ and __len__) or an "
                            f"engine.data.IterableDataset, got {type(dataset).__name__}")
        _check_workers(num_workers, timeout, prefetch_factor, persistent_workers, multiprocessing_context,
                       worker_init_fn)
        if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)
                                       or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, "
                             f"but got batch_size={batch_size!r}")
        if streaming:
            for name, value in (("shuffle", shuffle), ("sampler", sampler), ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, "
                                     f"but got {name}={value}")
        if batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if sampler is not None and not hasattr(sampler, "__iter__"):
            raise TypeError(f"sampler must be an iterable of indices (engine.data.WeightedRandomSampler, ...), "
                            f"got {type(sampler).__name__}")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                             "and drop_last")
        if batch_sampler is not None and not hasattr(batch_sampler, "__iter__"):
            raise TypeError(f"batch_sampler must be an iterable of lists of indices (engine.data.BatchSampler, "
                            f"...), got {type(batch_sampler).__name__}")
        if generator is not None and seed is not None:
            raise ValueError("DataLoader: pass either generator or seed, not both")
        if generator is not None:
            _random.resolve(generator, "cpu", "DataLoader")  # a wrong one is refused here, not at an epoch
        if num_workers:  # a PyTorch script's speed setting: it runs, told once where the batches come from
            warnings.warn(f"DataLoader loads in the main process here: its num_workers={num_workers} workers take "
                          "turns in this process (the same batches as PyTorch's, without the speed-up)",
                          UserWarning, stacklevel=2)
        # pin_memory (page-locked host batches for faster copies to a GPU) is a speed hint: accepted, unused
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.num_workers = num_workers
        self.pin_memory, self.pin_memory_device = pin_memory, pin_memory_device
        self.timeout, self.worker_init_fn = timeout, worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.prefetch_factor = prefetch_factor if prefetch_factor is not None or not num_workers else 2
        self.persistent_workers, self.in_order = persistent_workers, in_order
        self._workers_started = False
        self._streams: list = []  # each worker's random streams (engine.data.worker.Streams)
        self.generator = np.random.default_rng(seed) if seed is not None else generator
        self._streaming = streaming
        if streaming:
            self.sampler = self.batch_sampler = None
            self._own_batches = False
            return
        if sampler is None:
            sampler = RandomSampler(dataset, generator=self.generator) if shuffle else SequentialSampler(dataset)
        self.sampler = sampler
        # batches of its own are sliced from one array of the epoch's order, not listed one by one
        self._own_batches = batch_sampler is None and batch_size is not None
        if batch_sampler is not None:
            self.batch_size, self.drop_last = None, False  # as PyTorch sets them
        elif batch_size is not None:
            batch_sampler = BatchSampler(sampler, batch_size, self.drop_last)
        self.batch_sampler = batch_sampler

    def __len__(self) -> int:
        if self._streaming:
            n = len(self.dataset)  # TypeError, as in PyTorch, for a stream without a length
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self) -> Iterator:
        _iterated[0] = weakref.ref(self)
        # each epoch draws its workers' base seed first, with or without workers, as torch's loader does: the
        # sampler's draws after it are then torch's
        base = _random.seed63(_random.resolve(self.generator, "cpu", "DataLoader"))
        workers = self._start_workers(base)
        if self._streaming:
            return self._stream(workers)
        return self._batches(workers)

    def _start_workers(self, base: int) -> list[WorkerInfo]:
        """This epoch's workers (none with num_workers=0), each set up by `worker_init_fn`; worker i's seed is
        base + i."""
        if not self.num_workers:
            return []
        workers = [WorkerInfo(i, self.num_workers, base + i, self.dataset) for i in range(self.num_workers)]
        if not (self.persistent_workers and self._workers_started):  # as new worker processes: fresh streams
            self._streams = [Streams(info.seed) for info in workers]
            if self.worker_init_fn is not None:
                for info, streams in zip(workers, self._streams):
                    with as_worker(info, streams):
                        self.worker_init_fn(info.id)
        self._workers_started = True
        return workers

    def _batches(self, workers: list[WorkerInfo]) -> Iterator:
        if self.batch_sampler is None:
            batches = (int(i) for i in _epoch(self.sampler))
        elif self._own_batches:
            order, size = _epoch(self.sampler), self.batch_size
            batches = (order[b * size:(b + 1) * size] for b in range(len(self)))
        else:
            batches = iter(self.batch_sampler)
        fetch = self._fetcher()
        if not workers:
            yield from map(fetch, batches)
            return
        for k, indices in enumerate(batches):
            with as_worker(workers[k % len(workers)], self._streams[k % len(workers)]):
                batch = fetch(indices)
            yield batch  # outside the worker: the training loop's code is not a worker's

    def _fetcher(self) -> Callable:
        """indices -> batch, chosen once an epoch from the dataset and the loader's settings; with the event hub
        silenced while it runs (see _loading)."""
        fetch = self._unquiet_fetcher()

        def quiet(indices):
            with _loading():
                return fetch(indices)

        return quiet

    def _unquiet_fetcher(self) -> Callable:
        dataset = self.dataset
        if self.batch_sampler is None:  # no batching: one sample, converted
            convert = self.collate_fn or default_convert
            return lambda index: convert(dataset[index])
        if self.collate_fn is None and hasattr(dataset, "get_batch"):  # one gather per tensor
            return lambda indices: dataset.get_batch(np.asarray(indices, dtype=np.int64))
        collate = self.collate_fn or default_collate
        getitems = getattr(dataset, "__getitems__", None)
        if callable(getitems):
            return lambda indices: collate(getitems([int(i) for i in indices]))
        return lambda indices: collate([dataset[int(i)] for i in indices])

    def _stream(self, workers: list[WorkerInfo]) -> Iterator:
        """Batches of an IterableDataset: each worker iterates it; batches come round-robin from the workers."""
        running = deque((info, None) for info in (workers or [None]))
        while running:
            info, samples = running.popleft()
            with as_worker(info, self._streams[info.id] if info is not None else None), _loading():
                if samples is None:
                    samples = iter(self.dataset)
                batch = self._next_batch(samples)
            if batch is not _DONE:
                running.append((info, samples))
                yield batch

    def _next_batch(self, samples: Iterator):
        if self.batch_size is None:
            sample = next(samples, _DONE)
            return sample if sample is _DONE else (self.collate_fn or default_convert)(sample)
        chunk = list(itertools.islice(samples, self.batch_size))
        if not chunk or (self.drop_last and len(chunk) < self.batch_size):
            return _DONE
        return (self.collate_fn or default_collate)(chunk)


_DONE = object()  # a worker's stream has ended
_iterated: list = [None]  # a weak reference to the DataLoader iterated last


def last_iterated() -> DataLoader | None:
    """The DataLoader whose iteration began last, while it lives (a debugger's advice on the data's order names it)."""
    ref = _iterated[0]
    return ref() if ref is not None else None


def _loading():
    """The hub silenced while a batch loads, if anybody listens: loading (indexing, augmenting, collating) is not
    the model's computation, which a debugger shows. In torch it runs in worker processes no debugger sees; here its
    ops crowded every iteration (96 indexing ops around 8 of the model's). A NaN made there is caught where the
    model first takes it (a non-finite input)."""
    return hub.silenced() if hub.active else nullcontext()


def _check_workers(num_workers, timeout, prefetch_factor, persistent_workers, multiprocessing_context,
                   worker_init_fn) -> None:
    """PyTorch's checks of the worker options (what they do here: engine.data.worker)."""
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
        raise ValueError(f"num_workers option should be non-negative; use num_workers=0 to disable "
                         f"multiprocessing (got num_workers={num_workers!r})")
    if not isinstance(timeout, numbers.Real) or timeout < 0:
        raise ValueError(f"timeout option should be non-negative, got timeout={timeout!r}")
    if num_workers == 0 and prefetch_factor is not None:
        raise ValueError("prefetch_factor option could only be specified in multiprocessing.let num_workers > 0 "
                         "to enable multiprocessing, otherwise set prefetch_factor to None.")
    if prefetch_factor is not None and (not isinstance(prefetch_factor, int) or prefetch_factor < 0):
        raise ValueError(f"prefetch_factor option should be non-negative, got prefetch_factor={prefetch_factor!r}")
    if persistent_workers and num_workers == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")
    if multiprocessing_context is not None and num_workers == 0:
        raise ValueError("multiprocessing_context can only be used with multi-process loading (num_workers > 0), "
                         f"but got num_workers={num_workers}")
    if worker_init_fn is not None and not callable(worker_init_fn):
        raise TypeError(f"worker_init_fn must be callable (it is called with each worker's id), "
                        f"got {type(worker_init_fn).__name__}")
