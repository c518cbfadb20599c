"""Porting round 2: a ResNet, a U-Net, a Transformer classifier and the training utilities around them.

Each script ran under PyTorch and then under the engine with `import engine as torch`; these tests hold
what broke or differed, and the whole models' losses against PyTorch on identical weights and data.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

import engine
from tests.engine.oracle import needs_torch, torch


def _same_repr(ours, ref) -> None:
    assert repr(ours) == repr(ref).replace("torch", "engine")


# ---- engine.Size: what t.shape and t.size() return ------------------------------------------------
SIZE_IDIOMS = {
    "shape": lambda lib, t: t.shape,
    "size": lambda lib, t: t.size(),
    "plus_tuple": lambda lib, t: t.shape + (1,),  # noqa: RUF005 (the concatenation is what is tested)
    "tuple_plus": lambda lib, t: (1,) + t.shape,  # noqa: RUF005
    "times": lambda lib, t: t.shape * 2,
    "made": lambda lib, t: lib.Size([2, 3]),
    "empty": lambda lib, t: lib.zeros(()).shape,
    "broadcast_shapes": lambda lib, t: lib.broadcast_shapes((2, 1), 3),
}


@needs_torch
@pytest.mark.parametrize("idiom", list(SIZE_IDIOMS))
def test_shapes_are_sizes_as_in_torch(idiom):
    ours = SIZE_IDIOMS[idiom](engine, engine.zeros(2, 3))
    ref = SIZE_IDIOMS[idiom](torch, torch.zeros(2, 3))
    assert isinstance(ours, engine.Size) and isinstance(ours, tuple)
    _same_repr(ours, ref)
    assert str(ours) == str(ref).replace("torch", "engine")
    assert ours.numel() == ref.numel()


def test_a_size_is_still_the_tuple_it_was():
    t = engine.zeros(2, 3)
    assert t.shape == engine.Size([2, 3]) == (2, 3) and hash(t.shape) == hash((2, 3))
    assert t.shape[0] == 2 and t.shape[-1] == 3 and t.size(1) == 3 and type(t.shape[0]) is int
    batch, *rest = t.shape
    assert (batch, rest) == (2, [3])
    assert np.zeros(t.shape).shape == (2, 3)
    assert t.size()[1:] == (3,) and t.shape[::-1] == (3, 2)  # plain tuples here (engine.Size's docstring says why)


@needs_torch
@pytest.mark.parametrize("use", [
    lambda lib, t: t.view(lib.Size([3, 2])),
    lambda lib, t: t.reshape(t.size()[::-1]),
    lambda lib, t: lib.zeros(t.shape),
    lambda lib, t: lib.empty(lib.Size([1, 2])),
    lambda lib, t: lib.full(t.shape[:1], 2.0),
    lambda lib, t: t.new_zeros(t.shape),
    lambda lib, t: t.expand(lib.Size([4, 2, 3])),
    lambda lib, t: lib.nn.functional.interpolate(t[None, None], size=lib.Size([4, 6])),
])
def test_sizes_go_where_torch_takes_a_shape(use):
    assert tuple(use(engine, engine.zeros(2, 3)).shape) == tuple(use(torch, torch.zeros(2, 3)).shape)


def test_a_size_of_non_integers_is_refused_clearly():
    with pytest.raises(TypeError, match=r"engine.Size\(\) takes an iterable of 'int' \(got float 1.5\)"):
        engine.Size([2, 1.5])
    assert engine.Size([np.int64(2), 3]) == (2, 3)


@needs_torch
def test_module_helpers_torch_scripts_call():
    t = engine.zeros(2, 3)
    assert engine.is_tensor(t) and engine.is_tensor(engine.nn.Parameter(t)) and not engine.is_tensor(t.numpy())
    assert engine.numel(t) == torch.numel(torch.zeros(2, 3)) == 6
    assert engine.is_floating_point(t) and not engine.is_floating_point(engine.zeros(2, dtype=engine.int64))
    with pytest.raises(RuntimeError, match=r"shapes \(2,\), \(3,\) cannot be broadcast"):
        engine.broadcast_shapes((2,), (3,))


# ---- the training-utility layer -------------------------------------------------------------------
@needs_torch
def test_a_clean_load_state_dict_prints_like_torch():
    ours = engine.nn.Linear(2, 2).load_state_dict(engine.nn.Linear(2, 2).state_dict())
    ref = torch.nn.Linear(2, 2).load_state_dict(torch.nn.Linear(2, 2).state_dict())
    assert repr(ours) == repr(ref) == "<All keys matched successfully>"
    partial = engine.nn.Linear(2, 2).load_state_dict({"weight": engine.zeros(2, 2)}, strict=False)
    assert "missing_keys=['bias']" in repr(partial) and partial != ([], [])


def test_checkpoints_go_through_file_objects():
    # torch.save(model.state_dict(), buffer) / torch.load(buffer), as scripts do to copy or send a model
    model = engine.nn.Sequential(engine.nn.Linear(3, 2), engine.nn.BatchNorm1d(2))
    for obj in (model.state_dict(), {"model": model.state_dict(), "epoch": 3}):
        buf = io.BytesIO()
        engine.save(obj, buf)
        buf.seek(0)
        back = engine.load(buf, weights_only=True)
        sd = back if "epoch" not in back else back["model"]
        assert set(sd) == set(model.state_dict())
        assert all(np.array_equal(sd[k].numpy(), v.numpy()) for k, v in model.state_dict().items())
    assert back["epoch"] == 3


def test_checkpoint_file_objects_in_text_mode_or_of_wrong_type_are_refused(tmp_path):
    engine.save({"w": engine.ones(2)}, tmp_path / "ck.pt")
    with open(tmp_path / "ck.pt", encoding="latin-1") as f, pytest.raises(TypeError, match="binary mode"):
        engine.load(f)
    with pytest.raises(TypeError, match=r"binary file object with \.write"):
        engine.save({"w": engine.ones(2)}, 42)


def test_rng_state_round_trips_from_the_top_level():
    engine.manual_seed(5)
    state = engine.get_rng_state()
    a = engine.randn(4).tolist()
    engine.set_rng_state(state)
    assert engine.randn(4).tolist() == a


def test_memory_format_hints_are_accepted_and_change_nothing():
    # `model.to(memory_format=torch.channels_last)`, a common ResNet speed-up, must not stop a port
    conv = engine.nn.Conv2d(3, 4, 3)
    x = engine.randn(2, 3, 6, 6)
    expected = conv(x).detach().numpy()
    assert conv.to(memory_format=engine.channels_last) is conv
    got = conv(x.to(memory_format=engine.channels_last).contiguous(memory_format=engine.contiguous_format))
    np.testing.assert_array_equal(got.detach().numpy(), expected)
    with pytest.raises(TypeError, match=r"memory_format must be engine\.contiguous_format"):
        x.to(memory_format="channels_last")


# ---- whole models against PyTorch, float64, identical weights and data ---------------------------------
def _resnet(lib):
    nn = lib.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            return self.relu(out)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
            self.layers = nn.Sequential(BasicBlock(4, 4), BasicBlock(4, 8, stride=2))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(8, 5)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

        def forward(self, x):
            return self.fc(lib.flatten(self.avgpool(self.layers(self.stem(x))), 1))

    return ResNet(), lambda m: lib.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                             weight_decay=5e-4), lib.nn.CrossEntropyLoss()


def _unet(lib):
    nn, F = lib.nn, lib.nn.functional

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inc, self.down = block(3, 4), nn.Sequential(nn.MaxPool2d(2), block(4, 8), nn.Dropout2d(0.0))
            self.up = nn.ConvTranspose2d(8, 4, kernel_size=2, stride=2)
            self.dec, self.outc = block(8, 4), nn.Conv2d(4, 1, 1)

        def forward(self, x):
            x1 = self.inc(x)
            x2 = self.down(x1)
            u = self.up(x2) + F.interpolate(x2, scale_factor=2, mode="bilinear", align_corners=True)[:, :4]
            y = self.dec(lib.cat([x1, u], dim=1))
            return self.outc(F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False))

    return UNet(), lambda m: lib.optim.Adam(m.parameters(), lr=1e-2), \
        nn.BCEWithLogitsLoss(pos_weight=lib.tensor([3.0], dtype=lib.float64))


def _transformer(lib):
    nn = lib.nn

    class Classifier(nn.Module):
        def __init__(self, vocab=12, d=8):
            super().__init__()
            self.emb = nn.Embedding(vocab, d, padding_idx=0)
            pos = lib.arange(16, dtype=lib.float64).unsqueeze(1)
            div = lib.exp(lib.arange(0, d, 2, dtype=lib.float64) * (-math.log(10000.0) / d))
            pe = lib.zeros(1, 16, d, dtype=lib.float64)
            pe[0, :, 0::2] = lib.sin(pos * div)
            pe[0, :, 1::2] = lib.cos(pos * div)
            self.register_buffer("pe", pe, persistent=False)
            layer = nn.TransformerEncoderLayer(d, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
            self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 3)

        def forward(self, tokens):
            pad = tokens == 0
            x = self.encoder(self.emb(tokens) * math.sqrt(8) + self.pe[:, :tokens.size(1)], src_key_padding_mask=pad)
            keep = (~pad).unsqueeze(-1).to(x.dtype)
            return self.head(self.norm((x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)))

    def optimizer(m):
        no_decay = [p for n, p in m.named_parameters() if p.ndim < 2 or "norm" in n]
        decay = [p for n, p in m.named_parameters() if not (p.ndim < 2 or "norm" in n)]
        opt = lib.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                              lr=3e-3)
        return opt

    return Classifier(), optimizer, nn.CrossEntropyLoss(label_smoothing=0.1)


def _data(name):
    rng = np.random.default_rng(3)
    if name == "transformer":
        tokens = rng.integers(1, 12, (6, 9))
        for i, n in enumerate([9, 4, 7, 2, 9, 5]):
            tokens[i, n:] = 0
        return tokens, rng.integers(0, 3, 6)
    x = rng.standard_normal((4, 3, 8, 8))
    return x, (rng.random((4, 1, 8, 8)) > 0.7).astype(np.float64) if name == "unet" else rng.integers(0, 5, 4)


def _train(lib, name, weights):
    lib.manual_seed(0)
    model, make_opt, crit = {"resnet": _resnet, "unet": _unet, "transformer": _transformer}[name](lib)
    model = model.double()
    if weights is not None:
        model.load_state_dict({k: lib.from_numpy(v.copy()) for k, v in weights.items()})
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    opt = make_opt(model)
    sched = lib.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 3))
    x, y = (lib.from_numpy(a) for a in _data(name))
    losses = []
    for _ in range(4):
        model.train()
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    with lib.no_grad():
        out = model(x)
    return losses, out.numpy(), weights


@needs_torch
@pytest.mark.parametrize("name", ["resnet", "unet", "transformer"])
def test_ported_models_train_as_in_torch(name):
    ref_losses, ref_out, weights = _train(torch, name, None)
    losses, out, _ = _train(engine, name, weights)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-10)
    np.testing.assert_allclose(out, ref_out, rtol=1e-8, atol=1e-10)


@needs_torch
@pytest.mark.parametrize("dim, index", [(0, 1), (1, -1), (-1, 0), (2, 3)])
def test_select_is_a_view_with_torchs_values_gradient_and_errors(dim, index):
    a = np.arange(24.0).reshape(2, 3, 4)
    x, tx = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = x.select(dim, index), tx.select(dim, index)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    base = engine.tensor(a)
    engine.select(base, dim, index).fill_(-1)  # a view: the write reaches the base
    assert (base.numpy() == -1).sum() == y.numel()


def test_select_out_of_range_says_where():
    with pytest.raises(IndexError, match=r"select\(\): index 3 out of range for tensor of size \[2, 3\] at "
                                         "dimension 1"):
        engine.zeros(2, 3).select(1, 3)
