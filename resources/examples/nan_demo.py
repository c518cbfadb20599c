"""A training run that goes wrong on purpose: the loss becomes NaN after a few steps.

    python resources/examples/nan_demo.py

For trying the debugger's NaN tracing. The script trains a small MLP on the glyph images (flattened)
with a hand-written cross-entropy,

    loss = -(one_hot * log(softmax(logits))).sum(1).mean()

and a learning rate that is too high (full-batch SGD, lr=5). Both are mistakes people make:

1. The big steps make the logits grow fast; once two logits of a row are more than ~104 apart,
   softmax in float32 rounds the smaller probability to exactly 0.
2. log(0) is -inf, and the one-hot zeros multiply it: 0 * -inf = NaN. The loss is NaN from then
   on, and the backward pass (1 / softmax) fills the gradients with inf and NaN.

The first non-finite value appears in the `log` op of the loss, at step 7 with the defaults (the
loss goes 2.30, 1.46, 0.96, 2.76, 13.6, 10.9, nan; numpy also warns "divide by zero encountered in log").
The fixes: `F.cross_entropy(logits, y)` works with log_softmax and stays finite (`main(naive=False)`:
the loss still diverges, but as numbers you can see), and a learning rate that suits the data
(`main(lr=0.5, steps=100)` ends at loss 0.04).
"""

from __future__ import annotations

import math

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.data import glyphs


def build_model(hidden: int = 64) -> nn.Module:
    """A plain MLP classifier: a flattened 16x16 glyph in, 10 class scores out."""
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, hidden), nn.Tanh(), nn.Linear(hidden, 10))


def naive_cross_entropy(logits: engine.Tensor, target: engine.Tensor) -> engine.Tensor:
    """Cross-entropy written the textbook way; the bug: log of a softmax that can underflow to 0."""
    probs = F.softmax(logits, dim=1)
    one_hot = (target[:, None] == engine.arange(logits.shape[1])[None, :]).float()
    return -(one_hot * engine.log(probs)).sum(1).mean()


def main(steps: int = 20, lr: float = 5.0, naive: bool = True, seed: int = 0, stop_at_nan: bool = True,
         verbose: bool = True) -> dict:
    """Full-batch SGD (with the naive loss unless `naive=False`); returns the losses and the first step
    whose loss is not finite."""
    engine.manual_seed(seed)
    x, y = glyphs(256, seed=seed)
    criterion = naive_cross_entropy if naive else F.cross_entropy
    model = build_model()
    optimizer = engine.optim.SGD(model.parameters(), lr=lr)
    losses, first_bad = [], None
    for step in range(1, steps + 1):
        logits = model(x)
        loss = criterion(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = loss.item()
        losses.append(value)
        accuracy = (logits.argmax(1) == y).float().mean().item()
        if verbose:
            print(f"step {step:2d}  loss {value:10.4f}  acc {accuracy:6.1%}  "
                  f"max |logit| {logits.abs().max().item():9.1f}")
        if not math.isfinite(value) and first_bad is None:
            first_bad = step
            if verbose:
                print(f"\nthe loss is {value} at step {step}: softmax underflowed to 0 and log(0) = -inf "
                      f"(see the docstring of {__file__})")
            if stop_at_nan:
                break
    return {"losses": losses, "first_nonfinite_step": first_bad}


if __name__ == "__main__":
    main()
