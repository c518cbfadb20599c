"""Live shape inference: the build's layers run on a tiny batch of the chosen dataset, under no_grad.

    report = check(spec)
    report.ok                 # False: report.problems[0] names the first layer whose input does not fit
    report.layers[(2, 0)]     # LayerShape: input and output shape of layer 2.0, or its error
    report.to_dict()          # plain data for the panel ("(N, 64)" strings, per-layer errors)

A layer whose size argument (in_features, in_channels, ...) disagrees with the incoming shape is
reported before it runs, with both shapes; other failures carry the engine's own message. The output
must then fit the loss: one score per class, one column per regression target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import engine
from app.builder import catalog
from app.builder.blocks import make_model, make_module
from app.builder.data import DataError, LoadedData, as_targets, load
from app.builder.spec import BuildSpec, Layer, Problem, format_path, problems

SAMPLES = 3  # the dummy batch: real samples, so embeddings get valid ids


def format_shape(shape: tuple[int, ...] | None, batch: int | None = SAMPLES) -> str:
    """'(N, 64)': the batch dimension shown as N."""
    if shape is None:
        return "?"
    dims = ["N" if i == 0 and d == batch else str(d) for i, d in enumerate(shape)]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


@dataclass(frozen=True)
class LayerShape:
    """What one layer gets and gives on the dummy batch, or why it cannot run."""

    path: tuple[int, ...]
    type: str
    in_shape: tuple[int, ...] | None
    out_shape: tuple[int, ...] | None = None
    error: str = ""
    expected: tuple[int, ...] | None = None  # the input shape the layer's arguments call for
    arg: str = ""

    def to_dict(self) -> dict:
        """Plain data: shapes as '(N, 64)' strings."""
        return {"path": list(self.path), "type": self.type, "in": format_shape(self.in_shape),
                "out": format_shape(self.out_shape) if self.out_shape is not None else "",
                "error": self.error, "expected": format_shape(self.expected) if self.expected else "",
                "arg": self.arg}


@dataclass
class ShapeReport:
    """Per-layer shapes and everything wrong with a build (empty `problems`: it can be built)."""

    layers: dict[tuple[int, ...], LayerShape] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    input_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    parameters: int = 0
    data: LoadedData | None = None

    @property
    def ok(self) -> bool:
        """Whether the build can be built and trained."""
        return not self.problems

    def first_problem(self) -> str:
        """The first problem's one-line message, or ''."""
        return self.problems[0].message if self.problems else ""

    def to_dict(self) -> dict:
        """Plain JSON-able data for the panel."""
        return {"ok": self.ok, "problems": [p.to_dict() for p in self.problems],
                "layers": [s.to_dict() for s in self.layers.values()],
                "input": format_shape(self.input_shape), "output": format_shape(self.output_shape),
                "parameters": self.parameters, "data": self.data.summary() if self.data else ""}


def check(spec: BuildSpec) -> ShapeReport:
    """Check every value, load the data, run the layers on a few samples; all problems, in order."""
    report = ShapeReport(problems=problems(spec))
    bad_layers = {p.path for p in report.problems if p.section == "layers" and p.path}
    try:
        report.data = load(spec.data)
    except DataError as err:
        if not any(p.section == "data" for p in report.problems):
            report.problems.append(Problem("data", str(err), arg="path"))
        return report
    x = engine.tensor(report.data.x[:SAMPLES])
    report.input_shape = tuple(x.shape)
    runner = _Runner(report, bad_layers)
    with engine.no_grad():
        out = runner.run(spec.layers, (), x)
    if out is not None and spec.layers and not bad_layers:
        report.output_shape = tuple(out.shape)
        _check_output(spec, report, out)
        with engine.no_grad():
            report.parameters = sum(p.numel() for p in make_model(spec.layers).parameters())
    return report


class _Runner:
    """Runs layers one by one, recording shapes until the first that fails."""

    def __init__(self, report: ShapeReport, bad_layers: set) -> None:
        self.report, self.bad = report, bad_layers

    def run(self, layers: list[Layer], parent: tuple[int, ...], x, record: bool = True, note: str = ""):
        """The output of `layers` applied to x, or None after recording the first failure."""
        for i, layer in enumerate(layers):
            path = (*parent, i)
            x = self.layer(layer, path, x, record, note)
            if x is None:
                return None
        return x

    def layer(self, layer: Layer, path: tuple[int, ...], x, record: bool, note: str):
        shapes = self.report.layers
        in_shape = tuple(x.shape)
        where = f"layer {format_path(path)} ({layer.type}){note}"
        if any(path == bad[:len(path)] for bad in self.bad):  # its arguments are wrong: already reported
            if record:
                shapes[path] = LayerShape(path, layer.type, in_shape, error="fix the arguments first")
            return None
        if layer.type == "Repeat":
            return self.repeat(layer, path, x, record, note)
        entry = catalog.LAYERS[layer.type]
        expected, arg = _expected_input(entry, layer, in_shape)
        if expected is not None:
            value = layer.args.get(arg)
            message = (f"{where} expects {format_shape(expected)} ({arg}={value!r}) "
                       f"but gets {format_shape(in_shape)}")
            return self.fail(path, layer, in_shape, message, record, expected, arg)
        if entry.block:  # Residual: its children run one by one, so a mismatch is shown where it is
            body = self.run(layer.children, path, x, record, note)
            if body is None:
                return None
            if tuple(body.shape) != in_shape:
                message = (f"{where}: its layers turn {format_shape(in_shape)} into "
                           f"{format_shape(tuple(body.shape))}; a residual block must keep the shape")
                return self.fail(path, layer, in_shape, message, record, in_shape)
            out = x + body
        else:
            try:
                module = make_module(layer)
            except Exception as err:  # a constructor's own check, e.g. embed_dim not divisible by num_heads
                return self.fail(path, layer, in_shape, f"{where}: {_one_line(err)}", record)
            for c, child in enumerate(layer.children):  # constructor arguments: no shapes of their own
                if record:
                    shapes[(*path, c)] = LayerShape((*path, c), child.type, None)
            module.eval()
            try:
                out = module(x)
            except Exception as err:
                return self.fail(path, layer, in_shape, f"{where} cannot take {format_shape(in_shape)}: "
                                 f"{_one_line(err)}", record)
        if record:
            shapes[path] = LayerShape(path, layer.type, in_shape, tuple(out.shape))
        return out

    def repeat(self, layer: Layer, path: tuple[int, ...], x, record: bool, note: str):
        times = catalog.LAYERS["Repeat"].check_args(layer.args)["times"]
        in_shape = tuple(x.shape)
        for k in range(times):
            copy_note = note or (f" in copy {k + 1} of {times}" if k else "")
            x = self.run(layer.children, path, x, record and k == 0, copy_note)
            if x is None:
                return None
        if record:
            self.report.layers[path] = LayerShape(path, layer.type, in_shape, tuple(x.shape))
        return x

    def fail(self, path, layer, in_shape, message, record, expected=None, arg=""):
        # a failure in a later copy of a Repeat is shown at the child (its first copy's row)
        self.report.layers[path] = LayerShape(path, layer.type, in_shape, None, message, expected, arg)
        self.report.problems.append(Problem("layers", message, path, arg))
        return None


def _expected_input(entry: catalog.Entry, layer: Layer, in_shape: tuple[int, ...]):
    """(the input shape the size arguments call for, the argument) when it differs from in_shape."""
    for a in entry.args:
        if not isinstance(a.fill, int) or a.name not in layer.args:
            continue
        value = layer.args[a.name]
        sizes = tuple(value) if isinstance(value, list | tuple) else (value,)
        if a.fill == -1:
            if len(in_shape) <= len(sizes):
                continue  # too few dims: the engine's own error says so
            got = in_shape[len(in_shape) - len(sizes):]
            if got != sizes:
                return in_shape[:len(in_shape) - len(sizes)] + sizes, a.name
        elif len(in_shape) > a.fill and in_shape[a.fill] != sizes[0]:
            return in_shape[:a.fill] + sizes[:1] + in_shape[a.fill + 1:], a.name
    return None, ""


def _one_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _check_output(spec: BuildSpec, report: ShapeReport, out) -> None:
    """The output must fit the loss and the targets; a problem at the last layer (or the loss) if not."""
    loaded = report.data
    try:
        entry = catalog.lookup(catalog.LOSSES, "loss", spec.training.loss)
    except KeyError:
        return  # already a problem
    targets = entry.extra["targets"]
    name, loss = loaded.name, entry.name
    if targets in ("index", "binary") and loaded.task != "classification":
        fits = ", ".join(n for n, e in catalog.LOSSES.items() if e.extra["targets"] == "value")
        report.problems.append(Problem("training", f"{loss} needs class labels, but {name} has values to "
                                       f"regress: choose {fits}", arg="loss"))
        return
    if targets == "value" and loaded.task == "classification":
        fits = ", ".join(n for n, e in catalog.LOSSES.items() if e.extra["targets"] == "index")
        report.problems.append(Problem("training", f"{loss} regresses values, but {name} has class labels: "
                                       f"choose {fits}", arg="loss"))
        return
    if targets == "binary" and loaded.classes != 2:
        report.problems.append(Problem("training", f"{loss} needs two classes, but {name} has "
                                       f"{loaded.classes}: choose CrossEntropyLoss", arg="loss"))
        return
    shape = tuple(out.shape)
    y = as_targets(loaded.y[:SAMPLES], targets)
    if targets == "index":
        want = (*y.shape, loaded.classes)
        what = f"one score per class ({loaded.classes} classes in {name})"
    else:
        want = y.shape
        what = "one 0/1 score per sample" if targets == "binary" else f"one value per target ({name})"
    if shape != want:
        last = (len(spec.layers) - 1,)
        message = (f"layer {format_path(last)} ({spec.layers[-1].type}) gives {format_shape(shape)}, "
                   f"but {loss} needs {format_shape(want)}: {what}")
        report.problems.append(Problem("layers", message, last, "output"))
        previous = report.layers.get(last)
        if previous is not None:
            report.layers[last] = LayerShape(last, previous.type, previous.in_shape, shape, message)
