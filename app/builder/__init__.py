"""The model builder, Qt-free: a build document (spec), the palette (catalog), live shape checks, data,
building and training a run, prediction previews, and export as a Python script.

    spec = spec.from_json(text)               # or BuildSpec([...], Data(...), Training(...))
    report = check(spec)                      # per-layer shapes; report.problems names the first misfit
    train = make_training_callable(spec, on_progress=...)   # run on the session's engine thread
    script = export_script(spec)              # a runnable script using engine

The panel (widgets.builder_panel) gets all of this as plain data through `PanelServices`.
"""

from app.builder.build import BuildError, Progress, Run, build, make_training_callable
from app.builder.catalog import palette
from app.builder.data import DataError, load
from app.builder.export import export_script
from app.builder.preview import compute_preview, untraced
from app.builder.services import PanelServices
from app.builder.shapes import ShapeReport, check
from app.builder.spec import BuildSpec, Data, Layer, Problem, SpecError, Training, from_json
from app.builder.templates import starter

__all__ = ["BuildError", "BuildSpec", "Data", "DataError", "Layer", "PanelServices", "Problem", "Progress",
           "Run", "ShapeReport", "SpecError", "Training", "build", "check", "compute_preview", "export_script",
           "from_json", "load", "make_training_callable", "palette", "starter", "untraced"]
