"""Numerical alerts: where non-finite values started (not the flood after), exploding or vanishing
gradient norms, dead ReLUs; and the classic reasons a model will not train: updates as large as the
weights (a learning rate far too high), gradients that pile up across steps (no zero_grad), parameters
with gradients that no optimizer updates (a layer replaced after the optimizer was made), frozen
parameters given to an optimizer, and probabilities passed to a loss that wants logits. The loose ends of a
loop (a graph kept from step to step, a result nothing takes, an evaluation in training mode, over-fitting...) are
checked by its base class, engine.debug.loop_checks.LoopChecks; what follows tensors through an iteration's graph (a
softmax without dim over the batch, targets fed as inputs) by engine.debug.flows.FlowChecks; what trains quietly wrong
(a model left in eval mode, an optimizer no gradient reaches, a loss backpropagated twice, a loss's shapes broadcast,
raw logits given to nll_loss) by engine.debug.quiet_mistakes.QuietMistakes.

Each says what is wrong, where (the layer, as the model names it) and what to try, once per condition:
the gradient-norm alerts are one alert naming the worst parameter, not one per parameter.

Non-finite values (NaN origins, entries from outside the graph, steps that overflow) are tracked by
engine.debug.nonfinite; this module adds the rest and keeps the once-per-condition bookkeeping.
"""

from __future__ import annotations

import linecache
import math
import weakref
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from engine.backend import array_module, host_floats, square_sum
from engine.debug.alert_text import (
    LR_TOO_HIGH,
    LR_TOO_LOW,
    REINITIALISE,
    UNITS_ALIKE,
    layer_of,
    make_alert,
    names_text,
    others_text,
    step_alert,
    where,
)
from engine.debug.custom_backward import CustomBackwards
from engine.debug.data_order import shuffle_advice
from engine.debug.detached import Detaches, detached_alert, no_gradient_alert
from engine.debug.fitted_advice import depth_advice, unclipped
from engine.debug.flows import FlowChecks
from engine.debug.loop_checks import LAYERS, TIED_OPS, LoopChecks
from engine.debug.nonfinite import NonFiniteTracker
from engine.debug.param_names import by_event_names, updated_parameters
from engine.debug.quiet_mistakes import OUTER_OPS, WANTS_LOG_PROBABILITIES, QuietMistakes
from engine.debug.records import BackwardRecord, OpRecord
from engine.debug.schedules import decay_guess, zeroed_by
from engine.debug.script_names import positional, positional_text
from engine.debug.weight_decay import SHRUNK, WeightDecayCheck
from engine.debug.zero_grad_sites import call_text, dropped_since, last_call
from engine.events import AlertEvent, next_seq
from engine.nn.init import filled_at
from engine.nn.module import unregistered_calls
from engine.nn.utils import clip_grad
from engine.optim.optimizer import live_optimizers, made_at, stepping_optimizer
from engine.zero_grads import zero_grads_so_far


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """What to watch for; a threshold of None turns that alert off.

    grad_norm_max / grad_norm_min: per-parameter gradient L2 norm at each optimizer step (needs the
    model or optimizer given to the debugger). dead_relu: the fraction of a relu's units that are zero
    for every sample of the batch. update_ratio_max: a layer's update norm over its weight norm, kept up
    for UPDATE_STEPS steps in a row (healthy training is near 1e-3; the examples peak below 0.2); a layer
    that starts at zero (a residual block's last BatchNorm scale, torchvision's zero_init_residual) is not
    judged in its first ZERO_START_STEPS steps, where its updates are its weights. No vanishing alert at a step
    where a weight that trains was all zeros: behind it no gradient arrives by design (a zero-initialised
    embedding or BatchNorm scale), until its first update lets gradients through.
    training: the checks of the training loop itself (see the module docstring).
    custom_backward: check each custom autograd Function's backward against its forward once
    (engine.debug.custom_backward; at capture "summary" and "values").
    """

    nonfinite: bool = True
    grad_norm_max: float | None = 1e3
    grad_norm_min: float | None = 1e-7
    dead_relu: float | None = 0.9
    update_ratio_max: float | None = 0.5
    training: bool = True
    custom_backward: bool = True


GRADLESS_STEPS = 5  # steps in a row a trained parameter gets no gradient (a branch some batches skip gets one soon)
UPDATE_STEPS = 3  # a zero-initialised layer's first update is as large as its weights; by the third it is not
CLEAR_CHECKS = 20  # a gradient norm near the limit (a summed loss) crossed it 93 times in 1,200 steps
WEIGHT_FLOOR = 0.1  # the least weight norm an update is measured against
ZERO_START_STEPS = 20  # ...unless the learning rate warms up as fast as the weights grow (OneCycleLR)
# a gradient this much smaller than its module's others is theirs cancelled, not one that fades: a sum that is zero
# but for float32 rounding (an attention score's bias before a softmax over the bag) reached 1.4e-5 of its weight's
CANCELLED = 1e-4
LOSSES_OF_LOGITS = frozenset({"cross_entropy", "nll_loss"})  # losses that must not get probabilities
REGRESSION_LOSSES = frozenset({"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"})
TARGET_SCALE = 100.0  # regression targets beyond it: a network's outputs start near 0, its loss and gradients don't
SATURATING = frozenset({"sigmoid", "tanh"})
# normalisation ops a model runs, by its layers' names (InstanceNorm runs as group_norm)
NORMALISATIONS = {"layer_norm": "LayerNorm", "batch_norm": "BatchNorm", "group_norm": "GroupNorm",
                  "rms_norm": "RMSNorm"}
SOFTMAXES = frozenset({"softmax", "log_softmax"})
RANGES = {"relu": (0.0, math.inf), "softplus": (0.0, math.inf), "exp": (0.0, math.inf), "sigmoid": (0.0, 1.0),
          "tanh": (-1.0, 1.0)}  # what a regression's final activation can output
LAST_OF = frozenset({*RANGES, *SOFTMAXES, "dropout", "linear"})  # ops whose last output a loss may take straight
BCE_LOGITS = "binary_cross_entropy_with_logits"
OUTSIDE_SHARE = 0.1  # a regression's targets outside its final activation's range
LOSSES_OF_OUTPUTS = frozenset({"cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "mse_loss",
                               "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div"})
# losses that probabilities reach by mistake: a second sigmoid, or a squared error against one-hot classes
PROBABILITIES_MISSED = frozenset({"binary_cross_entropy_with_logits", "mse_loss"})
LR_GONE = 1e-6  # a learning rate this far below its peak moves nothing...
LR_GONE_STEPS = 20  # ...for this many steps (cosine annealing to 0 over 10,000 steps spends 6 below it)
SCHEDULED_ZERO_STEPS = 2  # steps a scheduler holds a rate at 0 (cosine annealing to 0 touches it for one)
LR_RISEN = 1e4  # a learning rate this many times its first (a warmup from 1e-5 to 0.05 is 5,000x)...
LR_RISING_STEPS = 120  # ...that rose at each of this many steps in a row (a range test runs about 100)
RESHAPES = frozenset({"view", "reshape"})
THROUGH_SOFTMAX = frozenset({"log", "add", "clamp", "clamp_min"})  # what a hand-written log-softmax passes through
CONVERGED = 1e-3  # a loss below this share of its first: fitted, its gradients tiny everywhere
PADDING_SHARE = 0.2  # a loss's targets that are an Embedding's padding index, counted by the loss
CHANCE_BAND = 0.02  # a cross entropy this near ln C...
CHANCE_STEPS = 100  # ...for this many iterations in a row has learned nothing
IDLE_STEPS = 16  # steps of one optimizer in a row that another, whose parameters hold gradients, does not take
BARE_STEPS = 3  # steps in a row without any gradient, a backward having run before each: step before backward
TINY_UPDATE = 1e-6  # every layer's update below this share of its weights...
TINY_STEPS = 20  # ...for this many steps in a row...
TINY_WINDOW = 100  # ...within the run's first steps: a learning rate far too low
LR_FELL = 1e-2  # ...unless a scheduler (or a decay by hand) took the rate there, from a peak 1 / LR_FELL times it
LOSS_BLOWUP = 100.0  # a training loss this many times its first...
LOSS_BLOWUP_STEPS = 2  # ...for this many steps in a row diverges (one batch of outliers is no divergence)
LOSS_KEPT = 0.9  # a loss still above this share of its first has not fallen
ONE_CLASS_BATCHES = 10  # batches in a row of one class each (two classes or more among them)...
ONE_CLASS_SIZE = 8  # ...of at least this many samples...
ONE_CLASS_SHARE = 0.6  # ...most of them (the others two classes: the last of one class, the first of the next)
EXPLODING_ADVICE = ("the updates will throw the weights far off. Try a smaller learning rate, gradient clipping "
                    "(engine.nn.utils.clip_grad_norm_) or normalisation layers")
# after what made the script's own clipping clip nothing
EXPLODING_UNCLIPPED = "unclipped, the updates throw the weights far off: a smaller learning rate helps too"
FEW_PER_CHANNEL = 8  # a BatchNorm in training over fewer values per channel normalises noise
FEW_STEPS = 3  # iterations in a row that few: a DataLoader's last, smaller batch is no pattern
# optimizers whose step is the gradient divided by its running size: a large gradient is no large step
ADAPTIVE = frozenset({"Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta", "SparseAdam"})


class Monitor(LoopChecks, FlowChecks, QuietMistakes):
    """Checks records as they are made and returns the alerts they raise."""

    def __init__(self, settings: AlertSettings, params=None, tensors=None) -> None:
        self.settings = settings
        self.params = params  # callable -> iterable of (name, parameter), or None
        self.tensors = tensors  # callable -> iterable of (name, parameter or buffer), for naming inputs
        self.nonfinite = NonFiniteTracker(self._names, self._named)
        self.custom_backwards = CustomBackwards() if settings.custom_backward else None
        self._detaches = Detaches()  # tensors taken detached from the graph in this iteration (h.detach())
        # (kind, key) of ongoing conditions, alerted once -> checks in a row the condition was not met since
        self._raised: dict[tuple[str, str], int] = {}
        self._big_runs: dict[str, int] = {}  # layer -> steps in a row its update was large against its weights
        self._norms_trained = self._norms_train_now = False  # a BatchNorm ran in train mode (in this iteration)
        self._eval_norms: dict[str, OpRecord] = {}  # module path -> a BatchNorm op of this iteration in eval mode
        self._gradless: dict[str, int] = {}  # name -> steps in a row it got no gradient while others did
        self._weights_after: dict[str, float] = {}  # layer -> its weight norm after its last step: the next one's start
        self._zero_start: dict[str, int] = {}  # layer -> steps seen, for a layer whose first update was its weights
        self._grads: dict[str, tuple] = {}  # parameter -> (weakref to its .grad, that tensor's version) at a step
        self._dead = ""  # the key of a relu found dead since the last step
        self._in_modules = False  # whether ops ran inside module calls (the model is made of modules)
        # what blew the weights up earlier in the run, for the alerts that follow from it: "the learning-rate blow-up
        # at iteration 2" (updates outgrew the weights, the loss diverged), "the exploding gradients at iteration 5"
        self._blown = ""
        self._weights_first = False  # whether the weight norms before the first step were taken (in _weights_after)
        self._loss_up = 0  # steps in a row whose loss was LOSS_BLOWUP times the first or more
        self._diverged_at: int | None = None  # the iteration the diverging loss was alerted at
        self._big_seen = False  # whether an update-size alert named the learning rate
        self._top_update: tuple = (0.0, "", 0)  # (ratio, layer, iteration) of the largest update since the loss was low
        self._decay = WeightDecayCheck()  # a weight decay that outweighs the gradient
        self._decay_large = ""  # this step's large updates, found to be the decay's
        self._rate_fell = False  # this step's tiny updates are a rate decayed LR_FELL below its peak: lr_gone's
        # a layer's bias a BatchNorm / InstanceNorm in training takes away (its gradient is zero by design):
        # id of each biased layer's output -> id of its bias; ids of the biases seen so normalised
        self._bias_of: dict[int, int] = {}
        self._normalized_away: set[int] = set()
        # names of the parameters steps have reported: one first reported after the first step is new (a layer a
        # growing model adds, often faded in from zero) and gets no vanishing alert at that step
        self._stepped: set[str] = set()
        # what exploding and vanishing gradients are blamed on: a sigmoid or tanh ran; the last loss (its record
        # and, for a regression, the target's array); BatchNorm keys -> iterations in a row over few values
        self._saturating = False
        self._normalised: set[str] = set()  # the normalisation layers the model runs ("LayerNorm")
        self._residual = False  # whether its modules add an activation to one of its shape (a skip connection)
        self._loss: tuple = (None, None)
        self._few: dict[str, tuple] = {}
        self._few_norm: tuple = ()  # (values per channel, the norm's module or key) once FEW_STEPS is reached
        self._clipped_nothing = clip_grad.clipped_nothing  # clip_grad_norm_ calls without gradients before this run
        self._given_nothing = clip_grad.given_nothing[0]  # ...and those given no parameters at all
        self._zero_layers: set[str] | None = None  # layers whose weights started at zero (None: no step seen yet)
        # id(optimizer) -> its learning rate's (first, last, rises in a row, highest, its iteration, low steps in a row)
        self._lrs: dict[int, tuple] = {}
        self._zero_lr: dict[int, int] = {}  # id(optimizer) -> steps in a row at a learning rate of 0
        self._batch_classes: deque = deque(maxlen=ONE_CLASS_BATCHES)  # each loss's one class, or None: several
        self._backward_seen = False  # a backward ran since the last step
        # as the last backward pass began: zero_grads_so_far(), and the line of the loss it backpropagates
        self._backward_at: tuple = (zero_grads_so_far(), None)
        self._last: dict[str, tuple] = {}  # op in LAST_OF -> (tensor id of the output, record) of its last run
        self._passes = self._passes_per_step = 0  # backward() calls since the last step; before the last step
        self._first_loss: float | None = None  # the first loss a step saw (its size), for _converged
        self._padding: tuple = (None, None, None)  # (padding_idx, record, indices) of the last Embedding with one
        self._recurrent: OpRecord | None = None  # the last recurrent layer's op
        # id of a live optimizer -> (steps of another in a row it did not take while new gradients came, them)
        self._idle: dict[int, tuple] = {}
        self._chance: dict[str, tuple] = {}  # loss op key -> (its last iteration, iterations in a row at chance)
        self._bare_steps = 0  # steps in a row that found no gradient at all, a backward having run before each
        # (file, line) of a zero_grad() that dropped the stepping optimizer's gradients after the last backward began
        # (before this step used them), or None
        self._dropped: tuple[str, int] | None = None
        self._steps_seen = 0  # optimizer steps this monitor saw
        self._tiny_steps = 0  # steps in a row whose every layer moved by less than TINY_UPDATE of its weights
        self._loop_state()
        self._flow_state()
        self._quiet_state()

    def new_iteration(self, iteration: int) -> None:
        """Forget per-iteration state."""
        self.nonfinite.new_iteration()
        self._eval_norms.clear()
        self._last.clear()
        self._detaches.new_iteration()
        self._norms_train_now = False
        self._loop_new_iteration()
        self._flow_new_iteration()
        self._quiet_new_iteration()

    def module(self, rec) -> AlertEvent | None:
        """A module call began or ended: the model's calls (root ones) are followed; an alert, or None."""
        ev = rec.event
        if not ev.enter:
            self.module_exit(ev.tensors)
        elif self.settings.training:
            self._layer_called()
        if rec.depth or not self.settings.training:
            return None
        if ev.enter:
            self.model_called(ev.tensors)
            return None
        return self.model_returned(ev.tensors, rec.iteration)

    def op(self, rec: OpRecord, inputs: tuple, out) -> AlertEvent | None:
        """A NaN-origin or dead-ReLU alert for a forward op, or None."""
        s = self.settings
        # first: it notes what each op takes, which a non-finite op's early return would skip
        if s.training:
            self._detaches.op(rec, inputs, out)
        loose = self._loose_ends(rec, inputs, out) if s.training else None
        flow = self._follow(rec, inputs) if s.training else None
        loose = loose or flow
        if loose is None and rec.event.op == "masked_fill" and self._padding[1] is not None and len(inputs) > 1:
            loose = self._inverted_padding_mask(rec, inputs[1].array)  # here: its -inf output ends the checks below
        if s.nonfinite:
            nonfinite, alert = self.nonfinite.op(rec, inputs, out)
            if nonfinite:
                return alert or loose
        if loose is not None:
            return loose
        op = rec.event.op
        if s.training and (op in OUTER_OPS or self._outer):  # a hand-written loss's (N, 1) - (N,), followed
            alert = self._outer_difference(rec, inputs)
            if alert is not None:
                return alert
        if self._tie_weights is not None and op in TIED_OPS:
            self._tie_candidate(rec, inputs)
        if op in LAST_OF:  # the last one: a loss may take its output straight
            self._last[op] = (rec.event.output, rec)
        if op in SATURATING:
            self._saturating = True
        elif op in NORMALISATIONS and rec.depth:
            self._normalised.add(NORMALISATIONS[op])
        elif op == "add" and rec.depth and not self._residual and rec.event.requires_grad:
            shapes = rec.event.input_shapes  # h + block(h): two activations of one shape
            self._residual = len(shapes) == 2 and shapes[0] == shapes[1] and len(shapes[0]) >= 2
        elif (op in REGRESSION_LOSSES or op in LOSSES_OF_LOGITS) and rec.event.requires_grad:  # the training loss:
            # a validation loss under no_grad between backward() and step() is not what the step minimises
            self._loss = (rec, inputs[1].array if op in REGRESSION_LOSSES and len(inputs) > 1 else None)
        elif op in THROUGH_SOFTMAX and rec.event.inputs and self._last:
            # log(softmax(x) + 1e-8): the loss takes the softmax's output still, guarded and logged by hand
            softmax = self._made_by(rec.event.inputs[0], SOFTMAXES)
            if softmax is not None:
                self._last[softmax.event.op] = (rec.event.output, softmax)
        elif "steps" in rec.event.args and "hidden_size" in rec.event.args and len(rec.event.input_shapes) > 1:
            self._recurrent = rec  # a recurrent layer's fused op: its steps, and its batch (the state's rows)
        elif op == "embedding" and rec.event.args.get("padding_idx") is not None:
            self._padding = (rec.event.args["padding_idx"], rec, inputs[0].array)
        elif op in RESHAPES and rec.event.input_shapes:
            alert = self._reordering_view(rec)
            if alert is not None:
                return alert
        elif op == "to" and inputs and inputs[0].array.dtype == np.uint8:
            self._converted_bytes(rec, inputs[0].array)
        elif op in LAYERS and self._pixels and rec.event.inputs:
            alert = self._unscaled_pixels(rec)
            if alert is not None:
                return alert
        if op == "batch_norm" and rec.event.requires_grad and s.training:  # a norm in a pass that will train
            if rec.event.args.get("training", True):
                self._norms_trained = self._norms_train_now = True
                alert = self._few_values(rec, inputs[0].array)
                if alert is not None:
                    return alert
            elif len(self._eval_norms) < 64:
                self._eval_norms[rec.event.module or op] = rec
        if op in _BIASED and len(inputs) > 2 and inputs[2] is not None and s.grad_norm_min is not None:
            if len(self._bias_of) >= 4096:
                self._bias_of.clear()
            self._bias_of[id(out)] = id(inputs[2])
        elif op in _NORMALIZING and inputs and self._bias_of and rec.event.args.get("training", True) and (
                op != "group_norm" or rec.event.args.get("num_groups") == inputs[0].shape[1]):
            bias = self._bias_of.get(id(inputs[0]))
            if bias is not None and len(self._normalized_away) < 4096:
                self._normalized_away.add(bias)
        if rec.depth:
            self._in_modules = True
        # a relu outside every module where the model is made of modules is a hinge in a loss (a capsule
        # network's margin loss), not a layer's activation
        if s.dead_relu is not None and rec.event.op == "relu" and out.array.ndim >= 2 and \
                (rec.depth or not self._in_modules):
            data = out.array
            # units dead for the whole batch are that many zeros: too few zeros in all rule them out at
            # the cost of one count (a GPU summary has the count on the host already)
            if data.__class__ is not np.ndarray and rec.summary is not None:
                zeros = rec.summary.zero_count
            else:
                zeros = data.size - int(array_module(data).count_nonzero(data))
            dead = 0.0
            if zeros >= s.dead_relu * data.size:
                dead = float((data == 0).reshape(data.shape[0], -1).all(axis=0).mean())
            if self._starts(("dead_relu", rec.event.key), dead >= s.dead_relu):
                self._dead = rec.event.key
                pre = inputs[0].array if inputs else data
                if not bool(array_module(pre).any(pre)):  # not one unit has a nonzero input
                    cause = ("Their input is exactly zero everywhere: the layer before outputs nothing but zeros "
                             "(its weights and bias initialised to zero?); initialise it with engine.nn.init "
                             "(Kaiming) or keep the layer's default init")
                elif cause := self._aftermath():  # the units died of what an earlier alert named
                    cause = cause[0].upper() + cause[1:]
                else:
                    cause = ("Look for a large negative bias or weights blown up by a high learning rate in the "
                             "layer before; try a lower learning rate, LeakyReLU or Kaiming init")
                return make_alert("dead_relu", f"{dead:.0%} of the units of {where(rec)} are zero for the whole "
                              f"batch, iteration {rec.iteration}: they pass no gradient back, so the layers "
                              f"before them stop learning. {cause}", rec, dead)
        if s.training and op in LOSSES_OF_OUTPUTS and len(inputs) > 1:
            return self._loss_checks(rec, inputs, out)
        return None

    def _loss_checks(self, rec: OpRecord, inputs: tuple, out) -> AlertEvent | None:
        """The first alert of a loss op's checks, or None: what made its input (probabilities, a dropout, a final
        activation), the batch it takes, its targets (padding, classes one at a time), its value (chance)."""
        for alert in self._loss_alerts(rec, inputs, out):
            if alert is not None:
                return alert
        return None

    def _loss_alerts(self, rec: OpRecord, inputs: tuple, out):
        """Each of _loss_checks' checks in turn, as a generator: a check runs only once the ones before it found
        nothing (they run at every training step: one frame, where a closure per check cost more than most checks)."""
        op, scores, target = rec.event.op, inputs[0].array, inputs[1].array
        made = self._made_by(rec.event.inputs[0], LAST_OF) if self._last else None
        logits = op in LOSSES_OF_LOGITS
        trains = logits and rec.event.requires_grad
        yield self._broadcast_loss(rec) if op in REGRESSION_LOSSES else None
        yield self._probabilities_to(rec, made, target) if made is not None and op in PROBABILITIES_MISSED else None
        yield self._output_mismatch(rec, made, target) if made is not None else None
        yield self._time_as_batch(rec, scores) if self._recurrent is not None and op != BCE_LOGITS else None
        yield self._padding_counted(rec, target) if logits and self._padding[1] is not None else None
        # the training loss's: a validation loss is computed now and then, from a loader rarely shuffled
        yield self._at_chance(rec, scores, out) if trains else None
        yield self._one_class_batches(rec, scores, target) if trains else None
        yield self._several_labels(rec, scores, target) if op == "cross_entropy" and target.dtype.kind == "f" else None
        yield self._classes_last(rec, made) if logits and made is not None and made.event.op == "linear" and \
            len(made.event.output_shape) >= 3 else None
        yield self._softmax_in(rec, inputs[0], made) if logits else None
        yield self._not_log_probabilities(rec, inputs[0]) if op in WANTS_LOG_PROBABILITIES else None
        yield self._class_weights(rec, target, inputs[2].array) if logits and len(inputs) > 2 and \
            inputs[2] is not None and self._class_counts is not False else None

    def _softmax_in(self, rec: OpRecord, x, made: OpRecord | None) -> AlertEvent | None:
        """A softmax over the batch before a loss that wants logits, or probabilities reaching it."""
        softmax = made if made is not None and made.event.op in SOFTMAXES and \
            len(made.event.output_shape) >= 2 else None
        if softmax is None:
            return self._probabilities_in(rec, x, None)
        shape = tuple(softmax.event.input_shapes[0])
        dim = softmax.event.args.get("dim")
        dim = dim % len(shape) if isinstance(dim, int) else 1
        implicit = softmax.event.args.get("implicit_dim") and len(shape) == 3  # named by _implicit_dim
        if dim != 1 and shape[dim] > 1 and not implicit and self._starts(("softmax_dim", ""), True):
            over = "the batch" if dim == 0 else f"size {shape[dim]}"
            fix = "dim=1 (or dim=-1)" if len(shape) == 2 else "dim=1, the classes"
            return make_alert("softmax_dim", f"{where(softmax)} normalises over dim {dim}, {over} (input {shape}), "
                              f"and {rec.event.op}, which reads dim 1 as the classes, takes it, iteration "
                              f"{rec.iteration}: the scores become a distribution over "
                              f"{'the samples' if dim == 0 else 'another dimension'}, not each sample's over the "
                              f"classes. Use {fix} in {softmax.event.op}", softmax, float(dim))
        return self._probabilities_in(rec, x, softmax if len(shape) == 2 else None)

    def _probabilities_to(self, rec: OpRecord, made: OpRecord, target) -> AlertEvent | None:
        """An alert placed at `made` (a sigmoid or softmax) whose output goes to a loss that wants logits
        (binary_cross_entropy_with_logits: a second sigmoid) or to a squared error against one-hot classes."""
        op, source = rec.event.op, made.event.op
        if op == "mse_loss":
            if source != "softmax" or target.ndim != 2 or not bool(((target == 0) | (target == 1)).all()) or \
                    not bool((target.sum(axis=1) == 1).all()):
                return None
            fix = ("a squared error on softmax probabilities against one-hot classes passes back a small gradient "
                   "where a prediction is confidently wrong, so it learns slowly. Use cross_entropy on the logits "
                   "(remove the softmax) with class indices (target.argmax(1))")
        elif source == "sigmoid":
            fix = ("it applies a sigmoid itself, so the outputs pass through two and stay between 0.5 and 0.73: the "
                   "loss stalls. Pass the logits (remove the sigmoid), or use binary_cross_entropy on probabilities")
        else:
            return None
        if not self._starts(("probabilities", made.event.key), True):
            return None
        return make_alert("probabilities", f"{where(rec)} gets the output of {where(made)}, iteration "
                          f"{rec.iteration}: {fix}", made, 1.0)

    def _made_by(self, x: int, ops: tuple) -> OpRecord | None:
        """The record of the last run of one of `ops` (names in LAST_OF), if it made the tensor of id `x` (the
        engine's ids: Python's id() of a freed tensor comes back for a new one)."""
        for op in ops:
            last = self._last.get(op)
            if last is not None and last[0] == x:
                return last[1]
        return None

    def _output_mismatch(self, rec: OpRecord, made: OpRecord, target) -> AlertEvent | None:
        """An alert when a loss takes the model's output straight from a dropout (the loss then floors at the
        noise), or a regression loss from an activation whose range most targets are out of (a final ReLU
        before targets that are often negative)."""
        op = rec.event.op
        if made.event.op == "dropout":
            if not self._starts(("dropout_on_output", made.event.key), True):
                return None
            return make_alert("dropout_on_output", f"{where(rec)} takes the output of {where(made)} straight, "
                              f"iteration {rec.iteration}: dropout on the model's outputs zeroes some predictions "
                              "at random, so the training loss floors at that noise. Put dropout before the last "
                              "layer, not after it", made, 1.0)
        if op not in REGRESSION_LOSSES or made.event.op not in RANGES or target.dtype.kind != "f" or not target.size:
            return None
        lo, hi = RANGES[made.event.op]
        outside = float(((target < lo) | (target > hi)).mean())
        if not self._starts(("output_range", made.event.key), outside >= OUTSIDE_SHARE):
            return None
        span = f"[{lo:g}, {hi:g}]" if hi != math.inf else f">= {lo:g}"
        return make_alert("output_range", f"{where(rec)} compares the output of {where(made)}, always {span}, with "
                          f"targets {outside:.0%} of which are outside that range, iteration {rec.iteration}: those "
                          f"can never be predicted. Drop the final {made.event.op} (a regression's last layer is "
                          "usually linear), or scale the targets into its range", made, outside)

    def _time_as_batch(self, rec: OpRecord, scores) -> AlertEvent | None:
        """An alert when a loss takes as many samples as the last recurrent layer ran steps, not as many as its
        batch: a (batch, time, features) input read as (time, batch, features), batch_first=False."""
        rnn = self._recurrent
        steps, batch = rnn.event.args["steps"], rnn.event.input_shapes[1][0]
        hit = scores.ndim >= 1 and len(scores) == steps != batch > 1
        if not self._starts(("time_as_batch", ""), hit):
            return None
        return make_alert("time_as_batch", f"{where(rnn)} ran {steps} steps over a batch of {batch}, and {where(rec)} "
                          f"takes {steps} samples, iteration {rec.iteration}: the input ({steps}, {batch}, ...) was "
                          "a batch of sequences read as (time, batch, features), so each sample's steps were mixed "
                          "across the batch. Pass batch_first=True to the layer (or permute the input to time first)",
                          rnn, float(steps))

    def _padding_counted(self, rec: OpRecord, target) -> AlertEvent | None:
        """An alert when the loss counts PADDING_SHARE of its targets at the positions where the last Embedding's
        tokens are its padding_idx (targets per token: as many as the tokens; not equal to its ignore_index): the
        model learns to predict padding, and the loss looks better than it is. Judged by the positions, not the
        values: a tagger's class 0 ("O") may share the number of the padding token, its padding labelled -100."""
        pad, emb, tokens = self._padding
        if target.dtype.kind not in "iu" or not target.size or target.size != tokens.size:
            return None  # not a target per token: labels of whole sequences, whose class `pad` is just a class
        xp = array_module(target)
        ignore = rec.event.args.get("ignore_index", -100)
        padded = tokens.reshape(-1) == pad
        flat = target.reshape(-1)
        counted = padded & (flat != ignore)
        share = float(xp.mean(counted))
        if not self._starts(("padding_counted", ""), share >= PADDING_SHARE):
            return None
        # the targets are token ids where they take the padding token's number there and seldom elsewhere (a language
        # model's targets, shifted by one, meet the padding one position early: a third of a short sequence's)
        ids = float(xp.mean(flat[counted] == pad)) > 0.5 and float(xp.mean(flat[~padded] == pad)) < 1 / 3
        fix = (f"Pass ignore_index={pad} to the loss" if ids else
               f"Give the padded positions the loss's ignore_index ({ignore}) as their target")
        return make_alert("padding_counted", f"{share:.0%} of the targets of {where(rec)} sit where the tokens of "
                          f"{where(emb)} are its padding index {pad}, iteration {rec.iteration}, and the loss counts "
                          f"them (ignore_index={ignore}): the model learns to predict padding, and the loss looks "
                          f"better than it is. {fix}", rec, share)

    def _at_chance(self, rec: OpRecord, scores, out) -> AlertEvent | None:
        """An alert when a mean cross entropy over C classes stays within CHANCE_BAND of ln C, a guess with every
        class equally likely, for CHANCE_STEPS iterations in a row: labels shuffled apart from the inputs, logits
        squashed (an InfoNCE temperature of 100), nothing learned. The loss's value is its summary's, or its own at
        capture "structure" (watch()), which makes none."""
        args, summary = rec.event.args, rec.summary
        if out.array.size != 1 or args.get("reduction", "mean") != "mean" or args.get("label_smoothing") or \
                scores.ndim < 2 or scores.shape[1] < 2:
            return None
        value = summary.mean if summary is not None else host_floats([out.array])[0]
        chance = math.log(scores.shape[1])
        near = abs(value - chance) <= CHANCE_BAND * chance
        run = _streak(self._chance, rec.event.key, rec.iteration, near)
        if not self._starts(("at_chance", rec.event.key), run >= CHANCE_STEPS):
            return None
        return make_alert("at_chance", f"{where(rec)} has stayed within {CHANCE_BAND:.0%} of chance, ln "
                          f"{scores.shape[1]} = {chance:.3g} (a guess with every class equally likely), for {run} "
                          f"iterations, iteration {rec.iteration}: the model has learned nothing of the labels. Look "
                          "at whether the labels still match the inputs (shuffled apart?), whether the logits reach "
                          "the loss squashed (a temperature too high, a softmax before it) or all alike, and at the "
                          f"{'weight decay (see the weight-decay alert)' if self._decay.alerted else 'learning rate'}",
                          rec, value)

    def _one_class_batches(self, rec: OpRecord, scores, target) -> AlertEvent | None:
        """An alert when of the last ONE_CLASS_BATCHES batches most held a single class, not all the same one, and
        the rest two (where one class ends and the next begins): data ordered by label and not shuffled. A heavily
        imbalanced set gives batches of its majority class only, and no alert."""
        if target.dtype.kind not in "iu" or target.ndim != 1 or target.size < ONE_CLASS_SIZE or scores.ndim != 2 \
                or scores.shape[1] < 2:
            return None
        seen = self._batch_classes
        lo, hi = (int(v) for v in host_floats([target.min(), target.max()]))
        if lo == hi:
            seen.append(lo)
        elif seen and seen[-1] is None:  # shuffled batches so far: no streak for a two-class batch to continue
            seen.append(None)
        else:  # two classes: the batch where one class ends and the next begins (-1); more: shuffled
            seen.append(-1 if int((target != lo).sum()) == int((target == hi).sum()) else None)
        single = [c for c in seen if c is not None and c >= 0]
        hit = len(seen) == seen.maxlen and None not in seen and len(single) >= ONE_CLASS_SHARE * len(seen) and \
            len(set(single)) > 1
        if not self._starts(("one_class_batches", ""), hit):
            return None
        classes = ", ".join(map(str, dict.fromkeys(single)))
        advice, sliced = shuffle_advice(rec.event.inputs[1], self._flow)
        message = (f"{len(single)} of the last {len(seen)} batches of {rec.event.op} held a single class (classes "
                   f"{classes} in turn), iteration {rec.iteration}: the data is ordered by label and not shuffled, so "
                   "each step pulls the model toward one class and the next ones undo it (the loss swings, or "
                   f"diverges). {advice}")
        return make_alert("one_class_batches", message, sliced or rec, float(len(single)))

    def _reordering_view(self, rec: OpRecord) -> AlertEvent | None:
        """An alert when view/reshape gives a tensor its own sizes in another order ((N, H, W, C) as (N, C, H, W)):
        that relabels the dimensions without moving a value, where permute() was meant."""
        before, after = tuple(rec.event.input_shapes[0]), tuple(rec.event.output_shape)
        if len(before) < 2 or sorted(before) != sorted(after):
            return None
        if [n for n in before if n != 1] == [n for n in after if n != 1]:
            return None  # the same sizes in the same order (a size-1 dimension moved): nothing reordered
        if not self._starts(("reordering_view", rec.event.key), True):
            return None
        order, used = [], set()
        for n in after:  # which dimension of the input each output dimension's size came from
            i = next(i for i, m in enumerate(before) if m == n and i not in used)
            used.add(i)
            order.append(i)
        fix = ".t()" if len(before) == 2 else f".permute({', '.join(map(str, order))})"
        return make_alert("reordering_view", f"{where(rec)} {rec.event.op}s a {before} tensor as {after}, its own "
                          f"sizes in another order, iteration {rec.iteration}: that relabels the dimensions without "
                          f"moving a value (the memory order stays {before}). To reorder the dimensions use {fix}",
                          rec, 0.0)

    def _few_values(self, rec: OpRecord, x) -> AlertEvent | None:
        """An alert when a BatchNorm in training normalises each channel over fewer than FEW_PER_CHANNEL values
        for FEW_STEPS iterations in a row (a batch of 2): its statistics are noise, its gradient nearly cancels."""
        key = rec.event.key
        per_channel = x.size // x.shape[1] if x.ndim >= 2 and x.shape[1] else FEW_PER_CHANNEL
        if len(self._few) >= 256 and key not in self._few:
            return None
        count = _streak(self._few, key, rec.iteration, per_channel < FEW_PER_CHANNEL)
        if count < FEW_STEPS or not self._starts(("few_values", ""), True):
            return None
        self._few_norm = (per_channel, rec.event.module or key)
        return make_alert("few_values", f"{where(rec)} normalises each channel over only {per_channel} values "
                          f"(input {tuple(x.shape)}), iteration {rec.iteration}: its mean and variance are noise "
                          "and the gradient through it nearly cancels, so the layers before it barely learn. Train "
                          "with a larger batch (16 or more), or use GroupNorm or LayerNorm, which do not depend on "
                          "the batch", rec, per_channel)

    def _named(self) -> list:
        """(name, tensor) of each parameter and buffer the debugger knows."""
        return list(self.tensors() if self.tensors is not None else self.params() if self.params is not None else ())

    def _names(self) -> dict[int, str]:
        """id of each parameter and buffer the debugger knows -> its name as the model names it."""
        return {id(t): name for name, t in self._named()}

    def _probabilities_in(self, rec: OpRecord, x, softmax: OpRecord | None = None) -> AlertEvent | None:
        """An alert when a loss that wants logits (or log-probabilities) gets probabilities: a softmax
        before it, so the loss stalls with small gradients. Placed at `softmax` (the op that made x, when it
        was one): the line to change."""
        data = x.array
        if data.ndim < 2 or data.dtype.kind != "f" or data.shape[1] < 2 or not data.size:
            return None
        xp = array_module(data)
        probs = bool(data.min() >= 0) and float(xp.abs(data.sum(axis=1) - 1).max()) < 1e-3
        if not self._starts(("probabilities", rec.event.key), probs):
            return None
        op = rec.event.op
        fix = ("cross_entropy applies log_softmax itself, so a softmax before it squashes the scores: the loss "
               "stalls and the gradients shrink. Pass the raw logits (remove the softmax)" if op == "cross_entropy"
               else "nll_loss wants log-probabilities; use log_softmax instead of softmax, or cross_entropy on "
               "the raw logits")
        source = f" from {where(softmax)}" if softmax is not None and softmax.event.op == "softmax" else ""
        if not source:
            softmax = None
        return make_alert("probabilities", f"{where(rec)} gets probabilities{source} (every row is >= 0 and sums to "
                          f"1), iteration {rec.iteration}: {fix}", softmax or rec, 1.0)

    def backward(self, rec: BackwardRecord, grad_in: tuple, grads: tuple) -> AlertEvent | None:
        """A NaN-origin alert for a backward node, one of the loop's at a pass's start, or a custom Function's
        backward found wrong (engine.debug.custom_backward); or None."""
        self._backward_seen = True
        if rec.event.pass_start and not rec.event.grad_call:
            self._passes += 1
            self._backward_at = (zero_grads_so_far(), rec.forward.source if rec.forward is not None else None)
            if not self._weights_first:
                self._weights_before_first_step()
            if self.settings.training:
                self._pass_began(rec)
            root = self._scalars.get(rec.forward.event.output) if rec.forward is not None else None
            if root is not None:
                self._roots.append((root, rec.iteration))
            fwd = rec.forward
            if fwd is not None and fwd.summary is not None:
                self._root_value = fwd.summary.scalar
            if fwd is not None and fwd.event.op in ("add", "sub") and self._cut:
                alert = self._term_without_gradient(fwd)
                if alert is not None:
                    return alert
            if self._forward_open and self.settings.training:
                alert = self._unused_results()
                if alert is not None:
                    return alert
            alert = self.labels_leaked() if self.settings.training else None  # the iteration's losses are known
            if alert is not None:
                return alert
        alert = self.nonfinite.backward(rec, grad_in, grads) if self.settings.nonfinite else None
        if alert is None and self.custom_backwards is not None:  # else named at the Function's next backward
            alert = self.custom_backwards.alert(rec)
        return alert

    def _weights_before_first_step(self) -> None:
        """Take each layer's weight norm before the first step, which its update is measured against (the step's
        own are after it: an update that throws the weights far off reads "1x its weights" against its result)."""
        self._weights_first = True
        if self.params is None or self.settings.update_ratio_max is None:
            return
        named = [(name, p.array) for name, p in self.params()]
        norms = [math.sqrt(v) for v in host_floats([square_sum(a) for _, a in named])]
        self._weights_after = _per_layer({name: norm for (name, _), norm in zip(named, norms)})

    def step(self, rec) -> list[AlertEvent]:
        """Alerts at an optimizer step (or iteration mark): gradient norms, update sizes, the loop itself."""
        s = self.settings
        if self.params is None:
            return []
        alerts = []
        event = rec.event
        stepped = event.__class__.__name__ == "OptimizerEvent"  # else an iteration mark
        opt = stepping_optimizer() if stepped else None  # asked once a step
        if s.nonfinite and stepped:
            alerts += self.nonfinite.stepped(rec)
        if stepped:
            self._passes_per_step, self._passes = self._passes, 0
            if self._first_loss is None:
                self._converged()  # takes the first loss
            if self._same_units is None:
                alerts += self._identical_units(rec)  # first: a fading gradient at this step may be its doing
            alerts += self._storage_ties(rec, opt)  # first: _copied_tie forgets the weights the layers took
            if self._tie_weights is not None:
                alerts += self._copied_tie(rec)
            if s.training and opt is not None:  # before the update checks: large updates may be the decay's
                self._decay.measure(rec, opt, self._names, self._steps_seen)
        # before the gradient checks: the zeros a zero_grad() left between backward and step are no fading gradient
        count = self._backward_at[0]
        self._dropped = dropped_since(count, {id(p) for group in opt.param_groups for p in group["params"]}) \
            if opt is not None and zero_grads_so_far() > count else None
        if s.grad_norm_max is not None or s.grad_norm_min is not None:
            alerts += self._grad_norms(rec)
        updates = getattr(event, "update_norms", None)
        if self._zero_layers is None and updates:
            alerts += self._zero_init(rec)
        if stepped:
            self._steps_seen += 1
            if updates and self._steps_seen <= TINY_WINDOW:
                alerts += self._tiny_updates(rec, opt)
        if s.update_ratio_max is not None and updates:
            alerts += self._large_updates(rec)
        if s.training and stepped and opt is not None:
            alerts += self._weight_decay(rec, opt)
        if s.training and stepped:
            alerts += self._loop(rec) + self._left_in_eval(rec) + self._learning_rate(rec) + self._clipped_hard(rec)
            alerts += self._losses_kept(rec) + self._overfitting(rec) + self._quiet_step(rec, opt)
        self._dead = ""
        return alerts

    def _grad_norms(self, rec) -> list[AlertEvent]:
        """An exploding or vanishing alert when some parameter passes the limit, naming the worst and the others."""
        s = self.settings
        reported = getattr(rec.event, "grad_norms", None)
        if reported:  # the optimizer measured them as it stepped (named as the model names them)
            named_norms = list(reported.items())
        else:
            named = [(name, p.grad.array) for name, p in self.params() if p.grad is not None]
            # one dot product per parameter, one transfer for all: a float() each would sync a GPU each time
            norms = [math.sqrt(v) for v in host_floats([square_sum(g) for _, g in named])]
            named_norms = [(name, norm) for (name, _), norm in zip(named, norms)]
        alerts = []
        for kind, limit in (("exploding_grad", s.grad_norm_max), ("vanishing_grad", s.grad_norm_min)):
            if limit is None:
                continue
            high = kind == "exploding_grad"
            new = [(name, norm) for name, norm in named_norms if (norm > limit if high else norm < limit)]
            if new and not high and _zero_weights(rec.event):
                new = []  # a weight of zeros passes no gradient back this step; its update lets it through
            if new and not high and self._normalized_away:  # a bias before a BatchNorm learns nothing by design
                away = self._names_away(rec, named_norms)
                new = [(name, norm) for name, norm in new if name not in away]
            if new and not high:
                new = _not_cancelled(new, named_norms, limit)
            if new and not high and len({_module_of(name) for name, _ in named_norms}) == 1:
                new = []  # one layer: nothing for a gradient to fade through; a small one there is a flat loss
            if new and not high and self._stepped:
                new = [(name, norm) for name, norm in new if name in self._stepped]
            if new and not high:
                new = _fading(new, named_norms, limit)
            if new and not high and self._converged():
                new = []  # a loss near zero passes back tiny gradients everywhere: a fit, not a fade
            if new and not high and self._dropped is not None and not any(norm for _, norm in named_norms):
                new = []  # the zeros a zero_grad(set_to_none=False) left after the backward: the step's alert names it
            # one alert while any parameter stays past the limit: vanishing spreads a layer at a time, and an
            # alert for each newcomer was a list of ten for one cause
            if not self._starts((kind, ""), bool(new)):
                continue
            name, norm = (max if high else min)(new, key=lambda item: item[1])
            cause = self._dead or ("blown" if self._aftermath() else "")
            if high and not self._blown:
                self._blown = f"the exploding gradients at iteration {rec.iteration}"
            text = _norms_message(kind, new, named_norms, limit, rec.iteration, cause,
                                  self._explosion_causes(rec) if high else self._fading_cause(cause))
            # at the clipping that clipped nothing, where that is the cause: the line to change
            _, _, file, line = clip_grad.given_nothing if high and clip_grad.given_nothing[0] > self._given_nothing \
                else (0, False, "", 0)
            alerts.append(AlertEvent(next_seq(), kind, text, "", name, "", 0, rec.iteration, file, line,
                                     linecache.getline(file, line).strip() if file else "", norm))
        if len(self._stepped) < 65536:  # bounded: a script that makes new parameters all the time
            self._stepped.update(name for name, _ in named_norms)
        return alerts

    def _explosion_causes(self, rec) -> str:
        """What makes these gradients large, where the records tell ("" if they don't): the targets' scale, a
        summed loss, clipping that clipped nothing, an optimizer whose steps do not grow with the gradient."""
        loss, target = self._loss
        causes = []
        if target is not None and target.size and target.dtype.kind == "f":
            xp = array_module(target)
            big, mean = float(xp.abs(target).max()), float(target.mean())
            if big >= TARGET_SCALE:
                causes.append(f"the targets of {loss.event.op} reach {big:.3g} (mean {mean:.3g}): a network's outputs "
                              "start near 0, so the loss and its gradients start on the targets' scale. Standardise "
                              "the targets (subtract their mean, divide by their std) and scale predictions back")
        if ("unscaled_pixels", "") in self._raised:
            causes.append("the model's inputs are uint8 pixels fed as 0..255 (the 'pixels not scaled' alert): "
                          "divide them by 255")
        if loss is not None and loss.event.args.get("reduction") == "sum":
            causes.append(f"{loss.event.op} sums over the batch (reduction='sum'), so its gradient grows with the "
                          "batch size: use reduction='mean', or divide the learning rate by the batch size")
        if self._accumulated():
            causes.append(self._accumulated()[2:])
        # the script clips, and its clipping clipped nothing: that first, and no advice to clip
        clipping = [unclipped([name for name, _ in self.params()])] \
            if clip_grad.given_nothing[0] > self._given_nothing else []
        if clip_grad.clipped_nothing > self._clipped_nothing:
            clipping.append("clip_grad_norm_ ran when no parameter had a gradient, so it clipped nothing: call it "
                            "between loss.backward() and optimizer.step()")
        optimizer = getattr(rec.event, "optimizer", "")
        if optimizer in ADAPTIVE:
            causes.append(f"{optimizer} divides each step by the gradient's running size, so its updates stay "
                          "bounded and a smaller learning rate will not shrink these gradients"
                          + ("" if causes else "; gradients this large mean a loss on a large scale or a model "
                             "that diverges: clip them (engine.nn.utils.clip_grad_norm_) and look at the loss"))
        elif clipping:  # a step that grows with the gradient: the learning rate matters too
            causes.append(EXPLODING_UNCLIPPED)
        elif causes:
            causes.insert(0, EXPLODING_ADVICE)
        return "; ".join(clipping + causes)

    def _converged(self) -> bool:
        """Whether the last loss is below CONVERGED of the run's first (its summaries, when the tier keeps them)."""
        loss = self._loss[0]
        summary = loss.summary if loss is not None else None
        if summary is None or summary.numel != 1 or not math.isfinite(summary.mean):
            return False
        if self._first_loss is None:
            self._first_loss = abs(summary.mean)
        return abs(summary.mean) < CONVERGED * self._first_loss

    def _accumulated(self) -> str:
        """"; the gradients of 4 backward() calls add up..." when several passes fed the last step, else ""."""
        k = self._passes_per_step
        if k < 2:
            return ""
        return (f"; the gradients of {k} backward() calls add up before each step: if they are micro-batches of one "
                f"batch (gradient accumulation), divide each loss by {k}, or the step is {k}x the one the learning "
                "rate was tuned for")

    def _fading_cause(self, cause: str) -> str:
        """What fades a gradient here: weights that started at zero or alike, a BatchNorm over a few values per
        channel, oversized updates or a weight decay before, else the depth, with advice that fits the model's
        layers."""
        if self._zero_layers:
            return ("the weights started at zero (see the zero-init alert), and a gradient passes back through "
                    "a layer in proportion to its weights: initialise them with engine.nn.init")
        if self._same_units:
            return (f"every unit of {names_text(self._same_units)} holds the same weights (see the identical-units "
                    "alert): units alike get gradients alike, which can cancel where they are summed; initialise "
                    "them with engine.nn.init")
        if self._few_norm:
            per_channel, norm = self._few_norm
            return (f"'{norm}' normalises each channel over only {per_channel} values, and the gradient through a "
                    "BatchNorm over so few cancels: use a larger batch (16 or more), or GroupNorm or LayerNorm")
        if cause == "blown":
            return self._aftermath()
        return depth_advice(self._saturating, sorted(self._normalised), self._residual)

    def _aftermath(self) -> str:
        """What an earlier alert's cause did to the weights, and what to fix first, for the dead-ReLU and vanishing
        alerts that follow from it; "" when nothing blew them up or shrank them."""
        if self._decay.alerted is not None:
            return self._decay.aftermath()
        if self._blown:
            return (f"after {self._blown}, the weights are far off and the layers sit in saturation or silence "
                    "(not a matter of initialisation). Fix the learning rate first")
        return ""

    def _names_away(self, rec, named_norms: list) -> set[str]:
        """The names, as this step's norms give them, of the biases a normalisation takes away: by the stepping
        optimizer's parameters in the order its event names them (another optimizer's are 'AdamW:group0.1'),
        else by the names the debugger knows."""
        opt = stepping_optimizer()
        pairs = by_event_names([name for name, _ in named_norms], updated_parameters(opt)) \
            if opt is not None and getattr(rec.event, "grad_norms", None) else None
        if pairs is not None:
            return {name for name, p in pairs if id(p) in self._normalized_away}
        return {name for tid, name in self._names().items() if tid in self._normalized_away}

    def _tiny_updates(self, rec, opt) -> list[AlertEvent]:
        """Early in a run: an alert when every layer moves by less than TINY_UPDATE of its weights for TINY_STEPS
        steps in a row: a learning rate far too low (a converged model moves little too, but not from the start).
        Where a scheduler (or a decay by hand) took the rate there from a peak 1 / LR_FELL times it or more, the
        learning-rate alert names the decay instead, at once (a larger rate would be decayed away again)."""
        event = rec.event
        updates, weights = _per_layer(event.update_norms), _per_layer(event.weight_norms)
        ratios = {layer: u / max(weights.get(layer, 0.0), WEIGHT_FLOOR) for layer, u in updates.items()}
        top = max(ratios.items(), key=lambda item: item[1], default=("", 0.0))
        self._tiny_steps = self._tiny_steps + 1 if 0 < top[1] < TINY_UPDATE else 0
        peak = self._lrs.get(id(opt), (0.0,) * 4)[3] if opt is not None else 0.0
        self._rate_fell = self._tiny_steps >= TINY_STEPS and max(event.lrs, default=peak) < LR_FELL * peak
        if not self._starts(("tiny_update", ""), self._tiny_steps >= TINY_STEPS and not self._rate_fell):
            return []
        lrs = ", ".join(f"{lr:g}" for lr in event.lrs)
        message = (f"the updates of every layer stay below {TINY_UPDATE:g} of its weights for {self._tiny_steps} steps "
                   f"(the largest {top[1]:.2g}x, in '{top[0]}'), iteration {rec.iteration} (healthy training is near "
                   f"0.001x): the weights barely move, so the loss cannot either. The learning rate ({lrs}) "
                   f"{LR_TOO_LOW}")
        return [AlertEvent(next_seq(), "tiny_update", message, "", top[0], "", 0, rec.iteration, "", 0, "", top[1])]

    def _zero_init(self, rec) -> list[AlertEvent]:
        """At the first step: an alert when most weights (not biases) started at zero. The units of such a layer
        compute the same output and get the same gradient, so they stay alike: a layer of 64 learns like one.
        (One zero layer is a choice: a last layer, a residual branch's end, a LoRA adapter's B.)"""
        updates, weights = rec.event.update_norms, rec.event.weight_norms or {}
        names = [name for name in weights if not name.endswith("bias")]
        zero = [name for name in names if weights[name] == 0 or
                (updates.get(name, 0.0) > 0 and abs(weights[name] - updates[name]) <= 1e-6 * updates[name])]
        self._zero_layers = {layer_of(name) for name in zero}
        if len(names) < 2 or 2 * len(zero) <= len(names):
            self._zero_layers = set()
            return []
        layers = list(dict.fromkeys(layer_of(name) for name in zero))
        message = (f"the weights of {len(zero)} of the {len(names)} layers ({names_text(layers)}) started at zero, "
                   f"iteration {rec.iteration}: the units of such a layer {UNITS_ALIKE}. Initialise them with "
                   f"{REINITIALISE}; zeros suit only a last layer or the end of a residual branch")
        # at the script's init call that zeroed the first of them (nn.init.zeros_), where one did
        site = next((filled_at(p) for name, p in self.params() if name == zero[0]), None) if self.params else None
        return [step_alert(rec, "zero_init", layers[0], message, site)]

    def _large_updates(self, rec) -> list[AlertEvent]:
        """An alert when layers' updates stay as large as their weights, or the loss grows by orders of magnitude
        (Adam's steps, about lr a weight, blow the weights up once and then shrink against them): the learning rate
        is far too high. Not at a step whose gradients clip_grad_norm_ scaled down: the person capped the step's size
        on purpose (the classic word language model: lr 20, clipped at 0.25). Updates that are a weight decay's are
        left to the weight-decay alert."""
        event, limit = rec.event, self.settings.update_ratio_max
        updates, weights = _per_layer(event.update_norms), _per_layer(event.weight_norms)
        calls, norm, max_norm = clip_grad.last_clip
        capped = calls != self._clip_calls and host_floats([norm])[0] > max_norm
        big, top = [], (0.0, "", rec.iteration)
        for layer, u in updates.items():
            if self._zero_layers and layer in self._zero_layers:
                continue  # the zero-init alert said why it moves by all of itself
            w = weights.get(layer, 0.0)
            seen = self._zero_start.get(layer)
            if seen is None and layer not in self._big_runs and abs(w - u) <= 1e-6 * w:
                seen = 0  # its first update is all of its weights: it started at zero
            if seen is not None and seen < ZERO_START_STEPS:
                self._zero_start[layer] = seen + 1
                self._big_runs[layer] = 0
                continue
            # against the weights the step started from (the last step's result, or those taken before the first
            # step; the event's are after the update, which a diverging update dominates: "1x its weights" where it
            # was 317x), and against at least WEIGHT_FLOOR: a one-element scale or PReLU slope of ~0.01 that moves
            # by its size is learning, not a learning rate far too high (the weights a too-high rate blows up are
            # large)
            ratio = u / max(self._weights_after.get(layer, w), WEIGHT_FLOOR)
            top = max(top, (ratio, layer, rec.iteration))
            run = self._big_runs.get(layer, 0) + 1 if ratio > limit and not capped else 0
            self._big_runs[layer] = run
            if self._starts(("large_update", layer), run >= UPDATE_STEPS):
                big.append((layer, ratio))
        self._weights_after.update(weights)
        diverged = self._diverged(top)
        if big and self._decay.now is not None:  # the decay's updates: named by _weight_decay, at this step
            layer, ratio = max(big, key=lambda item: item[1])
            self._decay_large = f", its updates {_times(ratio)}x the weights of layer '{layer}'"
            return []
        if self._diverged_at is not None or (not big and (not diverged or self._big_seen)):
            return []  # a diverging loss once named the learning rate; updates named it before the loss diverged
        lrs = ", ".join(f"{lr:g}" for lr in event.lrs)
        self._blown = self._blown or f"the learning-rate blow-up at iteration {rec.iteration}"
        self._big_seen = True
        if big:
            layer, ratio = max(big, key=lambda item: item[1])
            others = others_text([name for name, _ in big if name != layer])
            found = (f"the updates of layer '{layer}' are {_times(ratio)}x its weights{others} for {UPDATE_STEPS} "
                     f"steps, iteration {rec.iteration} (healthy training is near 0.001x)")
        else:
            self._diverged_at = rec.iteration
            ratio, layer, at = self._top_update
            size = f"updates of {_times(ratio)}x the weights" if ratio > limit else \
                f"updates of at most {_times(ratio)}x the weights"
            where = f" of layer '{layer}' at iteration {at}" if layer else ""
            found = (f"the loss ({self._loss[0].event.op}) has grown from {self._first_loss:.3g} to {diverged:.3g} "
                     f"({diverged / self._first_loss:,.0f}x) and stayed that high for {self._loss_up} steps, after "
                     f"{size}{where} (healthy training is near 0.001x), iteration {rec.iteration}: training diverges, "
                     "and")
        message = f"{found}{':' if big else ''} the learning rate ({lrs}) {LR_TOO_HIGH}{self._accumulated()}"
        opt = stepping_optimizer()  # placed where its lr is written: the line to change
        return [step_alert(rec, "large_update", layer, message, made_at(opt) if opt is not None else None, ratio)]

    def _diverged(self, top: tuple) -> float:
        """The training loss when it has stayed LOSS_BLOWUP times its first or more for LOSS_BLOWUP_STEPS steps in
        a row, once (else 0); `top`: (ratio, layer, iteration) of this step's largest update, kept with the largest
        since the loss was last below that (a step's loss shows the update of the step before)."""
        loss = self._loss[0]
        summary = loss.summary if loss is not None else None
        value = summary.mean if summary is not None and summary.numel == 1 else math.nan
        first = self._first_loss
        up = bool(first) and math.isfinite(value) and value >= LOSS_BLOWUP * first
        self._loss_up = self._loss_up + 1 if up else 0
        self._top_update = max(self._top_update, top) if up else top
        return value if self._starts(("large_update", "loss"), self._loss_up >= LOSS_BLOWUP_STEPS) else 0.0

    def _weight_decay(self, rec, opt) -> list[AlertEvent]:
        """An alert when a weight decay outweighs the gradient (engine.debug.weight_decay) and either this step's
        updates were as large as the weights for UPDATE_STEPS steps, or it has shrunk the weights below SHRUNK of
        their first norm while the loss has not fallen."""
        decay, large = self._decay.now, self._decay_large
        self._decay_large = ""
        loss = self._loss[0]
        summary = loss.summary if loss is not None else None
        kept = summary is None or self._first_loss is None or summary.mean >= LOSS_KEPT * self._first_loss
        hit = decay is not None and (bool(large) or (decay.shrink < SHRUNK and kept))
        if not self._starts(("weight_decay", ""), hit):
            return []
        self._decay.alerted = decay
        stays = f", and the loss stays near its first ({summary.mean:.3g})" if summary is not None and kept and \
            self._first_loss is not None else ""
        # at the line that made the optimizer, where its weight_decay is written (the line to change), else the step's
        return [step_alert(rec, "weight_decay", type(opt).__name__,
                           self._decay.message(type(opt).__name__, rec.iteration, large + stays), made_at(opt))]

    def _loop(self, rec) -> list[AlertEvent]:
        """Gradients piling up across steps, gradients no optimizer uses, trained parameters the loss never reaches,
        frozen parameters in an optimizer."""
        held: set[int] = set()
        live = live_optimizers()
        for opt in live:
            for group in opt.param_groups:
                held.update(map(id, group["params"]))
        piled, unused, frozen, cut, cut_ids, piled_ids = [], [], [], [], set(), set()
        opt = stepping_optimizer()
        # only what this optimizer updates: another one's parameters may take a backward between its steps
        # (a GAN's generator loss runs through the discriminator) without that being a missing zero_grad; when it is
        # the only live one, that is `held`
        mine = held if opt is None or (len(live) == 1 and live[0] is opt) else \
            {id(p) for group in opt.param_groups for p in group["params"]}
        del live  # what it holds may be collected before the checks below ask again
        grads = dict(self._grads)
        stepped = False  # some parameter of the stepping optimizer got a gradient: the loss reaches it
        for name, p in self._with_others(rec, opt):
            g = p.grad
            if g is None:
                if id(p) in held and not p.requires_grad and name not in self._stepped:
                    frozen.append(name)  # (one that trained before was frozen part-way on purpose: a head done)
                elif id(p) in mine and p.requires_grad:
                    cut.append(name)
                    cut_ids.add(p._id)
                continue
            stepped = stepped or id(p) in mine
            if id(p) not in held:
                unused.append(name)  # its gradient piles up too, but that is not the cause
                continue
            if id(p) not in mine:
                continue
            before = self._grads.get(name)
            # the same gradient tensor, added into once (backward's +=) since its optimizer's last step: nothing
            # reset it (zero_grad() drops it, or fills it with zeros: a second change)
            if before is not None and before[0]() is g and g._vc[0] - before[1] == 1:
                piled.append(name)
                piled_ids.add(id(p))
            grads[name] = (weakref.ref(g), g._vc[0])
        self._grads = grads
        # cut: all of mine, then; or every gradient is the zeros a zero_grad(set_to_none=False) after the backward left
        norms = getattr(rec.event, "grad_norms", None)
        zeroed = stepped and self._dropped is not None and bool(norms) and not any(norms.values())
        bare = opt is not None and ((not stepped and bool(cut)) or zeroed) and self._backward_seen
        self._bare_steps = self._bare_steps + 1 if bare else 0
        self._backward_seen = False
        runs = self._gradless
        self._gradless = {name: runs.get(name, 0) + 1 for name in cut} if stepped else runs
        # a tensor of theirs taken detached (h.detach()) is the cause at once; else a branch some batches skip
        # gets a gradient soon
        detached = self._detaches.cutting(cut_ids) if stepped and cut_ids and \
            ("no_gradient", "") not in self._raised else None
        cut = [name for name in cut if self._gradless.get(name, 0) >= (1 if detached else GRADLESS_STEPS)]
        alerts = []
        it = rec.iteration
        if self._starts(("accumulating_grad", ""), bool(piled)):
            alerts.append(_accumulating(rec, piled, last_call(piled_ids)))
        if self._starts(("step_without_grad", ""), self._bare_steps >= BARE_STEPS):
            between = self._misplaced_zero_grad()
            call = call_text(between or self._dropped)
            alerts.append(step_alert(rec, "step_without_grad", type(opt).__name__, (
                f"optimizer.step() found {'only zero gradients on all' if zeroed else 'no gradient on any'} of its "
                f"parameters in {self._bare_steps} steps in a row, while backward() ran between them, iteration {it}: "
                + (f"{call} runs between loss.backward() and the step, and "
                   f"{'fills the gradients with zeros' if zeroed else 'drops the gradients'}"
                   if between else "the step comes before loss.backward() (or a zero_grad() sits between them)") +
                f", so nothing trains. Order each iteration: {call}, forward, loss.backward(), optimizer.step()"),
                between))
        idle = self._idle_optimizers(opt)
        if self._starts(("optimizer_idle", ""), bool(idle)):
            other, names = idle
            alerts.append(AlertEvent(
                next_seq(), "optimizer_idle", f"a {type(other).__name__} holding {names} did not step in "
                f"{IDLE_STEPS} steps of {type(opt).__name__}, while its parameters got gradients, iteration {it}: "
                "they never train. A step() of it is missing (or the other optimizer's step() was called in its "
                "place); if it is for a later stage of training, ignore this", "", names, "", 0, it, "", 0, "",
                IDLE_STEPS))
        loose = self._unregistered(held)
        if self._starts(("unregistered", ""), bool(loose)):
            (_, parent), classes = loose[0], list(dict.fromkeys(type(m).__name__ for m, _ in loose))
            alerts.append(AlertEvent(
                next_seq(), "unregistered", f"{len(loose)} module{'s' if len(loose) > 1 else ''} "
                f"({names_text(classes)}) run inside {parent}.forward but are not its submodules, iteration {it}: "
                f"kept in a plain list or dict, so {parent}.parameters() leaves their parameters out and no optimizer "
                "trains them (nor does .to() move them or state_dict() save them). Hold them in nn.ModuleList or "
                "nn.ModuleDict", "", classes[0], "", 0, it, "", 0, "", len(loose)))
        if self._starts(("not_updated", ""), bool(unused)):
            alerts.append(AlertEvent(
                next_seq(), "not_updated", f"{names_text(unused)} get gradients but no optimizer updates them, "
                f"iteration {it}: they never train. {self._why_not_updated(opt)}", "", unused[0], "", 0, it, "", 0, "",
                len(unused)))
        if self._starts(("no_gradient", ""), bool(cut)):
            alerts.append(detached_alert(cut, detached, it) if detached else
                          no_gradient_alert(cut, self._detaches.after_cut(cut_ids), GRADLESS_STEPS, rec))
        if self._starts(("frozen", ""), bool(frozen)):
            alerts.append(AlertEvent(
                next_seq(), "frozen", f"{names_text(frozen)} are given to the optimizer but have requires_grad=False, "
                f"iteration {it}: they get no gradient and never change. If they should train, call "
                "requires_grad_(True) on them", "", frozen[0], "", 0, it, "", 0, "", len(frozen)))
        return alerts

    def _misplaced_zero_grad(self) -> tuple[str, int] | None:
        """(file, line) of the zero_grad() (the optimizer's, or model.zero_grad()) that dropped the gradients of the
        last backward, where it is the line out of place: written after the loss (forward, backward, zero_grad, step).
        Written before it (zero_grad, step, forward, backward: the same order, round a loop) the step is; None then,
        or when that is not known."""
        dropped, loss = self._dropped, self._backward_at[1]
        if dropped is None or loss is None or loss.file != dropped[0] or dropped[1] <= loss.line:
            return None
        return dropped

    def _left_in_eval(self, rec) -> list[AlertEvent]:
        """An alert when BatchNorm layers that trained in train mode before run in eval mode in a pass that trains:
        model.eval() for a validation pass, never undone (a model fine-tuned with its norms frozen from the start
        never ran them in train mode, and gets none)."""
        # none in train mode in this iteration: an eval pass with grad on beside the training one (a validation
        # without no_grad) is no sign of it
        evaluated = self._eval_norms if not self._norms_train_now else {}
        if evaluated:  # a norm whose scale and shift this step does not train is frozen on purpose (fine-tuning)
            opt = stepping_optimizer()
            trained = {p._id for group in opt.param_groups for p in group["params"] if p.requires_grad and p._id} \
                if opt is not None else set()
            evaluated = {k: r for k, r in evaluated.items() if any(i in trained for i in r.event.inputs)}
        if not self._starts(("eval_mode", ""), bool(self._norms_trained and evaluated)):
            return []
        where = list(evaluated)
        first = evaluated[where[0]]
        message = (f"{names_text(where)} ran in eval mode in iteration {rec.iteration}, which trains (a backward and "
                   "an optimizer step), after earlier iterations trained them in train mode: a model.eval() for "
                   "validation was not undone. Call model.train() before the training steps (Dropout is off too, "
                   "and BatchNorm uses its running statistics and stops updating them)")
        source = first.source
        return [AlertEvent(next_seq(), "eval_mode", message, first.event.op, first.event.key, first.event.module,
                           first.event.seq, rec.iteration, source.file if source else "",
                           source.line if source else 0, source.text if source else "", len(where))]

    def _idle_optimizers(self, opt) -> tuple:
        """(optimizer, its parameters' names) of another live optimizer that has not stepped in IDLE_STEPS steps
        of `opt` while its parameters held gradients (a GAN whose generator step calls the discriminator's), or
        ()."""
        if opt is None:
            return ()
        counts, found, names = self._idle, (), None
        counts.pop(id(opt), None)  # it steps: its count starts again
        self._idle = {}
        stepped = None  # ids of the parameters of `opt`, once another optimizer is live
        for other in live_optimizers():
            if other is opt:
                continue
            if stepped is None:
                stepped = {id(p) for group in opt.param_groups for p in group["params"]}
            # only the gradients of parameters `opt` does not step: a parameter both hold (an earlier stage's
            # optimizer kept beside the fine-tuning one) is trained, whichever steps it
            params = [p for group in other.param_groups for p in group["params"]
                      if p.grad is not None and p.requires_grad and id(p) not in stepped]
            if not params:
                continue
            grads = [p.grad.array for p in params]
            names = {id(p): name for name, p in self.params()} if names is None else names
            mine = [names[id(p)] for p in params if id(p) in names]  # those whose gradients come, by name
            if not mine:  # another model's optimizer (a test's, a script's earlier run): not this model's
                continue
            # the gradients' sizes: the same as at the last step, they are stale (an optimizer done with its
            # model, its last gradients left); new ones count a step it did not take
            sizes = tuple(host_floats([square_sum(g) for g in grads]))
            before = counts.get(id(other), (0, ()))
            n = before[0] + 1 if sizes != before[1] else before[0]
            self._idle[id(other)] = (n, sizes)
            if n >= IDLE_STEPS and not found:
                found = (other, names_text(mine[:4]))
        return found

    @staticmethod
    def _unregistered(held: set[int]) -> list:
        """(module, caller's class) of modules run inside a module they are not registered in whose trainable
        parameters no optimizer holds (another model's module called from here is held by its own optimizer)."""
        loose = []
        for module, parent in unregistered_calls():
            params = [p for p in module.parameters() if p.requires_grad]
            if params and not any(id(p) in held for p in params):
                loose.append((module, parent))
        return loose

    def _why_not_updated(self, opt) -> str:
        """Why a model's parameters are in no optimizer: the optimizer holds none of them (it got the inputs), or
        the layer came after the optimizer."""
        if opt is not None:
            mine = {id(p) for group in opt.param_groups for p in group["params"]}
            if not any(id(p) in mine for _, p in self.params()):
                return ("The optimizer stepping holds none of the model's parameters (it was given other tensors: "
                        "the inputs?), so it trains those instead. Pass it model.parameters()")
        return ("Was the layer replaced after the optimizer was made? Make the optimizer after the model is final "
                "(or add them with optimizer.add_param_group)")

    def _learning_rate(self, rec) -> list[AlertEvent]:
        """Alerts on the stepping optimizer's learning rate over the run. Gone: below LR_GONE of its peak for
        LR_GONE_STEPS steps, or fallen far enough that the updates stayed tiny (_tiny_updates), a scheduler stepped
        every batch where it was meant for every epoch (StepLR(step_size=1) per batch halves it 20 times in 20
        batches; a schedule that ends at zero reaches it at its last steps only). Zero: 0 for SCHEDULED_ZERO_STEPS
        steps after it trained, set by a scheduler (named, at its lambda's line: engine.debug.schedules), else for
        LR_GONE_STEPS steps; gone and zero are one alert for one cause.
        Rising: up at every one of the last LR_RISING_STEPS steps to over LR_RISEN times its first, a hand-written
        warmup that never stops (lr *= 1.05 at every step)."""
        opt, lrs = stepping_optimizer(), rec.event.lrs
        if opt is None or not lrs or (len(self._lrs) >= 64 and id(opt) not in self._lrs):
            return []
        lr = max(lrs)
        first, before, rising, peak, peak_step, low = self._lrs.get(id(opt), (lr, lr, 0, lr, rec.iteration, 0))
        rising = rising + 1 if lr > before else 0
        if lr > peak:
            peak, peak_step = lr, rec.iteration
        low = low + 1 if lr < LR_GONE * peak else 0
        self._lrs[id(opt)] = (first, lr, rising, peak, peak_step, low)
        name, alerts, which = type(opt).__name__, [], str(id(opt))
        zero = self._zero_lr[id(opt)] = self._zero_lr.get(id(opt), 0) + 1 if lr == 0 else 0
        # a rate decayed to nothing and then to 0 is one cause, and one alert
        # (or fell far enough that every layer's updates stayed tiny: said then, not when the rate is long gone)
        fell, self._rate_fell = self._rate_fell, False
        gone = (low >= LR_GONE_STEPS or fell) and lr > 0 and ("lr_zero", which) not in self._raised
        if self._starts(("lr_gone", which), gone):
            stayed = f"stayed below {LR_GONE:g} of it for {low} steps" if low >= LR_GONE_STEPS else \
                f"every layer's updates have stayed below {TINY_UPDATE:g} of its weights for {self._tiny_steps} steps"
            guess, site = decay_guess(opt, self._steps_seen)  # at the scheduler's line to change, where one decayed it
            alerts.append(step_alert(rec, "lr_gone", name, (
                f"the learning rate of {name} has fallen from {peak:g} (iteration {peak_step}) to {lr:.3g} by "
                f"iteration {rec.iteration}, and {stayed}: the weights no longer move, so the loss stays where it is. "
                f"{guess}"), site))
        # a scheduler that took a rate that trained to 0 is named a step later; a rate of 0 from the start (a warmup
        # stepped per epoch) may still rise, and waits LR_GONE_STEPS
        soon = peak > 0 and zero >= SCHEDULED_ZERO_STEPS
        zeroed = zeroed_by(opt, self._steps_seen, zero) if (zero >= LR_GONE_STEPS or soon) and \
            ("lr_zero", which) not in self._raised else None
        hit = zero >= LR_GONE_STEPS or (zeroed is not None and soon)
        if self._starts(("lr_zero", which), hit and ("lr_gone", which) not in self._raised):
            initial = [g.get("initial_lr") for g in opt.param_groups]
            scheduled = any(isinstance(v, int | float) and v > 0 for v in initial)
            why = zeroed.text if zeroed is not None else (
                "a scheduler set it when it was made (a warmup that starts at 0) and its step() is never called? "
                "Call scheduler.step() after each optimizer.step() (or once per epoch, as it is meant)" if scheduled
                else "it was given lr=0 (or set to 0)? Give it a learning rate (1e-3 for Adam, 0.01-0.1 for SGD)")
            since = f"since iteration {rec.iteration - zero + 1} ({zero} steps)" if peak > 0 else f"for {zero} steps"
            alert = step_alert(rec, "lr_zero", name, (
                f"the learning rate of {name} has been 0 {since}, iteration {rec.iteration}: no step moves a weight, "
                f"so nothing trains. {why[0].upper()}{why[1:]}"))
            if zeroed is not None and zeroed.line:  # at the line that made the 0: the lambda, or the scheduler
                alert = replace(alert, file=zeroed.file, line=zeroed.line, code=zeroed.code)
            alerts.append(alert)
        # a scheduler's warmup rises to the rate the optimizer was given (each group's initial_lr) and stops there;
        # looked up only once the rate has risen that far, as it seldom does
        risen = rising >= LR_RISING_STEPS and first > 0 and lr > LR_RISEN * first and not lr <= max(
            (g["initial_lr"] for g in opt.param_groups if isinstance(g.get("initial_lr"), int | float)), default=0.0)
        if self._starts(("lr_rising", which), risen):
            alerts.append(step_alert(rec, "lr_rising", name, (
                f"the learning rate of {name} has grown from {first:g} to {lr:.3g} ({lr / first:,.0f}x) by iteration "
                f"{rec.iteration}, and rose at each of the last {rising} steps: a warmup that never stops (lr "
                "multiplied at every step, never capped)? Cap it at its target, or use a scheduler (LinearLR, "
                "OneCycleLR). A learning-rate range test grows it on purpose")))
        return alerts

    def _starts(self, key: tuple[str, str], hit: bool) -> bool:
        """True when a condition starts; not again until it has cleared (no alert per iteration): stayed away
        for CLEAR_CHECKS checks in a row, so a value hovering at a limit is one alert, not one per crossing."""
        if key in self._raised:
            clear = 0 if hit else self._raised[key] + 1
            if clear < CLEAR_CHECKS:
                self._raised[key] = clear
            else:
                del self._raised[key]
            return False
        if hit:
            self._raised[key] = 0
        return hit


def _streak(table: dict, key: str, iteration: int, hit: bool) -> int:
    """Iterations in a row, up to `iteration`, that `hit` held for `key`; kept in `table` as (its last iteration,
    the count). A key seen twice in one iteration counts once."""
    last, run = table.get(key, (-1, 0))
    if iteration != last:
        run = run + 1 if hit and last == iteration - 1 else int(hit)
        table[key] = (iteration, run)
    return run


def _accumulating(rec, piled: list[str], site: tuple[str, int] | None) -> AlertEvent:
    """The alert on the gradients of `piled` adding up across steps: placed at `site`, the last zero_grad() of theirs
    (the optimizer's, or model.zero_grad()), which then did not run between the last two steps; without one, it says
    none is called."""
    it = rec.iteration
    found = f"the gradients of {names_text(piled)} keep adding up across optimizer steps, iteration {it}: backward " \
        "adds into .grad and "
    if site is None:
        return AlertEvent(next_seq(), "accumulating_grad", found + "nothing resets it: no zero_grad() is called. Call "
                          "optimizer.zero_grad() before loss.backward() in every iteration (or model.zero_grad())", "",
                          piled[0], "", 0, it, "", 0, "", len(piled))
    call = call_text(site)
    alert = step_alert(rec, "accumulating_grad", piled[0], found + (
        f"{call}, which resets it, did not run between the last two steps: is it outside the loop, or under a "
        "condition? Call it before loss.backward() in every iteration"), site)
    return replace(alert, value=len(piled))


def _zero_weights(event) -> bool:
    """Whether a weight (not a bias) was all zeros before this step updated it: its update is all of it."""
    updates, weights = getattr(event, "update_norms", None) or {}, getattr(event, "weight_norms", None) or {}
    return any(u > 0 and abs(weights.get(name, 0.0) - u) <= 1e-6 * u for name, u in updates.items()
               if not name.endswith("bias"))


def _not_cancelled(low: list, named_norms: list, limit: float) -> list:
    """`low` (name, norm) pairs less those whose gradient is zero, or rounding away from it (below CANCELLED
    times the largest of their module's others), where their module's other parameters get gradient: the loss
    does not change with them (a critic's output bias under a WGAN or hinge loss, whose terms cancel it; a bias a
    BatchNorm takes away through a Linear after it, BYOL's projector; an attention score's bias, which the softmax
    over the scores takes away), which no training fixes. A dead layer gets none anywhere, and a fading gradient
    fades in a module's weight as in its bias."""
    fed: dict[str, float] = {}
    for name, norm in named_norms:
        if norm >= limit:
            module = _module_of(name)
            fed[module] = max(fed.get(module, 0.0), norm)
    return [(name, norm) for name, norm in low if norm > CANCELLED * fed.get(_module_of(name), -1.0)]


def _fading(low: list, named_norms: list, limit: float) -> list:
    """`low` (name, norm) pairs less those with no layer after them (in the model's order of parameters, its
    forward's as a rule) whose gradient is above `limit`, when some layer's is: a gradient fades on its way back
    from the loss, so the layers nearer the loss keep theirs. A converged classifier's output bias, its gradient
    the mean of errors near zero, is the smallest of all and alerted while every earlier layer's was larger.
    Gradients below the limit everywhere (a loss scaled down by mistake) stay an alert."""
    position = {name: i for i, (name, _) in enumerate(named_norms)}
    fed = [position[name] for name, norm in named_norms if norm >= limit]
    if not fed:
        return low
    last = named_norms[max(fed)][0]
    return [(name, norm) for name, norm in low
            if position.get(name, -1) < position[last] and _module_of(last) != _module_of(name)]


def _module_of(name: str) -> str:
    """The module a parameter belongs to ('' for the model's own), a parametrized weight's too
    ('fc.parametrizations.weight.original' is fc's)."""
    return name.rpartition(".")[0].partition(".parametrizations.")[0]


def _per_layer(norms: dict) -> dict[str, float]:
    """L2 norms of whole layers from those of their parameters."""
    out: dict[str, float] = {}
    for name, v in norms.items():
        layer = layer_of(name)
        out[layer] = out.get(layer, 0.0) + float(v) ** 2
    return {k: math.sqrt(v) for k, v in out.items()}


def _times(ratio: float) -> str:
    """An update's size against the weights, as the alerts write it: "317", "2", "0.74"."""
    return f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.2g}"


def _norms_message(kind: str, new: list, everything: list, limit: float, iteration: int, cause: str,
                   fading: str = "") -> str:
    """Exploding or vanishing gradients: the worst parameter, the others, and what to try; `cause`: the key
    of a relu found dead just before, or "blown" after gradients exploded, updates outgrew the weights or a weight
    decay shrank them; `fading`: what fades a gradient here, if not the usual saturating activations (exploding:
    what makes them large, if not the learning rate)."""
    high = kind == "exploding_grad"
    name, norm = (max if high else min)(new, key=lambda item: item[1])
    # a plain tensor's name ('Wh', 'group0.1') is no layer's
    layers = list(dict.fromkeys(layer_of(n) for n, _ in new if layer_of(n) != n and not positional(n)))
    where = "" if not layers else f", in layer '{layers[0]}'" if len(layers) == 1 else \
        f", in {len(layers)} layers ({names_text(layers)})"
    against = ""  # a fading gradient beside the largest: before the iteration, where the finding ends
    if not high and norm != 0:
        top_name, top = max(everything, key=lambda item: item[1])
        against = f" (against {top:.3g} at {positional_text(top_name)})"
    text = f"gradient norm of {positional_text(name)} is {norm:.3g}, {'above' if high else 'below'} {limit:g}" \
           f"{against}{where}, iteration {iteration}"
    if high and fading:  # here: what makes them large
        return text + f": {fading}"
    if high:
        return text + f": {EXPLODING_ADVICE}"
    if norm == 0 and cause == "blown":
        return text + f": no gradient reaches it; {fading}"
    if norm == 0 and cause:
        return text + f": no gradient reaches it; the dead ReLU '{cause}' after it passes none"
    if norm == 0:
        return text + ": no gradient reaches it (a dead ReLU, a saturated activation or a detached path)"
    text += ": the gradient fades on its way back through the layers. "
    if fading:
        return text + fading[0].upper() + fading[1:]
    return text + ("Saturating activations (sigmoid, tanh) with small weights do this; try ReLU/GELU, Kaiming or "
                   "Xavier init (engine.nn.init), normalisation layers or residual connections")


_BIASED = frozenset({"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                     "conv_transpose3d"})
# normalisations in training that subtract each channel's mean, and with it any per-channel bias before them
_NORMALIZING = frozenset({"batch_norm", "group_norm"})  # InstanceNorm runs as group_norm of a group per channel


def optimizer_text(opt, group: int) -> str:
    """"SGD, lr=0.1" (the parameter's group's learning rate)."""
    lr = opt.param_groups[group].get("lr")
    return f"{type(opt).__name__}, lr={lr:g}" if isinstance(lr, int | float) else type(opt).__name__
