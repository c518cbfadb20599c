"""Which samples a DataLoader takes, in which order, as torch.utils.data's samplers.

Each is an iterable of dataset indices with a length. Random ones draw from `generator` (an
engine.Generator on the CPU, or a numpy Generator) or else from the engine's global CPU generator, so
`engine.manual_seed(s)` fixes them.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from engine import random as _random


def _rng(generator) -> np.random.Generator:
    """The numpy generator to draw indices with (the host draws them, as torch's samplers do)."""
    return _random.resolve(generator, "cpu")


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got {name}={value!r}")
    return int(value)


class Sampler:
    """Indices into a dataset, one epoch per iteration."""

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        raise NotImplementedError

    def _indices(self) -> np.ndarray:
        """One epoch's indices as an int64 array, what a DataLoader slices its batches from (the engine's own
        samplers; a subclass defines __iter__, as for torch; `epoch` is left free for its own use)."""
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:  # lazy: the first index at once, however long the dataset
        return iter(range(len(self.data_source)))

    def _indices(self) -> np.ndarray:
        return np.arange(len(self.data_source))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A new permutation each epoch, or `num_samples` draws with replacement."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator=None) -> None:
        self.data_source, self.replacement, self.generator = data_source, bool(replacement), generator
        self._num_samples = None if num_samples is None else _count("num_samples", num_samples)
        _rng(generator)  # a wrong generator is refused here, not at the first epoch

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _indices(self) -> np.ndarray:
        """As torch draws them: without a generator, from a new one seeded by a draw of the global generator;
        without replacement, a permutation for each whole pass and one more for the rest (even when empty)."""
        n = len(self.data_source)
        if self.generator is None:
            rng = _random.Generator().manual_seed(_random.seed63(_random.generator("cpu"))).rng()
        else:
            rng = _rng(self.generator)
        if self.replacement:
            return rng.integers(0, n, self.num_samples) if n else np.zeros(0, dtype=np.int64)
        if not n:
            return np.arange(0)
        passes = [rng.permutation(n) for _ in range(self.num_samples // n)]
        return np.concatenate([*passes, rng.permutation(n)[:self.num_samples % n]])

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices, in a new random order each epoch (a train/validation split of one dataset)."""

    def __init__(self, indices: Sequence[int], generator=None) -> None:
        self.indices, self.generator = list(indices), generator
        _rng(generator)

    def _indices(self) -> np.ndarray:
        return np.asarray(self.indices, dtype=np.int64)[_rng(self.generator).permutation(len(self.indices))]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """`num_samples` indices drawn with probability proportional to `weights` (rare classes more often)."""

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator=None) -> None:
        w = np.asarray(weights.tolist() if hasattr(weights, "tolist") else weights, dtype=np.float64)
        if w.ndim != 1 or not w.size:
            raise ValueError(f"weights should be a 1-D sequence of numbers, got shape {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        self.num_samples = _count("num_samples", num_samples)
        if not replacement and self.num_samples > np.count_nonzero(w):
            raise ValueError(f"cannot draw {self.num_samples} samples without replacement from "
                             f"{np.count_nonzero(w)} with a non-zero weight")
        self.weights, self.replacement, self.generator = w, bool(replacement), generator
        _rng(generator)

    def _indices(self) -> np.ndarray:  # as torch.multinomial draws them
        from engine.creation import multinomial, tensor

        weights = tensor(self.weights)
        return multinomial(weights, self.num_samples, self.replacement, generator=self.generator).numpy()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of `batch_size` indices from `sampler`; the last one shorter unless `drop_last`."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not hasattr(sampler, "__iter__"):
            raise TypeError(f"sampler must be an iterable of indices, got {type(sampler).__name__}")
        self.sampler, self.batch_size = sampler, _count("batch_size", batch_size)
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last!r}")
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        order = _epoch(self.sampler).tolist()
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        return (order[b:b + self.batch_size] for b in range(0, stop, self.batch_size))

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class DistributedSampler(Sampler):
    """The share of rank `rank` of `num_replicas` processes: every rank the same epoch order, a disjoint slice.

    The engine has no process group, so `num_replicas` and `rank` must be given. The order, shuffled from
    `seed + epoch` (call `set_epoch` each epoch), is the same on every rank, but it is not PyTorch's.
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            raise RuntimeError("DistributedSampler: the engine has no distributed process group; pass num_replicas "
                               "and rank explicitly (the number of processes and this one's index)")
        num_replicas = _count("num_replicas", num_replicas)
        if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, int(rank)
        self.shuffle, self.seed, self.drop_last, self.epoch = bool(shuffle), int(seed), bool(drop_last), 0
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = -(-(n - num_replicas) // num_replicas)
        else:
            self.num_samples = -(-n // num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use epoch `epoch`'s order next (without it, every epoch repeats the same shuffle)."""
        self.epoch = int(epoch)

    def _indices(self) -> np.ndarray:
        n = len(self.dataset)
        order = np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle else np.arange(n)
        if self.drop_last:
            order = order[:self.total_size]
        elif self.total_size > n and n:  # pad with the first indices again so every rank gets as many
            order = np.resize(order, self.total_size)
        return order[self.rank:self.total_size:self.num_replicas]

    def __len__(self) -> int:
        return self.num_samples


def _epoch(sampler) -> np.ndarray:
    """One epoch of any iterable of indices, as an array (fast for the engine's own samplers)."""
    if type(sampler).__iter__ in _OWN_ITERATION:  # not a subclass that iterates in its own way
        return sampler._indices()
    return np.fromiter(iter(sampler), dtype=np.int64)


# the engine's samplers whose __iter__ gives what _indices() gives
_OWN_ITERATION = frozenset({Sampler.__iter__, SequentialSampler.__iter__})
