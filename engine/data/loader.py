"""DataLoader: batches of a dataset, shuffled reproducibly, collated into tensors."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from engine import random as _random
from engine.backend import array_module
from engine.creation import tensor as _tensor
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

    The order comes from `generator` (a numpy Generator), from `seed`, or else from the engine's CPU
    generator, so `engine.manual_seed(s)` makes shuffling reproducible, as `torch.manual_seed` does.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn: Callable | None = None, generator: np.random.Generator | None = None,
                 seed: int | None = None, num_workers: int = 0, pin_memory: bool = False,
                 sampler: Iterable[int] | None = None) -> None:
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
        if generator is not None and seed is not None:
            raise ValueError("DataLoader: pass either generator or seed, not both")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError("DataLoader: generator must be a numpy.random.Generator, "
                            f"got {type(generator).__name__}; or pass seed=<int>")
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
        self.sampler = sampler

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> np.ndarray:
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        rng = self.generator if self.generator is not None else _random.generator("cpu")
        return rng.permutation(n)

    def __iter__(self) -> Iterator:
        order = self._order()
        if self.batch_size is None:
            for i in order:
                yield self.dataset[int(i)]
            return
        fast = self.collate_fn is None and hasattr(self.dataset, "get_batch")
        collate = self.collate_fn or default_collate
        for b in range(len(self)):
            indices = order[b * self.batch_size:(b + 1) * self.batch_size]
            if fast:  # one gather per tensor instead of batch_size lookups and a stack
                yield self.dataset.get_batch(indices)
            else:
                yield collate([self.dataset[int(i)] for i in indices])
