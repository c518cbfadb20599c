"""Map-style datasets: anything with `__len__` and `__getitem__`, and TensorDataset."""

from __future__ import annotations

from engine.backend import array_module
from engine.tensor import Tensor


class Dataset:
    """Base class of map-style datasets: subclasses define `__getitem__(i)` and `__len__()`."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Samples are rows of the given tensors: `dataset[i] == (t0[i], t1[i], ...)`."""

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, not a Tensor")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-d; "
                                 "every tensor needs a first (sample) dimension")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) != 1:
            raise ValueError(f"Size mismatch between tensors: TensorDataset got first dimensions {sizes}; "
                             "every tensor needs one row per sample")
        self.tensors = tensors

    def __getitem__(self, index) -> tuple[Tensor, ...]:
        return tuple(take(t, index) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def get_batch(self, indices) -> tuple[Tensor, ...]:
        """Many samples at once, already stacked (what `default_collate` of the rows would give)."""
        return tuple(take(t, indices) for t in self.tensors)


def take(t: Tensor, index) -> Tensor:
    """Rows of `t`: an int, a slice or an integer array of positions.

    Data that needs no gradient is sliced on the raw array, so loading batches records no ops
    (and shows no data-plumbing nodes in the debugger's graph).
    """
    if t.requires_grad:
        return t[index]
    if not isinstance(index, int | slice):
        index = array_module(t.array).asarray(index)
    return Tensor._wrap(t.array[index])
