"""GLU, PReLU, instance norm, the 2-D padding layers and PixelShuffle against PyTorch: repr, state,
forward and backward."""

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine.autograd.function import ShapeError
from tests.engine.oracle import needs_torch, same_repr, torch
from tests.engine.test_layers import compare_case

RNG = np.random.default_rng(7)
X4 = RNG.standard_normal((2, 4, 3, 5)).astype(np.float32)

CASES = {
    "glu": (lambda nn: nn.GLU(dim=1), [X4]),
    "glu_last": (lambda nn: nn.GLU(), [RNG.standard_normal((3, 6)).astype(np.float32)]),
    "prelu_one": (lambda nn: nn.PReLU(), [X4]),
    "prelu_channels": (lambda nn: nn.PReLU(4, init=0.1), [X4]),
    "zero_pad": (lambda nn: nn.ZeroPad2d((1, 2, 0, 1)), [X4]),
    "constant_pad": (lambda nn: nn.ConstantPad2d(1, 2.5), [X4]),
    "reflection_pad": (lambda nn: nn.ReflectionPad2d(2), [X4]),
    "replication_pad": (lambda nn: nn.ReplicationPad2d((0, 1, 2, 0)), [X4]),
    "pixel_shuffle": (lambda nn: nn.PixelShuffle(2), [X4]),
    "instance_norm2d": (lambda nn: nn.InstanceNorm2d(4), [X4]),
    "instance_norm2d_affine": (lambda nn: nn.InstanceNorm2d(4, eps=1e-3, affine=True), [X4]),
    "instance_norm1d": (lambda nn: nn.InstanceNorm1d(3, affine=True),
                        [RNG.standard_normal((2, 3, 7)).astype(np.float32)]),
}


@needs_torch
@pytest.mark.parametrize("name", CASES)
def test_layer_matches_torch(name):
    compare_case(CASES[name])


def test_bad_shapes_name_what_is_wrong():
    with pytest.raises(ShapeError, match="halving dimension must be even, but dimension 1 is size 3"):
        F.glu(engine.ones(2, 3), dim=1)
    with pytest.raises(ShapeError, match=r"3 slopes for an input of shape \(2, 4, 3, 5\)"):
        F.prelu(engine.tensor(X4), engine.ones(3))
    with pytest.raises(ShapeError, match=r"pixel_shuffle: expected \(\*, C\*3\^2, H, W\)"):
        F.pixel_shuffle(engine.tensor(X4), 3)
    with pytest.raises(ValueError, match="padding must be an int or 4 ints"):
        engine.nn.ZeroPad2d((1, 2))
    with pytest.raises(ValueError, match=r"expected an input of shape \(N, 4, \*, \*\), got \(2, 3, 5\)"):
        engine.nn.InstanceNorm2d(4)(engine.ones(2, 3, 5))


@needs_torch
def test_cosine_similarity_and_pairwise_distance_modules_as_torch():
    a, b = np.random.default_rng(3).standard_normal((2, 4, 5))
    for ours, theirs in ((engine.nn.CosineSimilarity(dim=1), torch.nn.CosineSimilarity(dim=1)),
                         (engine.nn.CosineSimilarity(dim=0, eps=1e-3), torch.nn.CosineSimilarity(dim=0, eps=1e-3)),
                         (engine.nn.PairwiseDistance(p=1.0), torch.nn.PairwiseDistance(p=1.0))):
        x, tx = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        out, ref = ours(x, engine.tensor(b)), theirs(tx, torch.tensor(b))
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
        out.sum().backward()
        ref.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
        assert same_repr(ours, theirs)
