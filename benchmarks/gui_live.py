"""A live run of a big model in the window: seconds and per-thread CPU per iteration, against the bare debugger.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_live.py [--iterations 6] [--rounds 2]

resources/examples/char_lstm.py (~1,700 records and ~840 graph nodes per iteration), or with --model resnet a
ResNet of 60 blocks with BatchNorm (~3,000 records, 245 parameters, deep rather than wide), runs, alternated in
one process, (a) under engine.debug.Debugger("summary") without the app, and (b) in the real MainWindow
(offscreen), resumed from the entry pause and running freely to a breakpoint. The first two iterations
(graph build, first layout) are left out. Per round and contender, one line: wall seconds per iteration,
and CPU seconds per iteration of the engine thread and (window) of the GUI thread, from time.thread_time
in each thread; the ratio line compares the medians with the bare debugger's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _timing  # noqa: E402, F401  first: it sets one BLAS thread before numpy loads

# isort: split
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "resources" / "examples"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import char_lstm  # noqa: E402

import engine.debug  # noqa: E402

SKIP = 2  # iterations left out: the graph is built and laid out in them


MODEL = "char_lstm"  # or "resnet" (--model)


def _train(iterations: int) -> None:
    # one more batch than measured: the run stops (window) or is cut (bare) before the epoch's evaluation
    if MODEL == "char_lstm":
        char_lstm.main(epochs=1, batches_per_epoch=iterations + SKIP + 1, verbose=False, sample_length=10)
    else:
        _train_resnet(iterations + SKIP + 1)


def _train_resnet(steps: int, blocks: int = 60, width: int = 8) -> None:
    """A deep residual CNN on a fixed batch: many small layers, as the per-layer views meet them in real models."""
    import engine.nn as nn
    import engine.nn.functional as F

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)

        def forward(self, x):
            return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))

    engine.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                          nn.Sequential(*[Block() for _ in range(blocks)]), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(width, 10))
    opt = engine.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = engine.randn(8, 3, 16, 16), engine.randint(0, 10, (8,))
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


class _Marks:
    """(perf_counter, thread_time) where each iteration was first seen, on the thread that calls tick."""

    def __init__(self) -> None:
        self.at: dict[int, tuple[float, float]] = {}

    def tick(self, iteration: int) -> None:
        if iteration not in self.at:
            self.at[iteration] = (time.perf_counter(), time.thread_time())

    def per_iteration(self, first: int, last: int) -> tuple[float, float]:
        """(wall, CPU) seconds per iteration from iteration `first` to `last`."""
        (w0, c0), (w1, c1) = self.at[first], self.at[last]
        return (w1 - w0) / (last - first), (c1 - c0) / (last - first)


class _Stop(Exception):
    pass


def bare(iterations: int) -> dict[str, float]:
    """The script under Debugger('summary') alone: per-iteration wall and engine CPU."""
    marks = _Marks()
    last = SKIP + iterations

    def on_record(rec) -> None:
        marks.tick(rec.iteration)
        if rec.iteration >= last:
            raise _Stop

    with engine.debug.Debugger("summary", on_record=on_record), contextlib.suppress(_Stop):
        _train(iterations)
    wall, cpu = marks.per_iteration(SKIP, last)
    return {"wall": wall, "engine": cpu}


def window(iterations: int) -> dict[str, float]:
    """The script in the MainWindow (offscreen), running freely from iteration SKIP to SKIP + iterations."""
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app.window import MainWindow

    app = QApplication.instance() or QApplication(["gui_live"])
    settings = QSettings(os.path.join(os.environ.get("TMPDIR", "/tmp"), "gui_live.ini"),
                         QSettings.Format.IniFormat)
    w = MainWindow(settings)
    w.resize(1600, 1000)
    w.show()
    w.run_function(lambda: _train(iterations), MODEL)
    last = SKIP + iterations
    engine_marks, gui_marks = _Marks(), _Marks()
    state = {"resumed": False, "error": ""}

    def poll() -> None:
        s = w.session
        if s.status == "paused" and not state["resumed"]:
            state["resumed"] = True
            s.debugger.on_record.append(lambda rec: engine_marks.tick(rec.iteration))
            s.debugger.add_breakpoint(engine.debug.Breakpoint.iteration(last))
            w.command("resume")
        elif state["resumed"]:
            if s.status == "paused":
                gui_marks.at[last] = (time.perf_counter(), time.thread_time())  # everything before it shown
                w.close()
                app.quit()
                return
            gui_marks.tick(s.iteration)
            if s.status in ("finished", "failed", "stopped"):
                state["error"] = f"the run ended ({s.status}) before iteration {last}"
                w.close()
                app.quit()
                return
        QTimer.singleShot(10, poll)

    QTimer.singleShot(10, poll)
    app.exec()
    if state["error"]:
        raise RuntimeError(state["error"])
    wall, engine_cpu = engine_marks.per_iteration(SKIP, last)
    _, gui_cpu = gui_marks.per_iteration(SKIP, last)
    return {"wall": wall, "engine": engine_cpu, "gui": gui_cpu}


def _line(name: str, r: dict[str, float]) -> str:
    parts = [f"{r['wall'] * 1e3:7.0f} ms/iteration", f"engine CPU {r['engine'] * 1e3:6.0f} ms"]
    if "gui" in r:
        parts.append(f"GUI CPU {r['gui'] * 1e3:6.0f} ms")
    return f"{name:>7}: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=6, help="iterations measured per run")
    parser.add_argument("--rounds", type=int, default=2, help="bare/window pairs, alternated")
    parser.add_argument("--model", choices=("char_lstm", "resnet"), default="char_lstm")
    args = parser.parse_args()
    global MODEL
    MODEL = args.model
    results: dict[str, list[dict[str, float]]] = {"bare": [], "window": []}
    for r in range(args.rounds):
        for name in (("bare", "window") if r % 2 == 0 else ("window", "bare")):
            result = (bare if name == "bare" else window)(args.iterations)
            results[name].append(result)
            print(f"round {r + 1} {_line(name, result)}", flush=True)
    med = {name: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for name, rs in results.items()}
    b, w = med["bare"], med["window"]
    print(f"{MODEL} live, median of {args.rounds} ({args.iterations} iterations each after {SKIP}): "
          f"window {w['wall'] * 1e3:.0f} ms/iteration ({w['wall'] / b['wall']:.2f}x bare debugger "
          f"{b['wall'] * 1e3:.0f} ms); CPU per iteration: engine {w['engine'] * 1e3:.0f} ms "
          f"({w['engine'] / b['engine']:.2f}x bare {b['engine'] * 1e3:.0f} ms), GUI {w['gui'] * 1e3:.0f} ms "
          f"({(w['engine'] + w['gui']) / b['engine']:.2f}x bare, both threads)")


if __name__ == "__main__":
    main()
