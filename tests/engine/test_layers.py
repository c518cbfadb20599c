"""Every layer against PyTorch: same weights (copied through numpy), same input, train and eval mode.

Each case builds the layer with `make(nn)`, where `nn` is `torch.nn` or `engine.nn` (the APIs match),
checks that repr and state_dict keys are torch's, loads torch's state_dict into ours, then compares
outputs (rtol 1e-3, atol 1e-5), parameter and input gradients (rtol 1e-3, atol 1e-4) and the state
afterwards (running statistics). Dropout layers run only with p=0 or in eval mode.
"""

import copy

import numpy as np
import pytest

import engine
import engine.nn as enn
from tests.engine.oracle import same_repr, torch

pytestmark = [
    pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the oracle of these tests)"),
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN"),
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths"),
]

FWD = {"rtol": 1e-3, "atol": 1e-5}
GRAD = {"rtol": 1e-3, "atol": 1e-4}


def _flatten(out) -> list:
    if out is None:
        return []
    if isinstance(out, tuple | list):
        return [t for o in out for t in _flatten(o)]
    return [out]


def _convert(value, to_torch: bool):
    """Numpy inputs (and keyword masks) as torch or engine tensors; floats require grad."""
    if not isinstance(value, np.ndarray):
        return value
    grad = value.dtype.kind == "f"
    return torch.tensor(value, requires_grad=grad) if to_torch else engine.tensor(value, requires_grad=grad)


def compare_case(case: tuple) -> None:
    """compare_with_torch on a CASES entry: (make, inputs[, kwargs[, modes]])."""
    make, inputs, *rest = case
    compare_with_torch(make, inputs, rest[0] if rest else None, rest[1] if len(rest) > 1 else (True, False))


def compare_with_torch(make, inputs, kwargs=None, modes=(True, False), method=None):
    """Run one layer case on torch and the engine and compare everything a user can see."""
    kwargs = kwargs or {}
    theirs, ours = make(torch.nn), make(enn)
    assert same_repr(ours, theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    for training in modes:
        theirs.train(training)
        ours.train(training)
        t_in = [_convert(a, True) for a in inputs]
        e_in = [_convert(a, False) for a in inputs]
        t_kw = {k: _convert(v, True) if not isinstance(v, np.ndarray) or v.dtype.kind != "f"
                else torch.tensor(v) for k, v in kwargs.items()}
        e_kw = {k: _convert(v, False) if not isinstance(v, np.ndarray) or v.dtype.kind != "f"
                else engine.tensor(v) for k, v in kwargs.items()}
        t_out = _flatten(getattr(theirs, method or "__call__")(*t_in, **t_kw))
        e_out = _flatten(getattr(ours, method or "__call__")(*e_in, **e_kw))
        assert len(e_out) == len(t_out)
        rng = np.random.default_rng(1)
        t_loss = e_loss = None
        for t, e in zip(t_out, e_out):
            assert tuple(e.shape) == tuple(t.shape)
            assert e.dtype.name == str(t.dtype).removeprefix("torch.")
            np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), **FWD)
            if t.requires_grad:
                r = rng.standard_normal(tuple(t.shape)).astype(np.float32)
                t_term, e_term = (t * torch.tensor(r)).sum(), (e * engine.tensor(r)).sum()
                t_loss = t_term if t_loss is None else t_loss + t_term
                e_loss = e_term if e_loss is None else e_loss + e_term
        if t_loss is not None:
            theirs.zero_grad()
            ours.zero_grad()
            t_loss.backward()
            e_loss.backward()
            t_params = dict(theirs.named_parameters())
            for name, p in ours.named_parameters():
                ref = t_params[name].grad
                if ref is None:
                    assert p.grad is None or not np.any(p.grad.numpy()), f"{name}: torch gives no gradient"
                else:
                    np.testing.assert_allclose(p.grad.numpy(), ref.numpy(), err_msg=name, **GRAD)
            for i, (t, e) in enumerate(zip(t_in, e_in)):
                if isinstance(t, torch.Tensor) and t.grad is not None:
                    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), err_msg=f"input {i}", **GRAD)
        for (name, t), e in zip(theirs.state_dict().items(), ours.state_dict().values()):
            np.testing.assert_allclose(e.numpy(), t.numpy(), err_msg=f"state {name}", **FWD)


def R(*shape):
    return np.random.default_rng(sum(shape) + len(shape)).standard_normal(shape).astype(np.float32)


def ints(high, *shape):
    return np.random.default_rng(7).integers(0, high, shape)


def probs(*shape):
    return (1 / (1 + np.exp(-R(*shape)))).astype(np.float32)


def _vector(nn, values):
    """A constant tensor of the library `nn` belongs to (loss weights are tensors, kept as buffers)."""
    return torch.tensor(values) if nn is torch.nn else engine.tensor(values)


CAUSAL = np.triu(np.ones((5, 5), bool), 1)
PADDING = np.array([[False] * 5, [False, False, False, True, True]])

# id: (make(nn), inputs, keyword arguments of the call, modes (training flags))
CASES = {
    # affine
    "Linear": (lambda nn: nn.Linear(4, 3), [R(2, 4)]),
    "Linear-3d-nobias": (lambda nn: nn.Linear(4, 3, bias=False), [R(2, 5, 4)]),
    "Bilinear": (lambda nn: nn.Bilinear(3, 4, 2), [R(5, 3), R(5, 4)]),
    "Identity": (lambda nn: nn.Identity(3, unused=True), [R(2, 3)]),
    # convolution and pooling
    "Conv1d": (lambda nn: nn.Conv1d(2, 3, 3, stride=2, padding=1), [R(2, 2, 7)]),
    "Conv2d": (lambda nn: nn.Conv2d(2, 4, 3, stride=2, padding=1, bias=False), [R(2, 2, 6, 5)]),
    "Conv2d-groups-dilation": (lambda nn: nn.Conv2d(4, 6, (3, 2), dilation=(2, 1), groups=2),
                               [R(1, 4, 7, 5)]),
    "Conv2d-same": (lambda nn: nn.Conv2d(2, 3, 4, padding="same"), [R(1, 2, 5, 5)]),
    "Conv2d-reflect": (lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), [R(1, 2, 5, 5)]),
    "Conv2d-circular": (lambda nn: nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="circular"),
                        [R(1, 2, 5, 5)]),
    "ConvTranspose2d": (lambda nn: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1),
                        [R(1, 2, 4, 4)]),
    "ConvTranspose2d-output_size": (lambda nn: nn.ConvTranspose2d(4, 2, 3, stride=2, groups=2),
                                    [R(1, 4, 3, 3)], {"output_size": [8, 8]}),
    "ConvTranspose1d": (lambda nn: nn.ConvTranspose1d(2, 3, 4, stride=3, dilation=2, bias=False),
                        [R(2, 2, 5)]),
    "MaxPool1d": (lambda nn: nn.MaxPool1d(3, stride=2, padding=1), [R(2, 3, 8)]),
    "AvgPool1d": (lambda nn: nn.AvgPool1d(3, stride=2), [R(2, 3, 8)]),
    "AdaptiveAvgPool1d": (lambda nn: nn.AdaptiveAvgPool1d(3), [R(2, 3, 8)]),
    "MaxPool2d": (lambda nn: nn.MaxPool2d(2), [R(1, 2, 6, 6)]),
    "MaxPool2d-padded": (lambda nn: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), [R(1, 2, 6, 7)]),
    "AvgPool2d": (lambda nn: nn.AvgPool2d(2), [R(1, 2, 6, 6)]),
    "AvgPool2d-nopad-count": (lambda nn: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                              [R(1, 2, 5, 6)]),
    "AdaptiveAvgPool2d": (lambda nn: nn.AdaptiveAvgPool2d((2, 3)), [R(1, 2, 5, 7)]),
    # normalization (train mode updates the running statistics, eval then uses them)
    "BatchNorm1d": (lambda nn: nn.BatchNorm1d(3), [R(4, 3)]),
    "BatchNorm1d-3d-cumulative": (lambda nn: nn.BatchNorm1d(3, momentum=None), [R(4, 3, 5)]),
    "BatchNorm2d": (lambda nn: nn.BatchNorm2d(3), [R(2, 3, 4, 4)]),
    "BatchNorm2d-noaffine": (lambda nn: nn.BatchNorm2d(3, affine=False), [R(2, 3, 4, 4)]),
    "BatchNorm2d-nostats": (lambda nn: nn.BatchNorm2d(3, track_running_stats=False), [R(2, 3, 4, 4)]),
    "LayerNorm": (lambda nn: nn.LayerNorm((3, 4)), [R(2, 3, 4)]),
    "LayerNorm-nobias": (lambda nn: nn.LayerNorm(4, eps=1e-3, bias=False), [R(2, 3, 4)]),
    "GroupNorm": (lambda nn: nn.GroupNorm(2, 4), [R(2, 4, 3, 3)]),
    # dropout and embedding
    "Dropout-p0": (lambda nn: nn.Dropout(0.0), [R(3, 4)]),
    "Dropout-eval": (lambda nn: nn.Dropout(0.5), [R(3, 4)], None, (False,)),
    "Embedding": (lambda nn: nn.Embedding(10, 3, padding_idx=0), [ints(10, 2, 5)]),
    # activations
    "ReLU": (lambda nn: nn.ReLU(), [R(3, 4)]),
    "LeakyReLU": (lambda nn: nn.LeakyReLU(0.2), [R(3, 4)]),
    "ELU": (lambda nn: nn.ELU(alpha=0.5), [R(3, 4)]),
    "GELU": (lambda nn: nn.GELU(), [R(3, 4)]),
    "GELU-tanh": (lambda nn: nn.GELU("tanh"), [R(3, 4)]),
    "SiLU": (lambda nn: nn.SiLU(), [R(3, 4)]),
    "Tanh": (lambda nn: nn.Tanh(), [R(3, 4)]),
    "Sigmoid": (lambda nn: nn.Sigmoid(), [R(3, 4)]),
    "Softplus": (lambda nn: nn.Softplus(beta=2, threshold=1), [R(3, 4)]),
    "Softmax": (lambda nn: nn.Softmax(dim=1), [R(3, 4)]),
    "LogSoftmax": (lambda nn: nn.LogSoftmax(dim=-1), [R(3, 4)]),
    # shape and containers
    "Flatten": (lambda nn: nn.Flatten(), [R(2, 3, 4)]),
    "Unflatten": (lambda nn: nn.Unflatten(1, (2, 3)), [R(2, 6)]),
    "Sequential": (lambda nn: nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)), [R(3, 4)]),
    # attention
    "MultiheadAttention": (lambda nn: nn.MultiheadAttention(8, 2), [R(5, 2, 8), R(4, 2, 8), R(4, 2, 8)]),
    "MultiheadAttention-batch_first-per-head": (
        lambda nn: nn.MultiheadAttention(8, 2, batch_first=True), [R(2, 5, 8)] * 3,
        {"average_attn_weights": False}),
    "MultiheadAttention-nobias-noweights": (
        lambda nn: nn.MultiheadAttention(8, 4, bias=False), [R(5, 2, 8)] * 3, {"need_weights": False}),
    "MultiheadAttention-kdim-vdim": (
        lambda nn: nn.MultiheadAttention(8, 2, kdim=3, vdim=5), [R(5, 2, 8), R(4, 2, 3), R(4, 2, 5)]),
    "MultiheadAttention-bias_kv-zero_attn": (
        lambda nn: nn.MultiheadAttention(8, 2, add_bias_kv=True, add_zero_attn=True), [R(5, 2, 8)] * 3,
        {"attn_mask": CAUSAL, "key_padding_mask": PADDING}),
    "MultiheadAttention-unbatched": (lambda nn: nn.MultiheadAttention(8, 2), [R(5, 8)] * 3),
    "MultiheadAttention-masks": (
        lambda nn: nn.MultiheadAttention(8, 2, batch_first=True), [R(2, 5, 8)] * 3,
        {"attn_mask": CAUSAL, "key_padding_mask": PADDING}),
    "MultiheadAttention-float-3d-mask": (
        lambda nn: nn.MultiheadAttention(8, 2, batch_first=True), [R(2, 5, 8)] * 3,
        {"attn_mask": R(4, 5, 5)}),
    "MultiheadAttention-dropout-eval": (
        lambda nn: nn.MultiheadAttention(8, 2, dropout=0.5), [R(5, 2, 8)] * 3, None, (False,)),
    "TransformerEncoderLayer": (lambda nn: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), [R(5, 2, 8)]),
    "TransformerEncoderLayer-norm_first-gelu": (
        lambda nn: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu", batch_first=True,
                                              norm_first=True),
        [R(2, 5, 8)], {"src_key_padding_mask": PADDING}),
    "TransformerEncoderLayer-causal-eval": (
        lambda nn: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), [R(2, 5, 8)],
        {"src_mask": CAUSAL, "is_causal": True}, (False,)),
    "TransformerEncoder": (
        lambda nn: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                                         2, norm=nn.LayerNorm(8), enable_nested_tensor=False),
        [R(2, 5, 8)]),
    # recurrent
    "RNN": (lambda nn: nn.RNN(3, 4), [R(5, 2, 3)]),
    "RNN-relu-2layers-batch_first": (lambda nn: nn.RNN(3, 4, 2, nonlinearity="relu", batch_first=True),
                                     [R(2, 5, 3)]),
    "LSTM": (lambda nn: nn.LSTM(3, 4), [R(5, 2, 3)]),
    "LSTM-2layers-bidirectional": (lambda nn: nn.LSTM(3, 4, 2, batch_first=True, bidirectional=True),
                                   [R(2, 5, 3)]),
    "LSTM-proj": (lambda nn: nn.LSTM(3, 4, proj_size=2), [R(5, 2, 3)]),
    "LSTM-dropout-eval": (lambda nn: nn.LSTM(3, 4, 2, dropout=0.5), [R(5, 2, 3)], None, (False,)),
    "GRU-bidirectional": (lambda nn: nn.GRU(3, 4, 2, bidirectional=True), [R(5, 2, 3)]),
    "GRU-hidden-nobias": (lambda nn: nn.GRU(3, 4, bias=False), [R(5, 2, 3), R(1, 2, 4)]),
    "GRU-unbatched": (lambda nn: nn.GRU(3, 4), [R(5, 3)]),
    "RNNCell": (lambda nn: nn.RNNCell(3, 4, nonlinearity="relu"), [R(2, 3), R(2, 4)]),
    "LSTMCell": (lambda nn: nn.LSTMCell(3, 4), [R(2, 3)]),
    "GRUCell": (lambda nn: nn.GRUCell(3, 4), [R(2, 3), R(2, 4)]),
    # losses
    "CrossEntropyLoss": (lambda nn: nn.CrossEntropyLoss(), [R(4, 5), ints(5, 4)]),
    "CrossEntropyLoss-smoothing-ignore": (lambda nn: nn.CrossEntropyLoss(ignore_index=2, label_smoothing=0.1),
                                          [R(4, 5), ints(5, 4)]),
    "CrossEntropyLoss-weight": (lambda nn: nn.CrossEntropyLoss(weight=_vector(nn, [1.0, 2.0, 0.5, 1.0, 3.0])),
                                [R(4, 5), ints(5, 4)]),
    "NLLLoss-sum": (lambda nn: nn.NLLLoss(reduction="sum"), [R(4, 5), ints(5, 4)]),
    "MSELoss": (lambda nn: nn.MSELoss(), [R(3, 4), R(3, 4)]),
    "L1Loss-none": (lambda nn: nn.L1Loss(reduction="none"), [R(3, 4), R(3, 4)]),
    "SmoothL1Loss": (lambda nn: nn.SmoothL1Loss(beta=0.5), [R(3, 4), R(3, 4)]),
    "HuberLoss": (lambda nn: nn.HuberLoss(delta=0.5), [R(3, 4), R(3, 4)]),
    "BCELoss": (lambda nn: nn.BCELoss(), [probs(3, 4), probs(3, 4)]),
    "BCEWithLogitsLoss": (lambda nn: nn.BCEWithLogitsLoss(), [R(3, 4), probs(3, 4)]),
    "BCEWithLogitsLoss-pos_weight": (
        lambda nn: nn.BCEWithLogitsLoss(pos_weight=_vector(nn, [2.0, 1.0, 0.5, 3.0])),
        [R(3, 4), probs(3, 4)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_layer_matches_torch(case):
    compare_case(CASES[case])


def test_lstm_with_initial_state_matches_torch():
    compare_with_torch(lambda nn: _LSTMWithState(nn), [R(5, 2, 3), R(2, 2, 4), R(2, 2, 4)])


def _LSTMWithState(nn):
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, 2)

        def forward(self, x, h, c):
            return self.lstm(x, (h, c))

    return Wrapper()


def test_batchnorm_counts_batches_and_eval_uses_running_stats():
    bn = enn.BatchNorm1d(2)
    for _ in range(3):
        bn(engine.randn(8, 2) * 3 + 5)
    assert bn.num_batches_tracked.item() == 3
    assert np.all(bn.running_mean.numpy() > 1)
    bn.eval()
    x = engine.randn(4, 2)
    expected = (x.numpy() - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + bn.eps)
    np.testing.assert_allclose(bn(x).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="2D or 3D input"):
        bn(engine.randn(2, 2, 2, 2))


def test_dropout_zeroes_and_scales_in_training_only():
    d = enn.Dropout(0.5)
    x = engine.ones(2000)
    y = d(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    d.eval()
    assert d(x) is x or np.array_equal(d(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match="between 0 and 1"):
        enn.Dropout(1.5)


def test_layer_argument_errors_are_clear():
    with pytest.raises(ValueError, match="divisible by groups"):
        enn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        enn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="divisible by num_heads"):
        enn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="num_groups"):
        enn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="input_size"):
        enn.GRU(3, 4)(engine.randn(5, 2, 2))
    with pytest.raises(ValueError, match=r"h_0 of shape \[1, 2, 4\]"):
        enn.RNN(3, 4)(engine.randn(5, 2, 3), engine.zeros(1, 3, 4))
    with pytest.raises(RuntimeError, match="relu/gelu"):
        enn.TransformerEncoderLayer(8, 2, activation="swish")


def test_every_parameter_gets_a_gradient_in_a_small_model():
    model = enn.Sequential(enn.Conv2d(1, 2, 3, padding=1), enn.BatchNorm2d(2), enn.ReLU(), enn.MaxPool2d(2),
                           enn.Flatten(), enn.Linear(8, 3))
    loss = enn.CrossEntropyLoss()(model(engine.randn(4, 1, 4, 4)), engine.tensor([0, 1, 2, 1]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


# ---- GPU: the same layers give the same numbers on a CUDA device -------------------------------------
GPU_CASES = ["Linear", "Conv2d", "Conv2d-reflect", "ConvTranspose2d", "MaxPool2d", "BatchNorm2d", "LayerNorm",
             "GroupNorm", "Embedding", "MultiheadAttention-masks", "TransformerEncoderLayer", "LSTM-proj",
             "GRU-bidirectional", "CrossEntropyLoss", "BCEWithLogitsLoss-pos_weight"]


def _cuda() -> None:
    try:
        engine.zeros(1, device="cuda")
    except RuntimeError as err:  # the engine says why: no CuPy, or no device
        pytest.skip(f"needs a CUDA GPU: {err}")


def _to(value, device):
    if isinstance(value, np.ndarray):
        return engine.tensor(value, device=device, requires_grad=value.dtype.kind == "f")
    return value


@pytest.mark.gpu
@pytest.mark.parametrize("case", GPU_CASES)
def test_layer_on_gpu_matches_cpu(case):
    _cuda()
    make, inputs, *rest = CASES[case]
    kwargs = rest[0] if rest and rest[0] else {}
    cpu = make(enn)
    gpu = copy.deepcopy(cpu).to("cuda")
    assert all(p.device.type == "cuda" for p in gpu.parameters())
    outs = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        args = [_to(a, device) for a in inputs]
        kw = {k: engine.tensor(v, device=device) if isinstance(v, np.ndarray) else v
              for k, v in kwargs.items()}
        out = _flatten(model(*args, **kw))
        sum(o.sum() * (i + 1) for i, o in enumerate(out) if o.requires_grad).backward()
        outs.append(([o.detach().cpu().numpy() for o in out],
                     {n: p.grad.cpu().numpy() for n, p in model.named_parameters() if p.grad is not None}))
    (cpu_out, cpu_grads), (gpu_out, gpu_grads) = outs
    for a, b in zip(cpu_out, gpu_out):
        np.testing.assert_allclose(b, a, **FWD)
    assert cpu_grads.keys() == gpu_grads.keys()
    for name, g in cpu_grads.items():
        np.testing.assert_allclose(gpu_grads[name], g, err_msg=name, **GRAD)
    for name, t in gpu.state_dict().items():
        np.testing.assert_allclose(t.cpu().numpy(), cpu.state_dict()[name].numpy(), err_msg=name, **FWD)


@pytest.mark.gpu
def test_layers_built_on_gpu_are_initialized_there():
    _cuda()
    lin = enn.Linear(300, 200, device="cuda")
    w = lin.weight.detach().cpu().numpy()
    assert lin.weight.device.type == "cuda" and np.abs(w).max() <= 1 / np.sqrt(300)
    assert abs(w.std() - 1 / np.sqrt(300) / np.sqrt(3)) < 0.05 / np.sqrt(300)
    lstm = enn.LSTM(3, 4, device="cuda")
    out, (h, c) = lstm(engine.randn(5, 2, 3, device="cuda"))
    assert out.device.type == h.device.type == c.device.type == "cuda"
    p = lin.weight
    p.grad = engine.ones(200, 300, device="cuda")
    total = enn.utils.clip_grad_norm_(lin.parameters(), 1.0)
    assert total.device.type == "cuda" and float(total) == pytest.approx(np.sqrt(200 * 300), rel=1e-5)
