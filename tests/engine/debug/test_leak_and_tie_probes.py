"""Correct programs at the edges of the label_leak and storage_tie alerts: each trains under torch (the same code, the
library passed in), and under a Debugger at "summary" neither alert fires. label_leak's edges join a target, or a
tensor made with it, into what a model reads, on purpose; storage_tie's share a Parameter, a storage or a start
between models and optimizers, as a correct program may."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import engine
from engine.debug import Debugger
from tests.engine.oracle import needs_torch, torch

N, D, C = 32, 6, 3
KINDS = ("label_leak", "storage_tie")


def mlp(lib, d_in: int, d_out: int, hidden: int = 16):
    return lib.nn.Sequential(lib.nn.Linear(d_in, hidden), lib.nn.ReLU(), lib.nn.Linear(hidden, d_out))


def loop(opts, *losses):
    """One step: for each (optimizer, loss function) in turn, zero its gradients, backward its loss, step it; the
    first loss's value."""
    def step():
        values = []
        for opt, loss_of in zip(opts, losses):
            opt.zero_grad()
            loss = loss_of()
            loss.backward()
            opt.step()
            values.append(loss.item())
        return values[0]
    return step


def together(opts, loss_of):
    """One step: every optimizer's gradients zeroed, one backward of loss_of(), every optimizer stepped."""
    def step():
        for opt in opts:
            opt.zero_grad()
        loss = loss_of()
        loss.backward()
        for opt in opts:
            opt.step()
        return loss.item()

    return step


def one_then_other(opts, loss_of):
    """One step: of opts[0] at the first three, of opts[1] after them (one after the other, never in turn), each on
    loss_of(its index)."""
    steps = [0]

    def step():
        i = int(steps[0] >= 3)
        steps[0] += 1
        return loop([opts[i]], lambda: loss_of(i))()

    return step


def blobs(lib):
    """Features with a class each, C classes apart, and the classes' one-hot codes."""
    y = lib.arange(N) % C
    x = lib.randn(N, D) * 0.5 + lib.nn.functional.one_hot(y, C).float().repeat(1, D // C) * 2
    return x, y, lib.nn.functional.one_hot(y, C).float()


# ---- label_leak's edges ----------------------------------------------------------------------------------------
def conditional_autoencoder(lib):
    """Binary data reconstructed from [x, its class's one-hot] through a bottleneck."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    x = (x > 1).float()
    model = lib.nn.Sequential(lib.nn.Linear(D + C, 2), lib.nn.ReLU(), lib.nn.Linear(2, D))
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    return model, [opt], loop([opt], lambda: F.binary_cross_entropy_with_logits(
        model(lib.cat([x, F.one_hot(y, C).float()], 1)), x))


def cvae_of_points(lib, code: str = "one_hot"):
    """A conditional VAE of 2-d points, its class joined in forward to the point (2 of 5 columns) and to z."""
    nn, F = lib.nn, lib.nn.functional

    class CVAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(C, C)
            self.enc, self.dec = nn.Linear(2 + C, 4), mlp(lib, 2 + C, 2)

        def forward(self, x, y):
            cond = F.one_hot(y, C).float() if code == "one_hot" else self.emb(y)
            mu, lv = self.enc(lib.cat([x, cond], 1)).chunk(2, 1)
            z = mu + lib.randn_like(mu) * lib.exp(0.5 * lv)
            return self.dec(lib.cat([z, cond], 1)), mu, lv

    y = lib.arange(N) % C
    x = lib.randn(N, 2) * 0.1 + lib.stack([y.float(), -y.float()], 1)
    model = CVAE()
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)

    def loss():
        out, mu, lv = model(x, y)
        return F.mse_loss(out, x) - 0.01 * lib.mean(1 + lv - mu.pow(2) - lv.exp())

    return model, [opt], loop([opt], loss)


def conditioned_in_forward(lib):
    """An autoencoder whose forward joins a continuous condition (2 columns) to the 6 it reconstructs."""
    nn, F = lib.nn, lib.nn.functional

    class CondAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc, self.dec = nn.Linear(D + 2, 3), nn.Linear(3 + 2, D)

        def forward(self, x, cond):
            return self.dec(lib.cat([lib.tanh(self.enc(lib.cat([x, cond], 1))), cond], 1))

    x, cond = lib.randn(N, D), lib.rand(N, 2)
    model = CondAE()
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    return model, [opt], loop([opt], lambda: F.mse_loss(model(x, cond), x))


class _Seq2Seq:
    """A GRU encoder-decoder over V tokens whose decoder reads the target shifted right (teacher forcing)."""

    V, T = 7, 5

    @classmethod
    def build(cls, lib, shift_inside: bool):
        nn, F, V = lib.nn, lib.nn.functional, cls.V

        class Seq2Seq(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.emb = nn.Embedding(V, 8)
                self.enc, self.dec = nn.GRU(8, 8, batch_first=True), nn.GRU(8, 8, batch_first=True)
                self.out = nn.Linear(8, V)

            def forward(self, src, tgt):
                if shift_inside:  # the whole target after the start token, then its last step dropped
                    bos = lib.zeros(tgt.shape[0], 1, dtype=tgt.dtype)
                    tgt = lib.cat([bos, tgt], 1)[:, :-1]
                return self.out(self.dec(self.emb(tgt), self.enc(self.emb(src))[1])[0])

        src = lib.randint(1, V, (N, cls.T))
        y = lib.flip(src, [1])  # the reversed source
        model = Seq2Seq()
        opt = lib.optim.Adam(model.parameters(), lr=2e-2)
        bos = lib.zeros(N, 1, dtype=y.dtype)

        def loss():
            dec_in = y if shift_inside else lib.cat([bos, y[:, :-1]], 1)
            return F.cross_entropy(model(src, dec_in).reshape(-1, V), y.reshape(-1))

        return model, [opt], loop([opt], loss)


def conditional_gan(lib, code: str = "embedding"):
    """A conditional GAN: the label, embedded or one-hot, joined in forward to the noise and to the sample."""
    nn, F = lib.nn, lib.nn.functional

    class Conditioned(nn.Module):
        def __init__(self, d_in: int, d_out: int) -> None:
            super().__init__()
            self.label = nn.Embedding(C, C)
            self.net = mlp(lib, d_in + C, d_out)

        def forward(self, v, y):
            code_ = self.label(y) if code == "embedding" else F.one_hot(y, C).float()
            return self.net(lib.cat([v, code_], 1))

    x, y, _ = blobs(lib)
    z = lib.randn(N, 4)
    gen, disc = Conditioned(4, D), Conditioned(D, 1)
    opt_d, opt_g = lib.optim.Adam(disc.parameters(), lr=1e-3), lib.optim.Adam(gen.parameters(), lr=1e-3)
    ones, zeros = lib.ones(N, 1), lib.zeros(N, 1)

    def d_loss():
        fake = gen(z, y).detach()
        return F.binary_cross_entropy_with_logits(disc(x, y), ones) + \
            F.binary_cross_entropy_with_logits(disc(fake, y), zeros)

    return disc, [opt_d, opt_g], loop([opt_d, opt_g], d_loss,
                                      lambda: F.binary_cross_entropy_with_logits(disc(gen(z, y), y), ones))


def ac_gan(lib):
    """An auxiliary-classifier GAN: the generator joins the one-hot class in forward; the discriminator predicts
    the class from the sample alone, of real samples and of the generator's."""
    nn, F = lib.nn, lib.nn.functional

    class Generator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp(lib, 4 + C, D)

        def forward(self, z, y):
            return self.net(lib.cat([z, F.one_hot(y, C).float()], 1))

    class Discriminator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.real, self.cls = nn.Linear(D, 16), nn.Linear(16, 1), nn.Linear(16, C)

        def forward(self, v):
            h = F.leaky_relu(self.body(v), 0.2)
            return self.real(h), self.cls(h)

    x, y, _ = blobs(lib)
    z = lib.randn(N, 4)
    gen, disc = Generator(), Discriminator()
    opt_d, opt_g = lib.optim.Adam(disc.parameters(), lr=1e-3), lib.optim.Adam(gen.parameters(), lr=1e-3)

    def d_loss():
        real, cls = disc(x)
        fake, fake_cls = disc(gen(z, y).detach())
        return F.cross_entropy(cls, y) + F.binary_cross_entropy_with_logits(real, lib.ones(N, 1)) + \
            F.binary_cross_entropy_with_logits(fake, lib.zeros(N, 1)) + F.cross_entropy(fake_cls, y)

    def g_loss():
        fake, cls = disc(gen(z, y))
        return F.binary_cross_entropy_with_logits(fake, lib.ones(N, 1)) + F.cross_entropy(cls, y)

    return disc, [opt_d, opt_g], loop([opt_d, opt_g], d_loss, g_loss)


def smoothed(lib, multi_label: bool):
    """Label smoothing: cross_entropy's label_smoothing, or multi-hot targets squeezed toward 0.5 for BCE."""
    F = lib.nn.functional
    x, y, c = blobs(lib)
    model = mlp(lib, D, C)
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    if multi_label:
        tags = lib.cat([c[:, 1:], c[:, :1]], 1) + c  # two labels per sample
        return model, [opt], loop([opt], lambda: F.binary_cross_entropy_with_logits(model(x), tags * 0.9 + 0.05))
    return model, [opt], loop([opt], lambda: F.cross_entropy(model(x), y, label_smoothing=0.1))


def distilled(lib):
    """Knowledge distillation: the student matches a teacher's logits on the same inputs, and the labels."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    teacher, student = mlp(lib, D, C, 32), mlp(lib, D, C, 8)
    opt = lib.optim.Adam(student.parameters(), lr=1e-2)

    def loss():
        with lib.no_grad():
            soft = teacher(x)
        return F.mse_loss(student(x), soft) + F.cross_entropy(student(x), y)

    return student, [opt], loop([opt], loss)


def denoising(lib):
    """A denoising autoencoder: the clean x is the target of the model that reads x plus noise."""
    x, _, _ = blobs(lib)
    noise = lib.randn(N, D) * 0.3
    model = mlp(lib, D, D, 3)
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    return model, [opt], loop([opt], lambda: lib.nn.functional.mse_loss(model(x + noise), x))


def noise_predictor(lib):
    """A diffusion model's step: predict the noise mixed into x at a level joined as a column (the noise, a target,
    is in the input as part of a sum, as it must be)."""
    x, _, _ = blobs(lib)
    eps, level = lib.randn(N, D), lib.rand(N, 1)
    model = mlp(lib, D + 1, D, 32)
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)

    def loss():
        noised = lib.sqrt(level) * x + lib.sqrt(1 - level) * eps
        return lib.nn.functional.mse_loss(model(lib.cat([noised, level], 1)), eps)

    return model, [opt], loop([opt], loss)


def mixup(lib):
    """Mixup: samples and their one-hot targets mixed alike, the model fitting the mixed targets."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    perm = lib.flip(lib.arange(N), [0])
    model = mlp(lib, D, C)
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)

    def loss():
        codes = F.one_hot(y, C).float()
        mixed = 0.7 * x + 0.3 * x[perm]
        return F.binary_cross_entropy_with_logits(model(mixed), 0.7 * codes + 0.3 * codes[perm])

    return model, [opt], loop([opt], loss)


def score_matching(lib):
    """Denoising score matching: the target is the noise rescaled, -noise / sigma, and the model reads x plus
    sigma times that noise, with sigma joined as a column."""
    x, _, _ = blobs(lib)
    noise, sigma = lib.randn(N, D), lib.rand(N, 1) + 0.1
    model = mlp(lib, D + 1, D, 32)
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)

    def loss():
        return lib.nn.functional.mse_loss(model(lib.cat([x + sigma * noise, sigma], 1)), -noise / sigma)

    return model, [opt], loop([opt], loss)


def inpainting(lib):
    """Masked values filled in: the model reads x with a mask's entries zeroed, and the mask."""
    x, _, _ = blobs(lib)
    mask = (lib.rand(N, D) < 0.3).float()
    model = mlp(lib, 2 * D, D, 32)
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    return model, [opt], loop([opt], lambda: lib.nn.functional.l1_loss(model(lib.cat([x * (1 - mask), mask], 1)), x))


def forecast(lib):
    """The next value of a series from the values before it and two features: inputs and target are slices."""
    t = lib.arange(N + 4).float()
    series = lib.sin(t * 0.3).unsqueeze(1)
    windows = lib.cat([series[i:i + N] for i in range(4)], 1)  # (N, 4): four values in a row
    feats = lib.stack([lib.cos(t[4:] * 0.3), t[4:] / N], 1)
    model = mlp(lib, 3 + 2, 1)
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    return model, [opt], loop([opt], lambda: lib.nn.functional.mse_loss(
        model(lib.cat([windows[:, :3], feats], 1)), windows[:, 3:]))


def standardised_target(lib):
    """A regression on standardised targets: the target rescaled, the input the features alone."""
    x, _, _ = blobs(lib)
    y = x.sum(1, keepdim=True) * 5 + 40
    model = mlp(lib, D, 1)
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    return model, [opt], loop([opt], lambda: lib.nn.functional.mse_loss(model(x), (y - y.mean()) / y.std()))


def loss_in_forward(lib):
    """A model that takes the labels to compute its own loss in forward (as many model libraries' do)."""
    nn, F = lib.nn, lib.nn.functional

    class WithLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp(lib, D, C)

        def forward(self, v, labels):
            return F.cross_entropy(self.net(v), labels)

    x, y, _ = blobs(lib)
    model = WithLoss()
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    return model, [opt], loop([opt], lambda: model(x, y))


def margin_head(lib):
    """An additive-margin (CosFace) classifier: forward takes the labels to subtract a margin from each sample's
    class score."""
    nn, F = lib.nn, lib.nn.functional

    class Margin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.classes = nn.Linear(D, 8), nn.Parameter(lib.randn(C, 8))

        def forward(self, v, labels):
            cos = F.normalize(self.body(v), dim=1) @ F.normalize(self.classes, dim=1).t()
            return 8.0 * (cos - 0.2 * F.one_hot(labels, C).float())

    x, y, _ = blobs(lib)
    model = Margin()
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    return model, [opt], loop([opt], lambda: F.cross_entropy(model(x, y), y))


def siamese_pairs(lib):
    """Whether two samples share a class, from the pair joined: the target is made from the labels, not fed."""
    x, y, _ = blobs(lib)
    other = lib.flip(lib.arange(N), [0])
    model = mlp(lib, 2 * D, 1)
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    return model, [opt], loop([opt], lambda: lib.nn.functional.binary_cross_entropy_with_logits(
        model(lib.cat([x, x[other]], 1)), (y == y[other]).float().unsqueeze(1)))


def pix2pix(lib):
    """Paired translation: the discriminator reads [source, target] joined; the generator an L1 to the target."""
    F = lib.nn.functional
    src, _, _ = blobs(lib)
    tgt = lib.tanh(src.flip([1]))
    gen, disc = mlp(lib, D, D), mlp(lib, 2 * D, 1)
    opt_d, opt_g = lib.optim.Adam(disc.parameters(), lr=1e-3), lib.optim.Adam(gen.parameters(), lr=1e-2)

    def d_loss():
        fake = gen(src).detach()
        return F.binary_cross_entropy_with_logits(disc(lib.cat([src, tgt], 1)), lib.ones(N, 1)) + \
            F.binary_cross_entropy_with_logits(disc(lib.cat([src, fake], 1)), lib.zeros(N, 1))

    def g_loss():
        fake = gen(src)
        return F.l1_loss(fake, tgt) + 0.01 * F.binary_cross_entropy_with_logits(
            disc(lib.cat([src, fake], 1)), lib.ones(N, 1))

    return gen, [opt_g, opt_d], loop([opt_g, opt_d], g_loss, d_loss)


def tabular_autoencoder(lib):
    """Rows of numbers and a category's one-hot, each reconstructed by its own head (the category a class loss's
    target, and the numbers a regression's)."""
    nn, F = lib.nn, lib.nn.functional

    class TabularAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = mlp(lib, D + C, 4)
            self.num, self.cat = nn.Linear(4, D), nn.Linear(4, C)

        def forward(self, row):
            h = F.relu(self.enc(row))
            return self.num(h), self.cat(h)

    x, y, _ = blobs(lib)
    model = TabularAE()
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)

    def loss():
        num, cat = model(lib.cat([x, F.one_hot(y, C).float()], 1))
        return F.mse_loss(num, x) + F.cross_entropy(cat, y)

    return model, [opt], loop([opt], loss)


def narrow_conditional_autoencoder(lib, joined: str = "outside"):
    """A conditional autoencoder of 2-d points on a ring whose radius a wide continuous condition (8 columns) sets:
    the encoder reads [x, c] (joined before the call, or in forward) into a 1-d code, the decoder [code, c]."""
    nn, F = lib.nn, lib.nn.functional

    class CondAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc, self.dec = mlp(lib, 2 + D + 2, 1), mlp(lib, 1 + D + 2, 2)

        def forward(self, v, c):
            if joined != "outside":
                v = lib.cat([v, c], 1)
            return self.dec(lib.cat([lib.tanh(self.enc(v)), c], 1))

    c = lib.rand(N, D + 2)
    angle = lib.rand(N, 1) * 6.28
    x = lib.cat([lib.cos(angle), lib.sin(angle)], 1) * (0.5 + c[:, :1])
    model = CondAE()
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    inp = (lambda: lib.cat([x, c], 1)) if joined == "outside" else (lambda: x)
    return model, [opt], loop([opt], lambda: F.mse_loss(model(inp(), c), x))


def token_features(lib):
    """A classifier of (features, a token id), the token looked up in an nn.Embedding and joined to the features
    before the model; the targets are labels, not the tokens."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    tokens = lib.arange(N) % 5
    emb, model = lib.nn.Embedding(5, 3), mlp(lib, D + 3, C)
    opt = lib.optim.Adam([*model.parameters(), *emb.parameters()], lr=1e-2)
    return model, [opt], loop([opt], lambda: F.cross_entropy(model(lib.cat([x, emb(tokens)], 1)), y))


def token_autoencoder(lib):
    """Token sequences reconstructed from themselves through a 2-wide code: forward adds each position's embedding
    to its token's (the tokens are the targets, and all the model reads)."""
    nn, F, V, T = lib.nn, lib.nn.functional, 7, 4

    class TokenAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.pos = nn.Embedding(V, 8), nn.Embedding(T, 8)
            self.enc, self.out = nn.Linear(8, 2), nn.Linear(2, V)

        def forward(self, src):
            positions = lib.arange(T).expand(src.shape[0], T)
            return self.out(lib.tanh(self.enc(self.emb(src) + self.pos(positions))))

    src = lib.arange(N * T).reshape(N, T) % V
    model = TokenAE()
    opt = lib.optim.Adam(model.parameters(), lr=2e-2)
    return model, [opt], loop([opt], lambda: F.cross_entropy(model(src).reshape(-1, V), src.reshape(-1)))


def conditional_gan_embedded_outside(lib):
    """A conditional GAN whose class vectors come from an nn.Embedding before the calls, joined to the noise (the
    generator) and to the samples (the discriminator); the targets are real/fake."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    z = lib.randn(N, 4)
    label = lib.nn.Embedding(C, C)
    gen, disc = mlp(lib, 4 + C, D), mlp(lib, D + C, 1)
    opt_d = lib.optim.Adam([*disc.parameters(), *label.parameters()], lr=5e-3)
    opt_g = lib.optim.Adam(gen.parameters(), lr=1e-3)
    ones, zeros = lib.ones(N, 1), lib.zeros(N, 1)

    def d_loss():
        fake = gen(lib.cat([z, label(y)], 1)).detach()
        return F.binary_cross_entropy_with_logits(disc(lib.cat([x, label(y)], 1)), ones) + \
            F.binary_cross_entropy_with_logits(disc(lib.cat([fake, label(y)], 1)), zeros)

    def g_loss():
        fake = gen(lib.cat([z, label(y).detach()], 1))
        return F.binary_cross_entropy_with_logits(disc(lib.cat([fake, label(y).detach()], 1)), ones)

    return disc, [opt_d, opt_g], loop([opt_d, opt_g], d_loss, g_loss)


LEAK_EDGES = {
    "conditional autoencoder": conditional_autoencoder,
    "conditional VAE of points, one-hot class": cvae_of_points,
    "conditional VAE of points, class embedding": lambda lib: cvae_of_points(lib, "embedding"),
    "autoencoder conditioned in forward": conditioned_in_forward,
    "teacher forcing, shifted outside": lambda lib: _Seq2Seq.build(lib, False),
    "teacher forcing, shifted in forward": lambda lib: _Seq2Seq.build(lib, True),
    "conditional GAN, label embedding": conditional_gan,
    "conditional GAN, one-hot label": lambda lib: conditional_gan(lib, "one_hot"),
    "AC-GAN": ac_gan,
    "label smoothing": lambda lib: smoothed(lib, False),
    "smoothed multi-hot targets": lambda lib: smoothed(lib, True),
    "knowledge distillation": distilled,
    "denoising autoencoder": denoising,
    "diffusion noise predictor": noise_predictor,
    "denoising score matching": score_matching,
    "mixup": mixup,
    "inpainting": inpainting,
    "forecast from the values before": forecast,
    "standardised regression target": standardised_target,
    "loss computed in forward": loss_in_forward,
    "additive-margin head": margin_head,
    "siamese pairs": siamese_pairs,
    "pix2pix": pix2pix,
    "tabular autoencoder": tabular_autoencoder,
    "conditional autoencoder of narrow data, joined before the call": narrow_conditional_autoencoder,
    "conditional autoencoder of narrow data, joined in forward": lambda lib: narrow_conditional_autoencoder(
        lib, "forward"),
    "token embedding joined to features": token_features,
    "token autoencoder with positions": token_autoencoder,
    "conditional GAN, label embedded before the calls": conditional_gan_embedded_outside,
}


# ---- storage_tie's edges ---------------------------------------------------------------------------------------
class TiedLM:
    """A language model whose output layer is the embedding's Parameter itself."""

    V = 9

    @classmethod
    def build(cls, lib, make_optimizer):
        nn, F, V = lib.nn, lib.nn.functional, cls.V

        class LM(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.encoder, self.decoder = nn.Embedding(V, 6), nn.Linear(6, V)
                self.decoder.weight = self.encoder.weight

            def forward(self, tokens):
                return self.decoder(lib.tanh(self.encoder(tokens)))

        tokens = lib.arange(N) % V
        model = LM()
        opt = make_optimizer(lib, model)
        return model, [opt], loop([opt], lambda: F.cross_entropy(model(tokens), (tokens * 2) % V))


def tied_autoencoder(lib):
    """A decoder tied to the encoder's weight transposed, in forward: one Parameter, one optimizer."""
    nn, F = lib.nn, lib.nn.functional

    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc, self.dec_bias = nn.Linear(D, 3), nn.Parameter(lib.zeros(D))

        def forward(self, v):
            return F.linear(lib.tanh(self.enc(v)), self.enc.weight.t(), self.dec_bias)

    x, _, _ = blobs(lib)
    model = Tied()
    opt = lib.optim.Adam(model.parameters(), lr=1e-2)
    return model, [opt], loop([opt], lambda: F.mse_loss(model(x), x))


def shared_encoder(lib):
    """Two tasks on one encoder: one optimizer steps the encoder and the first head, another the second head."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    encoder, head_a, head_b = mlp(lib, D, 8), lib.nn.Linear(8, C), lib.nn.Linear(8, 1)
    opt_a = lib.optim.Adam([*encoder.parameters(), *head_a.parameters()], lr=1e-2)
    opt_b = lib.optim.SGD(head_b.parameters(), lr=0.1)
    target = x.sum(1, keepdim=True)

    def loss():
        h = encoder(x)
        return F.cross_entropy(head_a(h), y) + F.mse_loss(head_b(h), target)

    return encoder, [opt_a, opt_b], together([opt_a, opt_b], loss)


def shared_encoder_in_turn(lib):
    """Two losses on one encoder, each with an optimizer of its own that steps the encoder too, in turn (one
    Parameter in two optimizers, not two Parameters on one storage)."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    encoder, head_a, head_b = mlp(lib, D, 8), lib.nn.Linear(8, C), lib.nn.Linear(8, 1)
    opt_a = lib.optim.Adam([*encoder.parameters(), *head_a.parameters()], lr=1e-2)
    opt_b = lib.optim.SGD([*encoder.parameters(), *head_b.parameters()], lr=0.05)
    target = x.sum(1, keepdim=True)
    return encoder, [opt_a, opt_b], loop([opt_a, opt_b], lambda: F.cross_entropy(head_a(encoder(x)), y),
                                         lambda: F.mse_loss(head_b(encoder(x)), target))


def gan(lib):
    """A plain GAN: two models, two optimizers, nothing shared."""
    F = lib.nn.functional
    x, _, _ = blobs(lib)
    z = lib.randn(N, 4)
    gen, disc = mlp(lib, 4, D), mlp(lib, D, 1)
    opt_d, opt_g = lib.optim.Adam(disc.parameters(), lr=5e-3), lib.optim.Adam(gen.parameters(), lr=1e-3)
    return disc, [opt_d, opt_g], loop(
        [opt_d, opt_g],
        lambda: F.binary_cross_entropy_with_logits(disc(x), lib.ones(N, 1)) +
        F.binary_cross_entropy_with_logits(disc(gen(z).detach()), lib.zeros(N, 1)),
        lambda: F.binary_cross_entropy_with_logits(disc(gen(z)), lib.ones(N, 1)))


def ema_teacher(lib):
    """A mean teacher: a deep copy moved toward the student after each step, under no_grad."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    student = mlp(lib, D, C)
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad_(False)
    opt = lib.optim.Adam(student.parameters(), lr=1e-2)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(student(x), y) + F.mse_loss(student(x), teacher(x))
        loss.backward()
        opt.step()
        with lib.no_grad():
            for t, s in zip(teacher.parameters(), student.parameters()):
                t.copy_(0.9 * t + 0.1 * s)
        return loss.item()

    return student, [opt], step


def target_network(lib):
    """A DQN-style target network, its state loaded from the online one every other step."""
    F = lib.nn.functional
    x, _, _ = blobs(lib)
    online, target = mlp(lib, D, C), mlp(lib, D, C)
    target.load_state_dict(online.state_dict())
    opt = lib.optim.SGD(online.parameters(), lr=0.05)
    reward = x[:, :C]
    steps = [0]

    def step():
        opt.zero_grad()
        with lib.no_grad():
            goal = reward + 0.5 * target(x)
        loss = F.mse_loss(online(x), goal)
        loss.backward()
        opt.step()
        steps[0] += 1
        if steps[0] % 2 == 0:
            target.load_state_dict(online.state_dict())
        return loss.item()

    return online, [opt], step


def two_from_one_start(lib, how: str):
    """Two models started from one weight, each given its own copy (clone, or copy_ into its own), and trained
    apart by two optimizers."""
    F = lib.nn.functional
    x, _, _ = blobs(lib)
    a, b = lib.nn.Linear(D, D), lib.nn.Linear(D, D)
    start = lib.randn(D, D) * 0.3
    with lib.no_grad():
        if how == "clone":
            a.weight, b.weight = lib.nn.Parameter(start.clone()), lib.nn.Parameter(start.clone())
        else:
            a.weight.copy_(start)
            b.weight.copy_(start)
    opt_a, opt_b = lib.optim.SGD(a.parameters(), lr=0.1), lib.optim.Adam(b.parameters(), lr=1e-2)
    return a, [opt_a, opt_b], loop([opt_a, opt_b], lambda: F.mse_loss(a(x), x), lambda: F.mse_loss(b(x), -x))


def actor_critic(lib):
    """A shared trunk under two heads, in one optimizer with a group per part."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    trunk, actor, critic = mlp(lib, D, 8), lib.nn.Linear(8, C), lib.nn.Linear(8, 1)
    opt = lib.optim.Adam([{"params": trunk.parameters(), "lr": 3e-3}, {"params": actor.parameters()},
                          {"params": critic.parameters(), "lr": 2e-2}], lr=1e-2)
    value = x.mean(1, keepdim=True)

    def loss():
        h = trunk(x)
        return F.cross_entropy(actor(h), y) + F.mse_loss(critic(h), value)

    return trunk, [opt], loop([opt], loss)


def optimizer_switched(lib):
    """Adam for the first steps, then SGD on the same Parameters (one after the other, not in turn)."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    model = mlp(lib, D, C)
    adam, sgd = lib.optim.Adam(model.parameters(), lr=1e-2), lib.optim.SGD(model.parameters(), lr=0.1)
    return model, [adam, sgd], one_then_other([adam, sgd], lambda _: F.cross_entropy(model(x), y))


def views_of_one_buffer(lib):
    """Two models' weights as disjoint views of one flat buffer (as vector_to_parameters leaves them), stepped by
    two optimizers: one storage, no shared numbers."""
    F = lib.nn.functional
    x, _, _ = blobs(lib)
    flat = lib.randn(2 * D * D) * 0.3
    a, b = lib.nn.Linear(D, D), lib.nn.Linear(D, D)
    a.weight, b.weight = lib.nn.Parameter(flat[:D * D].view(D, D)), lib.nn.Parameter(flat[D * D:].view(D, D))
    opt_a, opt_b = lib.optim.Adam(a.parameters(), lr=1e-2), lib.optim.Adam(b.parameters(), lr=1e-2)
    return a, [opt_a, opt_b], loop([opt_a, opt_b], lambda: F.mse_loss(a(x), x), lambda: F.mse_loss(b(x), -x))


def handed_over(lib):
    """A model trained a few steps, then wrapped anew over its weight's storage and trained on by a new optimizer;
    the first optimizer steps no more."""
    F = lib.nn.functional
    x, _, _ = blobs(lib)
    first = lib.nn.Linear(D, D)
    second = lib.nn.Linear(D, D)
    second.weight = lib.nn.Parameter(first.weight.data)
    opts = [lib.optim.SGD(first.parameters(), lr=0.1), lib.optim.Adam(second.parameters(), lr=1e-2)]
    return first, opts, one_then_other(opts, lambda i: F.mse_loss((first, second)[i](x), x))


def frozen_view(lib):
    """A probe reading a live, frozen view of the encoder's weight, with a bias of its own its optimizer trains."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    encoder, probe = lib.nn.Linear(D, C), lib.nn.Linear(D, C)
    probe.weight = lib.nn.Parameter(encoder.weight.data, requires_grad=False)
    opt_enc, opt_probe = lib.optim.Adam(encoder.parameters(), lr=1e-2), lib.optim.SGD([probe.bias], lr=0.1)
    return encoder, [opt_enc, opt_probe], loop([opt_enc, opt_probe], lambda: F.cross_entropy(encoder(x), y),
                                               lambda: F.cross_entropy(probe(x), y))


def weights_and_biases_apart(lib):
    """One model, its weights stepped by Adam and its biases by SGD."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    model = mlp(lib, D, C)
    named = list(model.named_parameters())
    opt_w = lib.optim.Adam([p for n, p in named if n.endswith("weight")], lr=1e-2)
    opt_b = lib.optim.SGD([p for n, p in named if n.endswith("bias")], lr=0.1)
    return model, [opt_w, opt_b], together([opt_w, opt_b], lambda: F.cross_entropy(model(x), y))


def ensemble(lib):
    """Two deep copies of one model trained apart, by an optimizer each."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    a = mlp(lib, D, C)
    b = copy.deepcopy(a)
    opt_a, opt_b = lib.optim.Adam(a.parameters(), lr=1e-2), lib.optim.Adam(b.parameters(), lr=3e-3)
    return a, [opt_a, opt_b], loop([opt_a, opt_b], lambda: F.cross_entropy(a(x), y), lambda: F.cross_entropy(b(x), y))


def siamese_shared(lib):
    """One encoder applied to both sides of a pair: the same Parameters twice in a graph, one optimizer."""
    F = lib.nn.functional
    x, y, _ = blobs(lib)
    other = lib.flip(lib.arange(N), [0])
    encoder = mlp(lib, D, 4)
    same = (y == y[other]).float()
    opt = lib.optim.Adam(encoder.parameters(), lr=1e-2)
    return encoder, [opt], loop([opt], lambda: F.binary_cross_entropy_with_logits(
        (encoder(x) * encoder(x[other])).sum(1), same))


def data_tie_plain_sgd(lib):
    """An output layer tied by `.data =` under one plain SGD: its two steps add up to a tie's."""
    nn, F, V = lib.nn, lib.nn.functional, TiedLM.V
    encoder, decoder = nn.Embedding(V, 6), nn.Linear(6, V)
    decoder.weight.data = encoder.weight.data
    tokens = lib.arange(N) % V
    opt = lib.optim.SGD([encoder.weight, decoder.bias, decoder.weight], lr=0.5)
    return encoder, [opt], loop([opt], lambda: F.cross_entropy(decoder(lib.tanh(encoder(tokens))), (tokens * 2) % V))


TIE_EDGES = {
    "tied embeddings, Adam": lambda lib: TiedLM.build(lib, lambda lib, m: lib.optim.Adam(m.parameters(), lr=1e-2)),
    "tied embeddings, SGD with weight decay": lambda lib: TiedLM.build(
        lib, lambda lib, m: lib.optim.SGD(m.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)),
    "weight-tied autoencoder": tied_autoencoder,
    "shared encoder, disjoint optimizers": shared_encoder,
    "shared encoder, two optimizers in turn": shared_encoder_in_turn,
    "GAN": gan,
    "EMA teacher": ema_teacher,
    "target network": target_network,
    "two models from one start, cloned": lambda lib: two_from_one_start(lib, "clone"),
    "two models from one start, copied in": lambda lib: two_from_one_start(lib, "copy_"),
    "actor-critic, one optimizer": actor_critic,
    "optimizer switched": optimizer_switched,
    "disjoint views of one buffer": views_of_one_buffer,
    "handed over to a new optimizer": handed_over,
    "frozen view read by a probe": frozen_view,
    "weights and biases apart": weights_and_biases_apart,
    "ensemble of copies": ensemble,
    "siamese encoder": siamese_shared,
    ".data tie, plain SGD": data_tie_plain_sgd,
}
EDGES = {**LEAK_EDGES, **TIE_EDGES}


def trained(lib, probe, steps: int, debugger: bool = False) -> tuple[list[float], list]:
    """The losses of `steps` steps of probe(lib), and the alerts of these kinds a Debugger at "summary" raised."""
    lib.manual_seed(0)
    model, opts, step = probe(lib)
    with Debugger("summary", model=model, optimizer=opts[0]) if debugger else warnings.catch_warnings() as dbg:
        warnings.simplefilter("ignore")
        losses = [step() for _ in range(steps)]
    return losses, [a for a in dbg.alerts if a.kind in KINDS] if debugger else []


def test_there_are_fifteen_edges_of_each_alert_or_more():
    assert len(LEAK_EDGES) >= 15 and len(TIE_EDGES) >= 15


@pytest.mark.parametrize("name", EDGES)
def test_a_correct_program_at_an_edge_raises_neither_alert(name):
    found = trained(engine, EDGES[name], 6, debugger=True)[1]
    assert found == [], [a.message for a in found]


@needs_torch
@pytest.mark.parametrize("name", EDGES)
def test_each_edge_program_trains_under_torch(name):
    losses = trained(torch, EDGES[name], 60)[0]
    assert np.isfinite(losses).all() and np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5]), losses[::10]
