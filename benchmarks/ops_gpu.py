"""GPU ops whose array formulas loop in Python, against PyTorch CUDA and against the engine's own loop (what
the GPU ran before these ops got library calls or one kernel per recursion). Prints ratios.

    python benchmarks/ops_gpu.py [--quick]

- LU factorization and solves: cuBLAS's batched getrf and cuSOLVER's getrf, against the column-by-column loop.
- ctc_loss forward and backward: one kernel per recursion (alpha, beta), against a launch per frame.
Each contender runs `k` calls, then waits for the GPU (engine_gpu.measure). No bar: the lines say where the
engine stands against torch on the shapes people use.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import report, try_torch  # first: it sets thread counts before numpy loads

# isort: split
import numpy as np
from engine_gpu import measure

import engine
import engine.nn.functional as F
from engine import kernels
from engine.backend import cupy_module
from engine.ops import lu_gpu

SHAPES = ((1, 512, 512), (256, 16, 16), (4, 128, 128))


@contextlib.contextmanager
def own_loop():
    """The engine without the libraries: its LU falls back to the column loop it runs on the CPU."""
    factor = lu_gpu.factor
    lu_gpu.factor = lambda xp, a, pivot: None
    try:
        yield
    finally:
        lu_gpu.factor = factor


def lu_contenders(shape, torch) -> dict:
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    b = np.ones((*shape[:-1], 4), np.float32)
    A, B = engine.tensor(a, device="cuda"), engine.tensor(b, device="cuda")

    def ours():
        lu, pivots = engine.linalg.lu_factor(A)
        engine.linalg.lu_solve(lu, pivots, B)

    def loop():
        with own_loop():
            ours()

    found = {"engine": ours, "engine's own loop": loop}
    if torch is not None:
        ta, tb = torch.tensor(a, device="cuda"), torch.tensor(b, device="cuda")

        def theirs():
            lu, pivots = torch.linalg.lu_factor(ta)
            torch.linalg.lu_solve(lu, pivots, tb)

        found["torch"] = theirs
    return found


def ctc_contenders(t_len: int, n: int, classes: int, labels: int, torch) -> dict:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((t_len, n, classes)).astype(np.float32)
    targets = rng.integers(1, classes, (n, labels))
    lengths = [t_len] * n, [labels] * n

    def engine_step(fused: bool):
        x = engine.tensor(logits, device="cuda", requires_grad=True)
        y = engine.tensor(targets, device="cuda")

        def step():
            with contextlib.nullcontext() if fused else kernels.disabled():
                F.ctc_loss(x.log_softmax(2), y, *lengths).backward()

        return step

    found = {"engine": engine_step(True), "engine's own loop": engine_step(False)}
    if torch is not None:
        tx = torch.tensor(logits, device="cuda", requires_grad=True)
        ty = torch.tensor(targets, device="cuda")
        found["torch"] = lambda: torch.nn.functional.ctc_loss(tx.log_softmax(2), ty, *lengths).backward()
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args(argv)
    if cupy_module() is None:
        print("ops_gpu: needs CuPy and a CUDA GPU")
        return
    torch = try_torch()
    rounds, k = (2, 2) if args.quick else (5, 5)
    for shape in SHAPES:
        times = measure(lu_contenders(shape, torch), rounds, k)
        title = f"lu_factor + lu_solve, {'x'.join(map(str, shape))} float32, cuda"
        report(title, times, "torch" if "torch" in times else "engine", unit=1e3, unit_name="ms")
    for t_len, n, classes, labels in ((50, 16, 28, 10), (200, 32, 40, 60)):
        times = measure(ctc_contenders(t_len, n, classes, labels, torch), rounds, k)
        title = f"ctc_loss forward + backward, T={t_len} N={n} C={classes} S={labels} float32, cuda"
        report(title, times, "torch" if "torch" in times else "engine", unit=1e3, unit_name="ms")


if __name__ == "__main__":
    main()
