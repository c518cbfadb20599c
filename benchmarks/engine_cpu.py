"""CPU engine benchmark: MLP training step, small-op chain, LSTM, Transformer layer, event-hub overhead. Prints ratios.

    python benchmarks/engine_cpu.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved, report, try_torch  # first: it sets one BLAS thread before numpy loads

# isort: split
import numpy as np

import engine

BATCH, D_IN, HIDDEN, D_OUT, LR = 64, 784, 128, 10, 0.01
LSTM_STEPS, LSTM_BATCH, LSTM_IN, LSTM_HIDDEN = 50, 16, 32, 64
ENC_BATCH, ENC_SEQ, ENC_DIM, ENC_HEADS = 256, 8, 64, 4


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, D_IN)).astype(np.float32)
    y = rng.integers(0, D_OUT, BATCH)
    w1 = (rng.standard_normal((HIDDEN, D_IN)) / np.sqrt(D_IN)).astype(np.float32)
    b1 = np.zeros(HIDDEN, np.float32)
    w2 = (rng.standard_normal((D_OUT, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32)
    b2 = np.zeros(D_OUT, np.float32)
    return x, y, [w1, b1, w2, b2]


def mlp_by_hand(xp, x, y, params):
    """The step written by hand in numpy or CuPy (`xp`): what a careful person would write. (step, its weights)"""
    xs, ys = xp.asarray(x), xp.asarray(y)
    ps = [xp.asarray(p) for p in params]
    rows = xp.arange(len(x))

    def step():
        w1, b1, w2, b2 = ps
        h = xs @ w1.T
        h += b1
        a = xp.maximum(h, 0)
        z = a @ w2.T
        z += b2
        z -= z.max(axis=1, keepdims=True)
        e = xp.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        _loss = -xp.log(p[rows, ys]).mean()
        p[rows, ys] -= 1
        dz = p / len(x)
        dw2, db2 = dz.T @ a, dz.sum(axis=0)
        da = dz @ w2
        da *= h > 0
        dw1, db1 = da.T @ xs, da.sum(axis=0)
        for w, g in zip(ps, (dw1, db1, dw2, db2)):
            w -= LR * g

    return step, ps


def mlp_step(lib, x, y, params, device: str = "cpu"):
    """The step in the engine or PyTorch: one code for both (the same API). (step, its weights)"""
    F = lib.nn.functional
    xt, yt = lib.tensor(x, device=device), lib.tensor(y, device=device)
    ps = [lib.tensor(p, device=device, requires_grad=True) for p in params]

    def step():
        w1, b1, w2, b2 = ps
        F.cross_entropy(F.linear(F.relu(F.linear(xt, w1, b1)), w2, b2), yt).backward()
        with lib.no_grad():
            for p in ps:
                p -= LR * p.grad
                p.grad = None

    return step, ps


def chain(lib, x, n_ops: int):
    """n_ops small elementwise ops, forward and backward."""

    def run():
        y = x
        for _ in range(n_ops // 4):
            y = y * 1.001
            y = y + 0.01
            y = y.tanh()
            y = y * y
        y.backward(lib.ones_like(y))
        x.grad = None

    return run


def lstm(lib, x):
    """A 2-layer LSTM(32 -> 64) over x (steps, batch, 32), forward and backward."""
    lib.manual_seed(0)
    model = lib.nn.LSTM(LSTM_IN, LSTM_HIDDEN, num_layers=2)

    def run():
        out, _ = model(x)
        out.sum().backward()
        x.grad = None

    return run


def encoder_layer(lib, x):
    """A Transformer encoder layer (d_model 64, 4 heads, feed-forward 256) over x (batch, seq, 64), fwd+bwd:
    its linear layers multiply 3-D activations by 2-D weights."""
    lib.manual_seed(0)
    layer = lib.nn.TransformerEncoderLayer(ENC_DIM, ENC_HEADS, dim_feedforward=4 * ENC_DIM, dropout=0.0,
                                           batch_first=True)

    def run():
        layer(x).sum().backward()
        x.grad = None

    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args(argv)
    rounds, repeat = (3, 3) if args.quick else (15, 20)
    torch = try_torch()
    torch_version = torch.__version__ if torch else "not installed"
    print(f"engine_cpu: numpy {np.__version__}, torch {torch_version}, one thread each")

    x, y, params = make_data()
    contenders = {"numpy": mlp_by_hand(np, x, y, [p.copy() for p in params])[0],
                  "engine": mlp_step(engine, x, y, [p.copy() for p in params])[0]}
    if torch:
        contenders["torch"] = mlp_step(torch, x, y, [p.copy() for p in params])[0]
    report("MLP 784-128-10 step, batch 64", interleaved(contenders, rounds, repeat), "numpy", bar=("engine", 1.3))

    n_ops = 500
    chains = {"engine": chain(engine, engine.randn(256, requires_grad=True), n_ops)}
    if torch:
        chains["torch"] = chain(torch, torch.randn(256, requires_grad=True), n_ops)
    times = {k: v / n_ops for k, v in interleaved(chains, rounds, max(1, repeat // 4)).items()}
    baseline = "torch" if torch else "engine"
    report(f"{n_ops}-op elementwise chain fwd+bwd, per op", times, baseline,
           bar=("engine", 1.0) if torch else None)

    def layers(title: str, make, shape: tuple, seed: int) -> None:  # a layer's fwd+bwd, engine against torch
        seq = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        runs = {"engine": make(engine, engine.tensor(seq, requires_grad=True))}
        if torch:
            runs["torch"] = make(torch, torch.tensor(seq, requires_grad=True))
        report(title, interleaved(runs, rounds, max(1, repeat // 4)), baseline)

    layers(f"LSTM {LSTM_IN}->{LSTM_HIDDEN} x2 layers, {LSTM_STEPS} steps, batch {LSTM_BATCH}, fwd+bwd", lstm,
           (LSTM_STEPS, LSTM_BATCH, LSTM_IN), 1)
    layers(f"Transformer encoder layer d{ENC_DIM} x{ENC_HEADS} heads, batch {ENC_BATCH} x {ENC_SEQ} tokens, fwd+bwd",
           encoder_layer, (ENC_BATCH, ENC_SEQ, ENC_DIM), 2)

    quiet = {"no subscriber": mlp_step(engine, x, y, [p.copy() for p in params])[0]}
    listened = mlp_step(engine, x, y, [p.copy() for p in params])[0]

    def with_subscriber():
        off = engine.hub.subscribe(lambda event: None)
        try:
            listened()
        finally:
            off()

    quiet["one idle subscriber"] = with_subscriber
    report("event hub overhead on the MLP step", interleaved(quiet, rounds, repeat), "no subscriber",
           bar=("one idle subscriber", 1.05))


if __name__ == "__main__":
    main()
