"""One layer of an RNN, LSTM or GRU in one direction as one op: its own loop over time forward and backward.

Built from engine ops, a layer costs about ten ops per time step (a 56-step LSTM recorded 142k events); here
it is one op, as in torch. Forward projects the inputs of all steps in one matmul, then runs the steps on
raw arrays (numpy or cupy), keeping each step's gates and states; backward runs back through time over
them and forms the weight gradients in one matmul each over all steps.

Sequences arrive as packed rows: step t's inputs are rows [offset_t, offset_t + batch_sizes[t]) of x, the
batch longest first, so at step t the first batch_sizes[t] rows of the state run. The state is one array
of all N rows: forward, rows past batch_sizes[t] keep the state their sequence ended with; in reverse,
they still hold h0 until their sequence begins. That array after the last step is h_n.

The cells are the composed ones of `CELLS` (recurrent layers' cells and RNNCell use those), and
`direction_composed` runs a layer from them: create_graph=True differentiates that again.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from engine import kernels, ops
from engine.autograd.engine import grad as autograd_grad
from engine.autograd.function import Function
from engine.autograd.higher import derived, differentiable
from engine.autograd.higher_ops import Alias
from engine.backend import array_module
from engine.ops.activation import relu
from engine.ops.nn import linear
from engine.tensor import Tensor

__all__ = ["CELLS", "direction_composed", "recurrent_layer"]


# ---- the cells in engine ops (RNNCell, LSTMCell, GRUCell, and create_graph through a layer) --------------
def _tanh_cell(gi, gh, h, c):
    return ops.tanh(gi + gh), None


def _relu_cell(gi, gh, h, c):
    return relu(gi + gh), None


def _lstm_cell(gi, gh, h, c):
    i, f, g, o = (gi + gh).chunk(4, -1)
    c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(c), c


def _gru_cell(gi, gh, h, c):
    ri, zi, ni = gi.chunk(3, -1)
    rh, zh, nh = gh.chunk(3, -1)
    r = ops.sigmoid(ri + rh)
    z = ops.sigmoid(zi + zh)
    n = ops.tanh(ni + r * nh)  # the reset gate scales the hidden projection, bias included (as torch)
    return n + z * (h - n), None  # (1 - z) * n + z * h


# mode: (gate blocks in the weights, cell(gi, gh, h, c) -> (h, c))
CELLS: dict[str, tuple[int, Callable]] = {
    "RNN_TANH": (1, _tanh_cell),
    "RNN_RELU": (1, _relu_cell),
    "LSTM": (4, _lstm_cell),
    "GRU": (3, _gru_cell),
}


def _step_inputs(x: Tensor, batch_sizes: list) -> list:
    """Step t's rows of packed data x."""
    return [x[a:b] for a, b in itertools.pairwise(itertools.accumulate(batch_sizes, initial=0))]


def direction_composed(mode: str, step_inputs: list, batch_sizes: list, weights: tuple, h0: Tensor, c0,
                       reverse: bool) -> tuple:
    """One layer in one direction from engine ops: the output of each step, and the state after each
    sequence's last one (forward, rows whose sequence ended leave the state; in reverse, rows join it from
    the initial state as their sequence begins)."""
    w_ih, w_hh, b_ih, b_hh, w_hr = weights
    _, cell = CELLS[mode]
    lstm = c0 is not None
    order = range(len(step_inputs) - 1, -1, -1) if reverse else range(len(step_inputs))
    first = batch_sizes[order[0]]
    h, c = (h0, c0) if first == h0.shape[0] else (h0[:first], c0[:first] if lstm else None)
    ended_h, ended_c = [], []
    ys = [None] * len(step_inputs)
    for t in order:
        rows, running = batch_sizes[t], h.shape[0]
        if rows < running:
            ended_h.append(h[rows:])
            ended_c.append(c[rows:] if lstm else None)
            h, c = h[:rows], (c[:rows] if lstm else None)
        elif rows > running:
            h = ops.cat([h, h0[running:rows]], 0)
            c = ops.cat([c, c0[running:rows]], 0) if lstm else None
        # an input product per step, not one (L, N, gates*H) product sliced per step: a slice's
        # gradient is a zero array the size of the whole tensor, so backward cost O(L^2 * gates*H)
        h, c = cell(linear(step_inputs[t], w_ih, b_ih), linear(h, w_hh, b_hh), h, c)
        if w_hr is not None:
            h = linear(h, w_hr)
        ys[t] = h
    if ended_h:  # ended rows come back in row order: the longest-running last
        h = ops.cat([h, *ended_h[::-1]], 0)
        c = ops.cat([c, *ended_c[::-1]], 0) if lstm else None
    return ys, h, c


# ---- the cells on arrays -----------------------------------------------------------------------------------
# A sigmoid is 0.5 tanh(x / 2) + 0.5 (no overflow, one transcendental): the forward halves the sigmoid gates'
# weights, biases and input projections once (exactly: a power of two), so a step's gates are one tanh.
#   forward(xp, gi, gh, h, c, kept, scale) -> (h, c), writing what backward needs into `kept` (the step's rows
#     of arrays `widths` * hidden wide); gi + gh are the step's (scaled) gate pre-activations, scale is the
#     pair (scale, 1 - scale);
#   prepare(xp, kept) -> derivatives for all steps at once, before the loop back through time;
#   backward(xp, kept, pre, h, dh, dc, dgi, dgh) -> (d h through the cell's own use of h or None, d c or None),
#     writing the gradients of gi into dgi and of gh into dgh (one array but for the GRU).
def _elman(act, slope):
    def forward(xp, gi, gh, h, c, kept, scale):
        y = xp.add(gi, gh, out=kept[0])
        return act(xp, y), None

    def prepare(xp, kept):
        return (slope(kept[0]),)

    def backward(xp, kept, pre, h, dh, dc, dgi, dgh):
        xp.multiply(dh, pre[0], out=dgi)
        return None, None

    return forward, prepare, backward, (1,), (1.0,)


def _lstm_forward(xp, gi, gh, h, c, kept, scale):
    gates, c_prev, tc = kept
    n = tc.shape[1]
    xp.add(gi, gh, out=gates)
    xp.tanh(gates, out=gates)
    gates *= scale[0]
    gates += scale[1]  # 1 - scale: a sigmoid where the scale is 1/2, a tanh where it is 1
    i, f, g, o = (gates[:, k * n:(k + 1) * n] for k in range(4))
    c_prev[...] = c
    c_new = f * c + i * g
    xp.tanh(c_new, out=tc)
    return o * tc, c_new


def _lstm_prepare(xp, kept):
    gates, _, tc = kept
    n = tc.shape[1]
    slopes = gates * (1 - gates)
    g = gates[:, 2 * n:3 * n]
    slopes[:, 2 * n:3 * n] = 1 - g * g
    return slopes, gates[:, 3 * n:] * (1 - tc * tc)  # d gates / d pre-activations, d c / d h


def _lstm_backward(xp, kept, pre, h, dh, dc, dgi, dgh):
    (gates, c_prev, tc), (slopes, dc_dh) = kept, pre
    n = tc.shape[1]
    i, f, g = (gates[:, k * n:(k + 1) * n] for k in range(3))
    dc = dc + dh * dc_dh
    for k, (a, b) in enumerate(((dc, g), (dc, c_prev), (dc, i), (dh, tc))):
        xp.multiply(a, b, out=dgi[:, k * n:(k + 1) * n])
    dgi *= slopes
    return None, dc * f


def _gru_forward(xp, gi, gh, h, c, kept, scale):
    gates, nh = kept
    n = nh.shape[1]
    rz = xp.add(gi[:, :2 * n], gh[:, :2 * n], out=gates[:, :2 * n])
    xp.tanh(rz, out=rz)
    rz *= 0.5
    rz += 0.5
    r, z, new = gates[:, :n], gates[:, n:2 * n], gates[:, 2 * n:]
    nh[...] = gh[:, 2 * n:]
    xp.tanh(gi[:, 2 * n:] + r * nh, out=new)
    return new + z * (h - new), None


def _gru_backward(xp, kept, pre, h, dh, dc, dgi, dgh):
    gates, nh = kept
    n = nh.shape[1]
    r, z, new = gates[:, :n], gates[:, n:2 * n], gates[:, 2 * n:]
    dn = xp.multiply(dh * (1 - z), 1 - new * new, out=dgi[:, 2 * n:])
    xp.multiply(dn * nh, r * (1 - r), out=dgi[:, :n])
    xp.multiply(dh * (h - new), z * (1 - z), out=dgi[:, n:2 * n])
    dgh[:, :2 * n] = dgi[:, :2 * n]
    xp.multiply(dn, r, out=dgh[:, 2 * n:])
    return dh * z, None


# mode: (forward, prepare, backward, widths of the kept arrays in units of hidden_size, the scale of each gate
# block's pre-activation: 1/2 for a sigmoid, 1 for a tanh or relu)
KERNELS: dict[str, tuple] = {
    "RNN_TANH": _elman(lambda xp, a: xp.tanh(a, out=a), lambda y: 1 - y * y),
    "RNN_RELU": _elman(lambda xp, a: xp.maximum(a, 0, out=a), lambda y: y > 0),
    "LSTM": (_lstm_forward, _lstm_prepare, _lstm_backward, (4, 1, 1), (0.5, 0.5, 1.0, 0.5)),
    "GRU": (_gru_forward, lambda xp, kept: (), _gru_backward, (3, 1), (0.5, 0.5, 1.0)),
}


def _cell(xp, mode: str) -> tuple:
    """KERNELS[mode], with its step forward and backward one launch each where engine.kernels has them (GPU)."""
    forward, prepare, backward, widths, blocks = KERNELS[mode]
    fused = kernels.get(f"{mode.lower()}_cell", xp) if mode in ("LSTM", "GRU") else None
    if fused is not None:
        forward, prepare, backward = fused.forward, fused.prepare, fused.backward
    return forward, prepare, backward, widths, blocks


def _order(ctx) -> range:
    """The steps in the order they run."""
    steps = len(ctx.batch_sizes)
    return range(steps - 1, -1, -1) if ctx.reverse else range(steps)


class RecurrentLayer(Function):
    """One layer in one direction over packed rows x (sum of batch_sizes, input_size), from h0 (and c0):
    returns [ys (rows, H_out), h_n (N, H_out), c_n (N, H)] flattened into one array."""

    mode = "LSTM"

    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
        xp = array_module(x)
        step, _, _, widths, blocks = _cell(xp, ctx.mode)
        lstm, hidden, gru = c0 is not None, ctx.hidden_size, ctx.mode == "GRU"
        scale = xp.repeat(xp.asarray(blocks, x.dtype), hidden)
        offsets = list(itertools.accumulate(ctx.batch_sizes, initial=0))
        rows = offsets[-1]
        gi = x @ w_ih.T
        for b in (b_ih, None if gru else b_hh):  # the GRU's hidden bias is scaled by its reset gate
            if b is not None:
                gi += b
        gi *= scale  # every step's input projection at once
        w_hh_t = xp.ascontiguousarray(w_hh.T * scale)  # row-major: BLAS multiplies by it faster
        pair = (scale, 1 - scale)
        bias_hh = b_hh * scale if gru and b_hh is not None else None
        h, c = h0.copy(), (c0.copy() if lstm else None)
        h_prev, ys = xp.empty((rows, h0.shape[1]), h0.dtype), xp.empty((rows, h0.shape[1]), h0.dtype)
        kept = [xp.empty((rows, k * hidden), x.dtype) for k in widths]
        for t in _order(ctx):
            a, b = offsets[t], offsets[t + 1]
            n = b - a
            hp = h_prev[a:b]
            hp[...] = h[:n]
            gh = hp @ w_hh_t
            if bias_hh is not None:
                gh += bias_hh
            h_new, c_new = step(xp, gi[a:b], gh, hp, c[:n] if lstm else None, [k[a:b] for k in kept], pair)
            if w_hr is not None:
                h_new = h_new @ w_hr.T
            h[:n] = ys[a:b] = h_new
            if lstm:
                c[:n] = c_new
        ctx.save(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, h_prev, *kept)
        return xp.concatenate([ys.ravel(), h.ravel()] + ([c.ravel()] if lstm else []))

    def backward(ctx, grad):
        x, h0, _, w_ih, w_hh, _, _, w_hr, h_prev, *kept = ctx.saved
        xp = array_module(grad)
        _, prepare, step_back, _, _ = _cell(xp, ctx.mode)
        offsets = list(itertools.accumulate(ctx.batch_sizes, initial=0))
        rows, (batch, out) = offsets[-1], h0.shape
        lstm = ctx.mode == "LSTM"
        dys = grad[:rows * out].reshape(rows, out)
        dh = grad[rows * out:(rows + batch) * out].reshape(batch, out).copy()
        dc = grad[(rows + batch) * out:].reshape(batch, ctx.hidden_size).copy() if lstm else None
        dgi = xp.empty((rows, w_hh.shape[0]), grad.dtype)
        dgh = dgi if ctx.mode != "GRU" else xp.empty_like(dgi)
        d_out = xp.empty((rows, out), grad.dtype) if w_hr is not None else None
        pre = prepare(xp, kept)
        # back through time: rows past batch_sizes[t] hold their gradient until the step that made their state
        for t in reversed(_order(ctx)):
            a, b = offsets[t], offsets[t + 1]
            n = b - a
            d = dh[:n] + dys[a:b]
            if w_hr is not None:
                d_out[a:b] = d
                d = d @ w_hr
            direct, dc_prev = step_back(xp, [k[a:b] for k in kept], [p[a:b] for p in pre], h_prev[a:b], d,
                                        dc[:n] if lstm else None, dgi[a:b], dgh[a:b])
            dh[:n] = dgh[a:b] @ w_hh if direct is None else dgh[a:b] @ w_hh + direct
            if lstm:
                dc[:n] = dc_prev
        need = ctx.needs_input_grad
        grads = [dgi @ w_ih if need[0] else None, dh, dc,
                 dgi.T @ x if need[3] else None, dgh.T @ h_prev if need[4] else None,
                 dgi.sum(0) if need[5] else None, dgh.sum(0) if need[6] else None, None]
        if w_hr is not None and need[7]:
            gates, _, tc = kept
            grads[7] = d_out.T @ (gates[:, 3 * ctx.hidden_size:] * tc)  # the projection's input: h before it
        return tuple(grads)


# one op per cell, named as torch names the modes ("lstm" in events, LstmBackward0 in the graph)
LAYER_OPS: dict[str, type] = {
    mode: type("".join(p.capitalize() for p in mode.split("_")), (RecurrentLayer,),
               {"op": mode.lower(), "mode": mode, "__doc__": f"One {mode} layer in one direction."})
    for mode in CELLS
}


@differentiable(*LAYER_OPS.values())
def _layer_graph_backward(ctx, g):
    """create_graph=True: the layer again from engine ops on the node's inputs, differentiated with its graph."""
    inputs = [None if a is None else derived(ctx, Alias, a, (i,)) for i, a in enumerate(ctx.saved[:8])]
    x, h0, c0, *weights = inputs
    ys, h, c = direction_composed(ctx.mode, _step_inputs(x, ctx.batch_sizes), ctx.batch_sizes, tuple(weights),
                                  h0, c0, ctx.reverse)
    out = _flat(ys, h, c)
    wanted = [i for i, t in enumerate(inputs) if t is not None and t.requires_grad]
    found = autograd_grad(out, [inputs[i] for i in wanted], g, create_graph=True, allow_unused=True)
    grads = [None] * len(inputs)
    for i, gi in zip(wanted, found):
        grads[i] = gi
    return tuple(grads)


def _flat(ys: list, h: Tensor, c) -> Tensor:
    parts = [ops.cat(ys, 0).reshape(-1), h.reshape(-1)] + ([c.reshape(-1)] if c is not None else [])
    return ops.cat(parts, 0)


def recurrent_layer(mode: str, input: Tensor, batch_sizes: list, weights: tuple, h0: Tensor, c0=None,
                    reverse: bool = False) -> tuple:
    """One layer of `mode` ("RNN_TANH", "RNN_RELU", "LSTM", "GRU") in one direction over packed rows
    (sum of batch_sizes, input_size), batch_sizes not increasing; weights (w_ih, w_hh, b_ih, b_hh, w_hr), any
    bias or w_hr None. Returns (output rows (sum of batch_sizes, H_out), h_n (N, H_out), c_n or None)."""
    w_ih, w_hh, b_ih, b_hh, w_hr = weights
    steps, rows, (batch, out) = len(batch_sizes), input.shape[0], h0.shape
    hidden = w_hh.shape[0] // CELLS[mode][0]
    flat = LAYER_OPS[mode].apply(input, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes=batch_sizes,
                                 hidden_size=hidden, reverse=reverse, steps=steps)
    ys = flat[:rows * out].view(rows, out)
    h = flat[rows * out:(rows + batch) * out].view(batch, out)
    c = flat[(rows + batch) * out:].view(batch, hidden) if c0 is not None else None
    return ys, h, c
