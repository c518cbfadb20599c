"""Backward through many slices of one tensor (x[t] for every t, as an RNN reads its input). Prints ratios.

    python benchmarks/slice_backward.py [--quick]

1. Backward of sum(x[t] for t in range(T)) on a (T, 32, 64) float32 tensor, T = 16, 128, 1024: the graph is
   built once and backward runs with retain_graph, so only backward is timed. Hand-written numpy adds each
   step's gradient into one zero array; PyTorch runs its own backward of the same graph. "engine traced" runs
   the engine's backward with a Debugger("summary") attached (a record, a summary and a cached value of every
   slice's gradient): it must stay linear too.
2. A char-LSTM training step (no optimizer): 2-layer LSTM (input 32, hidden 128), linear head over 59
   characters, cross-entropy, forward and backward, batch 32, T = 48 and 256. Hand-written numpy runs the
   same math with a hand-written LSTM backward; PyTorch runs nn.LSTM.
Backward through slices must be linear in T: the engine's ratio to numpy should not grow with T.
Before timing, each contender's gradients are checked against the engine's.
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
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger

N, H = 32, 64  # the slice benchmark's (T, N, H) tensor
EMBED, HIDDEN, VOCAB, LAYERS = 32, 128, 59, 2  # the char-LSTM


# ---- 1. sum of x[t] ------------------------------------------------------------------------------
def slice_sum(lib, x):
    """The backward of sum(x[t]) for every t, built once (retain_graph) and run on each call."""
    total = x[0]
    for t in range(1, x.shape[0]):
        total = total + x[t]
    loss = total.sum()

    def run():
        x.grad = None
        loss.backward(retain_graph=True)

    return run


def numpy_slice_sum(x):
    """The same backward by hand: each step's gradient (ones) added into one zero array."""
    def run():
        g = np.zeros_like(x)
        ones = np.ones(x.shape[1:], x.dtype)
        for t in range(x.shape[0]):
            g[t] += ones
        return g

    return run


def bench_slices(torch, quick: bool) -> None:
    per_step = {}
    for T in (16, 128, 1024):
        data = np.random.default_rng(T).standard_normal((T, N, H)).astype(np.float32)
        xe = engine.tensor(data, requires_grad=True)
        contenders = {"numpy": numpy_slice_sum(data), "engine": slice_sum(engine, xe)}
        contenders["engine traced"] = contenders["engine"]
        dbg = Debugger("summary")
        contexts = {"engine traced": lambda dbg=dbg: dbg}  # attached around each timed block
        contenders["engine"]()
        assert np.array_equal(xe.grad.numpy(), contenders["numpy"]())
        with dbg:
            contenders["engine traced"]()
        assert np.array_equal(xe.grad.numpy(), contenders["numpy"]())
        if torch:
            xt = torch.tensor(data, requires_grad=True)
            contenders["torch"] = slice_sum(torch, xt)
        rounds, repeat = (3, 1) if quick else ((9, 5) if T < 1024 else (5, 1))
        times = interleaved(contenders, rounds, repeat, warmup=1, contexts=contexts)
        report(f"backward of sum(x[t] for t < {T}), x ({T}, {N}, {H}) float32", times, "numpy")
        per_step[T] = {name: t / T for name, t in times.items()}
    growth = "  ".join(f"{name} {per_step[1024][name] / per_step[16][name]:.2f}x" for name in per_step[16])
    print(f"time per slice at T=1024 against T=16 (1.00x is linear): {growth}", flush=True)


# ---- 2. char-LSTM step ---------------------------------------------------------------------------
def make_lstm_data(T: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, EMBED)).astype(np.float32)
    y = rng.integers(0, VOCAB, (T, N))
    params = []
    k = 1 / np.sqrt(HIDDEN)
    for layer in range(LAYERS):
        d_in = EMBED if layer == 0 else HIDDEN
        params += [rng.uniform(-k, k, shape).astype(np.float32)
                   for shape in ((4 * HIDDEN, d_in), (4 * HIDDEN, HIDDEN), (4 * HIDDEN,), (4 * HIDDEN,))]
    head = [rng.uniform(-k, k, (VOCAB, HIDDEN)).astype(np.float32), np.zeros(VOCAB, np.float32)]
    return x, y, params, head


def engine_lstm_step(x, y, params, head):
    lstm, linear = nn.LSTM(EMBED, HIDDEN, LAYERS), nn.Linear(HIDDEN, VOCAB)
    with engine.no_grad():
        for p, value in zip([*lstm.parameters(), *linear.parameters()], [*params, *head]):
            p.data[...] = value
    xt, yt = engine.tensor(x), engine.tensor(y.reshape(-1))

    def step():
        for p in (*lstm.parameters(), *linear.parameters()):
            p.grad = None
        out, _ = lstm(xt)
        F.cross_entropy(linear(out).reshape(-1, VOCAB), yt).backward()
        return lstm.weight_ih_l0.grad.numpy()

    return step


def torch_lstm_step(torch, x, y, params, head):
    lstm, linear = torch.nn.LSTM(EMBED, HIDDEN, LAYERS), torch.nn.Linear(HIDDEN, VOCAB)
    with torch.no_grad():
        for p, value in zip([*lstm.parameters(), *linear.parameters()], [*params, *head]):
            p.copy_(torch.tensor(value))
    xt, yt = torch.tensor(x), torch.tensor(y.reshape(-1))

    def step():
        for p in (*lstm.parameters(), *linear.parameters()):
            p.grad = None
        out, _ = lstm(xt)
        torch.nn.functional.cross_entropy(linear(out).reshape(-1, VOCAB), yt).backward()
        return lstm.weight_ih_l0.grad.numpy()

    return step


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_lstm_step(x, y, params, head):
    """The same step by hand: per layer one input product for all steps, the recurrence, then backward."""
    T = x.shape[0]
    w_out, b_out = head
    rows = np.arange(T * N)

    def step():
        layer_in, caches = x, []
        for layer in range(LAYERS):
            w_ih, w_hh, b_ih, b_hh = params[4 * layer:4 * layer + 4]
            gx = layer_in @ w_ih.T + (b_ih + b_hh)
            h, c = np.zeros((N, HIDDEN), np.float32), np.zeros((N, HIDDEN), np.float32)
            hs, cs, gates = np.empty((T + 1, N, HIDDEN), np.float32), np.empty((T + 1, N, HIDDEN), np.float32), []
            hs[0], cs[0] = h, c
            for t in range(T):
                z = gx[t] + h @ w_hh.T
                i, f, g, o = _sigmoid(z[:, :HIDDEN]), _sigmoid(z[:, HIDDEN:2 * HIDDEN]), \
                    np.tanh(z[:, 2 * HIDDEN:3 * HIDDEN]), _sigmoid(z[:, 3 * HIDDEN:])
                c = f * c + i * g
                h = o * np.tanh(c)
                hs[t + 1], cs[t + 1] = h, c
                gates.append((i, f, g, o))
            caches.append((layer_in, hs, cs, gates))
            layer_in = hs[1:]
        logits = layer_in.reshape(T * N, HIDDEN) @ w_out.T + b_out
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        p[rows, y.reshape(-1)] -= 1
        dlogits = p / (T * N)
        grads = [None] * len(params)
        d_in = (dlogits @ w_out).reshape(T, N, HIDDEN)
        for layer in reversed(range(LAYERS)):
            w_ih, w_hh = params[4 * layer], params[4 * layer + 1]
            layer_in, hs, cs, gates = caches[layer]
            dz_all = np.empty((T, N, 4 * HIDDEN), np.float32)
            dh, dc = np.zeros((N, HIDDEN), np.float32), np.zeros((N, HIDDEN), np.float32)
            for t in reversed(range(T)):
                i, f, g, o = gates[t]
                dh = dh + d_in[t]
                tc = np.tanh(cs[t + 1])
                dc = dc + dh * o * (1 - tc * tc)
                dz = dz_all[t]
                dz[:, :HIDDEN] = dc * g * i * (1 - i)
                dz[:, HIDDEN:2 * HIDDEN] = dc * cs[t] * f * (1 - f)
                dz[:, 2 * HIDDEN:3 * HIDDEN] = dc * i * (1 - g * g)
                dz[:, 3 * HIDDEN:] = dh * tc * o * (1 - o)
                dh = dz @ w_hh
                dc = dc * f
            flat = dz_all.reshape(T * N, 4 * HIDDEN)
            grads[4 * layer] = flat.T @ layer_in.reshape(T * N, -1)
            grads[4 * layer + 1] = np.einsum("tnk,tnh->kh", dz_all, hs[:-1])
            grads[4 * layer + 2] = grads[4 * layer + 3] = flat.sum(axis=0)
            d_in = (flat @ w_ih).reshape(T, N, -1)
        return grads[0]

    return step


def bench_lstm(torch, quick: bool) -> None:
    for T in (48, 256):
        data = make_lstm_data(T)
        contenders = {"numpy": numpy_lstm_step(*data), "engine": engine_lstm_step(*data)}
        if torch:
            contenders["torch"] = torch_lstm_step(torch, *data)
        expected = contenders["engine"]()
        for name, fn in contenders.items():  # the same math: the first layer's input weight gradient
            np.testing.assert_allclose(fn(), expected, rtol=2e-3, atol=1e-5, err_msg=name)
        rounds, repeat = (3, 1) if quick else ((9, 2) if T < 256 else (5, 1))
        report(f"char-LSTM step ({LAYERS}-layer LSTM {EMBED}->{HIDDEN}, head {VOCAB}), T={T}, batch {N}",
               interleaved(contenders, rounds, repeat, warmup=1), "numpy")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args(argv)
    torch = try_torch()
    print(f"slice_backward: numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}, "
          "one thread each")
    bench_slices(torch, args.quick)
    bench_lstm(torch, args.quick)


if __name__ == "__main__":
    main()
