"""Shared benchmark helpers: one thread for every math library, interleaved timing, ratio lines."""

from __future__ import annotations

import os

# One BLAS/OpenMP thread each: on 2 shared cores a spinning pool penalises whoever runs next.
# Must happen before numpy (or torch) is imported anywhere.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import contextlib  # noqa: E402
import gc  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402


def try_torch():
    """torch with one thread, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def interleaved(contenders: dict[str, Callable[[], None]], rounds: int = 15, repeat: int = 20,
                warmup: int = 3, contexts: dict[str, Callable] | None = None) -> dict[str, float]:
    """Median seconds per call of each contender, timed in alternation so noise hits all alike.

    contexts: name -> a context manager factory entered around each timed block of `repeat` calls
    (a debugger attached for a stretch of training, as a person attaches one), not around each call.
    """
    contexts = contexts or {}
    for name, fn in contenders.items():
        with contexts.get(name, contextlib.nullcontext)():
            for _ in range(warmup):
                fn()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        # each round starts with another contender, and each block with no garbage left by the one
        # before: otherwise whoever follows a heavy contender pays for its collection
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn = contenders[name]
            gc.collect()
            with contexts.get(name, contextlib.nullcontext)():
                t0 = time.perf_counter()
                for _ in range(repeat):
                    fn()
                samples[name].append((time.perf_counter() - t0) / repeat)
    return {name: statistics.median(s) for name, s in samples.items()}


def report(title: str, times: dict[str, float], baseline: str, bar: tuple[str, float] | None = None,
           unit: float = 1e6, unit_name: str = "us") -> str:
    """One line: each contender's time and its ratio to the baseline, and the bar if any."""
    base = times[baseline]
    parts = [f"{name} {t * unit:.1f} {unit_name} ({t / base:.2f}x)" for name, t in times.items()]
    line = f"{title}: " + "  ".join(parts)
    if bar is not None:
        name, limit = bar
        ratio = times[name] / base
        line += f"  | bar {name} <= {limit:.2f}x {baseline}: {'met' if ratio <= limit else 'MISSED'}"
    print(line, flush=True)
    return line
