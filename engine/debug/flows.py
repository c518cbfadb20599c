"""Mistakes found by following tensor ids through one iteration's recorded graph: a softmax whose dim was not given
that normalises a (N, T, C) model's scores over the batch, and a loss's targets joined into the model's input, before
the call or inside its forward (the labels leak into what the model sees, so the loss falls to ~0 for a wrong reason).

FlowChecks is a part of engine.debug.alerts.Monitor (a base class): it keeps its own state (_flow_state,
_flow_new_iteration) and uses the Monitor's bookkeeping (_starts, _recurrent).
"""

from __future__ import annotations

import math

from engine.debug.alert_text import make_alert, ordinal, where
from engine.debug.loop_checks import LAYERS
from engine.debug.records import OpRecord
from engine.events import AlertEvent

FLOW_LIMIT = 4096  # ops outside module calls an iteration remembers (id of the output -> the op)
# ops that keep a tensor's values, only laid out anew: a softmax's normalised dim moves through them, and a target
# stays itself through them (one_hot and `to`: its classes as a one-hot or float copy)
RESHAPING = frozenset({"view", "reshape", "flatten", "unsqueeze", "squeeze"})
REORDERING = frozenset({"permute", "transpose"})
ELEMENTWISE = frozenset({"log", "add", "clamp", "clamp_min", "to"})  # log(p + 1e-8): the softmax's output still
CONVERTING = frozenset({*RESHAPING, "to", "one_hot", "expand", "clone", "detach"})
JOINING = frozenset({"cat", "stack", "hstack", "vstack", "concatenate", "add"})  # what puts labels beside features
CONCATS = JOINING - {"add"}  # joins that set tensors side by side (a sum, x + noise, is a denoiser's input)
# with a constant (a number, a statistic such as y.mean(), a per-column scale) a target keeps its information
SCALING = frozenset({"add", "sub", "mul", "div", "neg"})
TRACED = CONVERTING | JOINING | SCALING  # ops inside a model's forward that a target is followed through
CLASS_LOSSES = frozenset({"cross_entropy", "nll_loss"})  # losses that read dim 1 (of a 1-d input: 0) as the classes
# losses whose target may be (part of) the model's input on purpose: an autoencoder reconstructing the rest of it
TARGETED = frozenset({*CLASS_LOSSES, "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss",
                      "l1_loss", "smooth_l1_loss", "huber_loss"})
CONVS = {"conv1d": 1, "conv2d": 2, "conv3d": 3}  # spatial dims: an input with one more is a single sample


class FlowChecks:
    """Checks that follow ids through the graph (see the module docstring), as records come; a base of Monitor."""

    def _flow_state(self) -> None:
        """Start with nothing seen (Monitor.__init__ calls it)."""
        # id -> (record of a softmax whose dim was not given, where its normalised dim now is) for its output and
        # the tensors laid out anew from it
        self._implicit: dict[int, tuple[OpRecord, int]] = {}
        self._flow: dict[int, OpRecord] = {}  # id of an output of an op outside module calls -> its record
        self._inner: dict[int, OpRecord] = {}  # the same for the TRACED ops (and embeddings) inside module calls
        self._read: list[tuple] = []  # (index in _calls, id, record) of a layer inside a call reading an _inner output
        self._calls: list[tuple] = []  # the tensor ids each call of the model (a root module call) took
        self._call_of: dict[int, int] = {}  # id of a tensor a call of the model returned -> its index in _calls
        self._batch: tuple | None = None  # (dim 0, shape, op) of the model's first input, as the first op took it
        self._targets: list[int] = []  # ids of the targets of this iteration's losses
        self._leak: tuple | None = None  # (loss, the op joining its targets into the model's input, which input)
        self._joined = False  # whether an op of this iteration joined tensors (none: no targets can have been)

    def _flow_new_iteration(self) -> None:
        """Forget the iteration's graph (Monitor.new_iteration calls it)."""
        self._implicit.clear()
        self._flow.clear()
        self._inner.clear()
        self._read.clear()
        self._calls.clear()
        self._call_of.clear()
        self._batch = None
        self._targets.clear()
        self._leak = None
        self._joined = False

    def _follow(self, rec: OpRecord, inputs: tuple) -> AlertEvent | None:
        """Note what a forward op makes: an implicit-dim softmax's output or a layout of it; an op outside module
        calls; the model's input's batch. An alert when it is a loss that takes labels its model took as input,
        or scores a softmax normalised over the batch."""
        ev = rec.event
        if not ev.inputs:
            return None
        if not rec.depth and len(self._flow) < FLOW_LIMIT:
            self._flow[ev.output] = rec
            if ev.op in JOINING:
                self._joined = True
        elif rec.depth and self._calls:  # inside the model: what its layers read, and how it was made
            if ev.inputs[0] in self._inner and len(self._read) < 64 and (ev.op in LAYERS or ev.op == "embedding" or
                                                                         "steps" in ev.args):
                self._read.append((len(self._calls) - 1, ev.inputs[0], rec))
            if (ev.op in TRACED or ev.op == "embedding") and len(self._inner) < FLOW_LIMIT:
                self._inner[ev.output] = rec
                if ev.op in JOINING:
                    self._joined = True
        if self._batch is None and self._calls and ev.inputs[0] in self._calls[-1][:1]:
            shape = tuple(ev.input_shapes[0])
            self._batch = (shape[0] if shape else 0, shape, ev.op)
        if ev.op in ("softmax", "log_softmax") and ev.args.get("implicit_dim") and len(ev.input_shapes[0]) == 3 \
                and ev.args.get("dim") == 0 and ev.input_shapes[0][0] > 1:
            self._implicit[ev.output] = (rec, 0)
        elif self._implicit and ev.inputs[0] in self._implicit:
            softmax, dim = self._implicit[ev.inputs[0]]
            moved = _moved(ev, dim)
            if moved is not None and len(self._implicit) < 64:
                self._implicit[ev.output] = (softmax, moved)
            if ev.op in CLASS_LOSSES and len(ev.input_shapes[0]) >= 2 and dim != 1:
                # the loss's rows (dim 0) are its samples: a softmax's dim 0 among them is over the batch
                alert = self._implicit_dim(softmax, f"{where(rec)}, which reads dim 1 as the classes, takes it",
                                           rec.iteration, dim == 0 or self._over_batch(softmax))
                if alert is not None:
                    return alert
        if ev.op in TARGETED and ev.requires_grad and len(ev.inputs) > 1 and self._calls:
            if len(self._targets) < 64:
                self._targets.append(ev.inputs[1])
            if self._leak is not None or not self._joined:
                return None  # judged, or nothing joined in this iteration (most steps): no targets beside others
            if ev.op in CLASS_LOSSES and len(ev.input_shapes[1]) < len(ev.input_shapes[0]):
                self._leak = self._labels_fed(rec)  # class indices
            elif math.prod(ev.input_shapes[1]) == math.prod(ev.input_shapes[0]):
                self._leak = self._labels_fed(rec, shaped=True)  # shaped as the scores: multi-hot, a regression's
        return None

    def model_called(self, tensors: tuple) -> None:
        """A call of the model (a root module call) took the tensors of these ids."""
        if len(self._calls) >= 64:  # a run without iterations: start over
            self._calls.clear()
            self._call_of.clear()
        self._calls.append(tensors)

    def model_returned(self, tensors: tuple, iteration: int) -> AlertEvent | None:
        """A call of the model returned the tensors of these ids: an alert when the first is a softmax over the batch
        whose dim was not given."""
        if self._calls and len(self._call_of) < FLOW_LIMIT:
            for i in tensors:
                self._call_of[i] = len(self._calls) - 1
        found = self._implicit.get(tensors[0]) if tensors and self._implicit else None
        if found is None or found[1] != 0 or not self._over_batch(found[0]):
            return None
        return self._implicit_dim(found[0], "it is the model's output", iteration, True)

    def _over_batch(self, softmax: OpRecord) -> bool:
        """Whether a softmax's dim 0 is the model's batch, by a layer that took it as one: a recurrent layer of the
        iteration whose batch (its state's rows, not its steps) is as long, or a first conv given a batch of images.
        A first Linear takes any leading dims as rows, so a (T, N, D) input's T says nothing: unsure, False."""
        rows = softmax.event.input_shapes[0][0]
        rnn = self._recurrent
        if rnn is not None and rnn.iteration == softmax.iteration:
            return rnn.event.input_shapes[1][0] == rows != rnn.event.args["steps"]
        if self._batch is None:
            return False
        first, shape, op = self._batch
        return first == rows and len(shape) == CONVS.get(op, -1) + 2

    def _implicit_dim(self, softmax: OpRecord, use: str, iteration: int, batch: bool) -> AlertEvent | None:
        """The alert for a softmax whose dim was not given and that normalises a 3-d input over dim 0 (`batch`:
        that dim is known to be the batch)."""
        if not self._starts(("implicit_dim", softmax.event.key), True):
            return None
        shape = tuple(softmax.event.input_shapes[0])
        op = softmax.event.op
        return make_alert("implicit_dim", f"{op} over dim 0 ({'the batch, ' if batch else ''}size {shape[0]}) of a "
                          f"{shape} tensor: dim was not given, and for a 3-d input the default is dim 0 (as in "
                          f"PyTorch), so {where(softmax)} makes each position's scores a distribution over "
                          f"{'the samples of the batch' if batch else 'dim 0'}; {use}, iteration {iteration}. Pass the "
                          f"classes' dim: {op}(x, dim=-1) (nn.{_module(op)}(dim=-1))", softmax, 0.0)

    def _labels_fed(self, loss: OpRecord, shaped: bool = False) -> tuple | None:
        """(loss, join, which input) when the call of the model whose output a loss scores took, as an input, a
        tensor that joins the loss's targets (themselves, or a copy converted or rescaled by constants) to other
        tensors, `model(cat([x, one_hot(y)], 1))`, or joined them so inside its forward before a layer read them.
        Targets the model takes alone are an autoencoder's (x reconstructs x; tokens, read with their positions'
        embeddings added in forward, themselves); a shifted slice of them (teacher forcing, a language model's
        inputs) and a masked copy (a masked language model's) are no copy; labels that condition a generator whose
        output another model scores are not its loss's input. Targets looked up in an embedding and joined are
        followed as a one-hot is. Targets `shaped` as the scores (multi-hot labels, a regression's values) are a
        reconstruction's as often: see _label_like. Judged by labels_leaked once the iteration's losses are
        known."""
        scores, target = loss.event.inputs[:2]
        call = self._caller(scores)
        if call is None:
            return None
        targets = self._sources(target)
        inputs = self._calls[call]
        if all(self._joins(i, targets, 16) is True for i in inputs):
            return None  # it reads the targets alone: what it joins to them in forward (positions) is no data
        read = [(i, f"its {ordinal(n)} input" if len(inputs) > 1 else "its input") for n, i in enumerate(inputs)]
        read += [(i, f"inside its forward, into what '{layer.event.op}' ({layer.event.key}) reads")
                 for c, i, layer in self._read if c == call]
        for tensor, which in read:
            joined = self._joins(tensor, targets, 16)
            if isinstance(joined, OpRecord) and (not shaped or self._label_like(joined, targets)):
                return loss, joined, which
        return None

    def _label_like(self, joined: OpRecord, targets: set) -> bool:
        """Whether a join of targets shaped as the scores reads as labels set beside features rather than as the
        input of a reconstruction: a concatenation (a denoiser's noise is added, a diffusion model's noised input
        a sum of its target and the data) in which the targets are less than half (an autoencoder reconstructs
        the bulk of what it reads, a conditional one beside a smaller condition), and not beside a class's code
        alone (a conditional model of small data, given its class as a one-hot or an embedding), nor beside a
        condition joined again apart from the targets (a conditional autoencoder of data narrower than its
        condition: its decoder reads [code, c] as its encoder read [x, c])."""
        ev = joined.event
        if ev.op not in CONCATS:
            return False
        holds = [bool(self._joins(i, targets, 16)) for i in ev.inputs]
        share = sum(math.prod(shape) for shape, h in zip(ev.input_shapes, holds) if h)
        others = [i for i, h in zip(ev.inputs, holds) if not h]
        return 2 * share < math.prod(ev.output_shape) and not all(self._coded(i) for i in others) and \
            not self._rejoined(joined, set(others), targets)

    def _rejoined(self, joined: OpRecord, others: set, targets: set) -> bool:
        """Whether a concatenation of this iteration other than `joined` sets one of the tensors of ids `others`
        beside tensors that hold none of the targets."""
        for rec in (*self._flow.values(), *self._inner.values()):
            ev = rec.event
            if rec is not joined and ev.op in CONCATS and not others.isdisjoint(ev.inputs) and \
                    not any(self._joins(i, targets, 16) for i in ev.inputs):
                return True
        return False

    def _coded(self, x: int) -> bool:
        """Whether tensor `x` is a class's code: a one-hot or an embedding's vectors (converted, laid out anew)."""
        for _ in range(16):
            rec = self._flow.get(x) or self._inner.get(x)
            if rec is None or rec.event.op in ("one_hot", "embedding"):
                return rec is not None
            if rec.event.op not in CONVERTING:
                return False
            x = rec.event.inputs[0]
        return False

    def _sources(self, target: int) -> set[int]:
        """The ids of a loss's targets and of what they are a copy of, converted or rescaled by constants (y.float(),
        (y - y.mean()) / y.std(), one_hot(y)), back to the tensor they came from."""
        found = {target}
        for _ in range(16):
            rec = self._flow.get(target) or self._inner.get(target)
            if rec is None or not rec.event.inputs:
                break
            ev = rec.event
            size = math.prod(ev.output_shape)
            whole = [i for i, shape in zip(ev.inputs, ev.input_shapes) if math.prod(shape) == size]
            if ev.op in CONVERTING:
                target = ev.inputs[0]
            elif ev.op in SCALING and len(whole) == 1:
                target = whole[0]
            else:
                break
            found.add(target)
        return found

    def labels_leaked(self) -> AlertEvent | None:
        """At a backward pass's start: the alert for targets joined into the model's input, unless the other tensors
        joined are themselves targets of the iteration's losses (an autoencoder of tabular rows reconstructs each
        of its columns: the loss's class column among them)."""
        if self._leak is None:
            return None
        (loss, joined, which), self._leak = self._leak, None
        targets = self._sources(loss.event.inputs[1])
        others = [i for i in joined.event.inputs if not self._joins(i, targets, 16)]
        if any(self._joins(i, {t}, 16) is True for i in others for t in self._targets) or \
                not self._starts(("label_leak", loss.event.key), True):
            return None
        inside = which.startswith("inside")
        fix = "Pass the model the features alone, model(x), and leave the targets out of its forward" if inside \
            else "Feed the model the features alone: model(x)"
        return make_alert("label_leak", f"the targets of {where(loss)} are also in the model's input: "
                          f"{where(joined)} joins them with other tensors {'' if inside else 'into '}{which}, "
                          f"iteration {loss.iteration}: the model reads the answer from its input, so the loss falls "
                          "to ~0 for a wrong reason, and the model fails where the labels are not known (at test "
                          f"time). {fix}", joined, 1.0)

    def _caller(self, x: int) -> int | None:
        """The call of the model whose output tensor `x` was computed from by ops outside module calls (their
        index in _calls), or None."""
        todo, seen = [x], 0
        while todo and seen < 64:
            i = todo.pop()
            seen += 1
            call = self._call_of.get(i)
            if call is not None:
                return call
            rec = self._flow.get(i)
            if rec is not None:
                todo.extend(rec.event.inputs)
        return None

    def _joins(self, x: int, targets: set, budget: int, seen: dict | None = None) -> OpRecord | bool:
        """Whether tensor `x` holds the values of the tensors of ids `targets`: True for them alone (converted, laid
        out anew, rescaled by constants, looked up in an embedding), the record of the op that joined them to other
        tensors for them among others, else False. `seen`: what was found for each id so far (a graph adding a tensor
        to itself reaches it twice)."""
        if x in targets:
            return True
        seen = {} if seen is None else seen
        if x in seen:
            return seen[x]
        rec = self._flow.get(x) or self._inner.get(x)
        seen[x] = found = False
        op = rec.event.op if rec is not None and budget > 0 else ""
        if op in CONVERTING or op == "embedding":  # an embedding's vectors of the targets are a code of them
            found = self._joins(rec.event.inputs[0], targets, budget - 1, seen)
        elif op in JOINING or op in SCALING:
            ev = rec.event
            parts = [self._joins(i, targets, budget - 1, seen) for i in ev.inputs]
            if op in SCALING:  # an operand smaller than the output, holding no target, is a constant: no part
                size = math.prod(ev.output_shape)
                parts = [p for p, shape in zip(parts, ev.input_shapes) if p or math.prod(shape) == size]
            inner = next((p for p in parts if isinstance(p, OpRecord)), None)
            found = inner if inner is not None else rec if op in JOINING and any(parts) and not all(parts) else \
                bool(parts) and all(parts)
        seen[x] = found
        return found


def _moved(ev, dim: int) -> int | None:
    """Where dim `dim` of an op's first input is in its output, for ops that lay values out anew (else None)."""
    op, before, after = ev.op, tuple(ev.input_shapes[0]), tuple(ev.output_shape)
    if op in ELEMENTWISE:
        return dim if after == before else None
    if op in REORDERING:
        perm = ev.args.get("perm")
        return list(perm).index(dim) if perm is not None and dim in perm else None
    if op not in RESHAPING:
        return None
    lo, hi = math.prod(before[:dim]), math.prod(before[:dim + 1])
    for j in range(len(after)):  # the output dim that holds the whole of it (merged with others or not)
        if after[j] > 1 and math.prod(after[:j]) <= lo and hi <= math.prod(after[:j + 1]):
            return j
    return None


def _module(op: str) -> str:
    """The module class of a softmax op."""
    return "LogSoftmax" if op == "log_softmax" else "Softmax"
