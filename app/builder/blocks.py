"""The engine modules a build is made of: its layers, and the two small blocks the builder adds.

`Residual` and `OutputOf` are copied verbatim into exported scripts (app.builder.export), so they use
only `engine` and `nn` and read like code a person would write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import engine
import engine.nn as nn
from app.builder import catalog

if TYPE_CHECKING:
    from app.builder.spec import Layer


class Residual(nn.Module):
    """x + its layers applied to x: the layers must give back the input's shape."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x: engine.Tensor) -> engine.Tensor:
        return x + self.body(x)


class OutputOf(nn.Module):
    """A layer called with its input `inputs` times (self-attention: 3), keeping only the output tensor
    of a layer that returns (output, state)."""

    def __init__(self, layer: nn.Module, inputs: int = 1) -> None:
        super().__init__()
        self.layer = layer
        self.inputs = inputs

    def forward(self, x: engine.Tensor) -> engine.Tensor:
        out = self.layer(*[x] * self.inputs)
        return out[0] if isinstance(out, tuple) else out


def make_module(layer: Layer) -> nn.Module:
    """The engine module for one checked layer (children built first); raises what the constructor raises."""
    entry = catalog.LAYERS[layer.type]
    args = entry.check_args(layer.args)
    if layer.type == "Repeat":
        # each copy its own parameters, as a person would write it: a comprehension of fresh blocks
        return nn.Sequential(*[nn.Sequential(*[make_module(c) for c in layer.children])
                               for _ in range(args["times"])])
    children = [make_module(c) for c in layer.children]
    if entry.block:
        return entry.cls(*children)
    args.update(zip(entry.slots, children))
    module = entry.cls(**args)
    if entry.inputs != 1 or entry.tuple_output:
        module = OutputOf(module, entry.inputs)
    return module


def make_model(layers: list[Layer]) -> nn.Sequential:
    """The whole sequence as an nn.Sequential."""
    return nn.Sequential(*[make_module(layer) for layer in layers])
