"""GPU engine benchmark: training steps and a small-op chain against hand-written CuPy and PyTorch CUDA,
and the fused CUDA kernels against the plain formulas. Prints ratios.

    python benchmarks/engine_gpu.py [--quick]

Every contender runs `k` calls and then waits for the GPU before the timer is read, so the times are
of finished work. Bars: MLP 4096-4096-10 engine <= 1.1x PyTorch; MLP 784-128-10 engine <= 1.3x CuPy.
Each MLP section also says whether a contender's step waits for the GPU (it should not: a step that
reads a value back lets the GPU idle while Python queues the rest of the step).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved, report, try_torch  # first: it sets thread counts before numpy loads

# isort: split
import numpy as np
from engine_cpu import chain, mlp_by_hand, mlp_step
from train_cpu import copy_weights, load_example, torch_glyphnet

import engine
import engine.nn.functional as F
from engine import kernels
from engine.backend import cupy_module
from engine.data import glyphs


def waits_for_gpu(cp, step: Callable[[], None]) -> bool:
    """True when `step` returned only after the GPU had finished work queued before it (~100 ms)."""
    busy = cp.ones((4096, 4096), dtype=cp.float32)
    for _ in range(30):
        busy = busy @ busy * (1 / 4096)
    queued = cp.cuda.Event(disable_timing=True)
    queued.record()
    step()
    waited = queued.done  # the step's own work may still run when it returns; the queued work may not
    engine.cuda.synchronize()
    return waited


def measure(contenders: dict[str, Callable[[], None]], rounds: int, k: int) -> dict[str, float]:
    """Seconds per call of each contender: `k` calls, then a device-wide sync, interleaved."""

    def synced(step):
        def run():
            for _ in range(k):
                step()
            engine.cuda.synchronize()
        return run

    times = interleaved({name: synced(fn) for name, fn in contenders.items()}, rounds, 1, warmup=2)
    return {name: t / k for name, t in times.items()}


# ---- MLP training step: the same math written three ways ----------------------------------------------
def mlp_data(batch: int, sizes: tuple[int, int, int], seed: int = 0):
    d_in, hidden, d_out = sizes
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, d_in)).astype(np.float32)
    y = rng.integers(0, d_out, batch)
    params = [(rng.standard_normal((hidden, d_in)) / np.sqrt(d_in)).astype(np.float32),
              np.zeros(hidden, np.float32),
              (rng.standard_normal((d_out, hidden)) / np.sqrt(hidden)).astype(np.float32),
              np.zeros(d_out, np.float32)]
    return x, y, params


def _host(w) -> np.ndarray:
    """A weight of any of the three libraries as a numpy array."""
    if isinstance(w, engine.Tensor):
        return w.detach().cpu().numpy()
    return w.get() if hasattr(w, "get") else w.detach().cpu().numpy()


def bench_mlp(cp, torch, title: str, batch: int, sizes, bar: tuple[str, float], baseline: str,
              rounds: int, k: int) -> None:
    x, y, params = mlp_data(batch, sizes)
    builds = {"engine": lambda: mlp_step(engine, x, y, params, "cuda"),
              "cupy": lambda: mlp_by_hand(cp, x, y, params)}
    if torch is not None:
        builds["torch"] = lambda: mlp_step(torch, x, y, params, "cuda")
    steps, weights = {}, {}
    for name, build in builds.items():
        steps[name], ps = build()
        steps[name]()  # one step from equal weights: all three must land on the same weights
        weights[name] = _host(ps[0])
    drift = max(float(np.abs(w - weights["cupy"]).max()) for w in weights.values())
    print(f"{title}: after one step from equal weights, max difference in w1 {drift:.1e}")
    waits = ", ".join(f"{name} {'yes' if waits_for_gpu(cp, step) else 'no'}" for name, step in steps.items())
    print(f"{title}: a step waits for the GPU: {waits}")
    if baseline not in steps:
        baseline = "cupy"
    report(title, measure(steps, rounds, k), baseline, bar=bar if bar[0] in steps else None)


# ---- CNN example step --------------------------------------------------------------------------------
def bench_cnn(torch, rounds: int, k: int) -> None:
    engine.manual_seed(0)
    model = load_example("cnn_glyphs").build_model()
    tmodel = None
    if torch is not None:  # equal weights, copied while both are on the CPU
        tmodel = torch_glyphnet(torch)
        copy_weights(torch, model, tmodel)
        tmodel = tmodel.cuda()
    model.to("cuda")
    images, labels = glyphs(32, seed=0)
    x, y = images.to("cuda"), labels.to("cuda")
    opt = engine.optim.Adam(model.parameters(), lr=0.003)

    def engine_step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    steps = {"engine": engine_step}
    if tmodel is not None:
        tx, ty = torch.tensor(images.numpy(), device="cuda"), torch.tensor(labels.numpy(), device="cuda")
        topt = torch.optim.Adam(tmodel.parameters(), lr=0.003)

        def torch_step():
            loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()

        steps["torch"] = torch_step
    print("CNN example: conv2d runs as im2col + one cuBLAS matmul through CuPy (CuPy 14 has no cuDNN); "
          "no hand-written CuPy contender (it would be a second conv implementation)")
    report("CNN example step (glyphs, batch 32, Adam)", measure(steps, rounds, k),
           "torch" if "torch" in steps else "engine")


# ---- a chain of tiny ops ---------------------------------------------------------------------------------


def cupy_chain(cp, x, n_ops: int):
    """The same chain by hand: the forward keeps what the backward needs."""

    def run():
        y, kept = x, []
        for _ in range(n_ops // 4):
            y = y * 1.001
            y = y + 0.01
            y = cp.tanh(y)
            kept.append(y)
            y = y * y
        g = cp.ones_like(y)
        for t in reversed(kept):
            g = g * (2 * t)
            g = g * (1 - t * t)
            g = g * 1.001

    return run


def bench_chain(cp, torch, rounds: int, k: int, n_ops: int = 400) -> None:
    x = np.random.default_rng(0).standard_normal(256).astype(np.float32)
    runs = {"engine": chain(engine, engine.tensor(x, device="cuda", requires_grad=True), n_ops),
            "cupy": cupy_chain(cp, cp.asarray(x), n_ops)}
    if torch is not None:
        runs["torch"] = chain(torch, torch.tensor(x, device="cuda", requires_grad=True), n_ops)
    times = {name: t / n_ops for name, t in measure(runs, rounds, k).items()}
    report(f"{n_ops}-op elementwise chain fwd+bwd (256 floats), per op", times, "cupy")


# ---- fused kernels against the plain formulas -------------------------------------------------------------
def fused_vs_plain(title: str, make: Callable[[], Callable[[], None]], rounds: int, k: int) -> None:
    """Time one workload with engine.kernels on and off (each built in its own mode)."""
    fused = make()
    with kernels.disabled():
        plain = make()

    def unfused():
        with kernels.disabled():
            plain()

    report(title, measure({"fused": fused, "unfused": unfused}, rounds, k), "unfused")


def adam_step(shapes: list[tuple[int, ...]]):
    def make():
        engine.manual_seed(0)
        params = [engine.randn(*s, device="cuda", requires_grad=True) for s in shapes]
        for p in params:
            p.grad = engine.randn(*p.shape, device="cuda")
        opt = engine.optim.Adam(params, lr=1e-3, weight_decay=0.01)
        return opt.step
    return make


def cross_entropy_step(rows: int, classes: int):
    def make():
        x = engine.randn(rows, classes, device="cuda", requires_grad=True)
        t = engine.randint(0, classes, (rows,), device="cuda")

        def run():
            F.cross_entropy(x, t).backward()
            x.grad = None
        return run
    return make


def gelu_step(n: int):
    def make():
        x = engine.randn(n, device="cuda", requires_grad=True)

        def run():
            F.gelu(x).backward(engine.ones_like(x))
            x.grad = None
        return run
    return make


def summary_step(n: int):
    def make():
        from engine.debug import summarize

        x = engine.randn(n, device="cuda")
        return lambda: summarize(x)
    return make


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args(argv)
    cp = cupy_module()
    if not engine.cuda.is_available():
        print("engine_gpu: no CUDA device (CuPy missing or no GPU); nothing to measure")
        return
    torch = try_torch()
    if torch is not None and not torch.cuda.is_available():
        torch = None
    rounds = 5 if args.quick else 11
    print(f"engine_gpu: {engine.cuda.get_device_name()}, CuPy {cp.__version__}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch else 'not available'}")
    sections = [
        lambda: bench_mlp(cp, torch, "MLP 784-128-10 step, batch 64", 64, (784, 128, 10), ("engine", 1.3),
                          "cupy", rounds, 20),
        lambda: bench_mlp(cp, torch, "MLP 4096-4096-10 step, batch 4096", 4096, (4096, 4096, 10),
                          ("engine", 1.1), "torch", rounds, 4),
        lambda: bench_cnn(torch, rounds, 10),
        lambda: bench_chain(cp, torch, rounds, 2),
        lambda: fused_vs_plain("Adam step, CNN example's 6 parameters", adam_step(
            [(8, 1, 3, 3), (8,), (16, 8, 3, 3), (16,), (10, 256), (10,)]), rounds, 20),
        lambda: fused_vs_plain("Adam step, one 4096x4096 parameter", adam_step([(4096, 4096)]), rounds, 5),
        lambda: fused_vs_plain("softmax-cross-entropy fwd+bwd, 64x10", cross_entropy_step(64, 10),
                               rounds, 20),
        lambda: fused_vs_plain("softmax-cross-entropy fwd+bwd, 8192x1000", cross_entropy_step(8192, 1000),
                               rounds, 5),
        lambda: fused_vs_plain("gelu fwd+bwd, 4M floats", gelu_step(1 << 22), rounds, 5),
        lambda: fused_vs_plain("debugger tensor summary, 1M floats", summary_step(1 << 20), rounds, 20),
    ]
    for section in sections:
        try:
            section()
        except Exception:  # one broken section must not hide the others' numbers
            traceback.print_exc()


if __name__ == "__main__":
    main()
