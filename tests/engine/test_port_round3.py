"""Porting round 3: a VAE, a DCGAN, a seq2seq with attention and the training utilities around them.

Each model is written as it would be for PyTorch, built from the same weights under torch and under the
engine (`import engine as torch`), trained in float64 for several steps, and compared: losses, gradients,
parameters. The utilities (parametrizations, hooks, checkpoints mid training) are compared with torch too.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import engine
from tests.engine.oracle import needs_torch, torch


def _weights(module) -> dict:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _load(lib, module, weights) -> None:
    if weights is not None:
        module.load_state_dict({k: lib.from_numpy(v.copy()) for k, v in weights.items()})


def _assert_same_state(ours: dict, ref: dict, rtol=1e-9, atol=1e-12) -> None:
    assert list(ours) == list(ref)
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=rtol, atol=atol, err_msg=k)


# ---- 1. a VAE: reparameterisation by hand and through Normal.rsample ----------------------------------
def _vae(lib, rsample: bool):
    nn, D = lib.nn, lib.distributions

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(12, 16), nn.ReLU())
            self.mu, self.logvar = nn.Linear(16, 3), nn.Linear(16, 3)
            self.dec = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 12))

        def forward(self, x, eps):
            h = self.enc(x)
            mu, logvar = self.mu(h), self.logvar(h)
            std = lib.exp(0.5 * logvar)
            if rsample:
                q = D.Normal(mu, std)
                z = q.rsample()
                kl = D.kl_divergence(q, D.Normal(lib.zeros_like(mu), lib.ones_like(std))).sum(-1).mean()
            else:
                z = mu + eps * std
                kl = (-0.5 * lib.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)).mean()
            return self.dec(z), kl

    return VAE()


def _train_vae(lib, weights, rsample, noise):
    lib.manual_seed(0)
    model = _vae(lib, rsample).double()
    _load(lib, model, weights)
    weights = _weights(model)
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    x = lib.from_numpy((np.random.default_rng(0).random((8, 12)) > 0.5).astype(np.float64))
    losses, grads = [], []
    for step in range(5):
        opt.zero_grad()
        logits, kl = model(x, lib.from_numpy(noise[step]))
        loss = lib.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0] + kl
        loss.backward()
        opt.step()
        losses.append(loss.item())
        grads.append({n: p.grad.numpy().copy() for n, p in model.named_parameters()})
    return losses, grads, weights, _weights(model)


@needs_torch
@pytest.mark.parametrize("rsample", [False, True], ids=["by_hand", "rsample"])
def test_a_vae_trains_as_in_torch(rsample, monkeypatch):
    noise = list(np.random.default_rng(1).standard_normal((5, 8, 3)))
    if rsample:  # both libraries' Normal.rsample draw the same eps, in turn
        draws = iter(noise)
        monkeypatch.setattr(torch.distributions.normal, "_standard_normal",
                            lambda shape, dtype, device: torch.from_numpy(next(draws)))
    ref_losses, ref_grads, weights, ref_state = _train_vae(torch, None, rsample, noise)
    if rsample:
        draws = iter(noise)
        monkeypatch.setattr(engine, "randn", lambda *shape, **kw: engine.from_numpy(next(draws)))
    losses, grads, _, state = _train_vae(engine, weights, rsample, noise)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-12)
    for ours, ref in zip(grads, ref_grads):
        _assert_same_state(ours, ref)
    _assert_same_state(state, ref_state)


# ---- 2. a DCGAN on 16x16 images: two optimizers, detached fakes, a frozen discriminator ----------------
def _gan(lib):
    nn = lib.nn
    generator = nn.Sequential(
        nn.ConvTranspose2d(4, 8, 4, 1, 0, bias=False), nn.BatchNorm2d(8), nn.ReLU(True),
        nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(True),
        nn.ConvTranspose2d(4, 1, 4, 2, 1, bias=False), nn.Tanh())
    discriminator = nn.Sequential(
        nn.Conv2d(1, 4, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(4, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.LeakyReLU(0.2, inplace=True),
        nn.Dropout(0.3), nn.Conv2d(8, 1, 4, 1, 0, bias=False), nn.Flatten(0))

    def weights_init(m):
        name = m.__class__.__name__
        if name.find("Conv") != -1:
            nn.init.normal_(m.weight.data, 0.0, 0.02)
        elif name.find("BatchNorm") != -1:
            nn.init.normal_(m.weight.data, 1.0, 0.02)
            nn.init.constant_(m.bias.data, 0)

    return generator.apply(weights_init).double(), discriminator.apply(weights_init).double()


def _train_gan(lib, weights):
    lib.manual_seed(0)
    g, d = _gan(lib)
    for m, w in zip((g, d), weights or (None, None)):
        _load(lib, m, w)
    weights = _weights(g), _weights(d)
    crit = lib.nn.BCEWithLogitsLoss()
    opt_d = lib.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_g = lib.optim.Adam(g.parameters(), lr=2e-3, betas=(0.5, 0.999))
    rng = np.random.default_rng(0)
    real = lib.from_numpy(np.tanh(rng.standard_normal((6, 1, 16, 16))))
    d[5].p = 0.0  # dropout's random mask differs between libraries; its train/eval switch is tested below
    losses = []
    for _ in range(4):
        z = lib.from_numpy(rng.standard_normal((6, 4, 1, 1)))
        d.zero_grad()
        err_real = crit(d(real), lib.full((6,), 1.0, dtype=lib.float64))
        err_real.backward()
        fake = g(z)
        err_fake = crit(d(fake.detach()), lib.zeros(6, dtype=lib.float64))
        err_fake.backward()
        opt_d.step()
        d.requires_grad_(False)
        g.zero_grad()
        err_g = crit(d(fake), lib.ones(6, dtype=lib.float64))
        err_g.backward()
        opt_g.step()
        frozen_grads = [p.grad.numpy().copy() for p in d.parameters()]
        d.requires_grad_(True)
        losses.append((err_real.item(), err_fake.item(), err_g.item()))
    d.eval()
    with lib.no_grad():
        scores = d(g(z)).numpy()
    return losses, weights, scores, _weights(g), _weights(d), frozen_grads


@needs_torch
def test_a_dcgan_trains_as_in_torch():
    ref = _train_gan(torch, None)
    ours = _train_gan(engine, ref[1])
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-12)
    np.testing.assert_allclose(ours[2], ref[2], rtol=1e-9, atol=1e-14)
    _assert_same_state(ours[3], ref[3])
    _assert_same_state(ours[4], ref[4])
    for a, b in zip(ours[5], ref[5]):  # the frozen discriminator kept the fake pass's gradients out
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-14)


@needs_torch
def test_dropout_scales_in_train_and_passes_through_in_eval():
    x = np.ones((200, 50))
    for lib in (engine, torch):
        drop = lib.nn.Dropout(0.3)
        y = drop(lib.from_numpy(x)).numpy()
        assert set(np.unique(y)) <= {0.0, 1 / 0.7} and 0.2 < (y == 0).mean() < 0.4
        np.testing.assert_array_equal(drop.eval()(lib.from_numpy(x)).numpy(), x)


# ---- 3. seq2seq with attention ---------------------------------------------------------------------
def _seq2seq(lib, rnn):
    nn = lib.nn

    class Seq2Seq(nn.Module):
        def __init__(self, vocab=11, d=8):
            super().__init__()
            self.emb = nn.Embedding(vocab, d, padding_idx=0)
            self.enc = getattr(nn, rnn)(d, d, batch_first=True)
            self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
            self.dec = nn.TransformerDecoderLayer(d, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
            self.out = nn.Linear(d, vocab, bias=False)
            self.out.weight = self.emb.weight  # tied input and output embeddings

        def forward(self, src, tgt):
            pad = src == 0
            mem, _ = self.enc(self.emb(src))
            y = self.emb(tgt)
            ctx, w = self.attn(y, mem, mem, key_padding_mask=pad, need_weights=True)
            causal = nn.Transformer.generate_square_subsequent_mask(tgt.size(1), dtype=lib.float64)
            h = self.dec(y + ctx, mem, tgt_mask=causal, memory_key_padding_mask=pad, tgt_is_causal=True)
            return self.out(h), w

    return Seq2Seq()


def _train_seq2seq(lib, rnn, weights):
    lib.manual_seed(0)
    model = _seq2seq(lib, rnn).double()
    _load(lib, model, weights)
    weights = _weights(model)
    assert model.out.weight is model.emb.weight and len(list(model.parameters())) == len(weights) - 1
    opt = lib.optim.AdamW(model.parameters(), lr=1e-2)
    steps = 6
    one_cycle = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-2, total_steps=steps)
    plateau = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=0)
    crit = lib.nn.CrossEntropyLoss(ignore_index=0, label_smoothing=0.1)
    rng = np.random.default_rng(1)
    src, tgt = rng.integers(1, 11, (8, 7)), rng.integers(1, 11, (8, 6))
    for i, (n, m) in enumerate(zip([7, 3, 5, 7, 2, 6, 4, 7], [6, 4, 2, 6, 5, 3, 6, 1])):
        src[i, n:], tgt[i, m:] = 0, 0
    src, tgt = lib.from_numpy(src), lib.from_numpy(tgt)
    losses, norms, attn, lrs = [], [], [], []
    for _ in range(steps):
        opt.zero_grad()
        total = 0.0
        for mb in range(2):  # gradient accumulation over two micro-batches
            s, t = src[mb * 4:(mb + 1) * 4], tgt[mb * 4:(mb + 1) * 4]
            logits, w = model(s, t[:, :-1])
            loss = crit(logits.reshape(-1, logits.size(-1)), t[:, 1:].reshape(-1)) / 2
            loss.backward()
            total += loss.item()
            attn.append(w.detach().numpy().copy())
        norms.append(float(lib.nn.utils.clip_grad_norm_(model.parameters(), 0.5)))
        opt.step()
        one_cycle.step()
        lrs.append(opt.param_groups[0]["lr"])
        losses.append(total)
    for metric in (1.0, 2.0, 3.0):
        plateau.step(metric)
        lrs.append(opt.param_groups[0]["lr"])
    return losses, weights, norms, attn, lrs, _weights(model)


@needs_torch
@pytest.mark.parametrize("rnn", ["GRU", "LSTM"])
def test_a_seq2seq_with_attention_trains_as_in_torch(rnn):
    ref = _train_seq2seq(torch, rnn, None)
    ours = _train_seq2seq(engine, rnn, ref[1])
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-10)
    np.testing.assert_allclose(ours[2], ref[2], rtol=1e-10)
    np.testing.assert_allclose(np.stack(ours[3]), np.stack(ref[3]), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(ours[4], ref[4], rtol=1e-12)
    _assert_same_state(ours[5], ref[5], rtol=1e-8, atol=1e-10)


# ---- 4. training utilities -------------------------------------------------------------------------
def _normalised(lib, kind):
    nn = lib.nn
    P = nn.utils.parametrizations
    lib.manual_seed(0)
    conv, up, fc = nn.Conv2d(2, 3, 3), nn.ConvTranspose2d(3, 2, 3), nn.Linear(32, 4)
    if kind == "weight_norm":
        conv, up, fc = P.weight_norm(conv), P.weight_norm(up, dim=1), P.weight_norm(fc, dim=None)
    elif kind == "spectral_norm":
        conv, up, fc = P.spectral_norm(conv), P.spectral_norm(up), P.spectral_norm(fc, n_power_iterations=2)
    else:  # the older hook-based torch.nn.utils.weight_norm
        conv, up, fc = nn.utils.weight_norm(conv), nn.utils.weight_norm(up, dim=1), nn.utils.weight_norm(fc, dim=None)
    return nn.Sequential(conv, nn.ReLU(), up, nn.Flatten(), fc).double()


def _train_normalised(lib, kind, weights):
    model = _normalised(lib, kind)
    _load(lib, model, weights)
    weights = _weights(model)
    opt = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x, y = lib.from_numpy(rng.standard_normal((3, 2, 4, 4))), lib.from_numpy(rng.standard_normal((3, 4)))
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = lib.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with lib.no_grad():
        out = model(x).numpy()
    return losses, weights, out, _weights(model), repr(model)


@needs_torch
@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch deprecates its old weight_norm
@pytest.mark.parametrize("kind", ["weight_norm", "spectral_norm", "old_weight_norm"])
def test_weight_and_spectral_norm_train_as_in_torch(kind):
    ref = _train_normalised(torch, kind, None)
    ours = _train_normalised(engine, kind, ref[1])
    assert list(ours[1]) == list(ref[1])  # the same state_dict keys, so checkpoints load across
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-12)
    np.testing.assert_allclose(ours[2], ref[2], rtol=1e-9, atol=1e-14)
    _assert_same_state(ours[3], ref[3])
    assert ours[4] == ref[4]


class _Symmetric:
    @staticmethod
    def make(lib):
        class Symmetric(lib.nn.Module):
            def forward(self, x):
                return x.triu() + x.triu(1).transpose(-1, -2)

            def right_inverse(self, a):
                return a.triu()

        return Symmetric()


@needs_torch
def test_a_custom_parametrization_registers_assigns_and_is_removed_as_in_torch():
    results = {}
    for lib in (torch, engine):
        P = lib.nn.utils.parametrize
        lin = lib.nn.Linear(3, 3).double()
        with lib.no_grad():
            lin.weight.copy_(lib.from_numpy(np.arange(9.0).reshape(3, 3)))
        P.register_parametrization(lin, "weight", _Symmetric.make(lib))
        seen = [type(lin).__name__, P.is_parametrized(lin), P.is_parametrized(lin, "bias"),
                P.type_before_parametrizations(lin).__name__, lin.weight.detach().numpy().tolist()]
        lin(lib.ones(2, 3, dtype=lib.float64)).sum().backward()
        seen.append(lin.parametrizations.weight.original.grad.numpy().tolist())
        lin.weight = lib.from_numpy(np.eye(3) * 2)  # assignment goes through right_inverse
        seen.append(lin.weight.detach().numpy().tolist())
        with P.cached():
            seen.append(lin.weight is lin.weight)
        P.remove_parametrizations(lin, "weight")
        seen += [type(lin).__name__, list(lin.state_dict()), lin.weight.detach().numpy().tolist()]
        with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a parametrized element"):
            P.register_parametrization(lin, "nope", _Symmetric.make(lib))
        results[lib.__name__] = seen
    assert results["engine"] == results["torch"]


def _hook_order(lib) -> list:
    nn = lib.nn
    lib.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    log = []
    for m in (model[0], model[1], model):
        name = type(m).__name__
        m.register_forward_pre_hook(lambda m, args, name=name: log.append(("pre", name)))
        m.register_forward_hook(lambda m, args, out, name=name: log.append(("forward", name)))
        m.register_full_backward_pre_hook(lambda m, gout, name=name: log.append(("backward_pre", name)))
        m.register_full_backward_hook(lambda m, gin, gout, name=name: log.append(("backward", name)))
    model(lib.randn(3, 2, requires_grad=True)).sum().backward()
    # a returned value replaces the gradient that flows into the module
    lin = nn.Linear(2, 2)
    lin.register_full_backward_pre_hook(lambda m, gout: (gout[0] * 0,))
    y = lib.randn(3, 2, requires_grad=True)
    lin(y).sum().backward()
    log.append((y.grad.abs().sum().item(), lin.weight.grad.abs().sum().item()))
    return log


@needs_torch
def test_a_backward_pre_hook_fires_as_in_torch_and_can_replace_the_gradient():
    ours = _hook_order(engine)
    assert ours == _hook_order(torch) and ours[-1] == (0.0, 0.0)


def _module_walks(lib) -> tuple:
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Sequential(nn.Linear(2, 2), nn.Tanh()))
            self.head = nn.ModuleList([nn.Linear(2, 2), nn.Identity()])
            self.register_buffer("step", lib.zeros(()), persistent=False)
            self.register_buffer("ema", lib.ones(2))

    net, order = Net(), []

    def init_fn(m):
        order.append(type(m).__name__)
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)

    assert net.apply(init_fn) is net
    vec = nn.utils.parameters_to_vector(net.parameters())
    nn.utils.vector_to_parameters(lib.arange(vec.numel(), dtype=vec.dtype), net.parameters())
    return ([n for n, _ in net.named_modules()], [n for n, _ in net.named_children()],
            [n for n, _ in net.named_buffers()], list(net.state_dict()), order, net.head[0].bias.tolist())


@needs_torch
def test_module_walks_buffers_apply_and_parameter_vectors_as_in_torch():
    assert _module_walks(engine) == _module_walks(torch)


def test_a_checkpoint_taken_mid_training_resumes_bit_identically():
    nn = engine.nn

    def make():
        engine.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(),
                              nn.utils.parametrizations.spectral_norm(nn.Linear(8, 2))).double()
        opt = engine.optim.AdamW(model.parameters(), lr=1e-2, amsgrad=True)
        return model, opt, engine.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)

    def step(model, opt, sched, x):
        opt.zero_grad()
        loss = (model(x) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        return loss.item()

    rng = np.random.default_rng(0)
    xs = [engine.from_numpy(rng.standard_normal((5, 4))) for _ in range(4)]
    model, opt, sched = make()
    for x in xs[:2]:
        step(model, opt, sched, x)
    buf = io.BytesIO()
    engine.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    straight = [step(model, opt, sched, x) for x in xs[2:]]
    buf.seek(0)
    ck = engine.load(buf, weights_only=True)
    model2, opt2, sched2 = make()
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["opt"])
    sched2.load_state_dict(ck["sched"])
    assert [step(model2, opt2, sched2, x) for x in xs[2:]] == straight
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(model2.state_dict()[k].numpy(), v.numpy())


def test_normalisation_misuse_gets_one_clear_error():
    nn = engine.nn
    with pytest.raises(ValueError, match="n_power_iterations must be positive, got 0"):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(ValueError, match="Module 'Linear' has no parameter or buffer with name 'kernel'"):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), name="kernel")
    with pytest.raises(ValueError, match="weight_norm: Linear has no parameter named 'kernel'"):
        nn.utils.weight_norm(nn.Linear(2, 2), name="kernel")
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found in Linear"):
        nn.utils.remove_weight_norm(nn.Linear(2, 2))
    lin = nn.utils.weight_norm(nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="cannot register two weight_norm hooks on the same parameter weight"):
        nn.utils.weight_norm(lin)
    expected = lin(engine.ones(1, 2)).detach().numpy()
    nn.utils.remove_weight_norm(lin)
    assert [n for n, _ in lin.named_parameters()] == ["bias", "weight"]
    np.testing.assert_allclose(lin(engine.ones(1, 2)).detach().numpy(), expected, rtol=1e-6)


def test_a_backward_pre_hook_sees_none_for_an_unused_output_and_may_replace_the_gradients():
    lstm = engine.nn.LSTM(2, 3)
    seen = []
    lstm.register_full_backward_pre_hook(lambda m, gout: seen.append([g is None for g in gout]))
    out, _ = lstm(engine.randn(4, 1, 2, requires_grad=True))
    out.sum().backward()
    assert seen == [[False, True, True]]  # h and c were not used
    lstm = engine.nn.LSTM(2, 3)
    lstm.register_full_backward_pre_hook(lambda m, gout: tuple(g if g is None else g * 0 for g in gout))
    x = engine.randn(4, 1, 2, requires_grad=True)
    out, _ = lstm(x)
    out.sum().backward()
    assert not x.grad.numpy().any()  # the hook's zeros flowed on into the LSTM
