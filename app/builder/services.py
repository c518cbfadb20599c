"""What the builder panel asks of the app, in plain data: dicts of the JSON document, strings, lists.

widgets.builder_panel may not import `app` (DESIGN.md), so the window hands it a PanelServices; the
panel calls these methods and never sees an engine object.
"""

from __future__ import annotations

from app.builder import catalog, spec, templates
from app.builder.data import DATASETS, TASKS
from app.builder.export import export_script
from app.builder.shapes import ShapeReport, check


class PanelServices:
    """The builder's Qt-free side, as plain-data calls for the panel."""

    def palette(self) -> dict:
        """Layers, losses, optimizers, schedulers (see catalog.palette) plus the datasets and tasks."""
        out = catalog.palette()
        out["datasets"] = [{"name": s.name, "label": s.label, "kind": s.kind, "n": s.n, "noise": s.noise,
                            "doc": s.doc} for s in DATASETS.values()]
        out["tasks"] = list(TASKS)
        return out

    def default(self) -> dict:
        """The document a new panel starts with: the spirals starter."""
        return templates.starter("spirals").to_dict()

    def starter(self, name: str) -> dict:
        """A working build for a built-in dataset (ValueError for files)."""
        return templates.starter(name).to_dict()

    def check(self, doc: dict) -> dict:
        """Per-layer shapes and problems (ShapeReport.to_dict); a bad document is one problem."""
        try:
            build = spec.from_dict(doc, "build")
        except spec.SpecError as err:
            return {"ok": False, "problems": [spec.Problem("layers", str(err)).to_dict()], "layers": [],
                    "input": "?", "output": "?", "parameters": 0, "data": ""}
        return check(build).to_dict()

    def new_layer(self, doc: dict, kind: str, path: list[int]) -> dict:
        """A new layer of `kind` for position `path`, sized to the shape that arrives there."""
        build = spec.from_dict(doc, "build")
        report = check(build)
        facts = report.data.facts if report.data is not None else None
        return spec.new_layer(kind, incoming_shape(report, tuple(path)), facts).to_dict()

    def load(self, text: str, source: str = "build file") -> dict:
        """A document from JSON text; SpecError (a ValueError) with a one-line message if it is not one."""
        return spec.from_json(text, source).to_dict()

    def dump(self, doc: dict) -> str:
        """The document as indented JSON text."""
        return spec.from_dict(doc, "build").to_json()

    def export(self, doc: dict) -> str:
        """A runnable Python script for the document (ValueError if it has bad values)."""
        return export_script(spec.from_dict(doc, "build"))


def incoming_shape(report: ShapeReport, path: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape that reaches a layer inserted at `path`: the previous sibling's output, the enclosing
    block's input, or the data's."""
    if path and path[-1] > 0:
        before = report.layers.get((*path[:-1], path[-1] - 1))
        return before.out_shape if before is not None else None
    if len(path) > 1:
        parent = report.layers.get(path[:-1])
        return parent.in_shape if parent is not None else None
    return report.input_shape
