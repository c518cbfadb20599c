"""Mistakes that train without an error while the loss stays flat or learns the wrong thing: a model left in eval
mode by a model.eval() for an evaluation before training (never undone), an optimizer whose parameters never get a
gradient though backward() runs before each of its steps (a GAN's generator loss through fake.detach()), one loss
backpropagated twice into one step (its gradients doubled), a regression loss whose input and targets broadcast
to a larger shape ((N, 1) outputs against (N,) targets: every output compared with every target), in mse_loss or
written by hand (`((pred - y) ** 2).mean()`), and nll_loss or kl_div given values that are not log-probabilities
(raw logits: log_softmax forgotten, so the loss falls below zero without bound while nothing is learned).

QuietMistakes is a part of engine.debug.alerts.Monitor (a base class): it keeps its own state (_quiet_state,
_quiet_new_iteration) and uses the Monitor's bookkeeping (_starts, _raised, _names, _eval_norms, _last, _flow,
settings).
"""

from __future__ import annotations

import math

import numpy as np

from engine.autograd import grad_mode
from engine.backend import array_module, host_floats, square_sum
from engine.debug.alert_text import make_alert, names_text, where
from engine.debug.records import BackwardRecord, OpRecord
from engine.debug.source import capture as capture_source
from engine.events import AlertEvent, next_seq
from engine.nn.layers.dropout import Dropout
from engine.nn.layers.norm import _BatchNorm
from engine.nn.module import innermost_call, outermost, running_modules
from engine.optim.optimizer import live_optimizers

MODE_LAYERS = (Dropout, _BatchNorm)  # the layers eval() changes
GRADLESS_STEPS = 5  # steps in a row of an optimizer none of whose parameters got a gradient (as no_gradient's)
ROOTS_LIMIT = 256  # losses backpropagated since the last step that are remembered
PAIRED = frozenset({"sub", "add"})  # what a hand-written loss compares outputs and targets with (pred - y, pred + -y)
COLUMNS = frozenset({"getitem", "unsqueeze", "view", "reshape"})  # what makes a column of a vector (x[:, None])
OUTER_OPS = PAIRED | COLUMNS
REDUCTIONS = frozenset({"mean", "sum", "nansum", "norm"})  # what makes a loss of a whole tensor
FLATTENS = frozenset({"view", "reshape", "flatten"})  # what keeps an outer difference's values, laid out anew
OUTER_LIMIT = 64  # tensors of an iteration remembered as columns, or as outer differences and what they made
# what a squared or absolute error of every output against every target is least at
CENTRES = {"pow": "mean", "square": "mean", "mul": "mean", "abs": "median"}
WANTS_LOG_PROBABILITIES = frozenset({"nll_loss", "kl_div"})  # losses whose input is log-probabilities
LOG_OPS = frozenset({"log", "log_softmax", "logsumexp", "log1p", "log2", "log10", "softplus"})  # (logsigmoid: softplus)
ROWS_CHECKED = 1 << 16  # elements of a loss's input whose rows are checked for log-probabilities (the first rows)
ABOVE_ZERO = 1e-3  # a log-probability above this is no rounding of 0
OFF_ONE = 0.1  # a row whose exponentials' sum has a log further from 0 than this (10%) is not normalised


class QuietMistakes:
    """The checks of the module docstring, as records come; a base of Monitor."""

    def _quiet_state(self) -> None:
        """Start with nothing seen (Monitor.__init__ calls it)."""
        # path -> (the layer, the nearest module of its call that holds parameters, the model's path) of each Dropout
        # or BatchNorm run in eval mode, with gradients on, in a model in eval mode, in this iteration; whether one ran
        # in training mode with gradients on
        self._eval_layers: dict[str, tuple] = {}
        self._layers_trained_now = False
        self._last_root: OpRecord | None = None  # the loss of the last backward pass since the last step
        self._roots_now: dict[int, int] = {}  # id of a loss backpropagated since the last step -> its passes
        # (loss, the line that ran backward() again, its passes, ids of the parameters holding gradients as it did)
        # of a loss backpropagated again since the last step
        self._twice: tuple | None = None
        self._unreached_runs: dict[int, int] = {}  # id of an optimizer -> its steps in a row without any gradient
        self._reached: set[int] = set()  # ids of the optimizers whose parameters held a gradient at some step
        self._steppers: set[int] = set()  # ids of the optimizers that stepped in this run (not an earlier run's)
        # this iteration's ids of (N, 1) columns made of an (N,) vector on purpose (x[:, None]); id of an (N, N) outer
        # difference of an output and targets, or of what the ops after it made of it -> (the op that broadcast them,
        # whether its (N, 1) operand is the one that requires grad, what the error is least at)
        self._columns: set[int] = set()
        self._outer: dict[int, tuple[OpRecord, bool, str]] = {}

    def _quiet_new_iteration(self) -> None:
        """Forget what concerns one iteration only (Monitor.new_iteration calls it)."""
        self._eval_layers.clear()
        self._layers_trained_now = False
        self._columns.clear()
        self._outer.clear()

    def _layer_called(self) -> None:
        """A module call began: note a Dropout or BatchNorm that runs with gradients on, and its mode. At every module
        call: one that trained in training mode in this iteration rules the alert out, and the rest is skipped."""
        if self._layers_trained_now:
            return
        call = innermost_call()
        layer = call[0] if call is not None else None
        if not isinstance(layer, MODE_LAYERS) or not grad_mode.state.enabled:
            return
        if not (layer.p if isinstance(layer, Dropout) else layer.track_running_stats):
            return  # eval mode changes nothing in them: p=0, or batch statistics in both modes
        if layer.training:
            self._layers_trained_now = True
            return
        calls = running_modules()
        if not outermost(calls[0][0]).training and len(self._eval_layers) < 64:
            # the nearest module that holds parameters: a BatchNorm's own scale and shift, or a Dropout's model
            holder = next((m for m, _ in reversed(calls) if next(m.parameters(), None) is not None), layer)
            self._eval_layers[calls[-1][1]] = (layer, holder, calls[0][1])

    def _pass_began(self, rec: BackwardRecord) -> None:
        """A backward pass starts from a loss: note it, and one backpropagated again onto the gradients its pass
        before left (nothing reset them in between: no zero_grad)."""
        root = self._last_root = rec.forward
        if root is None or (root.event.output_shape and math.prod(root.event.output_shape) != 1):
            return  # an output's backward with a gradient given: passes that sum on purpose
        out = root.event.output
        passes = self._roots_now.get(out, 0) + 1
        if passes == 1 and len(self._roots_now) >= ROOTS_LIMIT:
            return
        self._roots_now[out] = passes
        if passes > 1 and (self._twice is None or self._twice[0] is root):
            carried = self._twice[3] if self._twice is not None else _holding_gradients()
            if carried:
                self._twice = (root, capture_source(1)[0], passes, carried)  # the line that ran backward() again

    def _quiet_step(self, rec, opt) -> list[AlertEvent]:
        """At a step of optimizer `opt` (None: not known): a model trained in eval mode, an optimizer without
        gradients, a loss backpropagated twice into this step."""
        alerts = []
        if opt is not None:
            if self._eval_layers:
                alerts += self._trained_in_eval(rec, opt)
            alerts += self._without_gradient(rec, opt)
        twice, self._twice = self._twice, None
        self._last_root = None
        if self._roots_now:
            self._roots_now.clear()
        if twice is None and ("backward_twice", "") not in self._raised:
            return alerts  # nothing to judge, and nothing raised to clear
        # the gradients the pass before left, in parameters this step takes: nothing reset them before it ran again
        hit = twice is not None and opt is not None and \
            any(id(p) in twice[3] for group in opt.param_groups for p in group["params"])
        if self._starts(("backward_twice", ""), hit):
            alerts.append(_backward_twice(rec, *twice[:3]))
        return alerts

    def _trained_in_eval(self, rec, opt) -> list[AlertEvent]:
        """An alert when a step trains layers of a model in eval mode, Dropout or BatchNorm run in eval mode (none in
        training mode) with their own parameters trained (or their model's, for a Dropout): model.eval() before
        training, or for an evaluation, not undone. Not for layers put in eval mode one by one while their model
        trains (BatchNorm statistics frozen on purpose), nor for a frozen part of the model (a backbone under a
        trained head), nor for a model another optimizer trains (a GAN's generator, sampled in eval mode), nor where
        eval mode changes nothing training needs: BatchNorm layers alone whose statistics came from data (loaded, or
        an earlier phase's), frozen by a whole-model eval() to fine-tune, as detection models are. A Dropout that
        drops nothing, or a BatchNorm whose statistics were never computed (mean 0, variance 1: it normalises
        nothing), is the mistake's sign."""
        layers, self._eval_layers = self._eval_layers, {}
        if not layers or self._layers_trained_now:
            return []
        trained = {id(p) for group in opt.param_groups for p in group["params"] if p.grad is not None}
        hit = {path: (layer, model) for path, (layer, holder, model) in layers.items()
               if any(id(p) in trained for p in holder.parameters())}
        unfitted = [path for path, (layer, _) in hit.items() if isinstance(layer, _BatchNorm) and _unfitted(layer)]
        if not unfitted and not any(isinstance(layer, Dropout) for layer, _ in hit.values()):
            hit = {}  # statistics from data, frozen on purpose: nothing training needs is off
        if not self._starts(("eval_mode", ""), bool(hit)):
            return []
        norms = [path for path, (layer, _) in hit.items() if isinstance(layer, _BatchNorm)]
        drops = [path for path in hit if path not in norms]
        model = next(iter(hit.values()))[1]
        never = "" if not unfitted else ", never computed (mean 0, variance 1: it normalises nothing)," if \
            unfitted == norms else f", never computed in {names_text(unfitted)} (mean 0, variance 1: they normalise " \
            "nothing),"
        effects = ([f"BatchNorm {names_text(norms)} normalises with its running statistics{never} and stops updating "
                    "them"] if norms else []) + ([f"Dropout {names_text(drops)} drops nothing"] if drops else [])
        message = (f"'{model}' trains in eval mode, iteration {rec.iteration}: model.eval() was called (for an "
                   "evaluation before training, or between epochs?) and model.train() not after it, so in the "
                   f"training steps {' and '.join(effects)}. Call model.train() before the training steps, and "
                   "model.eval() only around evaluation (to freeze BatchNorm statistics on purpose, put those layers "
                   "alone in eval mode)")
        norm = self._eval_norms.get(norms[0]) if norms else None
        if norm is not None:
            return [make_alert("eval_mode", message, norm, float(len(hit)))]
        src = rec.source
        return [AlertEvent(next_seq(), "eval_mode", message, "", (norms or drops)[0], (norms or drops)[0], 0,
                           rec.iteration, src.file if src else "", src.line if src else 0, src.text if src else "",
                           float(len(hit)))]

    def _without_gradient(self, rec, opt) -> list[AlertEvent]:
        """An alert when none of the trainable parameters of the stepping optimizer got a gradient at GRADLESS_STEPS
        of its steps in a row, nor at any step before, though a backward ran before each and reached another
        optimizer's parameters (one that steps in this run): the loss it follows does not depend on them (a GAN's
        generator loss computed from fake.detach()). Not for parameters frozen on purpose (requires_grad False), nor
        for a step placed before backward (its parameters hold a gradient at the other optimizer's steps;
        step_without_grad's, with one optimizer; optimizers are marked so at others' steps once two step)."""
        steppers, reached = self._steppers, self._reached
        if id(opt) not in steppers and len(steppers) < 64:
            steppers.add(id(opt))
        if len(steppers) == 1 and id(opt) in reached:
            return []  # one optimizer steps, and a gradient reached it: no other's to compare with (most runs)
        live = live_optimizers()
        for other in live:  # an optimizer reached once is reached for good: the first parameter with one tells
            if id(other) not in reached and any(_gradient(p) for group in other.param_groups for p in group["params"]):
                reached.add(id(other))
        if id(opt) in reached:
            return []  # at every step of a run that trains
        others = [got for other in live if other is not opt and id(other) in self._steppers
                  if (got := [p for group in other.param_groups for p in group["params"] if _gradient(p)])]
        trainable = any(p.requires_grad for group in opt.param_groups for p in group["params"])
        root = self._last_root
        run = self._unreached_runs.get(id(opt), 0) + 1 if trainable and others and root is not None else 0
        self._unreached_runs[id(opt)] = run
        if not self._starts(("optimizer_no_gradient", str(id(opt))), run >= GRADLESS_STEPS):
            return []
        names = self._names()
        mine = [names[id(p)] for group in opt.param_groups for p in group["params"] if id(p) in names]
        theirs = [names[id(p)] for got in others for p in got if id(p) in names]
        held = names_text(mine) if mine else "its parameters"
        elsewhere = f" ({names_text(theirs)})" if theirs else ""
        message = (f"{type(opt).__name__} steps {held}, but none of them got a gradient in its last {run} steps, "
                   f"though backward() ran before each, from {where(root)}, and reached another optimizer's "
                   f"parameters{elsewhere}, iteration {rec.iteration}: that loss does not depend on them, so the step "
                   "changes nothing and they never train. A .detach() between them and the loss cuts the graph: a "
                   "GAN's generator loss must take D(fake), not D(fake.detach()) (detach only in the discriminator's "
                   "loss)")
        return [make_alert("optimizer_no_gradient", message, root, float(run))]

    def _broadcast_loss(self, rec: OpRecord) -> AlertEvent | None:
        """An alert when a regression loss's input and targets broadcast to a shape larger than the input's ((N, 1)
        against (N,): (N, N)): every output is compared with every sample's target, so the loss is least where each
        output predicts one value for all (their mean, for a squared error), and it stays flat. Targets broadcast
        along the input ((N, D) against (D,)) give each output its gradient still and are left be."""
        ev = rec.event
        if len(ev.input_shapes) < 2:
            return None
        x, y = tuple(ev.input_shapes[0]), tuple(ev.input_shapes[1])
        if x == y:
            return None  # at every step of a regression that matches them
        try:
            shape = tuple(np.broadcast_shapes(x, y))
        except ValueError:
            return None
        if shape == x or not self._starts(("broadcast_loss", ev.key), True):
            return None
        if x == (*y, 1):
            fix = f"Pass output.squeeze({len(x) - 1}) (or target.unsqueeze({len(y)}))"
        elif y == (*x, 1):
            fix = f"Pass target.squeeze({len(y) - 1}) (or output.unsqueeze({len(x)}))"
        else:
            fix = "Reshape one of them to the other's shape"
        centre = {"mse_loss": "mean", "l1_loss": "median"}.get(ev.op, "middle")
        return make_alert("broadcast_loss", f"{where(rec)} takes an input of shape {x} and targets of shape {y}, "
                          f"iteration {rec.iteration}: they broadcast to {shape}, {_every_target(centre)}. {fix}, so "
                          "that the shapes match", rec, float(math.prod(shape)))

    def _outer_difference(self, rec: OpRecord, inputs: tuple) -> AlertEvent | None:
        """Follow a hand-written loss's (N, 1) output minus (N,) targets (or the other way round), broadcast to
        (N, N): an alert when ops that keep its elements (a square, an abs, a mean over one dim) lead it into a
        mean or sum of all of it that requires grad, the loss, as mse_loss's broadcast_loss. An outer difference on
        purpose is left be: of a column made of a vector in this iteration (x[:, None] - y, pairwise distances), of
        two operands that both or neither require grad (every positive's score against every negative's), of (N, 1)
        and (1, M) (a kernel), or reduced otherwise (a min over one dim: each output's nearest target)."""
        ev = rec.event
        outer = self._outer
        if outer:
            came = next((outer[i] for i in ev.inputs if i in outer), None)
            if came is not None:
                return self._outer_loss(rec, *came)
        shapes = ev.input_shapes
        if ev.op in COLUMNS:
            if shapes and len(shapes[0]) == 1 and tuple(ev.output_shape) == (*shapes[0], 1) and \
                    len(self._columns) < OUTER_LIMIT:
                self._columns.add(ev.output)
            return None
        if len(shapes) != 2 or len(inputs) != 2 or not ev.requires_grad or len(outer) >= OUTER_LIMIT:
            return None
        a, b = shapes
        col = 0 if len(a) == 2 and len(b) == 1 and a == (b[0], 1) else \
            1 if len(b) == 2 and len(a) == 1 and b == (a[0], 1) else -1
        if col < 0 or a[0] < 2 or ev.inputs[col] in self._columns:
            return None
        grads = [getattr(t, "requires_grad", False) for t in inputs]
        if grads[0] != grads[1]:
            outer[ev.output] = (rec, grads[col], "")
        return None

    def _outer_loss(self, rec: OpRecord, made: OpRecord, output_column: bool, centre: str) -> AlertEvent | None:
        """An op took outer difference `made` (or what ops made of it): the alert when it is a loss of all of it,
        else it is followed on where it keeps the difference's elements."""
        ev, shape = rec.event, tuple(made.event.output_shape)
        centre = centre or CENTRES.get(ev.op, "")
        if ev.op in REDUCTIONS and math.prod(ev.output_shape) == 1:
            src = made.source  # its key's number moves with the top-level ops before it (a print's on some steps)
            if not ev.requires_grad or not self._starts(
                    ("broadcast_loss", f"{src.file}:{src.line}" if src else made.event.key), True):
                return None
            a, b = (tuple(s) for s in made.event.input_shapes)
            which = "output" if output_column else "targets"
            return make_alert("broadcast_loss", f"{where(made)} takes tensors of shapes {a} and {b}, iteration "
                              f"{made.iteration}: they broadcast to {shape}, and '{ev.op}' makes a loss of all of it, "
                              f"{_every_target(centre or 'middle')}. Make the ({shape[0]}, 1) {which} a vector, "
                              f"{which}.squeeze(1) (or {which}.view(-1)), so that the shapes match", made,
                              float(math.prod(shape)))
        if (tuple(ev.output_shape) == shape or ev.op in REDUCTIONS or ev.op in FLATTENS) and \
                len(self._outer) < OUTER_LIMIT:
            self._outer[ev.output] = (made, output_column, centre)
        return None

    def _not_log_probabilities(self, rec: OpRecord, x) -> AlertEvent | None:
        """An alert when nll_loss or kl_div, which take log-probabilities, get values that are none: values above 0
        (a log-probability is at most 0; raw logits have them, and make a negative loss), or, for nll_loss, rows
        whose exponentials do not sum to 1. Fed raw logits (log_softmax forgotten), nll_loss raises the target's
        score without bound: the loss falls below zero and on while the accuracy stays where it was.
        Probabilities (rows >= 0 summing to 1) are _probabilities_in's to name; values computed from a log (a
        log-probability weighted by an advantage, log(p + eps)) are left be. Judged on the first rows."""
        ev, data = rec.event, x.array
        key = ("log_probabilities", ev.key)
        nll = ev.op == "nll_loss"
        if data.dtype.kind != "f" or not data.size or key in self._raised or self._from_log(ev.inputs[0]):
            return None  # (computed from a log, the usual model's log_softmax: nothing to count, every step)
        if data.ndim >= 2 and data.size > ROWS_CHECKED:
            data = data[:max(1, ROWS_CHECKED * len(data) // data.size)]
        xp = array_module(data)
        if nll:
            classes = 1 if data.ndim >= 2 else 0
            if data.shape[classes] < 2:
                return None
            top = xp.max(data, axis=classes, keepdims=True)
            lse = xp.squeeze(xp.log(xp.sum(xp.exp(data - top), axis=classes, keepdims=True)) + top, axis=classes)
            lse = lse[xp.isfinite(lse)]  # a row all -inf (masked) says nothing
            sums = xp.abs(xp.sum(data, axis=classes) - 1)
            found = host_floats([xp.max(top), xp.min(data), xp.max(sums),
                                 *((xp.max(lse), xp.min(lse)) if lse.size else (0.0, 0.0))])
            most, least, off_sum, lse_hi, lse_lo = found
            if least >= 0 and off_sum < 1e-3:
                return None  # probabilities: the probabilities alert names them
        else:
            most, lse_hi, lse_lo = host_floats([xp.max(data)])[0], 0.0, 0.0
        worst = lse_hi if abs(lse_hi) >= abs(lse_lo) else lse_lo
        if not self._starts(key, most > ABOVE_ZERO or abs(worst) > OFF_ONE):
            return None
        evidence = f"values up to {most:.3g}, where a log-probability is at most 0" if most > ABOVE_ZERO else \
            f"rows whose exponentials sum to {math.exp(worst):.3g}, not 1"
        if nll:
            why = ("nll_loss takes log-probabilities and returns minus the target's, so fed raw scores it raises the "
                   "target's score without bound: the loss falls below zero and on, while the accuracy does not rise. "
                   "Apply log_softmax first (F.log_softmax(logits, dim=1), or nn.LogSoftmax(dim=1) as the model's last "
                   "layer), or pass the logits to F.cross_entropy, which applies it itself")
        else:
            why = ("kl_div takes its input as log-probabilities (its target as probabilities, or as log-probabilities "
                   "with log_target=True), so given probabilities or raw scores it measures no divergence and can "
                   "fall below zero. Pass F.log_softmax(scores, dim=-1) as the input")
        return make_alert("log_probabilities", f"{where(rec)} gets values that are not log-probabilities ({evidence}), "
                          f"iteration {rec.iteration}: {why}", rec, most if most > ABOVE_ZERO else math.exp(worst))

    def _from_log(self, x: int) -> bool:
        """Whether tensor `x` was computed from a log (a log_softmax, log(p + eps), logits minus their logsumexp), by
        the ops of this iteration outside module calls, or is the model's last log_softmax's output."""
        last = self._last.get("log_softmax")
        todo, seen = [x], 0
        while todo and seen < 16:
            i = todo.pop()
            seen += 1
            if last is not None and last[0] == i:
                return True
            made = self._flow.get(i)
            if made is not None:
                if made.event.op in LOG_OPS:
                    return True
                todo.extend(made.event.inputs)
        return False


def _every_target(centre: str) -> str:
    """What a loss of every output against every sample's targets does, least where outputs predict their `centre`."""
    return ("so every output is compared with the targets of every sample, not only its own, and the loss is least "
            f"where each output predicts the targets' {centre}: it stays flat while nothing fits")


def _unfitted(norm: _BatchNorm) -> bool:
    """Whether a BatchNorm's running statistics are still those it started with (mean 0, variance 1)."""
    mean, var = norm.running_mean.array, norm.running_var.array
    xp = array_module(mean)
    return bool(xp.all(mean == 0)) and bool(xp.all(var == 1))


def _gradient(p) -> bool:
    """Whether trainable parameter `p` holds a gradient."""
    return p.grad is not None and p.requires_grad


def _holding_gradients() -> set[int]:
    """Ids of the parameters optimizers train that hold a gradient not all zeros (none since a zero_grad)."""
    held = [p for opt in live_optimizers() for group in opt.param_groups for p in group["params"]
            if p.grad is not None and p.requires_grad]
    sizes = host_floats([square_sum(p.grad.array) for p in held])  # one transfer for all
    return {id(p) for p, size in zip(held, sizes, strict=True) if size != 0}


def _backward_twice(rec, root: OpRecord, source, passes: int) -> AlertEvent:
    """The alert for loss `root` backpropagated `passes` times into the step of `rec`, again from line `source`."""
    again = f" (again at {source.file}:{source.line}: {source.text})" if source is not None else ""
    message = (f"backward() ran {passes} times from {where(root)} before one optimizer step{again}, iteration "
               f"{rec.iteration}: each pass adds the same gradients into .grad, so the step moves {passes} times as "
               "far as the loss asks (a learning rate silently multiplied). Call backward() once per loss; for "
               "several losses, add them and call backward() on the sum, or call it once on each")
    ev, src = root.event, source or root.source
    return AlertEvent(next_seq(), "backward_twice", message, ev.op, ev.key, ev.module, ev.seq, rec.iteration,
                      src.file if src else "", src.line if src else 0, src.text if src else "", float(passes))
