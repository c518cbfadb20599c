"""The build document: a model as a sequence of layers, its data and its training setup, as JSON.

    {"format": "tapescope-build", "version": 1, "name": "spirals-mlp",
     "layers": [{"type": "Linear", "args": {"in_features": 2, "out_features": 64}},
                {"type": "ReLU"},
                {"type": "Residual", "children": [{"type": "Linear", "args": {...}}, {"type": "Tanh"}]},
                {"type": "Repeat", "args": {"times": 2}, "children": [...]},
                {"type": "Linear", "args": {"in_features": 64, "out_features": 2}}],
     "data": {"name": "spirals", "n": 400, "noise": 0.05, "batch_size": 32, ...},
     "training": {"loss": "CrossEntropyLoss", "optimizer": "Adam", "optimizer_args": {"lr": 0.01},
                  "scheduler": "", "epochs": 20, "seed": 0, ...}}

`from_json` reads and checks the structure (one-line SpecError for a bad document); `problems(spec)`
lists every value that does not fit the catalog, each at its place (layer path, data, training).
Values are JSON literals only: numbers, strings, booleans, null and lists.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from app.builder import catalog

FORMAT = "tapescope-build"
VERSION = 1
NAME_PATTERN = re.compile(r"[\w .+-]{1,60}")  # a build's name goes into the exported script's docstring


class SpecError(ValueError):
    """A build document that cannot be read, with a one-line message saying where and what."""


@dataclass
class Layer:
    """One layer: an engine.nn class name (or Residual / Repeat), its arguments and its child layers."""

    type: str
    args: dict[str, Any] = field(default_factory=dict)
    children: list[Layer] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able form; empty args and children are left out."""
        out: dict[str, Any] = {"type": self.type}
        if self.args:
            out["args"] = dict(self.args)
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        return out


@dataclass
class Data:
    """Where the samples come from and how they are batched.

    name: a built-in dataset (see app.builder.data.DATASETS) or "npz" / "csv" with `path`.
    task: "auto" (integer labels: classification, else regression), "classification" or "regression".
    """

    name: str = "spirals"
    n: int = 400
    noise: float = 0.05
    seed: int = 0
    batch_size: int = 32
    test_fraction: float = 0.2
    seq_len: int = 32
    path: str = ""
    label_column: str | int = -1
    task: str = "auto"


@dataclass
class Training:
    """Loss, optimizer, scheduler (empty: none), their arguments, epochs and the seed."""

    loss: str = "CrossEntropyLoss"
    loss_args: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "Adam"
    optimizer_args: dict[str, Any] = field(default_factory=lambda: {"lr": 0.01})
    scheduler: str = ""
    scheduler_args: dict[str, Any] = field(default_factory=dict)
    epochs: int = 20
    seed: int = 0


@dataclass
class BuildSpec:
    """A whole build: the layer sequence, the data and the training setup."""

    layers: list[Layer] = field(default_factory=list)
    data: Data = field(default_factory=Data)
    training: Training = field(default_factory=Training)
    name: str = "model"

    def to_dict(self) -> dict:
        """The JSON document as a dict."""
        return {"format": FORMAT, "version": VERSION, "name": self.name,
                "layers": [layer.to_dict() for layer in self.layers],
                "data": asdict(self.data), "training": asdict(self.training)}

    def to_json(self) -> str:
        """The JSON document, indented."""
        return json.dumps(self.to_dict(), indent=2)

    def layer_at(self, path: tuple[int, ...]) -> Layer:
        """The layer at an index path such as (2, 0): child 0 of top-level layer 2."""
        items, layer = self.layers, None
        for i in path:
            layer = items[i]
            items = layer.children
        if layer is None:
            raise IndexError("an empty path names no layer")
        return layer


@dataclass(frozen=True)
class Problem:
    """Something wrong with a build, at its place: a layer's path, or the data or training section."""

    section: str  # "layers" | "data" | "training"
    message: str
    path: tuple[int, ...] = ()
    arg: str = ""

    def to_dict(self) -> dict:
        """Plain data for the panel."""
        return {"section": self.section, "message": self.message, "path": list(self.path), "arg": self.arg}


def format_path(path: tuple[int, ...]) -> str:
    """'2.0' for child 0 of layer 2."""
    return ".".join(str(i) for i in path)


# ---- reading ------------------------------------------------------------------------------------
def from_json(text: str, source: str = "build file") -> BuildSpec:
    """Parse a JSON build document; SpecError with a one-line message if it is not one."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno}, column {err.colno}"
        raise SpecError(f"{source}: not valid JSON ({where}: {err.msg})") from None
    return from_dict(doc, source)


def from_dict(doc: Any, source: str = "build file") -> BuildSpec:
    """A BuildSpec from the document's dict form; SpecError if the structure is wrong."""
    if not isinstance(doc, dict):
        raise SpecError(f"{source}: expected a JSON object at the top, got {_json_type(doc)}")
    if doc.get("format", FORMAT) != FORMAT:
        raise SpecError(f"{source}: format is {doc.get('format')!r}, not {FORMAT!r}")
    version = doc.get("version", VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SpecError(f"{source}: version must be a positive integer, got {version!r}")
    if version > VERSION:
        raise SpecError(f"{source}: written by a newer Tapescope (version {version}); "
                        f"this one reads version {VERSION}")
    unknown = set(doc) - {"format", "version", "name", "layers", "data", "training"}
    if unknown:
        raise SpecError(f"{source}: unknown key(s) {', '.join(sorted(map(repr, unknown)))}")
    name = doc.get("name", "model")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise SpecError(f"{source}: name must be 1-60 letters, digits, spaces or . + - _, got {name!r}")
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise SpecError(f"{source}: 'layers' must be a list, got {_json_type(layers)}")
    return BuildSpec([_layer(item, (i,), source) for i, item in enumerate(layers)],
                     _section(Data, doc.get("data", {}), "data", source),
                     _section(Training, doc.get("training", {}), "training", source), name)


def _layer(item: Any, path: tuple[int, ...], source: str) -> Layer:
    where = f"{source}: layer {format_path(path)}"
    if not isinstance(item, dict):
        raise SpecError(f"{where} must be an object with 'type', got {_json_type(item)}")
    unknown = set(item) - {"type", "args", "children"}
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(map(repr, unknown)))}; "
                        "a layer has type, args and children")
    kind = item.get("type")
    if not isinstance(kind, str):
        raise SpecError(f"{where}: 'type' must be a layer name such as 'Linear', got {kind!r}")
    args = item.get("args", {})
    if not isinstance(args, dict):
        raise SpecError(f"{where} ({kind}): 'args' must be an object, got {_json_type(args)}")
    for key, value in args.items():
        if not _is_literal(value) or isinstance(value, dict):
            raise SpecError(f"{where} ({kind}): argument {key!r} must be a number, string, boolean, null or "
                            f"list of those, got {_json_type(value)}")
    children = item.get("children", [])
    if not isinstance(children, list):
        raise SpecError(f"{where} ({kind}): 'children' must be a list, got {_json_type(children)}")
    return Layer(kind, dict(args), [_layer(c, (*path, i), source) for i, c in enumerate(children)])


def _section(cls: type, values: Any, name: str, source: str):
    if not isinstance(values, dict):
        raise SpecError(f"{source}: '{name}' must be an object, got {_json_type(values)}")
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise SpecError(f"{source}: unknown key(s) in '{name}': {', '.join(sorted(map(repr, unknown)))}; "
                        f"it takes {', '.join(sorted(known))}")
    section = cls()
    for key, value in values.items():
        expected = type(getattr(section, key))
        ok = _is_literal(value) and (
            isinstance(value, dict) if expected is dict else
            (isinstance(value, int | float) and not isinstance(value, bool)) if expected is float else
            (isinstance(value, int | str) and not isinstance(value, bool)) if key == "label_column" else
            isinstance(value, expected) and not (expected is int and isinstance(value, bool)))
        if not ok:
            raise SpecError(f"{source}: {name}.{key} must be {_json_name(expected)}, got {value!r}")
        setattr(section, key, float(value) if expected is float else value)
    return section


def _is_literal(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list):
        return all(_is_literal(v) and not isinstance(v, list | dict) for v in value)
    if isinstance(value, dict):  # the *_args sections
        return all(isinstance(k, str) and _is_literal(v) and not isinstance(v, dict)
                   for k, v in value.items())
    return False


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _json_name(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", dict: "an object"}.get(kind, kind.__name__)


# ---- checking values against the catalog --------------------------------------------------------
def problems(spec: BuildSpec) -> list[Problem]:
    """Every argument or setting that does not fit, each at its place (empty: the values are fine)."""
    out: list[Problem] = []
    _check_layers(spec.layers, (), out)
    if not spec.layers:
        out.append(Problem("layers", "the model has no layers: add some from the palette"))
    from app.builder.data import data_problems  # the data section is data.py's business

    out += [Problem("data", message, arg=arg) for arg, message in data_problems(spec.data)]
    t = spec.training
    for kind, table, name, args in (("loss", catalog.LOSSES, t.loss, t.loss_args),
                                    ("optimizer", catalog.OPTIMIZERS, t.optimizer, t.optimizer_args),
                                    ("scheduler", catalog.SCHEDULERS, t.scheduler, t.scheduler_args)):
        if kind == "scheduler" and not name:
            continue
        try:
            catalog.lookup(table, kind, name).check_args(args)
        except KeyError as err:
            out.append(Problem("training", err.args[0], arg=kind))
        except catalog.ArgError as err:
            out.append(Problem("training", str(err), arg=f"{kind}.{err.arg}"))
    if not isinstance(t.epochs, int) or not 1 <= t.epochs <= 100_000:
        out.append(Problem("training", f"epochs must be an integer in [1, 100000], got {t.epochs!r}",
                           arg="epochs"))
    return out


def _check_layers(layers: list[Layer], parent: tuple[int, ...], out: list[Problem]) -> None:
    for i, layer in enumerate(layers):
        path = (*parent, i)
        where = f"layer {format_path(path)}"
        try:
            entry = catalog.lookup(catalog.LAYERS, "layer type", layer.type)
        except KeyError as err:
            out.append(Problem("layers", f"{where}: {err.args[0]}", path))
            continue
        try:
            entry.check_args(layer.args)
        except catalog.ArgError as err:
            out.append(Problem("layers", f"{where}: {err}", path, err.arg))
        if entry.block and not layer.children:
            out.append(Problem("layers", f"{where}: {layer.type} is empty: drop layers into it", path))
        elif entry.slots and not 1 <= len(layer.children) <= len(entry.slots):
            out.append(Problem("layers", f"{where}: {layer.type} takes {' and '.join(entry.slots)} as child "
                               f"layers (1 to {len(entry.slots)}), got {len(layer.children)}", path))
        elif not entry.takes_children and layer.children:
            out.append(Problem("layers", f"{where}: {layer.type} cannot hold child layers", path))
        _check_layers(layer.children, path, out)


def new_layer(kind: str, in_shape: tuple[int, ...] | None = None, facts: dict | None = None) -> Layer:
    """A layer of type `kind` with starting arguments; sizes that must match the input are taken from
    `in_shape` (one sample's shape, batch dim first) and `facts` (the dataset's vocab and classes)."""
    entry = catalog.lookup(catalog.LAYERS, "layer type", kind)
    args = entry.defaults()
    for a in entry.args:
        if a.fill is None or a.hidden:
            continue
        value = None
        if isinstance(a.fill, int) and in_shape is not None and len(in_shape) >= 2 and a.fill < len(in_shape):
            value = in_shape[a.fill]  # never dim 0: that is the batch
        elif isinstance(a.fill, str) and facts:
            value = facts.get(a.fill)
        if value is not None:
            args[a.name] = value
        elif a.required and args.get(a.name) is None:
            args[a.name] = 64 if a.kind in ("int", "size") else a.default
    return Layer(kind, args)
