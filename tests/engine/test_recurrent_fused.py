"""RNN, LSTM and GRU layers as one op per layer and direction (engine.ops.recurrent_fused), against PyTorch on
identical weights: outputs, final states and every gradient, over packed, padded, batch-first and unbatched
input, float64 finite differences, double backward, and the events a recorded run emits."""

import contextlib
import itertools
import warnings

import numpy as np
import pytest

import engine
import engine.nn as enn
from engine.events import BackwardEvent, OpEvent
from engine.nn.utils import rnn
from engine.ops.recurrent_fused import recurrent_layer
from tests.engine.oracle import GRAD_ATOL, GRAD_RTOL, cuda_or_skip, finite_difference_check, needs_torch, torch

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

FWD = dict(rtol=1e-3, atol=1e-6)
GRAD = dict(rtol=GRAD_RTOL, atol=GRAD_ATOL)
T, B, I, H, P = 6, 4, 3, 5, 3
# name: (module class, its options, the op name in events)
MODES = {
    "RNN_TANH": ("RNN", {}, "rnn_tanh"),
    "RNN_RELU": ("RNN", {"nonlinearity": "relu"}, "rnn_relu"),
    "LSTM": ("LSTM", {}, "lstm"),
    "LSTM_PROJ": ("LSTM", {"proj_size": P}, "lstm"),
    "GRU": ("GRU", {}, "gru"),
}
# per-step ops of the layers as they were composed: none of them may run now
STEP_OPS = {"linear", "tanh", "sigmoid", "relu", "split", "matmul"}
KINDS = ["padded", "batch_first", "packed_sorted", "packed_unsorted", "unbatched"]
LENGTHS = {"packed_sorted": [6, 4, 4, 1], "packed_unsorted": [4, 6, 1, 4]}


def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _events(fn):
    """fn()'s OpEvents and BackwardEvents, recorded by an idle subscriber."""
    seen = []
    off = engine.hub.subscribe(seen.append)
    try:
        fn()
    finally:
        off()
    return [e for e in seen if isinstance(e, OpEvent | BackwardEvent)]


def _fused(name, layers, directions, fn, create_graph=False):
    """fn(), checked to run each layer and direction as one op of its own and (unless create_graph=True recomputes
    the layers from engine ops to differentiate them) none of the per-step ops."""
    results = []
    ops = [e.op for e in _events(lambda: results.append(fn())) if isinstance(e, OpEvent)]
    assert ops.count(MODES[name][2]) == layers * directions
    assert create_graph or not STEP_OPS & set(ops)
    return results[0]


def _run(lib, model, kind, x, hx, dtype, device="cpu"):
    """Run `model` on x (and hx) as `kind`; backward of a random weighting of every output. Returns the outputs,
    the leaves (x, h0[, c0]) and the parameters."""
    lstm = type(model).__name__ == "LSTM"
    xs = lib.tensor(x, requires_grad=True, device=device)
    states = [lib.tensor(h, requires_grad=True, device=device) for h in hx] if hx is not None else []
    given = (tuple(states) if lstm else states[0]) if hx is not None else None
    inp = xs
    if kind.startswith("packed"):
        utils = torch.nn.utils.rnn if lib is torch else rnn
        inp = utils.pack_padded_sequence(xs, LENGTHS[kind], enforce_sorted=kind == "packed_sorted")
    out, state = model(inp, given)
    outputs = [out.data if kind.startswith("packed") else out, *(state if lstm else [state])]
    r = [lib.tensor(rand(*o.shape, seed=10 + i, dtype=dtype), device=device) for i, o in enumerate(outputs)]
    sum((o * w).sum() for o, w in zip(outputs, r)).backward()
    return outputs, [xs, *states], dict(model.named_parameters())


def _models(name, layers, bidirectional, batch_first=False, dtype=np.float32):
    cls, options, _ = MODES[name]
    make = dict(options, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    theirs, ours = getattr(torch.nn, cls)(I, H, **make), getattr(enn, cls)(I, H, **make)
    if dtype == np.float64:
        theirs, ours = theirs.double(), ours.to(dtype=engine.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


def _inputs(name, layers, bidirectional, kind, given_hx, dtype=np.float32):
    x = rand(*{"batch_first": (B, T, I), "unbatched": (T, I)}.get(kind, (T, B, I)), dtype=dtype)
    if not given_hx:
        return x, None
    lead = (layers * (2 if bidirectional else 1),) + (() if kind == "unbatched" else (B,))
    out = P if name == "LSTM_PROJ" else H
    hx = [rand(*lead, out, seed=1, dtype=dtype)]
    if MODES[name][0] == "LSTM":
        hx.append(rand(*lead, H, seed=2, dtype=dtype))
    return x, hx


def _compare(name, layers, bidirectional, kind, given_hx):
    theirs, ours = _models(name, layers, bidirectional, batch_first=kind == "batch_first")
    x, hx = _inputs(name, layers, bidirectional, kind, given_hx)
    t_out, t_leaves, t_params = _run(torch, theirs, kind, x, hx, np.float32)
    directions = 2 if bidirectional else 1
    e_out, e_leaves, e_params = _fused(name, layers, directions, lambda: _run(engine, ours, kind, x, hx, np.float32))
    for e, t in zip(e_out, t_out, strict=True):
        assert tuple(e.shape) == tuple(t.shape)
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), **FWD)
    for e, t in zip(e_leaves, t_leaves, strict=True):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), **GRAD)
    for k, p in t_params.items():
        np.testing.assert_allclose(e_params[k].grad.numpy(), p.grad.numpy(), **GRAD, err_msg=k)


CASES = list(itertools.product(MODES, [1, 2], [False, True], KINDS, [False, True]))


@needs_torch
@pytest.mark.parametrize("name, layers, bidirectional, kind, given_hx", CASES)
def test_layers_match_torch(name, layers, bidirectional, kind, given_hx):
    _compare(name, layers, bidirectional, kind, given_hx)


@needs_torch
@pytest.mark.parametrize("name", MODES)
@pytest.mark.parametrize("used", ["output", "h_n", "c_n"])
def test_outputs_left_unused_pass_no_gradient(name, used):
    if used == "c_n" and MODES[name][0] != "LSTM":
        pytest.skip("only an LSTM has c_n")
    theirs, ours = _models(name, 2, True)
    x = rand(T, B, I)

    def grads(lib, model):
        xs = lib.tensor(x, requires_grad=True)
        out, state = model(xs)
        h, c = state if MODES[name][0] == "LSTM" else (state, None)
        ({"output": out, "h_n": h, "c_n": c}[used] ** 2).sum().backward()
        return [xs.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]

    grads = [grads(torch, theirs), _fused(name, 2, 2, lambda: grads(engine, ours))]
    for t, e in zip(*grads, strict=True):
        np.testing.assert_allclose(e, t, **GRAD)


@needs_torch
@pytest.mark.parametrize("name", MODES)
def test_an_empty_batch_runs_as_in_torch(name):
    theirs, ours = _models(name, 2, True)
    x = rand(T, 0, I)
    e, t = _fused(name, 2, 2, lambda: ours(engine.tensor(x))), theirs(torch.tensor(x))
    assert tuple(e[0].shape) == tuple(t[0].shape)
    for a, b in zip(e[1] if MODES[name][0] == "LSTM" else e[1:], t[1] if MODES[name][0] == "LSTM" else t[1:]):
        assert tuple(a.shape) == tuple(b.shape)


# ---- float64 finite differences of the op itself ---------------------------------------------------------
@pytest.mark.parametrize("name", MODES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("batch_sizes", [[3, 3, 3], [3, 2, 2, 1]])
def test_gradients_match_finite_differences(name, reverse, batch_sizes):
    cls, options, _ = MODES[name]
    mode = {"RNN": "RNN_TANH" if options.get("nonlinearity", "tanh") == "tanh" else "RNN_RELU"}.get(cls, cls)
    gates = {"LSTM": 4, "GRU": 3}.get(cls, 1)
    h, out = 2, (options.get("proj_size") and 1) or 2
    rows, n = sum(batch_sizes), batch_sizes[0]
    shapes = [(rows, 2), (n, out), (gates * h, 2), (gates * h, out), (gates * h,), (gates * h,)]
    if cls == "LSTM":
        shapes.append((n, h))
    if options.get("proj_size"):
        shapes.append((out, h))
    arrays = [rand(*s, seed=i, dtype=np.float64) * 0.7 for i, s in enumerate(shapes)]

    def fn(x, h0, w_ih, w_hh, b_ih, b_hh, c0=None, w_hr=None):
        ys, hn, cn = recurrent_layer(mode, x, batch_sizes, (w_ih, w_hh, b_ih, b_hh, w_hr), h0, c0, reverse)
        return engine.cat([ys.reshape(-1), hn.reshape(-1)] + ([cn.reshape(-1)] if cn is not None else []))

    finite_difference_check(fn, arrays)


def test_a_layer_without_biases_matches_finite_differences():
    arrays = [rand(*s, seed=i, dtype=np.float64) * 0.7 for i, s in enumerate([(7, 2), (3, 2), (8, 2), (8, 2), (3, 2)])]

    def fn(x, h0, w_ih, w_hh, c0):
        ys, hn, cn = recurrent_layer("LSTM", x, [3, 2, 2], (w_ih, w_hh, None, None, None), h0, c0, True)
        return engine.cat([ys.reshape(-1), hn.reshape(-1), cn.reshape(-1)])

    finite_difference_check(fn, arrays)


# ---- create_graph=True: a gradient penalty through the layers ---------------------------------------------
def _penalty(lib, model, kind, x, hx):
    lstm = type(model).__name__ == "LSTM"
    xs = lib.tensor(x, requires_grad=True)
    states = [lib.tensor(h, requires_grad=True) for h in hx]
    inp = xs
    if kind.startswith("packed"):
        utils = torch.nn.utils.rnn if lib is torch else rnn
        inp = utils.pack_padded_sequence(xs, LENGTHS[kind], enforce_sorted=kind == "packed_sorted")
    out, state = model(inp, tuple(states) if lstm else states[0])
    h = state[0] if lstm else state
    data = out.data if kind.startswith("packed") else out
    loss = (data * data).sum() + (h * h * h).sum() + ((state[1] ** 2).sum() if lstm else 0)
    gx, gh = lib.autograd.grad(loss, [xs, states[0]], create_graph=True)
    penalty = (gx * gx).sum() + (gh * gh).sum()
    penalty.backward()
    return penalty, [xs.grad, *(s.grad for s in states)] + [p.grad for p in model.parameters()]


@needs_torch
@pytest.mark.parametrize("name", MODES)
@pytest.mark.parametrize("kind", ["padded", "packed_unsorted"])
def test_double_backward_matches_torch(name, kind):
    theirs, ours = _models(name, 2, True, dtype=np.float64)
    x, hx = _inputs(name, 2, True, kind, True, dtype=np.float64)
    pt, gt = _penalty(torch, theirs, kind, x, hx)
    pe, ge = _fused(name, 2, 2, lambda: _penalty(engine, ours, kind, x, hx), create_graph=True)
    np.testing.assert_allclose(pe.item(), pt.item(), rtol=1e-9)
    for e, t in zip(ge, gt, strict=True):
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-8, atol=1e-10)


# ---- what a recorded run shows -----------------------------------------------------------------------------
def _lstm_events(steps):
    engine.manual_seed(0)
    model = enn.LSTM(4, 8, num_layers=2)
    x = engine.randn(steps, 3, 4, requires_grad=True)

    def run():
        out, (h, _) = model(x)
        (out.sum() + h.sum()).backward()

    return _events(run)


def test_a_recorded_lstm_emits_events_per_layer_not_per_step():
    events = _lstm_events(20)
    assert len(events) == len(_lstm_events(40)) < 80
    layers = [e for e in events if e.op == "lstm"]
    assert [type(e) for e in layers] == [OpEvent, OpEvent, BackwardEvent, BackwardEvent]
    assert layers[0].args == {"hidden_size": 8, "reverse": False, "steps": 20}


@pytest.mark.parametrize("name", MODES)
def test_each_cell_is_named_in_the_graph(name):
    _, _, op = MODES[name]
    cls, options, _ = MODES[name]
    model = getattr(enn, cls)(I, H, bidirectional=True, **options)
    out = model(engine.randn(T, B, I))[0]
    events = _events(lambda: model(engine.randn(T, B, I))[0].sum().backward())
    reverse = [e.args["reverse"] for e in events if isinstance(e, OpEvent) and e.op == op]
    assert reverse == [False, True]
    assert out.grad_fn is not None


# ---- bad input -----------------------------------------------------------------------------------------------
def test_an_input_of_another_dtype_than_the_weights_is_refused_as_in_torch():
    with pytest.raises(ValueError, match=r"input dtype \(engine.float64\) does not match weight dtype"):
        enn.LSTM(3, 4)(engine.randn(5, 2, 3, dtype=engine.float64))


def test_an_initial_state_of_another_dtype_is_refused():
    with pytest.raises(RuntimeError, match=r"expected h_0 of dtype engine\.float32"):
        enn.GRU(3, 4)(engine.randn(5, 2, 3), engine.randn(1, 2, 4, dtype=engine.float64))


def test_an_empty_sequence_is_refused_as_in_torch():
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
        enn.LSTM(3, 4)(engine.randn(0, 2, 3))


# ---- GPU ---------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("name", MODES)
def test_layers_on_cuda_match_cpu(name):
    cuda_or_skip()
    cls, options, _ = MODES[name]
    engine.manual_seed(0)
    model = getattr(enn, cls)(I, H, num_layers=2, bidirectional=True, **options)
    x, hx = _inputs(name, 2, True, "packed_unsorted", True)
    cpu_out, cpu_leaves, cpu_params = _run(engine, model, "packed_unsorted", x, hx, np.float32)
    cpu_grads = {k: p.grad.numpy().copy() for k, p in cpu_params.items()}  # .to moves these very parameters
    model.zero_grad()
    model.to("cuda")
    gpu_out, gpu_leaves, gpu_params = _run(engine, model, "packed_unsorted", x, hx, np.float32, device="cuda")
    close = dict(rtol=1e-4, atol=1e-5)
    for e, c in zip(gpu_out + gpu_leaves, cpu_out + cpu_leaves, strict=True):
        np.testing.assert_allclose(e.detach().cpu().numpy(), c.detach().numpy(), **close)
    for e, c in zip(gpu_leaves, cpu_leaves, strict=True):
        np.testing.assert_allclose(e.grad.cpu().numpy(), c.grad.numpy(), **close)
    for k, grad in cpu_grads.items():
        np.testing.assert_allclose(gpu_params[k].grad.cpu().numpy(), grad, **close, err_msg=k)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["LSTM", "LSTM_PROJ", "GRU"])
def test_fused_gpu_cells_match_the_array_formulas_on_cuda(name):
    # engine.kernels' one-launch LSTM/GRU steps against the same layer's array formulas, on the GPU
    cuda_or_skip()
    from engine import kernels

    cls, options, _ = MODES[name]
    engine.manual_seed(0)
    model = getattr(enn, cls)(I, H, num_layers=2, bidirectional=True, **options).to("cuda")
    x, hx = _inputs(name, 2, True, "packed_unsorted", True)
    runs = []
    for fused in (True, False):
        model.zero_grad()
        with contextlib.nullcontext() if fused else kernels.disabled():
            out, leaves, params = _run(engine, model, "packed_unsorted", x, hx, np.float32, device="cuda")
        runs.append([t.detach().cpu().numpy() for t in out + leaves]
                    + [t.grad.cpu().numpy() for t in leaves] + [p.grad.cpu().numpy() for p in params.values()])
    for a, b in zip(*runs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_dropout_on_one_layer_warns_at_the_users_line_as_torch_does(name):
    with pytest.warns(UserWarning, match=rf"{name}: dropout=0.5 falls between recurrent layers.*num_layers=1") as w:
        getattr(enn, name)(3, 4, num_layers=1, dropout=0.5)
    assert w[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(enn, name)(3, 4, num_layers=2, dropout=0.5)  # between its two layers: no warning
        getattr(enn, name)(3, 4, num_layers=1)
