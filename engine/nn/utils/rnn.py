"""Batches of sequences of different lengths, as torch.nn.utils.rnn: padding, and packing for RNN, LSTM, GRU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from engine import creation, dtypes
from engine.autograd.function import ShapeError
from engine.ops import shape as _shape
from engine.tensor import Tensor


def pad_sequence(sequences: Sequence[Tensor], batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack tensors of shape (L_i, *) into (L_max, B, *), or (B, L_max, *) with `batch_first`, padding each
    with `padding_value` at its end (`padding_side="left"`: at its start); differentiable in each."""
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    if not all(isinstance(s, Tensor) for s in sequences):
        kinds = sorted({type(s).__name__ for s in sequences if not isinstance(s, Tensor)})
        raise TypeError(f"pad_sequence: expected a sequence of Tensors, got {', '.join(kinds)}")
    trailing = tuple(sequences[0].shape[1:])
    for i, s in enumerate(sequences):
        if s.ndim == 0 or tuple(s.shape[1:]) != trailing:
            raise ShapeError(f"pad_sequence: every sequence must have shape (length, *{trailing}); "
                             f"sequence {i} has shape {tuple(s.shape)}")
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        missing = longest - s.shape[0]
        # pad takes (before, after) pairs from the last dim back: zeros for the trailing dims, then the length
        before, after = (missing, 0) if padding_side == "left" else (0, missing)
        padded.append(_shape.pad(s, (0, 0) * len(trailing) + (before, after), value=padding_value) if missing
                      else s)
    return _shape.stack(padded, dim=0 if batch_first else 1)


# ---- packed sequences ------------------------------------------------------------------------------
class _PackedFields(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


class PackedSequence(_PackedFields):
    """Sequences of different lengths packed time step by time step, as torch's PackedSequence: `data` holds
    the steps of every sequence still running at t (longest first), `batch_sizes[t]` how many there are."""

    __slots__ = ()

    def __new__(cls, data: Tensor, batch_sizes: Tensor, sorted_indices: Tensor | None = None,
                unsorted_indices: Tensor | None = None) -> PackedSequence:
        if not isinstance(data, Tensor) or not isinstance(batch_sizes, Tensor):
            raise TypeError("PackedSequence: data and batch_sizes must be Tensors; build one with "
                            "pack_padded_sequence or pack_sequence")
        if batch_sizes.ndim != 1 or batch_sizes.is_cuda or batch_sizes.dtype != dtypes.int64:
            raise ValueError(f"PackedSequence: batch_sizes must be a 1-D int64 CPU tensor, got a "
                             f"{batch_sizes.ndim}-D {batch_sizes.dtype.name} tensor on {batch_sizes.device}")
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = _invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        """`data.to(...)`; the indices follow data to its device, batch_sizes stays on the CPU (as torch)."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self

        def move(t):
            return None if t is None else t.to(data.device)

        return type(self)(data, self.batch_sizes, move(self.sorted_indices), move(self.unsorted_indices))

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def cuda(self, device=None) -> PackedSequence:
        return self.to("cuda" if device is None else device if isinstance(device, str) else f"cuda:{device}")

    def double(self) -> PackedSequence:
        return self.to(dtypes.float64)

    def float(self) -> PackedSequence:
        return self.to(dtypes.float32)

    def half(self) -> PackedSequence:
        return self.to(dtypes.float16)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda


def _invert_permutation(permutation: Tensor) -> Tensor:
    order = np.argsort(_host(permutation), kind="stable")
    return creation.tensor(order, dtype=dtypes.int64, device=permutation.device)


def _host(t: Tensor) -> np.ndarray:
    """The values of a small index tensor as a NumPy array (a device sync on a GPU)."""
    return t.array if isinstance(t.array, np.ndarray) else t.cpu().array


def _lengths(op: str, lengths, batch: int) -> np.ndarray:
    """`lengths` (a list or a 1-D CPU tensor) as an int64 array, checked against the batch size."""
    if isinstance(lengths, Tensor):
        if lengths.is_cuda:
            raise ValueError(f"{op}: lengths must be a list or a 1-D CPU tensor, got a tensor on "
                             f"{lengths.device}; pass lengths.cpu()")
        values = lengths.array
    else:
        values = np.asarray(lengths)
    if values.ndim != 1 or (values.size and values.dtype.kind not in "iuf"):
        raise ValueError(f"{op}: lengths must be a 1-D list or tensor of integers, got {values.ndim}-D "
                         f"{values.dtype} values")
    if values.dtype.kind == "f" and not np.all(values == np.floor(values)):
        raise ValueError(f"{op}: lengths must be whole numbers, got {values.tolist()}")
    values = values.astype(np.int64)
    if values.size != batch:
        raise ValueError(f"{op}: expected `len(lengths)` to be equal to batch_size, but got {values.size} "
                         f"(batch_size={batch})")
    return values


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded (T, B, *) batch (B, T, * with `batch_first`) whose column b holds lengths[b] real steps;
    unsorted lengths need `enforce_sorted=False`. Differentiable in `input`."""
    op = "pack_padded_sequence"
    if input.ndim < 2:
        raise ValueError(f"{op}: expected a padded batch (T, B, *) or (B, T, *), got shape {tuple(input.shape)}")
    if input.numel() == 0:
        raise RuntimeError(f"{op}: cannot pack empty tensors (input shape {tuple(input.shape)})")
    steps, batch = (input.shape[1], input.shape[0]) if batch_first else input.shape[:2]
    lengths = _lengths(op, lengths, batch)
    if lengths.min() <= 0:
        raise RuntimeError(f"{op}: length of all samples has to be greater than 0, but found an element in "
                         f"'lengths' that is <= 0 (lengths {lengths.tolist()})")
    if lengths.max() > steps:
        raise ValueError(f"{op}: lengths {lengths.tolist()} name up to {lengths.max()} steps, but the input "
                         f"has {steps} (input shape {tuple(input.shape)}, batch_first={batch_first})")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise RuntimeError(f"{op}: `lengths` array must be sorted in decreasing order when `enforce_sorted` "
                             f"is True (got {lengths.tolist()}). You can pass `enforce_sorted=False` to "
                             f"pack_padded_sequence and/or pack_sequence to sidestep this requirement")
        order, sorted_indices = np.arange(batch), None
    else:
        order = np.argsort(-lengths, kind="stable")
        sorted_indices = creation.tensor(order, dtype=dtypes.int64, device=input.device)
    running = lengths[order][None, :] > np.arange(lengths.max())[:, None]  # (t, j): sorted column j at step t
    t, j = np.nonzero(running)  # row-major: step by step, longest sequence first
    data = input[order[j], t] if batch_first else input[t, order[j]]  # one gather: one scatter in backward
    batch_sizes = creation.tensor(running.sum(1), dtype=dtypes.int64)
    return PackedSequence(data, batch_sizes, sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    """Undo pack_padded_sequence: the (T, B, *) batch (B, T, * with `batch_first`) in the original order,
    padded with `padding_value` up to `total_length` steps, and the lengths (an int64 CPU tensor)."""
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence: expected a PackedSequence, got {type(sequence).__name__}")
    data, batch_sizes = sequence.data, _host(sequence.batch_sizes)
    longest, batch = batch_sizes.size, int(batch_sizes[0])
    if total_length is not None:
        if total_length < longest:
            raise ValueError(f"Expected total_length to be at least the length of the longest sequence in "
                             f"input, but got total_length={total_length} and max sequence length being "
                             f"{longest}")
        longest = total_length
    sizes = np.zeros(longest, np.int64)
    sizes[:batch_sizes.size] = batch_sizes
    offsets = np.cumsum(sizes) - sizes
    columns = np.arange(batch)
    # where each (t, sorted column) lies in data; padding reads one extra row of padding_value after it
    where = np.where(columns[None, :] < sizes[:, None], offsets[:, None] + columns[None, :], data.shape[0])
    lengths = (columns[None, :] < sizes[:, None]).sum(0)
    if sequence.unsorted_indices is not None:
        unsorted = _host(sequence.unsorted_indices)
        where, lengths = where[:, unsorted], lengths[unsorted]
    pad_row = creation.full((1, *data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
    padded = _shape.cat([data, pad_row], 0)[where.T if batch_first else where]
    return padded, creation.tensor(lengths, dtype=dtypes.int64)


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of (L_i, *) tensors; with `enforce_sorted` they must come longest first."""
    sequences = list(sequences)
    lengths = [s.shape[0] if isinstance(s, Tensor) and s.ndim else 0 for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of (L_i, *) tensors a PackedSequence holds, in their original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return [seq[:n] for seq, n in zip(padded, lengths.tolist())]


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list[Tensor]:
    """The (L_i, *) tensors of a padded (T, B, *) batch (B, T, * with `batch_first`), cut to their lengths."""
    if padded_sequences.ndim < 2:
        raise ValueError(f"unpad_sequence: expected a padded batch of at least 2 dims, got shape "
                         f"{tuple(padded_sequences.shape)}")
    steps, batch = (padded_sequences.shape[1], padded_sequences.shape[0]) if batch_first \
        else padded_sequences.shape[:2]
    lengths = _lengths("unpad_sequence", lengths, batch)
    if lengths.size and (lengths.min() < 0 or lengths.max() > steps):
        raise ValueError(f"unpad_sequence: lengths {lengths.tolist()} must lie in [0, {steps}], the number of "
                         f"steps (shape {tuple(padded_sequences.shape)}, batch_first={batch_first})")
    columns = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [columns[b, :n] for b, n in enumerate(lengths.tolist())]
