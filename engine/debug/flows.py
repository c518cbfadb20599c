"""Mistakes found by following tensor ids through one iteration's recorded graph: a softmax whose dim was not given
that normalises a (N, T, C) model's scores over the batch, and a loss's targets joined into the model's input (the
labels leak into what the model sees, so the loss falls to ~0 for a wrong reason).

FlowChecks is a part of engine.debug.alerts.Monitor (a base class): it keeps its own state (_flow_state,
_flow_new_iteration) and uses the Monitor's bookkeeping (_starts, _recurrent).
"""

from __future__ import annotations

import math

from engine.debug.alert_text import make_alert, ordinal, where
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
        self._calls: list[tuple] = []  # the tensor ids each call of the model (a root module call) took
        self._call_of: dict[int, int] = {}  # id of a tensor a call of the model returned -> its index in _calls
        self._batch: tuple | None = None  # (dim 0, shape, op) of the model's first input, as the first op took it
        self._targets: list[int] = []  # ids of the targets of this iteration's losses
        self._leak: tuple | None = None  # (loss, the op joining its targets into the model's input, which input)

    def _flow_new_iteration(self) -> None:
        """Forget the iteration's graph (Monitor.new_iteration calls it)."""
        self._implicit.clear()
        self._flow.clear()
        self._calls.clear()
        self._call_of.clear()
        self._batch = None
        self._targets.clear()
        self._leak = None

    def _follow(self, rec: OpRecord, inputs: tuple) -> AlertEvent | None:
        """Note what a forward op makes: an implicit-dim softmax's output or a layout of it; an op outside module
        calls; the model's input's batch. An alert when it is a loss that takes labels its model took as input,
        or scores a softmax normalised over the batch."""
        ev = rec.event
        if not ev.inputs:
            return None
        if not rec.depth and len(self._flow) < FLOW_LIMIT:
            self._flow[ev.output] = rec
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
            # class indices only: a target shaped as the scores (a 0/1 map, soft labels) is a reconstruction's as
            # often as a leak (a denoising or conditional autoencoder), as a regression's is
            if ev.op in CLASS_LOSSES and len(ev.input_shapes[1]) < len(ev.input_shapes[0]) and self._leak is None:
                self._leak = self._labels_fed(rec)
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

    def _labels_fed(self, loss: OpRecord) -> tuple | None:
        """(loss, join, which input) when the call of the model whose output a class loss scores took, as an input,
        a tensor that joins the loss's targets (themselves, or a one-hot or float copy) to other tensors:
        `model(cat([x, one_hot(y)], 1))`. Targets the model takes alone are an autoencoder's (x reconstructs x); a
        shifted slice of them (teacher forcing, a language model's inputs) and a masked copy (a masked language
        model's) are no copy; labels that condition a generator whose output another model scores are not its
        loss's input. Judged by labels_leaked once the iteration's losses are known."""
        scores, target = loss.event.inputs[:2]
        call = self._caller(scores)
        if call is None:
            return None
        for i, tensor in enumerate(self._calls[call]):
            joined = self._joins(tensor, target, 16)
            if isinstance(joined, OpRecord):
                return loss, joined, f"its {ordinal(i)} input" if len(self._calls[call]) > 1 else "its input"
        return None

    def labels_leaked(self) -> AlertEvent | None:
        """At a backward pass's start: the alert for targets joined into the model's input, unless the other tensors
        joined are themselves targets of the iteration's losses (an autoencoder of tabular rows reconstructs each
        of its columns: the loss's class column among them)."""
        if self._leak is None:
            return None
        (loss, joined, which), self._leak = self._leak, None
        target = loss.event.inputs[1]
        others = [i for i in joined.event.inputs if not self._joins(i, target, 16)]
        if any(self._joins(i, t, 16) is True for i in others for t in self._targets) or \
                not self._starts(("label_leak", loss.event.key), True):
            return None
        return make_alert("label_leak", f"the targets of {where(loss)} are also in the model's input: "
                          f"{where(joined)} joins them with other tensors into {which}, iteration "
                          f"{loss.iteration}. The model reads the answer from its input, so the loss falls to "
                          "~0 for a wrong reason, and the model fails where the labels are not known (at test "
                          "time). Feed the model the features alone: model(x)", joined, 1.0)

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

    def _joins(self, x: int, target: int, budget: int, seen: dict | None = None) -> OpRecord | bool:
        """Whether tensor `x` holds the values of tensor `target`: True for them alone (converted, laid out anew), the
        record of the op that joined them to other tensors for them among others, else False. `seen`: what was
        found for each id so far (a graph adding a tensor to itself reaches it twice)."""
        if x == target:
            return True
        seen = {} if seen is None else seen
        if x in seen:
            return seen[x]
        rec = self._flow.get(x)
        seen[x] = found = False
        if rec is not None and budget > 0 and rec.event.op in CONVERTING:
            found = self._joins(rec.event.inputs[0], target, budget - 1, seen)
        elif rec is not None and budget > 0 and rec.event.op in JOINING:
            parts = [self._joins(i, target, budget - 1, seen) for i in rec.event.inputs]
            inner = next((p for p in parts if isinstance(p, OpRecord)), None)
            found = inner if inner is not None else rec if any(parts) and not all(parts) else all(parts)
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
