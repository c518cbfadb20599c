"""The builder's palette: every layer, loss, optimizer and scheduler, with its constructor arguments.

Entries are derived from the classes' signatures (names, defaults, annotations) and their runtime
`settings` (ranges, choices); `HINTS` adds what a signature cannot say (a range, a friendlier
default, the input dimension an argument must match). Nothing is copied per layer by hand.

    entry = LAYERS["Linear"]
    entry.arg("out_features").check("Linear", "64")   # ArgError: Linear: out_features must be an integer >= 1
    palette()                                         # all of it as plain JSON-able data, for the panel
"""

from __future__ import annotations

import fnmatch
import inspect
import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Any

import engine.nn as nn
import engine.nn.layers as layers
import engine.optim as optim
from engine.nn.settings import Setting
from engine.optim import lr_scheduler

REQUIRED = None  # ArgSpec.default of an argument without one (see ArgSpec.required)
KINDS = ("int", "float", "bool", "str", "size", "ints", "floats")


class ArgError(ValueError):
    """An argument value that does not fit its ArgSpec (the message names owner, argument and rule)."""

    def __init__(self, message: str, arg: str = "") -> None:
        super().__init__(message)
        self.arg = arg


@dataclass(frozen=True)
class ArgSpec:
    """One constructor argument: its kind, default, allowed values, and where it may be filled from.

    kind: int, float, bool, str, size (an int or a tuple of ints), ints (a tuple of ints),
    floats (a tuple of `length` floats). `fill`: the input dimension (e.g. -1 or 1) that this argument
    must equal; the builder fills it in from the incoming shape and names it in shape errors.
    """

    name: str
    kind: str
    default: Any = REQUIRED
    required: bool = False
    optional: bool = False  # None is allowed (shown as an empty field)
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None  # the only values allowed
    words: tuple = ()  # strings allowed besides the kind's values (Conv padding 'same')
    length: int | None = None  # floats: how many
    fill: int | str | None = None  # an input dim; the dataset's "vocab"; the run's "epochs" or "steps"
    doc: str = ""
    hidden: bool = False

    def allowed(self) -> str:
        """The allowed values in words: 'an integer >= 1', 'one of 'mean', 'sum''."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                    "size": "an integer or a tuple of integers", "ints": "a list of integers",
                    "floats": f"{self.length or 'some'} numbers"}[self.kind]
            bounds = self._bounds()
            if bounds:
                text += (", each " if self.kind in ("size", "ints", "floats") else " ") + bounds
            if self.words:
                text += " or " + " or ".join(repr(w) for w in self.words)
        return text + (" or empty (None)" if self.optional else "")

    def _bounds(self) -> str:
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            return f"in {'(' if self.low_open else '['}{lo:g}, {hi:g}{')' if self.high_open else ']'}"
        if lo is not None:
            return f"{'>' if self.low_open else '>='} {lo:g}"
        if hi is not None:
            return f"{'<' if self.high_open else '<='} {hi:g}"
        return ""

    def check(self, owner: str, value: Any) -> Any:
        """`value` (a JSON literal) as the Python value the constructor takes; ArgError if it does not fit."""
        if value is None and self.optional:
            return None
        if isinstance(value, str) and value in self.words:
            return value
        ok = _convert(self.kind, value, self.length)
        if ok is _BAD or not self._fits(ok):
            raise ArgError(f"{owner}: {self.name} must be {self.allowed()}, got {value!r}", self.name)
        return ok

    def _fits(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        items = value if isinstance(value, tuple) else (value,)
        for v in items:
            if isinstance(v, str | bool):
                continue
            if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
                return False
            if self.high is not None and (v > self.high or (self.high_open and v == self.high)):
                return False
        return True

    def to_data(self) -> dict:
        """Plain data for the panel's argument editor."""
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        return {"name": self.name, "kind": self.kind, "default": default, "required": self.required,
                "optional": self.optional, "low": self.low, "high": self.high, "choices":
                None if self.choices is None else list(self.choices), "words": list(self.words),
                "allowed": self.allowed(), "doc": self.doc, "fill": self.fill}


_BAD = object()


def _convert(kind: str, value: Any, length: int | None) -> Any:
    """`value` as `kind`, or _BAD (a bool is not a number; a float with a fraction is not an int)."""
    if kind == "bool":
        return value if isinstance(value, bool) else _BAD
    if kind == "str":
        return value if isinstance(value, str) else _BAD
    if kind == "int":
        return _as_int(value)
    if kind == "float":
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        return _BAD
    if kind in ("size", "ints", "floats"):
        if kind == "size" and not isinstance(value, list | tuple):
            return _as_int(value)
        if not isinstance(value, list | tuple) or not value:
            return _BAD
        convert = (lambda v: _convert("float", v, None)) if kind == "floats" else _as_int
        items = tuple(convert(v) for v in value)
        if _BAD in items or (length is not None and len(items) != length):
            return _BAD
        return items
    raise ValueError(f"unknown argument kind {kind!r}; expected one of {', '.join(KINDS)}")


def _as_int(value: Any) -> Any:
    if isinstance(value, bool):
        return _BAD
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return _BAD


# ---- hints: what signatures cannot say ----------------------------------------------------------
# Keys are fnmatch patterns over "Class.argument"; later matches refine earlier ones.
_POSITIVE = dict(low=1)
_NONNEGATIVE = dict(low=0)
_PROBABILITY = dict(kind="float", low=0.0, high=1.0)
HINTS: dict[str, dict] = {
    # input sizes: filled in from the incoming shape
    "*.in_features": dict(_POSITIVE, fill=-1), "*.in1_features": dict(_POSITIVE, fill=-1),
    "*.in2_features": dict(_POSITIVE, fill=-1), "*.input_size": dict(_POSITIVE, fill=-1),
    "*.embed_dim": dict(_POSITIVE, fill=-1), "*.d_model": dict(_POSITIVE, fill=-1),
    "*.in_channels": dict(_POSITIVE, fill=1), "*.num_features": dict(_POSITIVE, fill=1),
    "*.num_channels": dict(_POSITIVE, fill=1), "*.normalized_shape": dict(kind="size", low=1, fill=-1),
    "*.num_embeddings": dict(_POSITIVE, fill="vocab"),
    # sizes a person chooses: a friendly starting value
    "*.out_features": dict(_POSITIVE, default=64), "*.out_channels": dict(_POSITIVE, default=16),
    "*.hidden_size": dict(_POSITIVE, default=64), "*.embedding_dim": dict(_POSITIVE, default=32),
    "*.num_heads": dict(_POSITIVE, default=2), "*.nhead": dict(_POSITIVE, default=2),
    "*.num_groups": dict(_POSITIVE, default=2), "*.num_layers": dict(_POSITIVE, default=1),
    "*.dim_feedforward": dict(_POSITIVE, default=128), "*.kdim": _POSITIVE, "*.vdim": _POSITIVE,
    "*.groups": _POSITIVE, "*.proj_size": _NONNEGATIVE,
    "*.kernel_size": dict(kind="size", low=1, default=3), "*.stride": dict(kind="size", low=1),
    "*.padding": dict(kind="size", low=0), "*.dilation": dict(kind="size", low=1),
    "*.output_padding": dict(kind="size", low=0), "*.output_size": dict(kind="size", low=1, default=4),
    "Conv?d.padding": dict(words=("same", "valid")),
    "LPPool?d.norm_type": dict(kind="float", low=0.0, low_open=True, default=2.0),
    "*Pad?d.padding": dict(kind="size", low=0, default=1), "ConstantPad?d.value": dict(kind="float", default=0.0),
    "*.upscale_factor": dict(_POSITIVE, default=2), "*.downscale_factor": dict(_POSITIVE, default=2),
    "LocalResponseNorm.size": dict(_POSITIVE, default=2),
    "ChannelShuffle.groups": dict(_POSITIVE, default=2),
    "Threshold.threshold": dict(kind="float", default=0.0), "Threshold.value": dict(kind="float", default=0.0),
    "Unflatten.dim": dict(default=1), "Unflatten.unflattened_size": dict(kind="ints", low=1, default=(4, 4)),
    # batches are batch-first everywhere in the builder
    "*.batch_first": dict(default=True),
    "Softmax.dim": dict(kind="int", default=-1), "LogSoftmax.dim": dict(kind="int", default=-1),
    "*.p": _PROBABILITY, "*.dropout": _PROBABILITY, "*.label_smoothing": _PROBABILITY,
    "*eps": dict(low=0.0, low_open=True), "*.momentum": dict(low=0.0),
    "BatchNorm?d.momentum": dict(high=1.0),
    "*.padding_mode": dict(choices=("zeros", "reflect", "replicate", "circular")),
    "*.nonlinearity": dict(choices=("tanh", "relu")),
    "*.reduction": dict(choices=("mean", "sum", "none")),
    "Transformer*.activation": dict(kind="str", default="relu", choices=("relu", "gelu")),
    # optimizers
    "*.lr": dict(low=0.0, low_open=True), "*.weight_decay": dict(low=0.0), "*.dampening": dict(low=0.0),
    "*.betas": dict(kind="floats", length=2, low=0.0, high=1.0, high_open=True),
    "*.alpha": dict(low=0.0), "*.lr_decay": dict(low=0.0), "*.initial_accumulator_value": dict(low=0.0),
    # schedulers
    "*.gamma": dict(low=0.0, low_open=True, default=0.5), "*.step_size": dict(_POSITIVE, default=10),
    "*.milestones": dict(kind="ints", low=1, default=(10, 20)),
    "CosineAnnealingLR.T_max": dict(kind="int", low=1, optional=True, default=None, fill="epochs",
                                    doc="epochs in one half cycle; empty: all epochs"),
    "*.eta_min": dict(low=0.0), "*.min_lr": dict(kind="float", low=0.0),
    "OneCycleLR.max_lr": dict(kind="float", low=0.0, low_open=True, default=0.01),
    "*.pct_start": _PROBABILITY, "*.anneal_strategy": dict(choices=("cos", "linear")),
    "*.base_momentum": dict(kind="float"), "*.max_momentum": dict(kind="float"),
    "*.div_factor": dict(low=0.0, low_open=True), "*.final_div_factor": dict(low=0.0, low_open=True),
    "*.mode": dict(choices=("min", "max")), "*.threshold_mode": dict(choices=("rel", "abs")),
    "*.patience": _NONNEGATIVE, "*.cooldown": _NONNEGATIVE,
    # the builder supplies these itself, or the engine does not support them
    "*.device": dict(hidden=True), "*.dtype": dict(hidden=True), "*.size_average": dict(hidden=True),
    "*.reduce": dict(hidden=True), "*.return_indices": dict(hidden=True), "*.last_epoch": dict(hidden=True),
    # torch's implementation switches (loops, one kernel, CUDA graphs): they change nothing in the engine,
    # and differentiable=True is refused
    "*.foreach": dict(hidden=True), "*.fused": dict(hidden=True), "*.capturable": dict(hidden=True),
    "*.differentiable": dict(hidden=True),
    "Adafactor.eps": dict(hidden=True),  # (None, 1e-3): None picks the dtype's own epsilon, no field can say that
    "*.enable_nested_tensor": dict(hidden=True), "*.mask_check": dict(hidden=True),
    "Embedding*.sparse": dict(hidden=True), "Embedding*.max_norm": dict(hidden=True),
    "Embedding*.norm_type": dict(hidden=True), "Embedding*.scale_grad_by_freq": dict(hidden=True),
    "OneCycleLR.epochs": dict(hidden=True, fill="epochs"),
    "OneCycleLR.steps_per_epoch": dict(hidden=True, fill="steps"),
    "OneCycleLR.total_steps": dict(hidden=True),
}

# Layers whose forward returns (output, state): a sequence keeps the output.
TUPLE_OUTPUT = ("RNN", "LSTM", "GRU", "LSTMCell")
# Not offered: an abstract base, and torch's alias of Linear.
# the decoder side takes two inputs (the target and the encoder's memory): a stack of layers feeds one;
# so does unpooling (the values and the indices of a pooling layer that returned them)
NOT_OFFERED = ("RNNBase", "NonDynamicallyQuantizableLinear", "TransformerDecoderLayer", "TransformerDecoder",
               "Transformer", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
               "UninitializedParameter")  # a parameter class, exported beside the lazy layers
# a base class; a loss head that takes (input, target); a deprecated alias of NLLLoss
NOT_OFFERED += ("RNNCellBase", "AdaptiveLogSoftmaxWithLoss", "NLLLoss2d")
GROUPS = {"activation": "Activations", "linear": "Linear", "conv": "Convolution", "pool": "Pooling",
          "norm": "Normalization", "dropout": "Regularization", "shape": "Shape", "embedding": "Embedding",
          "recurrent": "Recurrent", "attention": "Attention", "transformer": "Attention"}
GROUP_ORDER = ("Blocks", "Linear", "Activations", "Convolution", "Pooling", "Normalization",
               "Regularization", "Shape", "Embedding", "Recurrent", "Attention")


@dataclass(frozen=True)
class Entry:
    """One class on the palette: its constructor arguments and how a sequence calls it."""

    name: str
    cls: type | None
    group: str
    doc: str
    args: tuple[ArgSpec, ...]
    slots: tuple[str, ...] = ()  # constructor arguments that take child layers (TransformerEncoder)
    inputs: int = 1  # how many times a sequence passes its input (Bilinear 2, attention 3)
    tuple_output: bool = False
    block: bool = False  # Residual / Repeat: children form a sub-sequence
    extra: dict = field(default_factory=dict)  # per-kind facts (a loss's targets, a scheduler's step)

    def arg(self, name: str) -> ArgSpec:
        """The ArgSpec named `name` (KeyError naming the choices when there is none)."""
        for a in self.args:
            if a.name == name:
                return a
        raise KeyError(f"{self.name} has no argument {name!r}; it takes {', '.join(self.names())}")

    def names(self) -> list[str]:
        """The editable argument names, in signature order."""
        return [a.name for a in self.args if not a.hidden]

    @property
    def takes_children(self) -> bool:
        """Whether the layer holds child layers (a block, or a layer with module arguments)."""
        return self.block or bool(self.slots)

    def defaults(self) -> dict:
        """Starting argument values: every required argument and every hint that differs from the class."""
        out = {}
        for a in self.args:
            if a.hidden:
                continue
            if a.required or a.default != _signature_default(self.cls, a.name):
                out[a.name] = list(a.default) if isinstance(a.default, tuple) else a.default
        return out

    def check_args(self, args: dict) -> dict:
        """The constructor keyword arguments for `args` (JSON literals); ArgError on the first bad one."""
        if not isinstance(args, dict):
            raise ArgError(f"{self.name}: args must be an object of name: value, got {type(args).__name__}")
        known = {a.name: a for a in self.args if not a.hidden}
        out = {}
        for name, value in args.items():
            if name not in known:
                raise ArgError(f"{self.name}: unknown argument {name!r}; it takes "
                               f"{', '.join(known) or 'no arguments'}", name)
            out[name] = known[name].check(self.name, value)
        for name, a in known.items():
            if name not in out:
                if a.required:
                    raise ArgError(f"{self.name}: {name} is required ({a.allowed()})", name)
                out[name] = a.default
        return out

    def to_data(self) -> dict:
        """Plain data for the panel."""
        return {"type": self.name, "group": self.group, "doc": self.doc,
                "args": [a.to_data() for a in self.args if not a.hidden],
                "children": self.takes_children, "block": self.block, "extra": dict(self.extra)}


def _signature_default(cls: type | None, name: str) -> Any:
    if cls is None:
        return _BAD
    p = inspect.signature(cls).parameters.get(name)
    return _BAD if p is None or p.default is p.empty else p.default


def _annotation_kind(annotation: str) -> tuple[str | None, bool]:
    """(kind, optional) from a string annotation such as 'int | None' or 'tuple[float, float]'."""
    parts = [p.strip() for p in annotation.split("|")]
    optional = "None" in parts
    parts = [p for p in parts if p != "None"]
    simple = {"int": "int", "float": "float", "bool": "bool", "str": "str"}
    if len(parts) == 1 and parts[0] in simple:
        return simple[parts[0]], optional
    if parts and parts[0].startswith("tuple[float"):
        return "floats", optional
    if parts and parts[0].startswith("Iterable[int]"):
        return "ints", optional
    return None, optional


def _hint(owner: str, name: str) -> dict:
    merged: dict = {}
    for pattern, hint in HINTS.items():
        if fnmatch.fnmatchcase(f"{owner}.{name}", pattern):
            merged.update(hint)
    return merged


def _is_module_arg(annotation: str) -> bool:
    return any(word in annotation for word in ("Module", "TransformerEncoderLayer"))


def _setting(cls: type, name: str) -> Setting | None:
    for s in getattr(cls, "settings", ()):
        if s.name == name:
            return s
    return None


def describe(cls: type, skip: tuple[str, ...] = (), name: str | None = None) -> tuple[tuple, tuple]:
    """(ArgSpecs, module slots) of a class's constructor, from its signature, settings and HINTS."""
    owner = name or cls.__name__
    specs, slots = [], []
    for p in inspect.signature(cls).parameters.values():
        if p.name in skip or p.name.startswith("_") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = p.annotation if isinstance(p.annotation, str) else ""
        if _is_module_arg(annotation):
            slots.append(p.name)
            continue
        hint = _hint(owner, p.name)
        if "Tensor" in annotation and "Callable" not in annotation:
            hint = {**hint, "hidden": True}  # tensors (class weights) are not JSON literals
        kind, optional = _annotation_kind(annotation)
        required = p.default is p.empty
        default = REQUIRED if required else p.default
        if kind is None and default is not None:
            kind = {bool: "bool", int: "int", float: "float", str: "str", tuple: "floats"}.get(type(default))
        # None in the signature is a value (stride=None: the kernel size), shown as an empty field
        optional = optional or (not required and default is None)
        spec = ArgSpec(p.name, hint.pop("kind", kind) or "float", default=default, required=required,
                       optional=optional)
        setting = _setting(cls, p.name)
        if setting is not None:  # the class's own runtime rule
            spec = replace(spec, low=setting.low, high=setting.high, low_open=setting.low_open,
                           high_open=setting.high_open, choices=setting.choices, doc=setting.doc,
                           optional=spec.optional or setting.optional)
        if "default" in hint:
            spec = replace(spec, required=False)
        spec = replace(spec, **hint)
        if isinstance(spec.default, list):
            spec = replace(spec, default=tuple(spec.default))
        specs.append(spec)
    return tuple(specs), tuple(slots)


def _first_line(cls: type) -> str:
    return (inspect.getdoc(cls) or cls.__name__).splitlines()[0]


def _forward_inputs(cls: type) -> int:
    params = list(inspect.signature(cls.forward).parameters.values())[1:]
    return sum(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               for p in params)


def _layer_entries() -> dict[str, Entry]:
    from app.builder import blocks  # the builder's own blocks (they import this module's entries lazily)

    out = {
        "Residual": Entry("Residual", blocks.Residual, "Blocks", _first_line(blocks.Residual), (),
                          block=True),
        "Repeat": Entry("Repeat", None, "Blocks", "Its layers repeated `times` times, each copy with its own "
                        "parameters.", (ArgSpec("times", "int", default=2, low=1, high=100,
                                                doc="how many copies"),), block=True),
    }
    for name in layers.__all__:
        cls = getattr(layers, name)
        if name in NOT_OFFERED or name.endswith("Loss") or not issubclass(cls, nn.Module):
            continue
        args, slots = describe(cls)
        group = GROUPS.get(cls.__module__.rsplit(".", 1)[-1], "Other")
        out[name] = Entry(name, cls, group, _first_line(cls), args, slots=slots, inputs=_forward_inputs(cls),
                          tuple_output=name in TUPLE_OUTPUT)
    return out


# A loss's targets: class indices, 0/1 values shaped like the output (with the accuracy threshold on the
# output), or values to regress.
LOSS_TARGETS = {"CrossEntropyLoss": ("index", None), "NLLLoss": ("index", None),
                "BCEWithLogitsLoss": ("binary", 0.0), "BCELoss": ("binary", 0.5),
                "MSELoss": ("value", None), "L1Loss": ("value", None), "SmoothL1Loss": ("value", None),
                "HuberLoss": ("value", None)}
# How often a scheduler steps: once per epoch, once per batch, or per epoch with the test loss.
SCHEDULER_STEP = {"StepLR": "epoch", "MultiStepLR": "epoch", "ExponentialLR": "epoch",
                  "CosineAnnealingLR": "epoch", "OneCycleLR": "batch", "ReduceLROnPlateau": "metric"}


def _entries(module, names, skip: tuple[str, ...], extra) -> dict[str, Entry]:
    out = {}
    for name in names:
        cls = getattr(module, name)
        args, _ = describe(cls, skip)
        out[name] = Entry(name, cls, module.__name__.rsplit(".", 1)[-1], _first_line(cls), args,
                          extra=extra(name))
    return out


LAYERS: dict[str, Entry] = _layer_entries()
LOSSES: dict[str, Entry] = _entries(
    layers, [n for n in layers.__all__ if n in LOSS_TARGETS], (),
    lambda n: {"targets": LOSS_TARGETS[n][0], "threshold": LOSS_TARGETS[n][1]})
# the optimizer classes only (engine.optim also exports modules); SparseAdam takes sparse gradients, which
# the engine never makes
OPTIMIZERS: dict[str, Entry] = _entries(
    optim, [n for n in optim.__all__ if isinstance(cls := getattr(optim, n), type) and issubclass(cls, optim.Optimizer)
            and cls not in (optim.Optimizer, optim.SparseAdam)], ("params",), lambda n: {})
SCHEDULERS: dict[str, Entry] = _entries(lr_scheduler, list(SCHEDULER_STEP), ("optimizer",),
                                        lambda n: {"step": SCHEDULER_STEP[n]})


def lookup(table: dict[str, Entry], kind: str, name: str) -> Entry:
    """table[name], or a KeyError that names the closest choice."""
    try:
        return table[name]
    except (KeyError, TypeError):
        import difflib

        close = difflib.get_close_matches(str(name), table, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; choose one of {', '.join(table)}"
        raise KeyError(f"unknown {kind} {name!r}{hint}") from None


def palette() -> dict:
    """Everything the panel offers, as plain JSON-able data (no engine objects)."""
    ordered = sorted(LAYERS.values(), key=lambda e: (GROUP_ORDER.index(e.group) if e.group in GROUP_ORDER
                                                     else len(GROUP_ORDER), e.name))
    return {"layers": [e.to_data() for e in ordered],
            "losses": [e.to_data() for e in LOSSES.values()],
            "optimizers": [e.to_data() for e in OPTIMIZERS.values()],
            "schedulers": [e.to_data() for e in SCHEDULERS.values()]}
