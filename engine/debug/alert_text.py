"""How an alert is made and worded: its event from a record, where an op is, parameters by name."""

from __future__ import annotations

import linecache
import math

import numpy as np

from engine.debug.records import OpRecord
from engine.events import AlertEvent, next_seq

# every alert kind (engine.events.AlertEvent lists them): (the Alerts panel's short name, what the record
# summary says it found)
KINDS: dict[str, tuple[str, str]] = {
    "nonfinite_forward": ("NaN/Inf (forward)", "non-finite values"),
    "nonfinite_backward": ("NaN/Inf (backward)", "non-finite gradients"),
    "nonfinite_input": ("NaN/Inf (entered)", "non-finite values entering"),
    "nonfinite_step": ("NaN/Inf (optimizer step)", "a parameter made non-finite by a step"),
    "nonfinite_grad": ("NaN/Inf (hook/.grad)", "non-finite gradients set by a hook or .grad"),
    "exploding_grad": ("exploding gradient", "exploding gradients"),
    "vanishing_grad": ("vanishing gradient", "vanishing gradients"),
    "dead_relu": ("dead ReLU", "dead ReLUs"),
    "large_update": ("learning rate too high", "updates too large for the learning rate"),
    "accumulating_grad": ("no zero_grad", "gradients accumulating (no zero_grad)"),
    "not_updated": ("not trained", "parameters not updated"),
    "frozen": ("frozen", "frozen parameters"),
    "no_gradient": ("no gradient", "trained parameters the loss does not reach"),
    "eval_mode": ("eval mode", "training in eval mode"),
    "optimizer_no_gradient": ("optimizer gets no gradient", "an optimizer whose parameters never get a gradient"),
    "backward_twice": ("backward twice", "one loss backpropagated twice into a step"),
    "broadcast_loss": ("loss shapes broadcast", "a loss whose input and targets broadcast to a larger shape"),
    "log_probabilities": ("not log-probabilities", "values that are not log-probabilities given to nll_loss or kl_div"),
    "probabilities": ("probabilities to loss", "probabilities where the loss wants logits"),
    "inplace": ("changed in place", "a tensor backward needs, changed in place"),
    "graph_freed": ("old graph reused", "a graph kept from an earlier iteration"),
    "few_values": ("batch too small", "BatchNorm over too few values"),
    "zero_init": ("zero init", "weights initialised to zero"),
    "softmax_dim": ("softmax over batch", "softmax over the batch"),
    "reordering_view": ("view, not permute", "a view that reorders dimensions"),
    "lr_gone": ("learning rate gone", "a learning rate decayed to nothing"),
    "one_class_batches": ("not shuffled", "batches of one class (not shuffled)"),
    "step_without_grad": ("step before backward", "optimizer steps without gradients"),
    "tiny_update": ("learning rate too low", "a learning rate far too low"),
    "unregistered": ("not a submodule", "layers the model does not hold"),
    "padding_counted": ("padding in loss", "padding counted in the loss"),
    "time_as_batch": ("batch_first?", "a batch read as time steps (batch_first)"),
    "dropout_on_output": ("dropout on outputs", "dropout on the outputs"),
    "output_range": ("output range", "targets outside the final activation's range"),
    "optimizer_idle": ("optimizer idle", "an optimizer that never steps"),
    "lr_rising": ("learning rate rising", "a learning rate that keeps rising"),
    "lr_zero": ("learning rate 0", "a learning rate of 0"),
    "weight_decay": ("weight decay too high", "a weight decay that shrinks the weights to nothing"),
    "class_dim": ("classes on last dim", "class scores read along the wrong dim"),
    "same_units": ("identical units", "layers whose units all hold the same weights"),
    "several_labels": ("multi-label in softmax", "multi-hot targets given to cross_entropy"),
    "clipped_hard": ("clipping too hard", "gradients clipped far below their norm at every step"),
    "overfitting": ("overfitting", "a validation loss rising while the training loss falls"),
    "term_without_gradient": ("loss term cut off", "a loss term that carries no gradient"),
    "padding_mask": ("padding mask inverted", "a key_padding_mask True on the tokens, not the padding"),
    "at_chance": ("loss at chance", "a loss that stays at chance"),
    "history_kept": ("graph kept across steps", "a graph carried from iteration to iteration"),
    "unused_result": ("result unused", "an op result nothing takes"),
    "train_mode_eval": ("eval() missing?", "dropout or BatchNorm in training mode with gradients off"),
    "unscaled_pixels": ("pixels not scaled", "uint8 inputs fed as 0..255"),
    "class_weights": ("class weights reversed", "class weights that favour the common classes"),
    "broken_tying": ("weight tie copied", "an output layer tied to the embedding by a copy"),
    "custom_backward": ("custom backward wrong", "a hand-written backward that disagrees with its forward"),
    "implicit_dim": ("softmax dim not given", "a softmax without dim, over the batch"),
    "label_leak": ("labels in the input", "the loss's targets fed to the model as input"),
    "storage_tie": ("one storage, two Parameters", "two Parameters on one storage, each stepped"),
}

# what the key of an alert placed at an optimizer step (no op) names, where it is no parameter ("fc1.weight")
KEY_NAMES = {**dict.fromkeys(("large_update", "tiny_update", "zero_init", "same_units"), "layer"),
             **dict.fromkeys(("lr_gone", "lr_zero", "lr_rising", "step_without_grad", "weight_decay"), "optimizer"),
             "unregistered": "module", "history_kept": "value", "clipped_hard": "call"}


def kind_name(kind: str) -> str:
    """An alert kind's short name ("exploding gradient"), or the kind in words where it is none of KINDS (an alert
    of a newer version, read from a tape)."""
    return KINDS[kind][0] if kind in KINDS else kind.replace("_", " ")


def make_alert(kind: str, message: str, rec, value: float = math.nan, inputs: tuple = ()) -> AlertEvent:
    fwd = rec if isinstance(rec, OpRecord) else rec.forward
    ev = fwd.event if fwd is not None else None
    src = fwd.source if fwd is not None else None
    return AlertEvent(
        next_seq(), kind, message, ev.op if ev else rec.event.op, ev.key if ev else rec.event.key,
        ev.module if ev else "", ev.seq if ev else 0, rec.iteration,
        src.file if src else "", src.line if src else 0, src.text if src else "", float(value), inputs,
    )


def where(rec) -> str:
    fwd = rec if isinstance(rec, OpRecord) else rec.forward
    if fwd is None:
        return f"'{rec.event.key}'"
    ev, src = fwd.event, fwd.source
    module = f" in module '{ev.module}'" if ev.module else ""
    line = f" at {src.file}:{src.line} ({src.text})" if src else ""
    return f"'{ev.op}' ({ev.key}){module}{line}"


def step_alert(rec, kind: str, name: str, message: str, site: tuple[str, int] | None = None,
               value: float = math.nan) -> AlertEvent:
    """An alert about parameter (or layer) `name` at an optimizer step, placed at `site` (file, line: the line to
    change, where the engine knows it), else at the user's line that called step()."""
    src = rec.source
    file, line, text = (site[0], site[1], linecache.getline(*site).strip()) if site else \
        (src.file, src.line, src.text) if src else ("", 0, "")
    return AlertEvent(next_seq(), kind, message, "", name, "", 0, rec.iteration, file, line, text, value)


# why units that start alike stay alike, and what to do: the zero-init and identical-units alerts
UNITS_ALIKE = ("compute the same output and get the same gradient, so they stay alike and the layer learns like a "
               "single unit")
REINITIALISE = "engine.nn.init (kaiming_uniform_, xavier_uniform_) or keep the layers' default init"


def layer_of(name: str) -> str:
    """The layer a parameter belongs to: its path without the last part ('fc1.weight' -> 'fc1')."""
    return name.rpartition(".")[0] or name


def optimizer_text(opt, group: int) -> str:
    """"SGD, lr=0.1" (the parameter's group's learning rate)."""
    lr = opt.param_groups[group].get("lr")
    return f"{type(opt).__name__}, lr={lr:g}" if isinstance(lr, int | float) else type(opt).__name__


def ordinal(i: int) -> str:
    """The position of input `i` (from 0) in words: '1st', '2nd', '3rd', '4th'."""
    n = i + 1
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def and_names(names) -> str:
    """" (and 'a', 'b')" after a first name (empty for none)."""
    names = list(names)
    return f" (and {names_text(names)})" if names else ""


def names_text(names: list[str], most: int = 4) -> str:
    """Parameters by name, the first few: "'0.weight', '0.bias' and 3 more"."""
    shown = ", ".join(f"'{n}'" for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def others_text(names: list[str], most: int = 3) -> str:
    """", and in 'a', 'b' and 2 more" (empty for none)."""
    if not names:
        return ""
    shown = ", ".join(f"'{n}'" for n in names[:most])
    return f" (and in {shown}" + (f" and {len(names) - most} more)" if len(names) > most else ")")


# what overflows when an op's finite inputs give non-finite values ("their products overflow"), by op
_PRODUCTS = ("mul", "matmul", "mm", "bmm", "mv", "dot", "outer", "linear", "bilinear", "addmm", "baddbmm", "addmv",
             "addcmul", "einsum", "tensordot", "kron", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
             "conv_transpose2d", "conv_transpose3d", "prod", "cumprod")
_SQUARES = ("pow", "square", "norm", "vector_norm", "matrix_norm", "var", "std", "var_mean", "std_mean", "cdist",
            "dist", "layer_norm", "group_norm", "batch_norm", "instance_norm", "rms_norm")
_SUMS = ("add", "sub", "rsub", "sum", "nansum", "mean", "nanmean", "cumsum", "trace", "addcdiv")
OVERFLOWS = {**dict.fromkeys(_PRODUCTS, "their products overflow"), **dict.fromkeys(_SQUARES, "their squares overflow"),
             **dict.fromkeys(_SUMS, "their sum overflows"), "div": "their quotients overflow",
             "mse_loss": "the sum of their squared differences overflows", "reciprocal": "1/x overflows"}
DIVISORS = {"div": 1, "reciprocal": 0}  # the input whose zeros give inf without any overflow
# exp-like ops: the largest argument whose result is finite, from the dtype's largest value
EXP_LIMITS = {"exp": math.log, "expm1": math.log, "exp2": math.log2, "sinh": lambda top: math.log(2 * top),
              "cosh": lambda top: math.log(2 * top)}
# ops with a domain: what they make of the values at its edge or outside it (the NaN-from-finite cases)
DOMAINS = {**dict.fromkeys(("log", "log2", "log10"), "{op} of 0 is -inf, and of a negative number NaN"),
           "log1p": "log1p of -1 is -inf, and below -1 NaN", "sqrt": "sqrt of a negative number is NaN",
           "rsqrt": "rsqrt of 0 is inf, and of a negative number NaN", "reciprocal": "1/0 is inf",
           "div": "a division by 0 gives inf, and 0/0 NaN", "xlogy": "log of 0 is -inf, and of a negative number NaN",
           "pow": "0 to a negative power is inf, and a negative number to a fractional power NaN",
           **dict.fromkeys(("acos", "asin"), "{op} outside [-1, 1] is NaN"),
           "atanh": "atanh of 1 is inf, and outside [-1, 1] NaN",
           **dict.fromkeys(("std", "var"), "{op} with the correction (1 by default) not less than the number of "
                                           "elements reduced divides by N - correction = 0"),
           "ctc_loss": "a target that no alignment fits (longer than its input, or with repeats that leave no "
                       "room for the blanks between them) has an infinite loss by definition"}
CURES = {"ctc_loss": "pass zero_infinity=True to make those losses (and their gradients) zero, or drop the samples",
         **dict.fromkeys(("std", "var"), "pass correction=0 (unbiased=False), or reduce over more than one element "
                                         "(a one-step episode's returns, a batch of one)")}
DIVERGED = ("Values this large usually mean training diverged: lower the learning rate or clip the gradients "
            "(engine.nn.utils.clip_grad_norm_)")
# the learning-rate advice of the alerts, each in one place: engine.debug.edit_blame finds them in a message to say,
# after an edit, that the rate did not change
LR_TOO_HIGH = "is far too high; try one 10 to 100 times smaller"  # after "the learning rate (0.5) "
LR_TOO_LOW = "is far too low; try one 100 to 10,000 times larger"  # after "The learning rate (1e-09) "
STEP_TOO_HIGH = "The learning rate is far too high (or the gradient huge); try one 10 to 100 times smaller"
BLOWN_UP = "steps with a learning rate far too high blow weights up like this (or check its init)"


def finite_inputs_text(op: str, overflowed: bool, top: float, dtype,
                       parameter: tuple[str, float] | None = None) -> str:
    """Why an op whose inputs are finite made non-finite values, after "its inputs are finite": `overflowed` when
    its values outgrew `dtype` (else it met the edge of its domain, log of 0), `top` the largest |input|,
    `parameter` (name, its largest |value|) of a parameter among them too large for products of it to fit `dtype`.
    Empty when there is no reason to give."""
    name = getattr(dtype, "name", str(dtype))
    largest = float(np.finfo(dtype).max) if getattr(dtype, "kind", "") == "f" else math.inf
    if not overflowed:
        domain = DOMAINS.get(op)
        if domain is None:
            return ""
        fix = CURES.get(op, "keep its input in range (clamp it, or add a small epsilon)")
        return f", but {domain.format(op=op)}: {fix}"
    limit = EXP_LIMITS.get(op)
    if limit is not None:
        return (f", but {op} overflows: its input reaches {top:.3g}, and {op} of anything above "
                f"{limit(largest):.3g} is more than {name} holds ({largest:.3g}). Subtract the maximum first (as "
                f"softmax and logsumexp do) or clamp the input{_wider(name)}")
    if parameter is not None:
        param, param_top = parameter
        # each figure under its own name: the largest input may be an activation, larger than the weight
        others = f" and its inputs reach {top:.3g}" if top > param_top else ""
        return (f", but parameter '{param}' holds values up to {param_top:.3g}{others} ({name} tops out at "
                f"{largest:.3g}), so products of it overflow: {BLOWN_UP}")
    what = OVERFLOWS.get(op, "its result overflows")
    return (f", but {what}: its inputs reach {top:.3g}, and {name} tops out at {largest:.3g}. {DIVERGED}; if the "
            f"data itself is this large, normalise it{_wider(name, ' or compute in float64')}")


def _wider(dtype_name: str, text: str = ", or compute in float64") -> str:
    """Advice to compute in float64, for a narrower dtype only."""
    return "" if dtype_name == "float64" else text
