"""Mistakes found by following tensors through an iteration's graph (engine.debug.flows), each beside correct programs
at its edges that raise nothing: a softmax without dim that normalises (N, T, C) scores over the batch, and a loss's
targets joined into the model's input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger
from tests.engine.oracle import needs_torch, torch

N, T, V, C = 8, 5, 12, 4


def train(model, loss_of, steps: int = 2, opt=None) -> list:
    """The alerts of `steps` steps of SGD (or `opt`) on loss_of(model) under a Debugger, the implicit-dim warnings
    silenced."""
    opt = opt or engine.optim.SGD(model.parameters(), lr=0.1)
    with Debugger("summary", model=model, optimizer=opt) as dbg, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            opt.zero_grad()
            loss_of(model).backward()
            opt.step()
    return list(dbg.alerts)


# ---- a softmax without dim ---------------------------------------------------------------------------------------
class Tagger(nn.Module):
    """(N, T) tokens -> (N, T, C) log-probabilities, through nn.LogSoftmax(dim)."""

    def __init__(self, dim=None) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, 6)
        self.rnn = nn.GRU(6, 6, batch_first=True)
        self.out = nn.Linear(6, C)
        self.logp = nn.LogSoftmax(dim)

    def forward(self, x):
        return self.logp(self.out(self.rnn(self.emb(x))[0]))


def tagged(dim=None) -> list:
    engine.manual_seed(0)
    x, y = engine.randint(0, V, (N, T)), engine.randint(0, C, (N, T))
    return train(Tagger(dim), lambda m: F.nll_loss(m(x).reshape(-1, C), y.reshape(-1)))


def test_a_taggers_log_softmax_without_dim_is_named_as_over_the_batch_and_with_its_dim_is_not():
    (alert,) = tagged()
    assert alert.kind == "implicit_dim"
    assert alert.message.startswith(f"log_softmax over dim 0 (the batch, size {N}) of a ({N}, {T}, {C}) tensor: dim "
                                    "was not given")
    assert "the model's output" in alert.message and "nn.LogSoftmax(dim=-1)" in alert.message
    assert alert.module == "Tagger.logp" and alert.line > 0 and alert.iteration == 0
    assert tagged(-1) == []


@needs_torch
def test_softmax_without_dim_reaching_a_loss_is_named_where_torch_normalises_the_batch_too():
    engine.manual_seed(0)
    model = nn.Linear(6, C)
    x, y = engine.randn(N, T, 6), engine.randint(0, C, (N, T))
    (alert,) = train(model, lambda m: F.nll_loss(engine.log(F.softmax(m(x)) + 1e-8).permute(0, 2, 1), y))
    assert alert.kind == "implicit_dim" and alert.op == "softmax" and "F.softmax(m(x))" in alert.code  # no softmax_dim
    assert "'nll_loss'" in alert.message and "which reads dim 1 as the classes, takes it" in alert.message
    with warnings.catch_warnings():  # what the alert says: the batch sums to 1, each position's classes do not
        warnings.simplefilter("ignore")
        probs = torch.nn.functional.softmax(torch.tensor(model(x).detach().numpy()))
    np.testing.assert_allclose(probs.sum(0).numpy(), 1.0, rtol=1e-5)
    assert not np.allclose(probs.sum(-1).numpy(), 1.0)


class Segmenter(nn.Module):
    """One unbatched (3, H, W) image -> (3, H, W) log-probabilities of 3 classes, softmax without dim (dim 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return F.log_softmax(self.conv(x))


class TimePool(nn.Module):
    """Attention pooling over the time steps of a (T, N, D) sequence: softmax without dim over dim 0, as meant."""

    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(6, 1)
        self.out = nn.Linear(6, C)

    def forward(self, h):
        return self.out((F.softmax(self.score(h)) * h).sum(0))


def test_an_implicit_dim_over_the_classes_or_the_time_steps_is_not_named_one_over_rows_is():
    engine.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1)  # (N, C, H, W): the default for 4-d is dim 1, the classes
    x, y = engine.randn(2, 3, 6, 6), engine.randint(0, 5, (2, 6, 6))
    assert train(conv, lambda m: F.nll_loss(F.log_softmax(m(x)), y)) == []
    h, classes = engine.randn(T, N, 6), engine.randint(0, C, (N,))  # attention pooling over time
    assert train(TimePool(), lambda m: F.cross_entropy(m(h), classes)) == []
    image, labels = engine.randn(3, 6, 6), engine.randint(0, 3, (1, 6, 6))  # unbatched: dim 0 holds the classes
    assert train(Segmenter(), lambda m: F.nll_loss(m(image).unsqueeze(0), labels)) == []
    rows, targets = engine.randn(N, 6, 3), engine.randint(0, 3, (N * 6,))  # a batch of (6, 3) rows: dim 0 its samples
    (alert,) = train(nn.Linear(3, 3), lambda m: F.nll_loss(F.log_softmax(m(rows)).reshape(-1, 3), targets))
    assert alert.kind == "implicit_dim" and f"(the batch, size {N}) of a ({N}, 6, 3) tensor" in alert.message


# ---- targets fed as inputs -----------------------------------------------------------------------------------------
def mlp(d_in: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, 16), nn.ReLU(), nn.Linear(16, C))


@pytest.mark.parametrize("join", ["cat", "add"])
def test_labels_joined_to_the_features_are_named(join):
    engine.manual_seed(0)
    x, y = engine.randn(32, C), engine.randint(0, C, (32,))  # random labels: x says nothing of them
    criterion = nn.CrossEntropyLoss()

    def joined():
        labels = F.one_hot(y, C).float()
        return engine.cat([x, labels], 1) if join == "cat" else x + labels

    model = mlp(2 * C if join == "cat" else C)
    opt = engine.optim.Adam(model.parameters(), lr=1e-2)
    (alert,) = train(model, lambda m: criterion(m(joined()), y), steps=150, opt=opt)
    assert alert.kind == "label_leak" and alert.op == join and alert.iteration == 0 and alert.line > 0
    assert "the targets of 'cross_entropy'" in alert.message and "are also in the model's input" in alert.message
    assert "model(x)" in alert.message
    assert criterion(model(joined()), y).item() < 0.25 * np.log(C)  # what it says: the loss falls toward 0


class Seq2Seq(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, 6)
        self.enc = nn.GRU(6, 6, batch_first=True)
        self.dec = nn.GRU(6, 6, batch_first=True)
        self.out = nn.Linear(6, V)

    def forward(self, src, dec_in):
        return self.out(self.dec(self.emb(dec_in), self.enc(self.emb(src))[1])[0])


def test_teacher_forcing_a_language_model_and_an_autoencoder_are_no_leak_but_the_target_itself_is():
    engine.manual_seed(0)
    src, y = engine.randint(1, V, (N, T)), engine.randint(1, V, (N, T))
    bos = engine.zeros(N, 1, dtype=engine.int64)
    # the decoder reads the target shifted right; not shifted, it reads the answer
    assert train(Seq2Seq(), lambda m: F.cross_entropy(m(src, engine.cat([bos, y[:, :-1]], 1)).transpose(1, 2), y)) \
        == []
    # the source and the targets joined into the encoder's input: the answer is in it
    (alert,) = train(Seq2Seq(), lambda m: F.cross_entropy(m(engine.cat([src, y], 1), engine.cat([bos, y[:, :-1]], 1))
                                                          .transpose(1, 2), y))
    assert alert.kind == "label_leak" and alert.op == "cat"
    seq = engine.randint(0, V, (N, T + 1))
    lm = nn.Sequential(nn.Embedding(V, 6), nn.Linear(6, V))  # inputs and targets: two slices of one sequence
    assert train(lm, lambda m: F.cross_entropy(m(seq[:, :-1]).reshape(-1, V), seq[:, 1:].reshape(-1))) == []
    # the target is the input itself, or the input masked
    assert train(lm, lambda m: F.cross_entropy(m(src).reshape(-1, V), src.reshape(-1))) == []
    masked = engine.rand(N, T) < 0.3
    assert train(lm, lambda m: F.cross_entropy(m(src.masked_fill(masked, 0)).reshape(-1, V),
                                               src.masked_fill(~masked, -100).reshape(-1))) == []


class Discriminator(nn.Module):
    """An auxiliary-classifier GAN's: real-or-fake and the class."""

    def __init__(self, d_in: int = 6) -> None:
        super().__init__()
        self.body = nn.Linear(d_in, 8)
        self.real = nn.Linear(8, 1)
        self.cls = nn.Linear(8, C)

    def forward(self, x):
        h = F.leaky_relu(self.body(x), 0.2)
        return self.real(h), self.cls(h)


def test_labels_that_condition_a_gan_are_no_leak_but_a_class_the_discriminator_reads_and_predicts_is():
    engine.manual_seed(0)
    z, c = engine.randn(N, 3), engine.randint(0, C, (N,))
    generator, disc = nn.Sequential(nn.Linear(3 + C, 8), nn.ReLU(), nn.Linear(8, 6)), Discriminator()

    def generator_loss(g):  # AC-GAN: the generator's label is the class head's target, scored on its output
        real, classes = disc(g(engine.cat([z, F.one_hot(c, C).float()], 1)))
        return F.binary_cross_entropy_with_logits(real, engine.ones(N, 1)) + F.cross_entropy(classes, c)

    assert train(generator, generator_loss) == []
    critic = nn.Sequential(nn.Linear(6 + C, 8), nn.ReLU(), nn.Linear(8, 1))
    x = engine.randn(N, 6)
    # a conditional discriminator: the label joins the image, the targets are real/fake
    assert train(critic, lambda d: F.binary_cross_entropy_with_logits(
        d(engine.cat([x, F.one_hot(c, C).float()], 1)), engine.ones(N, 1))) == []
    reads = Discriminator(6 + C)  # an auxiliary classifier given the class it is to predict

    def discriminator_loss(d):
        real, classes = d(engine.cat([x, F.one_hot(c, C).float()], 1))
        return F.binary_cross_entropy_with_logits(real, engine.ones(N, 1)) + F.cross_entropy(classes, c)

    (alert,) = train(reads, discriminator_loss)
    assert alert.kind == "label_leak"


class MarginHead(nn.Module):
    """An additive-margin (CosFace) classifier: it takes the labels to subtract the margin from each sample's class."""

    def __init__(self, d_in: int = 6) -> None:
        super().__init__()
        self.body = nn.Linear(d_in, 8)
        self.classes = nn.Parameter(engine.randn(C, 8))

    def forward(self, x, y):
        cos = F.normalize(self.body(x), dim=1) @ F.normalize(self.classes, dim=1).t()
        return 16.0 * (cos - 0.2 * F.one_hot(y, C).float())


def test_a_margin_head_that_takes_the_labels_is_no_leak_but_labels_joined_to_its_features_are():
    engine.manual_seed(0)
    x, y = engine.randn(N, 6), engine.randint(0, C, (N,))
    assert train(MarginHead(), lambda m: F.cross_entropy(m(x, y), y)) == []
    (alert,) = train(MarginHead(6 + C), lambda m: F.cross_entropy(m(engine.cat([x, F.one_hot(y, C).float()], 1), y), y))
    assert alert.kind == "label_leak"


class Pointer(nn.Module):
    """A seq-first pointer network: (T, N, D) -> (T, N, K) log-probabilities over the T positions (dim 0, as meant)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(6, 16)
        self.q = nn.Linear(16, 3)

    def forward(self, x):
        return F.log_softmax(self.q(engine.tanh(self.enc(x))))


class PixelMLP(nn.Module):
    """One unbatched (3, H, W) image -> (3, H, W) log-probabilities of 3 classes, by a per-pixel MLP (dim 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(3, 16), nn.Linear(16, 3)

    def forward(self, img):
        return F.log_softmax(self.l2(F.relu(self.l1(img.permute(1, 2, 0)))).permute(2, 0, 1))


@needs_torch
def test_a_seq_first_pointer_and_a_per_pixel_mlp_over_dim_0_as_meant_are_not_named():
    engine.manual_seed(0)
    x = engine.randn(N, 16, 6)  # (T, N, D): the batch is 16, dim 0 the positions pointed at
    y = engine.stack([x[:, :, k].argmax(0) for k in range(3)], 1)  # (N, K): a position per query
    assert train(Pointer(), lambda m: F.nll_loss(m(x).permute(1, 0, 2), y)) == []
    image = engine.randn(3, 8, 8)
    labels = image.argmax(0).unsqueeze(0)
    assert train(PixelMLP(), lambda m: F.nll_loss(m(image).unsqueeze(0), labels)) == []
    with warnings.catch_warnings():  # what both mean: torch's default for a 3-d input is dim 0
        warnings.simplefilter("ignore")
        logp = torch.nn.functional.log_softmax(torch.tensor(Pointer()(x).detach().numpy()))
    np.testing.assert_allclose(logp.exp().sum(0).numpy(), 1.0, rtol=1e-5)


class CVAE(nn.Module):
    """A conditional VAE: the encoder reads [x, its class one-hot], the decoder [z, the class]; x is reconstructed."""

    def __init__(self, d: int = 10, z: int = 3) -> None:
        super().__init__()
        self.enc, self.mu, self.lv = nn.Linear(d + C, 16), nn.Linear(16, z), nn.Linear(16, z)
        self.dec = nn.Sequential(nn.Linear(z + C, 16), nn.ReLU(), nn.Linear(16, d))

    def forward(self, xc, c1h):
        h = F.relu(self.enc(xc))
        mu, lv = self.mu(h), self.lv(h)
        z = mu + engine.randn_like(mu) * engine.exp(0.5 * lv)
        return self.dec(engine.cat([z, c1h], 1)), mu, lv


class TabularAE(nn.Module):
    """An autoencoder of rows of numbers and a one-hot category, each reconstructed by its own head."""

    def __init__(self, numbers: int = 5) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(numbers + C, 16), nn.ReLU(), nn.Linear(16, 6))
        self.num, self.cat = nn.Linear(6, numbers), nn.Linear(6, C)

    def forward(self, row):
        h = F.relu(self.enc(row))
        return self.num(h), self.cat(h)


def test_autoencoders_reconstructing_what_they_read_are_no_leak():
    engine.manual_seed(0)
    x, c = (engine.rand(32, 10) < 0.3).float(), engine.randint(0, C, (32,))
    dae = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 10))  # denoising: the clean x is the target
    assert train(dae, lambda m: F.binary_cross_entropy_with_logits(m(x + 0.5 * engine.randn(32, 10)), x)) == []

    def cvae_loss(m):
        c1h = F.one_hot(c, C).float()
        logits, mu, lv = m(engine.cat([x, c1h], 1), c1h)
        return F.binary_cross_entropy_with_logits(logits, x) - 0.5 * engine.mean(1 + lv - mu.pow(2) - lv.exp())

    assert train(CVAE(), cvae_loss) == []
    num = engine.randn(32, 5)

    def tabular_loss(m, category_first: bool):
        num_out, cat_logits = m(engine.cat([num, F.one_hot(c, C).float()], 1))
        numbers, category = F.mse_loss(num_out, num), F.cross_entropy(cat_logits, c)
        return category + numbers if category_first else numbers + category

    assert train(TabularAE(), lambda m: tabular_loss(m, False)) == []
    assert train(TabularAE(), lambda m: tabular_loss(m, True)) == []
