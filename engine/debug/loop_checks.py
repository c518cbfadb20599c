"""The loose ends of a training loop that the debugger's Monitor checks besides its numerical alerts: a graph
carried from iteration to iteration or every loss kept alive, an op result nothing takes, an evaluation with dropout
or BatchNorm in training mode, uint8 pixels fed unscaled, class weights that favour the common classes, multi-hot
targets in cross_entropy, class scores read along the wrong dim, units initialised alike, clipping far below the
gradients' norm, a loss term cut from the graph, an attention padding mask inverted, a validation loss that rises
while the training loss falls, a second model's optimizer whose gradients pile up, and an output layer "tied" to the
embedding by a copy of its weight, or by sharing its storage (`.data =`) under an optimizer whose steps are no tie's,
and two Parameters on one storage stepped by two optimizers.

LoopChecks is a part of engine.debug.alerts.Monitor (its base class): it keeps its own state (_loop_state,
_loop_new_iteration) and uses the Monitor's bookkeeping (_starts, _padding, _steps_seen, params).
"""

from __future__ import annotations

import math
import weakref
from collections import deque
from itertools import combinations

import numpy as np

from engine.autograd import grad_mode
from engine.backend import array_module, host_floats, to_host
from engine.debug.alert_text import REINITIALISE, UNITS_ALIKE, layer_of, make_alert, names_text, step_alert, where
from engine.debug.losses import LOSS_OPS, label_of
from engine.debug.param_names import by_event_names, updated_parameters
from engine.debug.records import OpRecord
from engine.events import AlertEvent
from engine.nn.init import filled_at
from engine.nn.layers.attention import MultiheadAttention
from engine.nn.layers.norm import _BatchNorm
from engine.nn.module import outermost, running_modules
from engine.nn.parameter import Parameter
from engine.nn.utils import clip_grad
from engine.optim.optimizer import live_optimizers, stepping_optimizer
from engine.optim.sgd import SGD
from engine.tensor_props import storage_of

HISTORY_STEPS = 8  # iterations in a row each of which adds to a graph made in the one before (not detached)
ROOTS_KEPT = 40  # the losses of this many backward passes in a row, over as many iterations, all alive: kept
MADE_LIMIT = 1 << 17  # op outputs an iteration remembers for that (ids)
UNUSED_LIMIT = 4096  # op outputs of a forward remembered until something takes them
# ops that score a model's outputs: what an evaluation pass ends in
EVALUATES = frozenset({*LOSS_OPS, "argmax", "argmin", "topk", "eq"})
TRAINING_ONLY = frozenset({"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
                           "batch_norm"})  # ops that behave differently in training mode
LAYERS = frozenset({"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                    "conv_transpose3d", "matmul", "bilinear"})  # what a model's input goes into first
CLIP_SHRINK = 100.0  # clip_grad_norm_ dividing the gradients by this much or more...
CLIP_STEPS = 20  # ...at every one of this many steps in a row: a max_norm far too small
OVERFIT_RISE = 0.1  # a validation loss this much above its best (and this share of its first value)...
OVERFIT_EVALS = 3  # ...at this many evaluations in a row, rising, over this many steps at least (early stopping
OVERFIT_STEPS = 20  # with a patience of 15 has stopped by then)...
OVERFIT_FALL = 0.9  # ...while the training loss fell below this share of what it was at the best
WEIGHT_LABELS = 500  # labels a cross entropy's class weights are judged against...
WEIGHT_SPREAD = 2.0  # ...when its most and least frequent classes' shares differ this many times
TIED_OPS = frozenset({"embedding", "linear"})  # whose weights a language model ties (one Parameter for both)
OVERLAPS_LIMIT = 64  # Parameters of one storage compared pair by pair (a flat buffer of views holds many)


class LoopChecks:
    """The loop's loose ends (see the module docstring), checked as records come; a base of Monitor."""

    def _loop_state(self) -> None:
        """Start with nothing seen (Monitor.__init__ calls it)."""
        self._same_units: list[str] | None = None  # layers whose units all hold one row of weights (at the first step)
        self._clip_calls = clip_grad.last_clip[0]  # clip_grad_norm_ calls seen; steps in a row each clipped hard
        self._hard_clips = 0
        # ids of the op outputs outside module calls that require grad, of this iteration and of the one before; of
        # those made from the one before's (or from such), how many iterations in a row their graph spans
        self._made: set[int] = set()
        self._made_before: set[int] = set()
        self._spans: dict[int, int] = {}
        self._spans_before: dict[int, int] = {}
        # id -> record of the outputs of ops inside module calls this forward that nothing has taken yet; the source
        # lines of those something took (a line's other outputs, `_, i = x.max(1)`, are then no loose end)
        self._unused: dict[int, OpRecord] = {}
        self._used_lines: set[int] = set()
        self._forward_open = True  # no backward pass began in this iteration yet
        self._scalars: dict[int, weakref.ref] = {}  # id -> the one-element outputs that require grad, this iteration
        self._roots: deque = deque(maxlen=ROOTS_KEPT)  # (weak reference, iteration) of the latest backward roots
        # id -> record of the outputs made with gradients on, that require none, from a parameter's values taken out
        # of the graph (p.data, p.detach()) or from such outputs; ids of the parameters' arrays (None: not read yet)
        # the alert of a pass with gradients off that ran Dropout or BatchNorm in training mode, raised once the pass
        # scores its outputs (a loss, an argmax: an evaluation; sampling a GAN's generator in train mode is none);
        # False once judged in this iteration
        self._train_mode_pass: AlertEvent | bool | None = None
        self._cut: dict[int, OpRecord] = {}
        self._parameter_arrays: set[int] | None = None
        # source line of a loss computed with gradients off (a validation loss) -> [its pending iteration, sum,
        # count, [(iteration, mean, the training loss's mean over the steps before) of each evaluation], a record]
        self._evals: dict = {}
        self._train_losses = [0.0, 0]  # sum and count of the training losses at the steps since the last evaluation
        self._root_value: float | None = None  # the value of the last backward pass's root (the training loss)
        self._own_optimizer: tuple = ()  # (id, parameter count) of an optimizer holding only the model's parameters
        self._trained_modules: dict[int, tuple] = {}  # id of a module -> (it, whether an optimizer trains it, or None)
        self._pixels: dict[int, tuple] = {}  # id of a float tensor converted from uint8 -> (its record, its maximum)
        self._class_counts = None  # labels of each class a weighted cross entropy took, until judged
        # until the first step: the weights embeddings and linears took ({op: {id: (weight, record)}}), and the pairs of
        # an embedding's and a linear's that are two Parameters of one shape holding the same values (a tie by copy)
        self._tie_weights: dict | None = {"embedding": {}, "linear": {}}
        self._copied_ties: list = []
        # Parameters whose memory overlaps, found again when an optimizer steps holding Parameters it did not before
        # (its first step, add_param_group): the optimizers' (id, group count, last group's size) so far; id of an
        # optimizer -> (weak references to two of its Parameters, their groups); id of an optimizer -> [weak reference
        # to one of its Parameters, [(weak reference to one of another optimizer's, that optimizer's id)]]
        self._storage_keys: set[tuple] = set()
        self._own_overlaps: dict[int, list] = {}
        self._cross_overlaps: dict[int, list] = {}
        # (id of an optimizer, id of a Parameter of a cross overlap) -> (the step it last stepped it (_steps_seen), the
        # optimizer's label, the Parameter's name)
        self._overlap_steps: dict[tuple, tuple] = {}

    def _loop_new_iteration(self) -> None:
        """Forget what concerns one iteration only (Monitor.new_iteration calls it)."""
        self._made_before, self._made = self._made, set()
        self._spans_before, self._spans = self._spans, {}
        self._unused.clear()
        self._used_lines.clear()
        self._forward_open = True
        self._pixels.clear()
        self._scalars.clear()
        self._cut.clear()
        self._parameter_arrays = None
        self._train_mode_pass = None

    def _several_labels(self, rec: OpRecord, scores, target) -> AlertEvent | None:
        """An alert when cross_entropy's float targets (class probabilities) are multi-hot rows of 0s and 1s with
        several 1s: a softmax makes the labels of a sample compete, where multi-label classification wants one
        sigmoid per label."""
        if target.shape != scores.shape or target.ndim != 2 or not target.size or \
                ("several_labels", "") in self._raised:
            return None
        binary = bool(((target == 0) | (target == 1)).all())
        sums = target.sum(axis=1) if binary else None
        most, mean = host_floats([sums.max(), sums.mean()]) if binary else (0, 0)
        most = int(most)
        if not self._starts(("several_labels", ""), most > 1):
            return None
        return make_alert("several_labels", f"the targets of {where(rec)} hold up to {most} ones per row ({mean:.2g} "
                          f"on average), iteration {rec.iteration}: cross_entropy takes float targets as class "
                          "probabilities, one distribution per sample summing to 1, and its softmax makes a sample's "
                          "labels compete for one unit of probability. For multi-label classification use "
                          "binary_cross_entropy_with_logits (a sigmoid per label) with these targets", rec, float(most))

    def _classes_last(self, rec: OpRecord, linear: OpRecord) -> AlertEvent | None:
        """An alert when a loss that reads dim 1 as the classes takes a (N, T, C) output of a linear straight, whose
        scores are on its last dim: a sequence model's logits not permuted to (N, C, T) (with T == C no shape error
        says so)."""
        if not self._starts(("class_dim", linear.event.key), True):
            return None
        shape = tuple(linear.event.output_shape)
        silent = " (no shape error says so: the two sizes are equal)" if shape[1] == shape[-1] else ""
        order = ", ".join(map(str, (0, len(shape) - 1, *range(1, len(shape) - 1))))
        return make_alert("class_dim", f"{where(rec)} reads dim 1 of its {shape} input as the classes, and that input "
                          f"came straight from {where(linear)}, whose outputs (the class scores) are its last dim, "
                          f"iteration {rec.iteration}: the loss takes dim 1 (size {shape[1]}) for the classes and the "
                          f"scores for positions{silent}. Pass logits.permute({order}), or flatten both: "
                          "logits.reshape(-1, C) with targets.reshape(-1)", linear, float(shape[1]))

    def _loose_ends(self, rec: OpRecord, inputs: tuple, out) -> AlertEvent | None:
        """What every forward op feeds: a graph carried on from iteration to iteration (`total_loss += loss`), the
        results nothing takes (judged when backward begins: _unused_results), and dropout or BatchNorm in
        training mode in an evaluation."""
        ev = rec.event
        if self._forward_open:
            if self._unused:
                self._taken(ev.inputs)
            if rec.depth and len(self._unused) < UNUSED_LIMIT:
                self._unused[ev.output] = rec
        if not ev.requires_grad:
            if ev.op in LOSS_OPS and self._steps_seen and not ev.output_shape and rec.summary is not None:
                self._evaluated(rec)
            elif ev.inputs and grad_mode.state.enabled and len(self._cut) < UNUSED_LIMIT and self._cut_off(ev, inputs):
                self._cut[ev.output] = rec
            if grad_mode.state.enabled or not self._steps_seen:
                return None
            if ev.op in TRAINING_ONLY and ev.args.get("training", True):
                if self._train_mode_pass is None:  # judged once an iteration
                    self._train_mode_pass = self._train_mode_eval(rec) or False
            elif self._train_mode_pass and ev.op in EVALUATES:
                alert, self._train_mode_pass = self._train_mode_pass, False
                return alert if self._starts(("train_mode_eval", ""), True) else None
            return None
        if not ev.output_shape and len(self._scalars) < 256:
            self._scalars[ev.output] = weakref.ref(out)
        if rec.depth:  # a graph is carried on by the loop around the model, not inside it: its ops alone are followed
            return None
        spans = 0
        spans_now, before = self._spans, self._made_before
        for i in ev.inputs:
            n = spans_now.get(i)
            if n is None and i in before:
                n = self._spans_before.get(i, 0) + 1
            if n is not None and n > spans:
                spans = n
        if len(self._made) < MADE_LIMIT:
            self._made.add(ev.output)
        if not spans:
            return None
        spans_now[ev.output] = spans
        if spans < HISTORY_STEPS or not self._starts(("history_kept", ""), True):
            return None
        return make_alert("history_kept", f"{where(rec)} adds to a graph made in the iteration before, which added to "
                          f"the one before it, for {spans} iterations in a row, iteration {rec.iteration}: a tensor "
                          "that requires grad is carried from step to step, so every iteration's graph stays alive "
                          "(memory grows, and a backward through it would run through all of them). A running total "
                          "or average for printing wants a number: `total += loss.item()` (or loss.detach()); a "
                          "state carried across batches (an RNN's hidden state, a moving average) wants .detach(), "
                          "or its update under `with engine.no_grad():`", rec, float(spans))

    def module_exit(self, tensors: tuple) -> None:
        """A module call returned `tensors`: its caller has them, so they are no loose ends."""
        if self._unused:
            self._taken(tensors)

    def _taken(self, ids: tuple) -> None:
        """The tensors of these ids were taken (by an op, or a module's caller): neither they nor their lines are
        loose ends."""
        unused = self._unused
        for i in ids:
            took = unused.pop(i, None)
            if took is not None:
                self._used_lines.add(id(took.source))  # one SourceFrame per line: its id is the line's

    def _unused_results(self) -> AlertEvent | None:
        """At the first backward of an iteration: an op inside a module's forward whose output requires grad and that
        nothing took, not an op of its line, not its module's caller: its result is thrown away (`out + x` where
        `out = out + x` was meant, `x.relu()` for x.relu_())."""
        self._forward_open = False
        found = None
        used = self._used_lines
        for rec in self._unused.values():
            ev = rec.event
            if ev.requires_grad and rec.source is not None and id(rec.source) not in used and \
                    math.prod(ev.output_shape) > 1:
                found = rec
                break
        self._unused.clear()
        if found is None or not self._starts(("unused_result", found.event.key), True):
            return None
        return make_alert("unused_result", f"{where(found)} computes a result that nothing takes, iteration "
                          f"{found.iteration}: not a later op, not its module's caller. Its value is thrown away, so "
                          "the line does nothing to the model's output. Assign it (`out = out + x`, `x = F.relu(x)`), "
                          "or use the in-place form (`x.relu_()`)", found, 0.0)

    def _train_mode_eval(self, rec: OpRecord) -> AlertEvent | None:
        """An alert when, with gradients off in a run that trains, dropout drops or BatchNorm normalises by the batch
        in a model an optimizer trains: an evaluation without model.eval(), or F.dropout in an eval() model without
        training=self.training. Not for a target network run under no_grad (BYOL's, MoCo's keys, an EMA teacher),
        whose parameters no optimizer trains though its wrapper's others are trained: the nearest module of the call
        chain that holds parameters decides; nor for Monte Carlo dropout (a model in eval() whose Dropout layers were
        set to train() on purpose), nor for a pass that recomputes BatchNorm statistics (a BatchNorm with momentum
        None: swa_utils.update_bn, precise BN)."""
        calls = running_modules()
        if not calls or ("train_mode_eval", "") in self._raised:
            return None
        inner, root = calls[-1][0], outermost(calls[0][0])
        if not root.training and inner.training:
            return None  # layers put back in training mode inside a model in eval(): on purpose
        if any(isinstance(m, _BatchNorm) and m.momentum is None for m in root.modules()):
            return None  # BatchNorm statistics averaged over a pass: recomputed on purpose (update_bn, precise BN)
        # the nearest module of the chain that holds parameters: whether an optimizer trains them
        trains = next((t for t in (self._trains(m) for m, _ in reversed(calls)) if t is not None), None)
        if not trains:
            return None
        op = rec.event.op
        if not inner.training and "dropout" in op:
            why = (f"{type(inner).__name__} is in eval mode, but F.{op} drops anyway: its `training` argument "
                   f"defaults to True. Pass training=self.training (or use an nn.Dropout layer, which follows "
                   "eval() and train())")
        else:
            layer = "Dropout drops" if "dropout" in op else "BatchNorm normalises by the batch and updates its " \
                                                            "running statistics with this data"
            why = (f"the model is in training mode, so {layer}: an evaluation without model.eval()? Call "
                   "model.eval() before it and model.train() after")
        return make_alert("train_mode_eval", f"{where(rec)} runs with gradients off in a model an optimizer trains, "
                          f"iteration {rec.iteration}: {why}", rec, 0.0)

    def _trains(self, module) -> bool | None:
        """Whether an optimizer trains some parameter of `module` (and its submodules); None when it has none."""
        known = self._trained_modules.get(id(module))
        if known is None or known[0] is not module:
            if len(self._trained_modules) >= 64:
                self._trained_modules.clear()
            params = list(module.parameters())
            trained = {id(p) for opt in live_optimizers() for group in opt.param_groups for p in group["params"]}
            known = self._trained_modules[id(module)] = (module, any(id(p) in trained for p in params) if params
                                                       else None)
        return known[1]

    def _inverted_padding_mask(self, rec: OpRecord, mask) -> AlertEvent | None:
        """An alert when MultiheadAttention's key_padding_mask (True: a key to ignore) is True exactly where the last
        Embedding's tokens are not its padding index: `tokens != pad` where `tokens == pad` was meant, so attention
        sees only the padding (scaled_dot_product_attention's bool mask means the opposite: True, attend)."""
        pad, _, tokens = self._padding
        if mask.dtype != np.bool_ or mask.shape != tokens.shape or ("padding_mask", "") in self._raised:
            return None
        calls = running_modules()
        if not calls or not isinstance(calls[-1][0], MultiheadAttention):
            return None
        padded = tokens == pad
        if not bool(padded.any()) or not bool((mask != padded).all()):
            return None
        self._starts(("padding_mask", ""), True)
        return make_alert("padding_mask", f"the key_padding_mask of {where(rec)} is True exactly where the tokens "
                          f"are not the padding index {pad}, iteration {rec.iteration}: MultiheadAttention ignores the "
                          "keys where it is True, so attention sees only the padding. Pass tokens == pad (True on the "
                          "padding), not tokens != pad", rec, float(mask.mean()))

    def _converted_bytes(self, rec: OpRecord, data) -> None:
        """Note a uint8 tensor (an image's pixels) converted to floats as it is, 0..255, for _unscaled_pixels."""
        if rec.event.dtype.startswith("float") and data.size and len(self._pixels) < 64 and \
                ("unscaled_pixels", "") not in self._raised:
            top = int(array_module(data).max(data))
            if top > 1:
                self._pixels[rec.event.output] = (rec, top)

    def _unscaled_pixels(self, rec: OpRecord) -> AlertEvent | None:
        """An alert when a layer takes straight the floats of uint8 values (x.float() where x.float() / 255 was
        meant): inputs up to 255, where a network (and a pretrained one's first layer) expects about [0, 1]."""
        hit = self._pixels.get(rec.event.inputs[0])
        if hit is None or not self._starts(("unscaled_pixels", ""), True):
            return None
        made, top = hit
        self._pixels.clear()
        return make_alert("unscaled_pixels", f"{where(rec)} takes the {made.event.dtype} values {where(made)} made "
                          f"from uint8 ones as they are, 0 to {top}, iteration {rec.iteration}: pixels not scaled? "
                          f"A network expects inputs near [0, 1] or standardised (a pretrained one, the scaling it "
                          f"was trained with); at up to {top} its activations and gradients are that many times too "
                          "large. Divide by 255 (x.float() / 255), then normalise as the model was trained", rec,
                          float(top))

    def _class_weights(self, rec: OpRecord, target, weight) -> AlertEvent | None:
        """An alert when a cross entropy's class weights grow with how often each class occurs, over its first
        WEIGHT_LABELS labels: the most frequent class weighs most and the rarest least (weights = counts, where
        balancing classes wants their inverse)."""
        if target.dtype.kind not in "iu" or target.ndim != 1 or weight.ndim != 1 or not target.size:
            return None
        xp = array_module(target)
        classes = len(weight)
        seen = xp.bincount(target[(target >= 0) & (target < classes)], minlength=classes)
        counts = seen if self._class_counts is None else self._class_counts + seen
        self._class_counts = counts
        if int(counts.sum()) < WEIGHT_LABELS:
            return None
        self._class_counts = False  # judged once
        counts, weights = (to_host(v).astype(float) for v in (counts, weight))
        common, rare = int(counts.argmax()), int(counts.argmin())
        hit = counts[common] >= WEIGHT_SPREAD * max(counts[rare], 1) and int(weights.argmax()) == common and \
            int(weights.argmin()) == rare and weights[common] >= WEIGHT_SPREAD * weights[rare] > 0
        if not self._starts(("class_weights", rec.event.key), hit):
            return None
        share = counts / counts.sum()
        return make_alert("class_weights", f"the class weights of {where(rec)} grow with how often each class "
                          f"occurs: class {common}, {share[common]:.0%} of the {int(counts.sum())} labels seen, weighs "
                          f"{weights[common]:.3g}, and class {rare}, {share[rare]:.0%}, weighs {weights[rare]:.3g}, "
                          f"iteration {rec.iteration}: this makes the model neglect the rare classes even more. To "
                          "balance the classes, weigh each by its inverse frequency (counts.sum() / (C * counts))",
                          rec, float(weights[common] / weights[rare]))

    def _tie_candidate(self, rec: OpRecord, inputs: tuple) -> None:
        """Before the first step: note the weight an embedding or a linear takes, and pair it with the other kind's
        weights of its shape that hold the same values (not one constant: same_units' case) in other memory."""
        op = rec.event.op
        if len(inputs) < 2 or not isinstance(inputs[1], Parameter):
            return
        weight = inputs[1]
        seen = self._tie_weights[op]
        if id(weight) in seen or len(seen) >= 64:
            return
        seen[id(weight)] = (weight, rec)
        data = weight.array
        if data.ndim != 2 or data.dtype.kind != "f" or not data.size:
            return
        for other, other_rec in self._tie_weights["linear" if op == "embedding" else "embedding"].values():
            o = other.array
            if o is data or o.shape != data.shape or o.dtype != data.dtype or array_module(o).shares_memory(o, data):
                continue
            if bool((o == data).all()) and bool(data.max() != data.min()):
                # (embedding's weight, linear's, the linear's record, the embedding's)
                self._copied_ties.append((other, weight, rec, other_rec) if op == "linear" else
                                         (weight, other, other_rec, rec))

    def _copied_tie(self, rec) -> list[AlertEvent]:
        """At the first step: an alert when an embedding's and a linear's weights were two Parameters holding the same
        values before it and the stepping optimizer trains both (a target network's copy is trained by none), in
        one model, neither of them tied already (two peers copied from one tied model are two ties, both right)."""
        pairs, seen, self._tie_weights, self._copied_ties = self._copied_ties, self._tie_weights, None, []
        opt = stepping_optimizer()
        if not pairs or opt is None:
            return []
        trained = {id(p) for group in opt.param_groups for p in group["params"] if p.grad is not None}
        names = self._names()
        for embedding, linear, linear_rec, embedding_rec in pairs:
            if id(embedding) in seen["linear"] or id(linear) in seen["embedding"]:
                continue  # a linear takes the embedding's weight itself, or an embedding the linear's: tied
            roots = {r.event.module.partition(".")[0] for r in (linear_rec, embedding_rec)}
            if len(roots) > 1 and "" not in roots:  # two models' layers
                continue
            if id(embedding) in trained and id(linear) in trained and self._starts(("broken_tying", ""), True):
                emb, lin = names.get(id(embedding)), names.get(id(linear))
                fix = f"`self.{layer_of(lin)}.weight = self.{layer_of(emb)}.weight`" if emb and lin else \
                    "`self.decoder.weight = self.encoder.weight`"
                return [make_alert("broken_tying", f"{where(linear_rec)} takes '{lin or 'its weight'}', and an "
                                   f"embedding '{emb or 'its weight'}': two Parameters that held the same "
                                   f"{embedding.shape[0]}x{embedding.shape[1]} values before the first step, iteration "
                                   f"{rec.iteration}, both trained by the optimizer. A weight tie made by copying "
                                   "(nn.Parameter(w.clone()), copy_, deepcopy) ties nothing: the two drift apart and "
                                   "the model learns both matrices. Tie them by assigning the Parameter itself in the "
                                   f"model's __init__: {fix} (two matrices started alike on purpose, from one set of "
                                   "pretrained vectors, are fine as they are)", linear_rec)]
        return []

    def _storage_ties(self, rec, opt) -> list[AlertEvent]:
        """At a step of `opt`: the storage_tie alerts of _storage_tie and _storage_shared, however late a pair first
        steps. The Parameters whose memory overlaps are looked for when an optimizer steps holding Parameters it did
        not hold before (its first step, an add_param_group); at its other steps, with none found, nothing is done."""
        groups = opt.param_groups if opt is not None else None
        if not groups:
            return []
        key = (id(opt), len(groups), len(groups[-1]["params"]))
        if key not in self._storage_keys:
            if len(self._storage_keys) >= 256:
                self._storage_keys.clear()
            self._storage_keys.add(key)
            self._find_overlaps()
        if not self._own_overlaps and not self._cross_overlaps:
            return []  # at every step of a run without them
        own, cross = self._own_overlaps.get(id(opt)), self._cross_overlaps.get(id(opt))
        return (self._storage_tie(rec, opt, own) if own else []) + (self._storage_shared(rec, opt, cross) if cross
                                                                     else [])

    def _find_overlaps(self) -> None:
        """Pair the Parameters of the live optimizers whose memory overlaps: two of one optimizer's of one size (a
        `.data =` tie, a transposed view), or one optimizer's and another's (one a view of the other, or one tensor
        wrapped in nn.Parameter twice). One Parameter held twice is no pair; disjoint views of one buffer neither."""
        stored: dict[int, list] = {}
        for opt in live_optimizers():
            for group in opt.param_groups:
                for p in group["params"]:
                    if p.array.size and len(stored) < 4096:
                        on = stored.setdefault(id(storage_of(p.array)), [])
                        if len(on) < OVERLAPS_LIMIT:
                            on.append((opt, group, p))
        own: dict[int, list] = {}
        cross: dict[int, dict] = {}
        for shared in stored.values():
            for (opt_a, group_a, a), (opt_b, group_b, b) in combinations(shared, 2):
                if a is b or not bool(array_module(a.array).shares_memory(a.array, b.array)):
                    continue
                if opt_a is not opt_b:
                    for (o, p), (other_opt, q) in (((opt_a, a), (opt_b, b)), ((opt_b, b), (opt_a, a))):
                        entry = cross.setdefault(id(o), {}).setdefault(id(p), [weakref.ref(p), []])
                        entry[1].append((weakref.ref(q), id(other_opt)))
                elif a.array.size == b.array.size:
                    own.setdefault(id(opt_a), []).append((weakref.ref(a), weakref.ref(b), group_a, group_b))
        self._own_overlaps = own
        self._cross_overlaps = {o: list(entries.values()) for o, entries in cross.items()}

    def _storage_tie(self, rec, opt, pairs: list) -> list[AlertEvent]:
        """An alert when two Parameters `opt` steps are one storage (`w.data = other.data`, nn.Parameter(other.t())),
        both given a gradient (at its first step, or at the first that trains the second: a part unfrozen later),
        and its steps are no tie's. Each Parameter's step writes into the shared memory: SGD's update (with momentum
        too, in a subclass that keeps it) is linear in the gradient, so its two steps add up to a tie's, one
        Parameter stepped with the sum of both gradients; another update rule scales each apart, and weight decay
        in both Parameters' groups decays the matrix twice (in one group's only, once, as a tie's; against torch
        2.13 over 20 steps: Adam moved it 1.54x as far as a tie, SGD with weight_decay=0.01 on both 1.06x, plain
        SGD 1.00x)."""
        linear = isinstance(opt, SGD) and type(opt)._update is SGD._update
        for ref_a, ref_b, group_a, group_b in pairs:
            a, b = ref_a(), ref_b()
            if a is None or b is None or a.grad is None or b.grad is None:
                continue
            decay_a, decay_b = group_a.get("weight_decay") or 0, group_b.get("weight_decay") or 0
            why = type(opt).__name__ if not linear else f"weight_decay={max(decay_a, decay_b):g}" \
                if decay_a and decay_b else ""
            if why and self._starts(("storage_tie", ""), True):
                return [self._storage_tie_alert(rec, a, b, why)]
        return []

    def _storage_shared(self, rec, opt, overlaps: list) -> list[AlertEvent]:
        """An alert when `opt` steps a Parameter whose memory overlaps that of another Parameter that another
        optimizer stepped since this one's step before (one a view of the other, or one tensor wrapped in
        nn.Parameter twice), however late the two first step. Each writes its update into the same numbers, so
        either optimizer moves both, and neither trains as its own loss and optimizer would (nor as a tie). Steps
        taken in turn only: a model handed to a new optimizer over a view of its weights is no pair."""
        steps, now, found, named = self._overlap_steps, self._steps_seen, None, None
        label = getattr(rec.event, "optimizer", "") or type(opt).__name__
        for ref, others in overlaps:
            p = ref()
            if p is None or p.grad is None:
                continue
            own = steps.get((id(opt), id(p)))
            for other_ref, other_opt in others if own is not None and found is None else ():
                other = other_ref()
                later = steps.get((other_opt, id(other))) if other is not None else None
                if later is not None and later[0] > own[0]:
                    found = (p, later)
            if named is None:  # named as this step's event names what it updated
                named = self._names()
                updated = updated_parameters(opt)
                named.update((id(q), name) for name, q in by_event_names(
                    getattr(rec.event, "grad_norms", None) or getattr(rec.event, "update_norms", None) or (),
                    updated) or () if id(q) not in named)
            steps[(id(opt), id(p))] = (now, label, named.get(id(p), ""))
        if found is None or not self._starts(("storage_tie", ""), True):
            return []
        p, (_, other_label, other_name) = found
        name = named.get(id(p), "")
        # a second optimizer's Parameters are named by it, "Adam#2:Linear.weight": its label, said once
        (first, label), (second, other_label) = ((n.partition(":")[2], n.partition(":")[0]) if ":" in n else (n, o)
                                                 for n, o in ((name, label), (other_name, other_label)))
        message = (f"'{first or 'a weight'}' ({label}) and '{second or 'another'}' ({other_label}) are two "
                   "Parameters on one storage (one a view of the other, or one tensor wrapped in nn.Parameter twice), "
                   f"and two optimizers step them, iteration {rec.iteration}: each writes its update into the same "
                   "numbers, so a step of either moves the other's weights too, and neither is trained as its own "
                   "loss and optimizer would train it. To start two Parameters from one tensor and train them apart, "
                   "give each its own copy: nn.Parameter(w.clone()); for a tie, use one Parameter in both places, "
                   "stepped by one optimizer")
        return [step_alert(rec, "storage_tie", name, message)]

    def _storage_tie_alert(self, rec, a: Parameter, b: Parameter, why: str) -> AlertEvent:
        """The storage_tie alert for Parameters `a` and `b` (b the later one), whose steps differ from a tie's by
        `why` (the optimizer's name, or its weight decay)."""
        names = self._names()
        first, second = names.get(id(a)), names.get(id(b))
        if why.startswith("weight_decay"):
            effect = f"{why} decays the matrix twice a step, once through each"
        else:
            effect = (f"{why} scales each Parameter's step by its own running statistics, so the matrix moves up to "
                      "twice as far a step as one tied Parameter would")
        source, layer = (layer_of(first), layer_of(second)) if first and second else ("encoder", "decoder")
        fix = f"assign it in the model's __init__, `self.{layer}.weight = self.{source}.weight`" if \
            a.shape == b.shape else f"use F.linear(h, self.{source}.weight.t()) in forward (a transposed tie)"
        message = (f"'{first or 'a weight'}' and '{second or 'another'}' are two Parameters on one storage (a `.data "
                   "=` assignment, or a Parameter made of the other's tensor), and the optimizer steps both, iteration "
                   f"{rec.iteration}: each step writes two updates into the one matrix, one per Parameter, and "
                   f"{effect}. A tie is one Parameter, trained with the sum of both gradients: {fix}")
        took = (self._tie_weights or {}).get("linear", {}).get(id(b)) or \
            (self._tie_weights or {}).get("embedding", {}).get(id(b))
        return make_alert("storage_tie", message, took[1]) if took is not None else \
            step_alert(rec, "storage_tie", second or "", message)

    def _identical_units(self, rec) -> list[AlertEvent]:
        """At the first step: an alert when in layers of two units or more every unit (a weight's row) holds the
        same weights, not zeros (the zero-init alert's): a constant init (nn.init.constant_), or one row copied to
        all. Such units compute the same output and get the same gradient, so they never differ (nothing breaks
        the symmetry but dropout, whose masks differ per unit: rows that differ after its first step are left be)."""
        same, site = [], None
        for name, p in self.params():
            data = p.array
            if name.endswith("bias") or data.ndim < 2 or data.shape[0] < 2 or data.dtype.kind != "f":
                continue
            if bool((data == data[:1]).all()) and bool(data[:1].any()):
                same.append(layer_of(name))
                site = site or filled_at(p)  # the script's init call that filled it: the line to change
            if len(same) >= 16:
                break
        self._same_units = same
        if not same or not self._starts(("same_units", ""), True):
            return []
        cause = f"the init at line {site[1]} started them alike." if site else \
            "a constant init (nn.init.constant_), or one row copied to all?"
        message = (f"every unit of {names_text(same)} holds the same weights after the first step, iteration "
                   f"{rec.iteration}: {cause} Units alike {UNITS_ALIKE}. Initialise them with {REINITIALISE}")
        return [step_alert(rec, "same_units", same[0], message, site)]

    def _with_others(self, rec, opt):
        """(name, parameter) of the model's parameters and, after them, of those of the stepping optimizer `opt` the
        model does not hold (a second model's: a head with an optimizer of its own), named as the step's event
        names them where it names each one it updated."""
        if opt is None:
            return self.params()
        size = sum(len(group["params"]) for group in opt.param_groups)
        if self._own_optimizer == (id(opt), size):  # all its parameters are the model's (checked at this size)
            return self.params()
        named = list(self.params())
        known = {id(p) for _, p in named}
        updated = updated_parameters(opt)
        if all(id(u[3]) in known for u in updated):
            if len(updated) == size:  # every parameter had a gradient, so every one was checked
                self._own_optimizer = (id(opt), size)
            return named
        pairs = by_event_names(getattr(rec.event, "grad_norms", None) or getattr(rec.event, "update_norms", None)
                               or (), updated)
        if pairs is None:
            label = getattr(rec.event, "optimizer", "") or type(opt).__name__
            pairs = [(f"{label} group{g}.{i}", p) for g, i, _, p in updated]
        return named + [(name, p) for name, p in pairs if id(p) not in known]

    def _cut_off(self, ev, inputs: tuple) -> bool:
        """Whether an op that requires no grad, run with gradients on, computes from a parameter's values taken out of
        the graph (its array itself: p.data, p.detach()) or from an output that did. A term computed from the data
        alone (the targets' entropy, a normalising constant) is no cut: it is constant on purpose."""
        cut = self._cut
        if cut and any(i in cut for i in ev.inputs):
            return True
        arrays = self._parameter_arrays
        if arrays is None:
            arrays = self._parameter_arrays = {id(p.array) for _, p in self.params()} if self.params else set()
        return any(id(t.array) in arrays for t in inputs)

    def _term_without_gradient(self, root: OpRecord) -> AlertEvent | None:
        """An alert when the loss backward() starts from adds a term that requires no gradient though it was
        computed with gradients on (a penalty built from p.data or p.detach()): it changes the loss's value, never
        its gradient, so the term does nothing to training."""
        term = next((self._cut[i] for i in root.event.inputs if i in self._cut), None)
        if term is None or not self._starts(("term_without_gradient", ""), True):
            return None
        return make_alert("term_without_gradient", f"backward() starts from {where(root)}, which "
                          f"{'adds' if root.event.op == 'add' else 'subtracts'} a term that carries no gradient, the "
                          f"output of {where(term)}, iteration {root.iteration}: it was computed from tensors cut from "
                          "the graph (p.data, .detach(), .item() made a tensor again), so it changes the loss's "
                          "value but not its gradient, and does nothing to training. Compute it from the parameters "
                          "themselves (p.pow(2).sum(), not p.data.pow(2).sum())", term, 0.0)

    def _losses_kept(self, rec) -> list[AlertEvent]:
        """An alert when the losses of the last ROOTS_KEPT backward passes, over as many iterations, are all still
        alive: the loop keeps them (`losses.append(loss)`), and each holds its iteration's graph."""
        roots = self._roots
        if len(roots) < ROOTS_KEPT or roots[0][1] > rec.iteration - ROOTS_KEPT + 1 or \
                any(ref() is None for ref, _ in roots):
            return []
        if not self._starts(("history_kept", ""), True):
            return []
        return [step_alert(rec, "history_kept", "loss", (
            f"the losses of the last {ROOTS_KEPT} iterations are all still alive at iteration {rec.iteration}: "
            "the loop keeps them (losses.append(loss), a dict of losses), and each keeps its iteration's graph, so "
            "memory grows with every step. Keep numbers: losses.append(loss.item()) (or loss.detach())"))]

    def _evaluated(self, rec: OpRecord) -> None:
        """Add a loss computed with gradients off (a validation batch's) to its line's evaluation in this iteration."""
        value = rec.summary.scalar
        if value is None or not math.isfinite(value) or (rec.source not in self._evals and len(self._evals) >= 16):
            return
        entry = self._evals.setdefault(rec.source, [rec.iteration, 0.0, 0, [], rec])
        if entry[0] != rec.iteration:
            self._close_evaluation(entry)
            entry[0] = rec.iteration
        entry[1] += value
        entry[2] += 1
        entry[4] = rec

    def _close_evaluation(self, entry: list) -> None:
        """Its evaluation is over: keep its mean beside the training loss's mean since the one before."""
        if entry[2]:
            seen, count = self._train_losses
            entry[3].append((entry[0], entry[1] / entry[2], seen / count if count else math.nan))
            del entry[3][:-64]
        entry[1], entry[2] = 0.0, 0

    def _overfitting(self, rec) -> list[AlertEvent]:
        """At a step: an alert when a validation loss has stayed OVERFIT_RISE above its best for OVERFIT_EVALS
        evaluations in a row and rose over them, while the training loss kept falling: the model learns its
        training data by heart (a loop that trains on one batch over and over does the same)."""
        value, self._root_value = self._root_value, None
        closed = [e for e in self._evals.values() if e[2] and e[0] <= rec.iteration]
        for entry in closed:
            self._close_evaluation(entry)
        if closed:
            self._train_losses = [0.0, 0]
        if value is not None and math.isfinite(value):
            self._train_losses[0] += value
            self._train_losses[1] += 1
        for entry in closed:
            history = entry[3]
            if len(history) <= OVERFIT_EVALS:
                continue
            best = min(range(len(history) - OVERFIT_EVALS), key=lambda i: history[i][1])
            (it_best, v_best, t_best), (it, v, t) = history[best], history[-1]
            recent = history[-OVERFIT_EVALS:]
            # risen by a share of the best and of the first evaluation's loss (0.05 to 0.07 is no loss to stop at)
            # differences against magnitudes: a flow's or a Gaussian's negative log-likelihood goes below zero
            hit = all(e[1] - v_best > OVERFIT_RISE * abs(v_best) for e in recent) and v >= recent[0][1] and \
                v - v_best >= OVERFIT_RISE * abs(history[0][1]) and t_best - t > (1 - OVERFIT_FALL) * abs(t_best) \
                and it - it_best >= OVERFIT_STEPS
            if not self._starts(("overfitting", ""), hit):
                continue
            made = entry[4]
            src = made.source
            name = label_of(src.text, made.event.op, src.file, src.line) if src is not None else made.event.op
            return [make_alert("overfitting", f"'{name}', a loss computed with gradients off at "
                               f"{where(made).partition(' at ')[2] or where(made)} (a validation loss), has risen for "
                               f"{OVERFIT_EVALS} evaluations, from {v_best:.3g} at iteration {it_best} to {v:.3g} at "
                               f"iteration {it}, while the training loss fell from {t_best:.3g} to {t:.3g}: the model "
                               "learns its training data by heart and does worse on data it has not seen. Keep the "
                               "weights of the best validation loss (early stopping, with a copy.deepcopy of the "
                               "state_dict), regularise (weight decay, dropout, augmentation), or train on more data "
                               "(and check the loop does not train on the same batch again and again)", made, v)]
        return []

    def _clipped_hard(self, rec) -> list[AlertEvent]:
        """An alert when clip_grad_norm_ divided the gradients by CLIP_SHRINK or more before each of the last
        CLIP_STEPS steps: a max_norm far below the gradients' norm (1e-3 for 1.0) shrinks every step that much, a
        learning rate made that much smaller; clipping is meant to trim the rare spike."""
        calls, norm, max_norm = clip_grad.last_clip
        if calls == self._clip_calls:
            self._hard_clips = 0  # no clipping before this step
            return []
        self._clip_calls = calls
        total = host_floats([norm])[0]
        self._hard_clips = self._hard_clips + 1 if max_norm > 0 and total >= CLIP_SHRINK * max_norm else 0
        if not self._starts(("clipped_hard", ""), self._hard_clips >= CLIP_STEPS):
            return []
        return [step_alert(rec, "clipped_hard", "clip_grad_norm_", (
            f"clip_grad_norm_ divided the gradients by {CLIP_SHRINK:g} or more before each of the last "
            f"{self._hard_clips} steps (norm {total:.3g} against max_norm={max_norm:g}), iteration {rec.iteration}: "
            f"every step is {total / max_norm:,.0f} times smaller than the learning rate makes it, so training "
            "crawls. A max_norm this small is a typo? Clipping should trim rare spikes: max_norm is usually 0.5 to "
            "10, about the gradient norm of a healthy step"))]


