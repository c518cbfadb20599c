"""torch.nn.utils.spectral_norm / remove_spectral_norm, the older hook API: against PyTorch and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from tests.engine.oracle import (
    FWD_ATOL,
    FWD_RTOL,
    GRAD_ATOL,
    GRAD_RTOL,
    check_grads,
    cuda_or_skip,
    lib,
    needs_torch,
    one_line,
    torch,
)

X = np.random.default_rng(0).standard_normal((3, 2, 4, 4)).astype(np.float32)


def _critic(L, dtype="float32"):
    """A small SNGAN-style critic: conv, transposed conv (dim 1 by default) and a linear layer."""
    nn = L.nn
    L.manual_seed(0)
    return nn.Sequential(nn.utils.spectral_norm(nn.Conv2d(2, 3, 3)), nn.LeakyReLU(0.1),
                         nn.utils.spectral_norm(nn.ConvTranspose2d(3, 2, 3)), nn.Flatten(),
                         nn.utils.spectral_norm(nn.Linear(32, 4), n_power_iterations=2)).to(getattr(L, dtype))


def _arrays(state) -> dict:
    return {k: v.detach().numpy().copy() for k, v in state.items()}


def _pair(dtype="float32"):
    """The torch critic and ours holding torch's weights, u and v (loaded from numpy arrays)."""
    ref, ours = _critic(torch, dtype), _critic(engine, dtype)
    ours.load_state_dict(_arrays(ref.state_dict()))
    return ref, ours


def _close_state(ours, ref, rtol=FWD_RTOL, atol=FWD_ATOL) -> None:
    ours, ref = _arrays(ours.state_dict()), _arrays(ref.state_dict())
    assert list(ours) == list(ref)
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=rtol, atol=atol, err_msg=k)


@needs_torch
def test_state_dict_keys_shapes_and_attributes_are_torchs():
    ref, ours = _critic(torch), _critic(engine)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in ref.named_buffers()]
    assert tuple(ours[2].weight_u.shape) == (2,)  # ConvTranspose: dim 1, the output channels
    conv = ours[0]
    assert not isinstance(conv.weight, engine.nn.Parameter)  # a plain attribute, readable before any forward
    np.testing.assert_array_equal(conv.weight.numpy(), conv.weight_orig.detach().numpy())


@needs_torch
def test_training_steps_match_torch_weights_u_v_outputs_and_gradients():
    ref, ours = _pair()
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    opt = engine.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    for step in range(4):
        x = X * (1 + step)
        out_ref, out = ref(torch.from_numpy(x)), ours(engine.from_numpy(x))
        np.testing.assert_allclose(out.detach().numpy(), out_ref.detach().numpy(), rtol=FWD_RTOL, atol=FWD_ATOL)
        _close_state(ours, ref)  # u and v after this step's power iteration
        for i in (0, 2, 4):
            np.testing.assert_allclose(ours[i].weight.detach().numpy(), ref[i].weight.detach().numpy(),
                                       rtol=FWD_RTOL, atol=FWD_ATOL)
        opt_ref.zero_grad()
        opt.zero_grad()
        (out_ref ** 2).mean().backward()
        (out ** 2).mean().backward()
        for (name, p_ref), (_, p) in zip(ref.named_parameters(), ours.named_parameters(), strict=True):
            np.testing.assert_allclose(p.grad.numpy(), p_ref.grad.numpy(), rtol=GRAD_RTOL, atol=GRAD_ATOL,
                                       err_msg=name)
        opt_ref.step()
        opt.step()
    _close_state(ours, ref)


@needs_torch
def test_eval_uses_u_v_without_updating_them():
    ref, ours = _pair()
    ref.eval()
    ours.eval()
    before = _arrays(ours.state_dict())
    for _ in range(2):
        out_ref, out = ref(torch.from_numpy(X)), ours(engine.from_numpy(X))
        np.testing.assert_allclose(out.detach().numpy(), out_ref.detach().numpy(), rtol=FWD_RTOL, atol=FWD_ATOL)
    after = _arrays(ours.state_dict())
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    ours.train()
    ours(engine.from_numpy(X))
    assert not np.array_equal(ours[0].weight_u.numpy(), before["0.weight_u"])


@needs_torch
def test_backward_through_two_forwards_as_a_gan_critic_loss():
    ref, ours = _pair()
    fake = X[::-1].copy()
    (ref(torch.from_numpy(X)).mean() - ref(torch.from_numpy(fake)).mean()).backward()
    (ours(engine.from_numpy(X)).mean() - ours(engine.from_numpy(fake)).mean()).backward()
    for (name, p_ref), (_, p) in zip(ref.named_parameters(), ours.named_parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), p_ref.grad.numpy(), rtol=GRAD_RTOL, atol=GRAD_ATOL, err_msg=name)


@needs_torch
def test_gradient_penalty_second_order_matches_torch():
    ref, ours = _pair("float64")
    x = X.astype(np.float64)
    for L, model in ((torch, ref), (engine, ours)):
        xt = L.tensor(x, requires_grad=True)
        (g,) = L.autograd.grad(model(xt).sum(), xt, create_graph=True)
        ((g.flatten(1).norm(dim=1) - 1) ** 2).mean().backward()
    for (name, p_ref), (_, p) in zip(ref.named_parameters(), ours.named_parameters(), strict=True):
        if name.endswith("weight_orig"):  # the biases get no (or an all-zero) gradient from the penalty
            np.testing.assert_allclose(p.grad.numpy(), p_ref.grad.numpy(), rtol=1e-7, atol=1e-10, err_msg=name)


def _hooked_linear(L, dim=0):
    L.manual_seed(0)
    return L.nn.utils.spectral_norm(L.nn.Linear(3, 4), dim=dim).double().eval()


MODELS = {}


def _eval_call(x, w, b, u, v):
    """The eval-mode forward of a spectrally normalised Linear with the given weight_orig, bias, u and v."""
    L = lib(x)
    model = MODELS.setdefault(L.__name__, _hooked_linear(L))
    return L.func.functional_call(model, {"weight_orig": w, "bias": b, "weight_u": u, "weight_v": v}, (x,))


def test_gradients_match_finite_differences_and_torch():
    rng = np.random.default_rng(3)
    u, v = rng.standard_normal(4), rng.standard_normal(3)
    check_grads(_eval_call, [(5, 3), (4, 3), (4,), u / np.linalg.norm(u), v / np.linalg.norm(v)], wrt=[0, 1, 2])


@needs_torch
@pytest.mark.parametrize("dim", [0, 1])
def test_remove_keeps_the_normalised_weight_as_one_parameter(dim):
    ref, ours = _hooked_linear(torch, dim).train(), _hooked_linear(engine, dim).train()
    ours.load_state_dict(_arrays(ref.state_dict()))
    x = np.random.default_rng(1).standard_normal((5, 3))
    ref(torch.from_numpy(x))
    ours(engine.from_numpy(x))
    torch.nn.utils.remove_spectral_norm(ref)
    assert engine.nn.utils.remove_spectral_norm(ours) is ours
    assert [n for n, _ in ours.named_parameters()] == ["bias", "weight"] == [n for n, _ in ref.named_parameters()]
    assert not list(ours.buffers())
    assert isinstance(ours.weight, engine.nn.Parameter)
    _close_state(ours, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours(engine.from_numpy(x)).detach().numpy(), ref(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-10)
    engine.nn.utils.spectral_norm(ours)  # and it can be applied again


@needs_torch
def test_a_trained_state_dict_round_trips_into_torch():
    ref, ours = _pair()
    ours(engine.from_numpy(X)).sum().backward()
    engine.optim.SGD(ours.parameters(), lr=0.5).step()
    ours(engine.from_numpy(X))
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in _arrays(ours.state_dict()).items()})
    ref.eval()
    ours.eval()
    np.testing.assert_allclose(ours(engine.from_numpy(X)).detach().numpy(), ref(torch.from_numpy(X)).detach().numpy(),
                               rtol=FWD_RTOL, atol=FWD_ATOL)


def test_bad_uses_raise_torchs_errors():
    nn = engine.nn
    sn = nn.utils.spectral_norm
    lin = sn(nn.Linear(2, 2))
    one_line(lambda: sn(lin), RuntimeError, "Cannot register two spectral_norm hooks on the same parameter weight")
    one_line(lambda: nn.utils.remove_spectral_norm(nn.Linear(2, 2)), ValueError,
             r"spectral_norm of 'weight' not found in Linear\(in_features=2")
    one_line(lambda: nn.utils.remove_spectral_norm(lin, "bias"), ValueError, "spectral_norm of 'bias' not found")
    one_line(lambda: sn(nn.Linear(2, 2), name="kernel"), KeyError, "Linear has no parameter named 'kernel'")
    one_line(lambda: sn(nn.Linear(2, 2, bias=False), name="bias"), ValueError,
             "`SpectralNorm` cannot be applied as parameter `bias` is None")
    one_line(lambda: sn(nn.Linear(2, 2), n_power_iterations=0), ValueError,
             "Expected n_power_iterations to be positive, but got n_power_iterations=0")
    one_line(lambda: sn(nn.Linear(2, 2), dim=2), RuntimeError, r"dim must be in \[0, 2\) for the 2-d parameter")
    one_line(lambda: sn(nn.Linear(2, 2), dim=-1), RuntimeError, "got -1")
    one_line(lambda: sn(nn.LazyLinear(2)), ValueError, "can't have uninitialized parameters")


def test_cuda_training_step_matches_cpu():
    cuda_or_skip()
    cpu, gpu = _critic(engine), _critic(engine)
    gpu.load_state_dict(_arrays(cpu.state_dict()))
    gpu.cuda()
    for model, dev in ((cpu, "cpu"), (gpu, "cuda")):
        model(engine.tensor(X, device=dev)).square().mean().backward()
    for (name, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters(), strict=True):
        np.testing.assert_allclose(q.grad.cpu().numpy(), p.grad.numpy(), rtol=GRAD_RTOL, atol=GRAD_ATOL, err_msg=name)
    cpu_state, gpu_state = _arrays(cpu.state_dict()), {k: v.cpu().numpy() for k, v in gpu.state_dict().items()}
    for k in cpu_state:
        np.testing.assert_allclose(gpu_state[k], cpu_state[k], rtol=FWD_RTOL, atol=FWD_ATOL, err_msg=k)
