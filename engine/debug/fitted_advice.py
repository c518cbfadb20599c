"""Advice that fits what the script has, where the generic words would mislead: a model with a LayerNorm in every
block is not told to add normalisation layers, nor a script whose clipping clipped nothing to try clipping."""

from __future__ import annotations

import linecache

from engine.debug.node_names import input_name
from engine.nn.utils import clip_grad


def depth_advice(saturating: bool, norms: list[str], residual: bool) -> str:
    """What fades a gradient through a model's depth, and what to try, fitted to what the model has (`norms`: the
    normalisation layers it runs, "LayerNorm"; `residual`: whether it adds an activation to one of its shape)."""
    parts = ([f"normalises ({', '.join(norms)})"] if norms else []) + (["has residual connections"] if residual else [])
    has = "the model " + " and ".join(parts) if parts else ""
    if saturating:
        missing = [fix for fix, there in (("normalisation layers", norms), ("residual connections", residual))
                   if not there]
        return ("saturating activations (sigmoid, tanh) with small weights do this" + (f"; {has}" if has else "") +
                ". Try ReLU/GELU, Kaiming or Xavier init (engine.nn.init)" +
                "".join(f", {fix}" for fix in missing[:-1]) + (f" or {missing[-1]}" if missing else ""))
    if norms and not residual:
        return (f"no sigmoid or tanh ran, and {has} but adds no skip connection: through a deep stack of plain "
                "blocks the gradient still shrinks at each (a normalisation divides it by its input's spread, "
                "which grows with the weights). Add residual connections (h = h + block(h)) or use fewer blocks; a "
                "smaller learning rate or weight decay (AdamW) keeps the weights from growing")
    if has:
        return (f"no sigmoid or tanh ran, and {has}, so look at the initialisation (all small or all zero weights"
                f"{', a residual branch scaled to nothing' if residual else ''}) and the learning rate" +
                ("" if norms else "; try Kaiming or Xavier init (engine.nn.init) or a normalisation layer in each "
                 "block"))
    return ("no sigmoid or tanh ran, so look at the initialisation (all small or all zero weights), the depth without "
            "normalisation or skip connections, and the learning rate; try Kaiming or Xavier init (engine.nn.init), "
            "normalisation layers or residual connections")


def unclipped(names: list[str]) -> str:
    """Why the last clip_grad_norm_ call given no parameters clipped nothing (a generator the optimizer had read,
    or an empty list) and what to pass it; `names`: the optimizer's parameters, to write the list out."""
    _, generator, file, line = clip_grad.given_nothing
    code = linecache.getline(file, line).strip()
    held = input_name("clip_grad_norm_", 0, code)  # the name passed ("params"), else "input": the argument's own
    given = ("a generator that the optimizer had already read to its end (a generator is read once)" if generator
             else "an empty list")
    listed = f"[{', '.join(names)}]" if names and len(names) <= 6 and all(n.isidentifier() for n in names) \
        else "list(model.parameters())"
    held, what = ("params", "") if held == "input" else (held, f"`{held}`, ")
    return (f"clip_grad_norm_ at {file}:{line} ({code}) was given {what}{given}, so it saw no parameter and clipped "
            f"nothing (the norm it returned, 0, is of no gradient): keep the parameters in a list ({held} = {listed}) "
            "and give that to the optimizer and to clip_grad_norm_")
