"""A weight decay that outweighs the loss's gradient (weight_decay=0.5 typed for 5e-4): each step pulls the weights
toward 0 harder than the loss pushes them, they shrink, and the loss stays where it started. Its updates can be as
large as the weights, which reads as a learning rate too high, though a smaller rate only slows the shrinking.

An L2 decay (SGD, Adam, RMSprop: weight_decay * w added to the gradient) dominates where weight_decay * |w| is
DOMINATES times the loss's gradient |g| or more: where the two balance, as in a run converged with its decay, they are
equal. A decoupled one (AdamW: w *= 1 - lr * weight_decay) dominates where weight_decay times the weights' first root
mean square reaches 1: Adam's step moves a weight by about lr whatever the gradient, the decay by lr * weight_decay *
|w|, so the weights end near 1 / weight_decay at most. Either, once it has shrunk a layer it outweighs the gradient in
below SHRUNK of its first norm while the loss has not fallen (or made updates as large as the weights), is alerted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from engine.backend import host_floats, square_sum
from engine.debug.alert_text import layer_of, names_text
from engine.debug.param_names import by_event_names, updated_parameters
from engine.debug.schedules import hyper_number
from engine.optim.optimizer import decouples

DOMINATES = 3.0  # an L2 decay this many times the gradient (healthy runs: 0.0-0.1 early, near 1 once converged)...
SHRUNK = 0.5  # ...that has shrunk its weights below this share of their first norm
EVERY = 8  # steps between measures where a step brings no norms (capture "structure"): two reductions a parameter
USUAL = "1e-5 to 1e-2 (5e-4 is common)"  # the L2 weight decays people use
USUAL_DECOUPLED = "1e-4 to 0.1 (0.01 is AdamW's default)"


@dataclass(frozen=True, slots=True)
class Decay:
    """A param group whose weight decay outweighs the gradient at a step."""

    group: int
    weight_decay: float
    lr: float
    share: float  # weight_decay * |w| / |g| (L2), or weight_decay * rms(w) at the first step (decoupled)
    decoupled: bool
    shrink: float  # the least weight norm now over its first, of the layers the decay outweighs the gradient in
    since: int  # the iteration of the first norms
    layers: tuple[str, ...]  # the layers the decay outweighs the gradient in


class WeightDecayCheck:
    """Measures, at each step of an optimizer with a weight decay, whether it outweighs the gradient (see the module
    docstring) in its param group as a whole and in some of its layers, and words the alert."""

    def __init__(self) -> None:
        self._first: dict[tuple[int, str], tuple[float, int]] = {}  # (id(opt), layer) -> (first |w|^2, its iteration)
        self.now: Decay | None = None  # what the last step found
        self.alerted: Decay | None = None  # what the alert named, once raised

    def measure(self, rec, opt, names: Callable[[], dict[int, str]], steps: int) -> Decay | None:
        """The group of `opt` whose decay dominates at this step (`rec`: its record; `names`: id of a parameter ->
        its name; `steps`: the steps seen, to measure one in EVERY where the step brings no norms), kept as `now`."""
        self.now = None
        decayed = {g for g, group in enumerate(opt.param_groups) if hyper_number(group.get("weight_decay"), 0.0) > 0}
        if not decayed or len(self._first) >= 4096:
            return None
        sizes = self._sizes(rec.event, opt, decayed, names, steps)
        for g in sorted(decayed):
            group = opt.param_groups[g]
            wd, decoupled = hyper_number(group["weight_decay"], 0.0), decouples(group)
            limit = 1.0 if decoupled else DOMINATES
            rows = {}  # layer -> (|w|^2, |g|^2, first |w|^2, elements)
            for layer, (w2, g2, count) in sizes.get(g, {}).items():
                rows[layer] = (w2, g2, self._first.setdefault((id(opt), layer), (w2, rec.iteration))[0], count)
            over = [(math.sqrt(w2 / first) if first else 1.0, layer) for layer, (w2, g2, first, count) in rows.items()
                    if _share(wd, decoupled, w2, g2, first, count) >= limit]
            share = _share(wd, decoupled, *map(sum, zip(*rows.values()))) if rows else 0.0
            if over and share >= limit:
                since = min(self._first[(id(opt), layer)][1] for layer in rows)
                self.now = Decay(g, wd, hyper_number(group.get("lr"), 0.0), share, decoupled, min(over)[0], since,
                                 tuple(layer for _, layer in over))
                return self.now
        return None

    @staticmethod
    def _sizes(event, opt, decayed: set[int], names, steps: int) -> dict:
        """Group -> layer -> (|w|^2, |g|^2, elements) of the decayed groups' parameters this step updated: from the
        step's norms, else measured (one step in EVERY; empty between)."""
        every = updated_parameters(opt)
        updated = [u for u in every if u[0] in decayed]
        weight_norms, grad_norms = getattr(event, "weight_norms", None), getattr(event, "grad_norms", None)
        pairs = by_event_names(weight_norms, every) if weight_norms and grad_norms else None
        if pairs is not None:
            named = {id(p): name for name, p in pairs}
            squares = [(weight_norms[named[id(p)]] ** 2, grad_norms[named[id(p)]] ** 2) for *_, p in updated]
        elif steps % EVERY:
            return {}
        else:
            named = names()
            flat = host_floats([s for *_, p in updated for s in (square_sum(p.array), square_sum(p.grad.array))])
            squares = list(zip(flat[0::2], flat[1::2]))
        sizes: dict = {}
        for (g, i, _, p), (w2, g2) in zip(updated, squares):
            name = named.get(id(p))
            layer = layer_of(name) if name else f"group{g}.{i}"
            weights, grads, count = sizes.setdefault(g, {}).get(layer, (0.0, 0.0, 0))
            sizes[g][layer] = (weights + w2, grads + g2, count + p.array.size)
        return sizes

    def message(self, name: str, iteration: int, found: str) -> str:
        """The alert's text for the decay found `now` in an optimizer of class `name`; `found`: what else shows it
        (", its updates 2x the weights of layer '0'", ", and the loss stays near its first (1.08)")."""
        d = self.now
        layers = f" of {names_text(list(d.layers))}" if d.layers else ""
        if d.decoupled:
            pull = (f"takes lr x weight_decay = {d.lr * d.weight_decay:.2g} of every weight{layers} at each step, more "
                    f"than {name}'s steps put back (weight_decay x the weights' first RMS = {d.share:.2g}, above 1)")
            usual = USUAL_DECOUPLED
        else:
            pull = f"pulls the weights{layers} toward 0 {d.share:,.0f}x harder than the loss's gradient pushes them"
            usual = USUAL
        return (f"the weight decay of {name} (weight_decay={d.weight_decay:g}, param group {d.group}) {pull}; they "
                f"have shrunk to {d.shrink:.2g} of their norm at iteration {d.since} (in the layer that shrank most)"
                f"{found}, iteration {iteration}: the updates are the decay's, not the loss's, so a smaller learning "
                f"rate only slows the shrinking. Lower weight_decay ({d.weight_decay:g}) into the usual {usual}")

    def aftermath(self) -> str:
        """What the decay alerted did to the layers, for a later alert that follows from it ("" before)."""
        d = self.alerted
        return "" if d is None else (
            f"the weight decay (weight_decay={d.weight_decay:g}, see the weight-decay alert) shrank the weights toward "
            "0, and a gradient passes back through a layer in proportion to its weights. Lower weight_decay first")


def _share(wd: float, decoupled: bool, weights: float, grads: float, first: float, count: int) -> float:
    """How far a decay outweighs the gradient (see the module docstring), from squared norms (|w|^2 now, |g|^2,
    |w|^2 at the first step) and the elements. A decoupled decay's is judged on the first weights: it holds each near
    1 / weight_decay at most, and once they have shrunk there it no longer outweighs anything."""
    if decoupled:
        return wd * math.sqrt(first / max(count, 1))
    return wd * math.sqrt(weights / grads) if grads else math.inf if weights else 0.0
