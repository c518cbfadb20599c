"""InstanceNorm1d/2d/3d with track_running_stats=True: running mean and variance updated while training and
used in eval, against PyTorch."""

import numpy as np
import pytest

import engine
from engine.nn.layers import norm
from tests.engine.oracle import GRAD_ATOL, GRAD_RTOL, cuda_or_skip, needs_torch, same_repr, torch

FWD = dict(rtol=1e-3, atol=1e-5)
GRAD = dict(rtol=GRAD_RTOL, atol=GRAD_ATOL)
SHAPES = {"InstanceNorm1d": (3, 4, 6), "InstanceNorm2d": (2, 4, 3, 5), "InstanceNorm3d": (2, 4, 2, 3, 3)}


def batches(shape, count, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * (i + 1) + i).astype(np.float32) for i in range(count)]


@needs_torch
@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("momentum, affine", [(0.1, True), (0.5, False), (None, True)])
def test_running_stats_follow_training_and_serve_eval_as_in_torch(name, momentum, affine):
    make = dict(affine=affine, track_running_stats=True, momentum=momentum)
    theirs, ours = getattr(torch.nn, name)(4, **make), getattr(norm, name)(4, **make)
    assert same_repr(ours, theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    if affine:  # weights that are not 1 and 0, so the affine shows
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-1, 1)
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for x in batches(SHAPES[name], 3):
        np.testing.assert_allclose(ours(engine.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                                   **FWD)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    if momentum is not None:  # the statistics moved away from (0, 1)
        assert not np.allclose(ours.running_var.numpy(), 1.0)
    theirs.eval()
    ours.eval()
    x = batches(SHAPES[name], 1, seed=9)[0]
    xt, xe = torch.tensor(x, requires_grad=True), engine.tensor(x, requires_grad=True)
    yt, ye = theirs(xt), ours(xe)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), **FWD)
    r = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    (yt * torch.tensor(r)).sum().backward()
    (ye * engine.tensor(r)).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), **GRAD)
    if affine:
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), **GRAD)
        np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), **GRAD)
    running = ours.running_mean.numpy().copy()
    ours(engine.tensor(x))
    np.testing.assert_array_equal(ours.running_mean.numpy(), running)  # eval leaves them alone


def test_eval_uses_running_stats_only_when_tracked():
    x = engine.tensor(batches((2, 3, 8), 1)[0])
    tracked, untracked = norm.InstanceNorm1d(3, track_running_stats=True), norm.InstanceNorm1d(3)
    assert "running_mean" not in untracked.state_dict() and untracked.running_mean is None
    tracked(x), untracked(x)
    tracked.eval(), untracked.eval()
    # untracked: each sample by its own statistics, also in eval (mean 0 per sample and channel)
    np.testing.assert_allclose(untracked(x).numpy().mean(-1), 0, atol=1e-5)
    # tracked: by the running ones, the same shift for every sample
    mean, var = tracked.running_mean.numpy()[:, None], tracked.running_var.numpy()[:, None]
    expected = (x.numpy() - mean) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(tracked(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    tracked.reset_running_stats()
    assert np.all(tracked.running_mean.numpy() == 0) and np.all(tracked.running_var.numpy() == 1)


@needs_torch
def test_state_from_torch_loads_and_gives_torch_eval_output():
    theirs = torch.nn.InstanceNorm2d(4, affine=True, track_running_stats=True)
    for x in batches((2, 4, 3, 5), 2):
        theirs(torch.tensor(x))
    ours = norm.InstanceNorm2d(4, affine=True, track_running_stats=True)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    theirs.eval()
    ours.eval()
    x = batches((2, 4, 3, 5), 1, seed=4)[0]
    np.testing.assert_allclose(ours(engine.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               **FWD)


def test_training_on_one_spatial_element_says_so():
    layer = norm.InstanceNorm1d(3, track_running_stats=True)
    with pytest.raises(ValueError, match=r"InstanceNorm1d: expected more than 1 spatial element when training, "
                                         r"got input of shape \(2, 3, 1\)"):
        layer(engine.zeros(2, 3, 1))
    layer.eval()
    assert layer(engine.zeros(2, 3, 1)).shape == (2, 3, 1)  # eval has its statistics already


@pytest.mark.gpu
def test_running_stats_on_gpu_match_cpu():
    cuda_or_skip()
    cpu = norm.InstanceNorm2d(4, affine=True, track_running_stats=True)
    gpu = norm.InstanceNorm2d(4, affine=True, track_running_stats=True, device="cuda")
    for x in batches((2, 4, 3, 5), 3):
        cpu(engine.tensor(x))
        gpu(engine.tensor(x, device="cuda"))
    assert gpu.running_mean.is_cuda
    for key, value in cpu.state_dict().items():
        np.testing.assert_allclose(gpu.state_dict()[key].cpu().numpy(), value.numpy(), rtol=1e-5, atol=1e-6)
    cpu.eval()
    gpu.eval()
    x = batches((2, 4, 3, 5), 1, seed=3)[0]
    np.testing.assert_allclose(gpu(engine.tensor(x, device="cuda")).detach().cpu().numpy(),
                               cpu(engine.tensor(x)).detach().numpy(), **FWD)
