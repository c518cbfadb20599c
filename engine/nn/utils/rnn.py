"""Batches of sequences of different lengths, as torch.nn.utils.rnn: pad_sequence."""

from __future__ import annotations

from collections.abc import Sequence

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
