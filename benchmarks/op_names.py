"""What naming op nodes by the script's assignments costs: nothing per op while a script runs (the debugger records
what it recorded before; the graph model keeps a reference to each new op's frames), and, once per graph view,
op_names over every op, here for a real 20k-op iteration: a 2,500-step unrolled recurrence of 8 ops a step.

    python benchmarks/op_names.py [--steps 2500]

Prints the view's build time with names and without (the same model, its frames hidden), and the record-time
cost of the graph model's apply (with the frames kept, and without). Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import interleaved  # one BLAS thread each, before numpy loads

import engine
from app.graph_model import OP, GraphModel
from engine.debug import Debugger


def unrolled(steps: int) -> None:
    """An RNN cell written out in the script, its line run `steps` times: 8 ops a step."""
    w, u = engine.randn(16, 16), engine.randn(16, 16)
    xs = engine.randn(steps, 4, 16)
    h = engine.zeros(4, 16)
    for t in range(steps):
        z = xs[t] @ w + h @ u
        h = engine.tanh(z) * 0.5 + h * 0.5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2500)
    steps = parser.parse_args().steps
    records: list = []
    with Debugger("structure", on_record=records.append):
        unrolled(steps)

    def applied(keep_frames: bool) -> GraphModel:
        model = GraphModel()
        if not keep_frames:
            model.stacks = _Forgetful()
        model.apply_batch(records)
        return model

    named, plain = applied(True), applied(False)
    view = named.view()
    ops = int((view.kind == OP).sum())
    count = sum(1 for i in range(len(view)) if view.kind[i] == OP and view.caption[i] != view.label[i])
    print(f"{len(records)} records, {len(view)} nodes, {ops} ops, {count} of them named")

    def build(model: GraphModel) -> None:
        model._version += 1  # a new structure: the view is built again, names and all
        model.view()

    times = interleaved({"names": lambda: build(named), "none": lambda: build(plain)}, rounds=11, repeat=2)
    print(f"view() with names {times['names'] * 1e3:.1f} ms, without {times['none'] * 1e3:.1f} ms "
          f"(ratio {times['names'] / times['none']:.2f})")
    times = interleaved({"kept": lambda: applied(True), "not": lambda: applied(False)}, rounds=7, repeat=1)
    print(f"apply_batch, frames kept {times['kept'] * 1e6 / len(records):.2f} us/record, not kept "
          f"{times['not'] * 1e6 / len(records):.2f} us/record (ratio {times['kept'] / times['not']:.2f})")


class _Forgetful(dict):
    """A frames dict that keeps nothing: the model as it was before op names."""

    def __setitem__(self, key, value) -> None:
        pass


if __name__ == "__main__":
    main()
