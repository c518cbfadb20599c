"""DataLoader: batches of a dataset, shuffled reproducibly, collated into tensors."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from engine import random as _random
from engine.backend import array_module
from engine.creation import tensor as _tensor
from engine.data.sampler import BatchSampler, RandomSampler, SequentialSampler, _epoch
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
        return _stack([Tensor(_tensor(_checked(x, np.ndarray, first)).array) for x in batch])
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
        return list(batch)
    if isinstance(first, Mapping):
        return {key: default_collate([_checked(x, Mapping, first)[key] for x in batch]) for key in first}
    if isinstance(first, Sequence):
        for x in batch:
            if not isinstance(x, Sequence) or len(x) != len(first):
                got = len(x) if isinstance(x, Sequence) else type(x).__name__
                raise ValueError("default_collate: each element in list of batch should be of equal size; "
                                 f"got lengths {len(first)} and {got}")
        columns = [default_collate(list(column)) for column in zip(*batch)]
        if isinstance(first, tuple):
            return type(first)(*columns) if hasattr(first, "_fields") else tuple(columns)
        return columns
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(first).__name__}; pass a collate_fn that handles it")


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
    reproducible, as `torch.manual_seed` does.
    As in PyTorch, `sampler` (a SequentialSampler or RandomSampler unless given) picks the indices, and
    `batch_sampler` (a BatchSampler of it unless given; None with batch_size=None) groups them.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn: Callable | None = None, generator=None,
                 seed: int | None = None, num_workers: int = 0, pin_memory: bool = False,
                 sampler: Iterable[int] | None = None, batch_sampler: Iterable[list[int]] | None = None) -> None:
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"DataLoader needs a map-style dataset (with __getitem__ and __len__), got "
                            f"{type(dataset).__name__}")
        if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)
                                       or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, "
                             f"but got batch_size={batch_size!r}")
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
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
            raise ValueError(f"num_workers option should be non-negative; got num_workers={num_workers!r}")
        if num_workers:  # a PyTorch script's speed setting: run it, and say the batches come from this process
            warnings.warn(f"DataLoader loads in the main process here: num_workers={num_workers} is ignored",
                          UserWarning, stacklevel=2)
        # pin_memory (page-locked host batches for faster copies to a GPU) is a speed hint: accepted, unused
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.generator = np.random.default_rng(seed) if seed is not None else generator
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
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self) -> Iterator:
        if self.batch_sampler is None:
            for i in _epoch(self.sampler):
                yield self.dataset[int(i)]
            return
        if self._own_batches:
            order, size = _epoch(self.sampler), self.batch_size
            batches = (order[b * size:(b + 1) * size] for b in range(len(self)))
        else:
            batches = iter(self.batch_sampler)
        fast = self.collate_fn is None and hasattr(self.dataset, "get_batch")
        collate = self.collate_fn or default_collate
        for indices in batches:
            if fast:  # one gather per tensor instead of batch_size lookups and a stack
                yield self.dataset.get_batch(np.asarray(indices, dtype=np.int64))
            else:
                yield collate([self.dataset[int(i)] for i in indices])
