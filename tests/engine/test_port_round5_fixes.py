"""What the fifth port round found in the engine outside the helpers' files: scalar draws of the gamma family."""

import pytest

import engine
import engine.distributions as D

SCALAR = [("Beta", (0.4, 0.4)), ("Gamma", (2.0, 1.0)), ("StudentT", (3.0,)), ("Chi2", (2.0,)), ("Binomial", (5, 0.3))]


@pytest.mark.parametrize("name,args", SCALAR)
@pytest.mark.parametrize("as_tensor", [False, True])
def test_a_distribution_of_scalar_parameters_draws_a_0d_sample(name, args, as_tensor):
    # mixup's `lam = Beta(a, a).sample()`: numpy hands back a Python float for a 0-d draw
    params = [engine.tensor(float(a)) if as_tensor else a for a in args]
    d = getattr(D, name)(*params)
    for s in [d.sample()] + ([d.rsample()] if d.has_rsample else []):
        assert s.shape == () and s.dtype == engine.float32
        assert bool(engine.isfinite(d.log_prob(s)))
    assert d.sample((3,)).shape == (3,)


def test_a_scalar_gamma_sample_keeps_its_gradient():
    alpha = engine.tensor(2.0, requires_grad=True)
    D.Gamma(alpha, engine.tensor(1.0)).rsample().backward()
    assert alpha.grad is not None and alpha.grad.shape == ()
