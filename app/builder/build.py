"""From a build document to a training run: model, data loaders, loss, optimizer, scheduler.

    run = build(spec)                          # BuildError naming the layer if the shapes do not fit
    history = fit(run.model, run.loader, ...)  # or, for the session's engine thread:
    train = make_training_callable(spec, on_progress=queue.append, preview_every=20)
    train()                                    # trains; one optimizer.step() per batch marks iterations

The order of work (seed, data, model, loader, loss, optimizer, scheduler) is the exported script's
order too, so the app and `python exported.py` train the same model the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import engine
import engine.nn as nn
from app.builder import catalog
from app.builder.blocks import make_model
from app.builder.data import LoadedData, as_targets, split
from app.builder.loop import fit, print_progress
from app.builder.preview import compute_preview, untraced
from app.builder.shapes import check
from app.builder.spec import BuildSpec, from_json, problems
from engine.data import DataLoader, TensorDataset


class BuildError(ValueError):
    """A build that cannot run; the one-line message names the layer (or setting) and the shapes."""


@dataclass
class Run:
    """Everything one training run needs, built from a spec."""

    spec: BuildSpec
    data: LoadedData
    model: nn.Module
    loader: DataLoader
    test: tuple[engine.Tensor, engine.Tensor]
    loss_fn: nn.Module
    optimizer: engine.optim.Optimizer
    scheduler: object | None
    step: str  # when the scheduler steps: "epoch", "batch" or "metric"
    targets: str  # what the loss compares with: "index", "binary" or "value"
    threshold: float | None  # the output's 0/1 decision for binary targets

    def fit(self, report: Callable | None = print_progress, on_step: Callable | None = None) -> list[dict]:
        """Train for the spec's epochs (app.builder.loop.fit); returns each epoch's metrics."""
        return fit(self.model, self.loader, self.loss_fn, self.optimizer, self.spec.training.epochs,
                   scheduler=self.scheduler, step=self.step, test=self.test, threshold=self.threshold,
                   report=report, on_step=on_step)

    def preview(self) -> dict | None:
        """The current prediction preview (app.builder.preview), untraced."""
        return compute_preview(self.model, self.data, self.targets, self.threshold)


def as_spec(spec: BuildSpec | str | dict) -> BuildSpec:
    """A BuildSpec from itself, its JSON text or its dict form."""
    if isinstance(spec, BuildSpec):
        return spec
    if isinstance(spec, str):
        return from_json(spec)
    from app.builder.spec import from_dict

    return from_dict(spec)


def build(spec: BuildSpec | str | dict) -> Run:
    """Check the build (values and shapes), then make its data, model, loss, optimizer and scheduler."""
    spec = as_spec(spec)
    with untraced():  # the check's dummy batch is not part of the person's run
        report = check(spec)
    if not report.ok:
        raise BuildError(f"cannot build: {report.first_problem()}")
    t = spec.training
    loss_entry = catalog.LOSSES[t.loss]
    targets, threshold = loss_entry.extra["targets"], loss_entry.extra["threshold"]
    engine.manual_seed(t.seed)
    loaded = report.data
    x_train, y_train, x_test, y_test = split(loaded.x, as_targets(loaded.y, targets), spec.data.test_fraction)
    model = make_model(spec.layers)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=spec.data.batch_size, shuffle=True)
    loss_fn = loss_entry.cls(**loss_entry.check_args(t.loss_args))
    opt_entry = catalog.OPTIMIZERS[t.optimizer]
    optimizer = opt_entry.cls(model.parameters(), **opt_entry.check_args(t.optimizer_args))
    scheduler, step = None, "epoch"
    if t.scheduler:
        entry = catalog.SCHEDULERS[t.scheduler]
        scheduler = entry.cls(optimizer, **scheduler_kwargs(entry, t.scheduler_args, t.epochs, len(loader)))
        step = entry.extra["step"]
    return Run(spec, loaded, model, loader, (x_test, y_test), loss_fn, optimizer, scheduler, step, targets,
               threshold)


def scheduler_kwargs(entry: catalog.Entry, args: dict, epochs, steps_per_epoch) -> dict:
    """A scheduler's arguments, with those the run decides (epochs, steps per epoch) filled in."""
    kwargs = entry.check_args(args)
    run = {"epochs": epochs, "steps": steps_per_epoch}
    for a in entry.args:
        if a.fill in run and kwargs.get(a.name) is None:
            kwargs[a.name] = run[a.fill]
    return kwargs


@dataclass(frozen=True)
class Progress:
    """What a training run reports to the app: the epoch's metrics (None between epochs) and a preview."""

    epoch: int
    iteration: int
    metrics: dict | None
    preview: dict | None


def make_training_callable(spec: BuildSpec | str | dict, *, on_progress: Callable[[Progress], None] | None = None,
                           preview_every: int = 0, verbose: bool = True) -> Callable[[], list[dict]]:
    """A plain function that builds and trains `spec` when called, for the session's engine thread.

    The values are checked now (BuildError); shapes are checked when it runs. It calls
    optimizer.step() once per batch, so the debugger marks iterations. `on_progress(Progress)` gets
    each epoch's metrics with a preview, and a preview every `preview_every` steps (0: epochs only);
    previews are computed untraced, so they add nothing to the debugger's graph.
    """
    spec = as_spec(spec)
    bad = problems(spec)
    if bad:
        raise BuildError(f"cannot build: {bad[0].message}")

    def train_build() -> list[dict]:
        run = build(spec)
        steps = [0]

        def on_step(epoch: int, batch: int) -> None:
            steps[0] += 1
            if on_progress is not None and preview_every and steps[0] % preview_every == 0:
                on_progress(Progress(epoch, steps[0], None, run.preview()))

        def report(metrics: dict) -> None:
            if verbose:
                print_progress(metrics)
            if on_progress is not None:
                on_progress(Progress(metrics["epoch"], steps[0], metrics, run.preview()))

        if on_progress is not None:
            on_progress(Progress(0, 0, None, run.preview()))  # the untrained model, before the first step
        return run.fit(report=report, on_step=on_step)

    train_build.__qualname__ = train_build.__name__ = f"train_{spec.name.replace(' ', '_')}"
    return train_build
