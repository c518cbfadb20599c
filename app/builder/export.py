"""A build as a clean, runnable Python script that uses `engine`: the same model, data and training loop.

    text = export_script(spec)           # python exported.py trains as the app's Build does

Nothing a person typed is executed or pasted as code: every argument is a value the catalog has
checked, written with repr(); layer, loss and optimizer names come from the catalog itself; the
helpers the script needs (blocks, file readers, the training loop) are the app's own functions,
copied with inspect.getsource so the two cannot drift apart.
"""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

from app.builder import blocks, catalog, data, loop
from app.builder.build import as_spec, scheduler_kwargs
from app.builder.data import DATASETS
from app.builder.spec import BuildSpec, Layer, problems

INDENT = "    "


class Code(str):
    """A fixed expression of this module (not user text) that repr() writes as itself."""

    def __repr__(self) -> str:
        return str(self)


def export_script(spec: BuildSpec | str | dict) -> str:
    """The Python source of a script that reproduces `spec`; ValueError if the spec has bad values."""
    spec = as_spec(spec)
    bad = problems(spec)
    if bad:
        raise ValueError(f"cannot export: {bad[0].message}")
    used = _used_types(spec.layers)
    helpers = [blocks.Residual] * ("Residual" in used) + [blocks.OutputOf] * _needs_output_of(used)
    source = DATASETS[spec.data.name]
    readers = {"npz": [data.read_npz], "csv": [data.read_csv], "text": [data.char_windows]}
    helpers += [*readers.get(source.name, []), data.as_targets, data.split]
    helpers += [loop.compute_loss, loop.accuracy, loop.evaluate, loop.print_progress, loop.fit]

    imports = ["from __future__ import annotations", ""]
    if source.name == "csv":
        imports.append("import csv")
    if source.name in ("csv", "npz"):
        imports.append("from pathlib import Path")
    imports += ["", "import numpy as np", "", "import engine", "import engine.nn as nn"]
    names = sorted({"DataLoader", "TensorDataset"} | ({source.function} if source.function else set())
                   | ({"char_corpus"} if source.name == "text" else set()))
    imports.append(f"from engine.data import {', '.join(names)}")

    parts = [_docstring(spec) + "\n\n" + "\n".join(imports).replace("\n\n\n", "\n\n")]
    parts += [inspect.getsource(h).rstrip() for h in helpers]
    parts += [_load_data(spec), _build_model(spec), _main(spec), 'if __name__ == "__main__":\n    main()']
    return "\n\n\n".join(parts) + "\n"


def _docstring(spec: BuildSpec) -> str:
    d, t = spec.data, spec.training
    source = DATASETS[d.name]
    what = f"{source.label}, {d.n} samples, noise {d.noise:g}" if source.make else source.label
    if source.kind == "file":
        what = f"{Path(d.path).name} ({d.name})"
    setup = f"{t.loss}, {t.optimizer}{' with ' + t.scheduler if t.scheduler else ''}, {t.epochs} epochs"
    lines = [f"{spec.name}: a model made with Tapescope's builder.", "",
             f"    python {spec.name.replace(' ', '_')}.py", "",
             f"Data: {what}; batches of {d.batch_size}, {d.test_fraction:.0%} held out.",
             f"Training: {setup}."]
    body = "\n".join(textwrap.fill(line, 100) if line.strip() else line for line in lines)
    return '"""' + body.replace("\\", "\\\\").replace('"', '\\"') + '\n"""'


def _used_types(layers: list[Layer]) -> set[str]:
    out = set()
    for layer in layers:
        out.add(layer.type)
        out |= _used_types(layer.children)
    return out


def _needs_output_of(used: set[str]) -> bool:
    return any(catalog.LAYERS[t].inputs != 1 or catalog.LAYERS[t].tuple_output for t in used)


# ---- calls ---------------------------------------------------------------------------------------
def _call(function: str, entry: catalog.Entry, kwargs: dict, leading: tuple[str, ...] = (),
          depth: int = 1) -> str:
    """'nn.Linear(2, 64, bias=False)': `leading` code for the first parameters, then required arguments
    by position and the others by name where they differ from the constructor's default."""
    parts = list(leading)
    positional = True
    params = list(inspect.signature(entry.cls).parameters.values())[len(leading):]
    for p in params:
        if p.name not in kwargs:
            positional = False  # a skipped slot: what follows must be named
            continue
        value = kwargs[p.name]
        if p.default is not p.empty and _same(value, p.default):
            positional = False
            continue
        if positional and p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD:
            parts.append(repr(value))
        else:
            positional = False
            parts.append(f"{p.name}={value!r}")
    return _wrapped(function, parts, depth)


def _wrapped(function: str, parts: list[str], depth: int) -> str:
    """function(a, b) on one line when it fits, else one argument per line."""
    line = f"{function}({', '.join(parts)})"
    if len(line) + len(INDENT) * depth <= 100 and "\n" not in line:
        return line
    pad = INDENT * (depth + 1)
    return f"{function}(\n" + "".join(f"{pad}{p},\n" for p in parts) + f"{INDENT * depth})"


def _same(value, default) -> bool:
    return type(value) is type(default) and value == default


def _module_code(layer: Layer, depth: int) -> str:
    """Python for one layer (children indented one level deeper), a trailing comma left to the caller."""
    entry = catalog.LAYERS[layer.type]
    args = entry.check_args(layer.args)
    pad = INDENT * depth
    if layer.type == "Repeat":
        inner = _sequence("nn.Sequential", layer.children, depth + 1)
        return f"nn.Sequential(*[\n{pad}{INDENT}{inner}\n{pad}{INDENT}for _ in range({args['times']})\n{pad}])"
    if entry.block:
        return _sequence(layer.type, layer.children, depth)
    kwargs = dict(args)
    kwargs.update({slot: Code(_module_code(child, depth + 1))
                   for slot, child in zip(entry.slots, layer.children)})
    code = _call(f"nn.{layer.type}", entry, kwargs, depth=depth)
    if entry.inputs != 1:
        return f"OutputOf({code}, inputs={entry.inputs})"
    return f"OutputOf({code})" if entry.tuple_output else code


def _sequence(function: str, layers: list[Layer], depth: int) -> str:
    pad = INDENT * (depth + 1)
    lines = [f"{pad}{_module_code(layer, depth + 1)}," for layer in layers]
    return f"{function}(\n" + "\n".join(lines) + f"\n{INDENT * depth})"


# ---- the script's functions ----------------------------------------------------------------------
def _load_data(spec: BuildSpec) -> str:
    d = spec.data
    source = DATASETS[d.name]
    targets = catalog.LOSSES[spec.training.loss].extra["targets"]
    if source.make is not None:
        lines = [f"x, y = {source.function}({d.n!r}, noise={d.noise!r}, seed={d.seed!r})",
                 "x, y = x.numpy(), y.numpy()"]
    elif source.name == "text":
        lines = ["text, vocab, encode, decode = char_corpus()",
                 f"x, y = char_windows(encode(text).numpy(), {d.n!r}, {d.seq_len!r}, seed={d.seed!r})"]
    elif source.name == "npz":
        lines = [f"x, y = read_npz({d.path!r})"]
    else:
        lines = [f"x, y, class_names = read_csv({d.path!r}, label_column={d.label_column!r})"]
    lines += [f"y = as_targets(y, {targets!r})", f"return split(x, y, test_fraction={d.test_fraction!r})"]
    body = "\n".join(INDENT + line for line in lines)
    return ('def load_data():\n    """(x_train, y_train, x_test, y_test): the samples, the last '
            f'{d.test_fraction:.0%} held out."""\n{body}')


def _build_model(spec: BuildSpec) -> str:
    model = _sequence("nn.Sequential", spec.layers, 1)
    return f'def build_model() -> nn.Module:\n    """The layer sequence."""\n    return {model}'


def _main(spec: BuildSpec) -> str:
    d, t = spec.data, spec.training
    loss = catalog.LOSSES[t.loss]
    opt = catalog.OPTIMIZERS[t.optimizer]
    lines = [f"engine.manual_seed({t.seed!r})",
             "x_train, y_train, x_test, y_test = load_data()",
             "model = build_model()",
             f"loader = DataLoader(TensorDataset(x_train, y_train), batch_size={d.batch_size!r}, shuffle=True)",
             f"loss_fn = {_call('nn.' + loss.name, loss, loss.check_args(t.loss_args))}",
             "optimizer = " + _call(f"engine.optim.{opt.name}", opt, opt.check_args(t.optimizer_args),
                                    ("model.parameters()",))]
    fit = ["model", "loader", "loss_fn", "optimizer", "epochs"]
    if t.scheduler:
        entry = catalog.SCHEDULERS[t.scheduler]
        kwargs = scheduler_kwargs(entry, t.scheduler_args, Code("epochs"), Code("len(loader)"))
        for a in entry.args:  # what the run decides is written out, even where it equals a default
            if a.fill in ("epochs", "steps"):
                kwargs[a.name] = Code("epochs" if a.fill == "epochs" else "len(loader)")
        lines.append("scheduler = " + _call(f"engine.optim.lr_scheduler.{entry.name}", entry, kwargs,
                                            ("optimizer",)))
        fit += ["scheduler=scheduler", f"step={entry.extra['step']!r}"]
    fit.append("test=(x_test, y_test)")
    if loss.extra["threshold"] is not None:
        fit.append(f"threshold={loss.extra['threshold']!r}")
    lines.append("return " + _wrapped("fit", fit, 1))
    body = "\n".join(INDENT + line for line in lines)
    return (f'def main(epochs: int = {t.epochs!r}) -> list[dict]:\n    """Train the model; returns each '
            f'epoch\'s metrics."""\n{body}')
