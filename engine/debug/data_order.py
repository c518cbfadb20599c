"""What to try where batches come in label order, fitted to how the script makes them: "Pass shuffle=True to the
DataLoader" means nothing to a loop that slices its batches from the data itself (x[j:j + B]), which wants its
indices shuffled each epoch, and is told so at the line that slices."""

from __future__ import annotations

from engine.data.loader import last_iterated
from engine.data.sampler import SequentialSampler
from engine.debug.records import OpRecord

SLICING = frozenset({"getitem", "index_select", "narrow"})  # how a loop takes a batch from the whole data
# what a batch's targets pass through on their way from the slice to the loss: .long(), .to(device), a view
PASSING = frozenset({"to", "view", "reshape", "squeeze", "flatten", "clone", "contiguous"})


def shuffle_advice(target: int, made: dict[int, OpRecord]) -> tuple[str, OpRecord | None]:
    """(what to try, the op that sliced the batch from the data, or None) for batches of one class each; `target`:
    the id of the loss's targets, `made`: id of an output -> the record of the op outside module calls that made it
    in this iteration."""
    rec = made.get(target)
    while rec is not None and rec.event.op in PASSING and rec.event.inputs:
        rec = made.get(rec.event.inputs[0])
    if rec is not None and rec.event.op in SLICING:
        src = rec.source
        at = f" at {src.file}:{src.line} ({src.text})" if src is not None else ""
        return (f"The batches are sliced from the data in its order{at}: shuffle the indices each epoch, e.g. perm = "
                "engine.randperm(len(x)), then x[perm[j:j + B]], y[perm[j:j + B]]"), rec
    loader = last_iterated()
    if loader is not None and isinstance(loader.sampler, SequentialSampler):
        return "Pass shuffle=True to the DataLoader", None
    if loader is not None and loader.sampler is not None:
        return (f"The DataLoader's sampler ({type(loader.sampler).__name__}) gives the samples in label order: give "
                "it shuffle=True, or a sampler that draws them at random"), None
    return ("Shuffle the samples each epoch (shuffle=True in a DataLoader, or engine.randperm(n) over the indices you "
            "take batches by)"), None
