"""Higher-order gradients of the rest of the common ops: moments, prod, cumsum, nan-reductions, group/instance
and eval-mode batch norm, embedding, transposed convolutions, adaptive pooling, padding modes, N-d class losses,
einsum, gather/scatter, special functions, binary/KL losses, resampling, recurrent layers and attention.

Each op's gradient and the gradient of (gradient . v) are compared with PyTorch in float64, and the latter
with central differences of the engine's own gradient; then a DCGAN-like WGAN-GP runs three steps beside torch.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as enn
from tests.engine.oracle import needs_torch, torch
from tests.engine.second_order import second_order_tests
from tests.engine.test_higher_order import _check_wgan_gp, _close, _copy_weights, gradient_penalty

if torch is not None:
    import torch.nn as tnn

_RNG = np.random.default_rng(11)
TARGETS_ND = _RNG.integers(0, 3, (2, 4, 5))
TARGETS_ND[0, 1, 2] = -100
RUNNING_MEAN, RUNNING_VAR = _RNG.standard_normal(3), _RNG.uniform(0.5, 2.0, 3)
CLASS_WEIGHT = _RNG.uniform(0.5, 2.0, 3)
PROBS = _RNG.uniform(0.05, 0.95, (3, 4))


def _idx(L, a):
    return L.tensor(np.asarray(a))


CASES = {
    "var_dim_correction": (lambda L, F, a: a.var(dim=1, correction=0) * a.sum(1) + a.var(dim=(0, 2)).sum(),
                           [(3, 4, 2)]),
    "std": (lambda L, F, a: a.std(dim=0, keepdim=True) * a + a.std(), [(3, 4)]),
    "prod": (lambda L, F, a: a.prod(dim=1) * a.sum(1) + a[:2].prod(), [(3, 4)]),
    "prod_with_zeros": (lambda L, F, a: (a * L.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 1]])).prod(dim=1) * a.sum(1),
                        [(3, 3)]),
    "cumsum": (lambda L, F, a: L.cumsum(a * a, dim=1) * a, [(3, 4)]),
    "nansum_nanmean": (lambda L, F, a: L.nansum(a * a, dim=1) * L.nanmean(a * a * a), [(3, 4)]),
    "group_norm": (lambda L, F, x, w, b: F.group_norm(x * x, 2, w, b) ** 3, [(2, 4, 3), (4,), (4,)]),
    "instance_norm": (lambda L, F, x, w, b: F.instance_norm(x, weight=w, bias=b) ** 3, [(2, 3, 5), (3,), (3,)]),
    "batch_norm_eval": (lambda L, F, x, w, b: F.batch_norm(x * x, _idx(L, RUNNING_MEAN), _idx(L, RUNNING_VAR), w, b,
                                                           training=False) ** 3, [(4, 3, 2), (3,), (3,)]),
    "embedding": (lambda L, F, w: L.tanh(F.embedding(_idx(L, [[1, 0], [2, 1]]), w * w, padding_idx=0)), [(4, 3)]),
    "conv_transpose2d": (lambda L, F, x, w, b: L.tanh(F.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                                         output_padding=1)) ** 2,
                         [(2, 3, 3, 4), (3, 2, 3, 3), (2,)]),
    "conv_transpose2d_groups_dilation": (lambda L, F, x, w: F.conv_transpose2d(x, w, groups=2, dilation=2) ** 2,
                                         [(1, 4, 3, 3), (4, 1, 2, 2)]),
    "conv_transpose1d": (lambda L, F, x, w: L.tanh(F.conv_transpose1d(x, w, stride=2)) ** 2, [(2, 3, 5), (3, 4, 3)]),
    "adaptive_avg_pool2d": (lambda L, F, x: F.adaptive_avg_pool2d(x * x, (2, 3)) ** 2, [(2, 2, 5, 5)]),
    "adaptive_avg_pool1d": (lambda L, F, x: F.adaptive_avg_pool1d(x * x, 3) ** 2, [(2, 2, 7)]),
    "adaptive_max_pool2d": (lambda L, F, x: F.adaptive_max_pool2d(x * x, 2) ** 2, [(2, 2, 5, 5)]),
    "pad_reflect": (lambda L, F, x: F.pad(x * x, (1, 2, 2, 1), mode="reflect") ** 2, [(1, 2, 4, 4)]),
    "pad_replicate": (lambda L, F, x: F.pad(x * x, (2, 1), mode="replicate") ** 2, [(2, 2, 4)]),
    "pad_circular": (lambda L, F, x: F.pad(x * x, (1, 1, 1, 2), mode="circular") ** 2, [(1, 2, 3, 4)]),
    "pad_constant": (lambda L, F, x: F.pad(x * x, (1, 2, -1, 1), value=0.5) ** 2, [(1, 2, 3, 4)]),
    "cross_entropy_nd": (lambda L, F, a: F.cross_entropy(a * a, _idx(L, TARGETS_ND)) * a.sum(), [(2, 3, 4, 5)]),
    "cross_entropy_nd_weight_smoothing": (lambda L, F, a: F.cross_entropy(
        a * a, _idx(L, TARGETS_ND), weight=_idx(L, CLASS_WEIGHT), label_smoothing=0.2, reduction="none") * a[:, 0],
        [(2, 3, 4, 5)]),
    "nll_loss_nd": (lambda L, F, a: F.nll_loss(F.log_softmax(a * a, 1), _idx(L, TARGETS_ND[:, :, 0]),
                                               weight=_idx(L, CLASS_WEIGHT)) * a.sum(), [(2, 3, 4)]),
    "einsum": (lambda L, F, a, b: L.tanh(L.einsum("bij,bjk->bik", a, b)) * L.einsum("bij->j", a).sum(),
               [(2, 3, 4), (2, 4, 2)]),
    "einsum_ellipsis_outer": (lambda L, F, a, b: L.einsum("...i,j->...ij", a, b) ** 2, [(2, 3), (4,)]),
    "gather": (lambda L, F, a: L.gather(a * a, 1, _idx(L, [[0, 1], [2, 2], [3, 0]])) ** 2, [(3, 4)]),
    "scatter": (lambda L, F, a, s: L.scatter(a * a, 1, _idx(L, [[0, 1], [2, 3], [3, 0]]), s * s) ** 2,
                [(3, 4), (3, 2)]),
    "scatter_add": (lambda L, F, a, s: L.scatter_add(a * a, 1, _idx(L, [[0, 1], [2, 2], [3, 0]]), s * a[:, :2]) ** 2,
                    [(3, 4), (3, 2)]),
    "index_select": (lambda L, F, a: L.index_select(a * a, 1, _idx(L, [0, 2, 2])) ** 2, [(3, 4)]),
    "index_add": (lambda L, F, a, s: L.index_add(a * a, 0, _idx(L, [2, 0, 2]), s * s, alpha=1.5) ** 2,
                  [(3, 4), (3, 4)]),
    "erf_erfc": (lambda L, F, a: L.erf(a) * L.special.erfc(a * a) * a, [(6,)]),
    "erfinv": (lambda L, F, a: L.erfinv(L.tanh(a) * 0.9) * a, [(6,)]),
    "lgamma_digamma": (lambda L, F, a: L.lgamma(a.abs() + 0.5) * L.digamma(a * a + 0.7), [(6,)]),
    "polygamma": (lambda L, F, a: L.polygamma(1, a * a + 0.5) * a, [(6,)]),
    "logsumexp_variants": (lambda L, F, a: L.logsumexp(a, dim=(0, 2)) * L.logsumexp(a * a, dim=1, keepdim=True).sum(),
                           [(2, 3, 4)]),
    "binary_cross_entropy": (lambda L, F, a, b: F.binary_cross_entropy(
        L.sigmoid(a), L.sigmoid(b), weight=_idx(L, PROBS)) * a.sum(), [(3, 4), (3, 4)]),
    "binary_cross_entropy_with_logits": (lambda L, F, a, b: F.binary_cross_entropy_with_logits(
        a * 2, L.sigmoid(b), pos_weight=_idx(L, PROBS[0] * 3), reduction="none") * a, [(3, 4), (3, 4)]),
    "binary_cross_entropy_with_logits_mean": (lambda L, F, a, b: F.binary_cross_entropy_with_logits(
        a * 2, L.sigmoid(b), weight=_idx(L, PROBS)) * a.sum(), [(3, 4), (3, 4)]),
    "kl_div": (lambda L, F, a, b: F.kl_div(F.log_softmax(a, 1), F.softmax(b, 1), reduction="batchmean") * a.sum(),
               [(3, 4), (3, 4)]),
    "kl_div_log_target": (lambda L, F, a, b: F.kl_div(F.log_softmax(a, 1), F.log_softmax(b, 1), reduction="sum",
                                                      log_target=True) * a.sum(), [(3, 4), (3, 4)]),
    "kl_div_probabilities": (lambda L, F, a: F.kl_div(a, _idx(L, PROBS), reduction="mean") * a.sum(), [(3, 4)]),
    "cosine_similarity_normalize": (lambda L, F, a, b: F.cosine_similarity(a, b) * F.normalize(a * b).sum(1),
                                    [(3, 4), (3, 4)]),
    "interpolate_nearest": (lambda L, F, x: F.interpolate(x * x, scale_factor=2, mode="nearest") ** 2, [(1, 2, 3, 3)]),
    "interpolate_bilinear": (lambda L, F, x: F.interpolate(x * x, size=(5, 4), mode="bilinear",
                                                           align_corners=False) ** 2, [(1, 2, 3, 3)]),
    "interpolate_bilinear_aligned": (lambda L, F, x: F.interpolate(x * x, scale_factor=1.5, mode="bilinear",
                                                                   align_corners=True) ** 2, [(1, 1, 4, 3)]),
    "scaled_dot_product_attention": (lambda L, F, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True) ** 2,
                                     [(2, 3, 4), (2, 3, 4), (2, 3, 4)]),
}


test_second_order_matches_torch, test_second_order_matches_finite_differences = second_order_tests(CASES)


def test_third_order_through_gather_and_cumsum():
    x = engine.tensor([0.3, -0.8, 1.2, 0.5], dtype=engine.float64, requires_grad=True)
    y = (engine.cumsum(x, 0) ** 4).sum() + (engine.gather(x, 0, engine.tensor([3, 3, 1])) ** 4).sum()
    (d1,) = engine.autograd.grad(y, x, create_graph=True)
    (d2,) = engine.autograd.grad(d1.sum(), x, create_graph=True)
    (d3,) = engine.autograd.grad(d2.sum(), x)
    a = x.detach().numpy()
    c = np.cumsum(a)
    # d3[i] = sum over j, k of the third derivative: c_m reaches x_0..x_m, so (m + 1)^2 pairs (j, k) per m >= i
    expected = np.array([24 * np.sum((c * np.arange(1, 5) ** 2)[i:]) for i in range(4)])
    expected[3] += 2 * 24 * a[3]  # x_3 is gathered twice and x_1 once; the third derivative of x^4 is 24 x
    expected[1] += 24 * a[1]
    np.testing.assert_allclose(d3.numpy(), expected, rtol=1e-10)


# ---- recurrent layers and attention: gradient penalties against torch --------------------------------------
def _input_gradient_penalty(L, module, x, index=0):
    """||d sum(out) / d x||^2, whose gradient needs the backward of every op of the module differentiated."""
    out = module(x)
    out = out[index] if isinstance(out, tuple) else out
    (g,) = L.autograd.grad((out * out).sum(), x, create_graph=True)
    penalty = (g * g).sum()
    penalty.backward()
    return penalty, [p.grad for p in module.parameters()], x.grad


@needs_torch
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_recurrent_layer_gradient_penalty_matches_torch(kind):
    engine.manual_seed(0)
    ours = getattr(enn, kind)(3, 4, num_layers=2, batch_first=True).to(dtype=engine.float64)
    theirs = getattr(tnn, kind)(3, 4, num_layers=2, batch_first=True).double()
    _copy_weights(ours, theirs)
    x = np.random.default_rng(7).standard_normal((2, 5, 3))
    pe, ge, xe = _input_gradient_penalty(engine, ours, engine.tensor(x, requires_grad=True))
    pt, gt, xt = _input_gradient_penalty(torch, theirs, torch.tensor(x, requires_grad=True))
    _close(pe, pt)
    _close(xe, xt)
    for a, b in zip(ge, gt):
        _close(a, b)


@needs_torch
def test_multihead_attention_gradient_penalty_matches_torch():
    engine.manual_seed(0)
    ours = enn.MultiheadAttention(4, 2, batch_first=True).to(dtype=engine.float64)
    theirs = tnn.MultiheadAttention(4, 2, batch_first=True).double()
    _copy_weights(ours, theirs)
    x = np.random.default_rng(8).standard_normal((2, 3, 4))

    class SelfAttention:
        def __init__(self, m):
            self.m = m

        def __call__(self, t):
            return self.m(t, t, t)[0]

        def parameters(self):
            return self.m.parameters()

    pe, ge, xe = _input_gradient_penalty(engine, SelfAttention(ours), engine.tensor(x, requires_grad=True))
    pt, gt, xt = _input_gradient_penalty(torch, SelfAttention(theirs), torch.tensor(x, requires_grad=True))
    _close(pe, pt)
    _close(xe, xt)
    for a, b in zip(ge, gt):
        _close(a, b)


# ---- WGAN-GP, end to end: a DCGAN-like generator and critic ------------------------------------------------
def _generator(nn):
    return nn.Sequential(
        nn.ConvTranspose2d(4, 8, 4, stride=1, padding=0), nn.BatchNorm2d(8), nn.ReLU(),  # 1x1 -> 4x4
        nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1), nn.Tanh())  # 4x4 -> 8x8


def _critic(nn):
    # no batch norm in a WGAN-GP critic (the penalty is per sample); layer norm instead, as the paper advises
    return nn.Sequential(
        nn.Conv2d(1, 4, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 8x8 -> 4x4
        nn.Conv2d(4, 8, 4, stride=2, padding=1), nn.LayerNorm([8, 2, 2]), nn.LeakyReLU(0.2),  # -> 2x2
        nn.Flatten(), nn.Linear(8 * 2 * 2, 1))


def _wgan_gp_steps(L, gen, critic, noise, real, alpha, lam=10.0):
    """Three rounds of one critic step (with the gradient penalty) and one generator step; losses and weights."""
    opt_d = L.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    opt_g = L.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.9))
    losses = []
    for z, x, a in zip(noise, real, alpha):
        z, x, a = L.tensor(z), L.tensor(x), L.tensor(a)
        fake = gen(z).detach()
        opt_d.zero_grad()
        penalty = gradient_penalty(L, critic, x, fake, a)
        loss_d = critic(fake).mean() - critic(x).mean() + lam * penalty
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = -critic(gen(z)).mean()
        loss_g.backward()
        opt_g.step()
        losses.append((loss_d.item(), penalty.item(), loss_g.item()))
    return losses


@needs_torch
def test_wgan_gp_dcgan_three_steps_match_torch():
    engine.manual_seed(0)
    gen_e, critic_e = _generator(enn).to(dtype=engine.float64), _critic(enn).to(dtype=engine.float64)
    gen_t, critic_t = _generator(tnn).double(), _critic(tnn).double()
    _copy_weights(gen_e, gen_t)
    _copy_weights(critic_e, critic_t)
    rng = np.random.default_rng(9)
    noise = [rng.standard_normal((4, 4, 1, 1)) for _ in range(3)]
    real = [np.tanh(rng.standard_normal((4, 1, 8, 8))) for _ in range(3)]
    alpha = [rng.uniform(size=(4, 1, 1, 1)) for _ in range(3)]
    losses_e = _wgan_gp_steps(engine, gen_e, critic_e, noise, real, alpha)
    losses_t = _wgan_gp_steps(torch, gen_t, critic_t, noise, real, alpha)
    np.testing.assert_allclose(losses_e, losses_t, rtol=1e-7, atol=1e-10)
    assert all(p > 0 for _, p, _ in losses_e)  # the penalty term was live
    for ours, theirs in ((gen_e, gen_t), (critic_e, critic_t)):
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-7, atol=1e-10, err_msg=name)


@needs_torch
def test_wgan_gp_on_a_critic_with_transposed_convolution_and_instance_norm_matches_torch():
    _check_wgan_gp(lambda nn: nn.Sequential(
        nn.ConvTranspose2d(1, 3, 3, stride=2, padding=1), nn.InstanceNorm2d(3, affine=True), nn.LeakyReLU(0.2),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12, 1)), (3, 1, 4, 4))
