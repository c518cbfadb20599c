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


def test_stack_module_state_runs_an_ensemble_through_vmap_as_torch():
    import numpy as np
    import torch

    from engine import nn
    from engine.func import functional_call, stack_module_state, vmap

    engine.manual_seed(0)
    models = [nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)).eval() for _ in range(3)]
    params, buffers = stack_module_state(models)
    assert params["0.weight"].shape == (3, 8, 4) and params["0.weight"].is_leaf and params["0.weight"].requires_grad
    assert buffers["1.running_mean"].shape == (3, 8) and not buffers["1.running_mean"].requires_grad
    x = engine.randn(5, 4)
    out = vmap(lambda p, b, x: functional_call(models[0], (p, b), (x,)), in_dims=(0, 0, None))(params, buffers, x)
    out.sum().backward()

    ref = [torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
           .eval() for _ in range(3)]
    for mine, theirs in zip(models, ref):
        theirs.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in mine.state_dict().items()})
    tp, tb = torch.func.stack_module_state(ref)
    tx = torch.from_numpy(x.numpy())
    t_out = torch.func.vmap(lambda p, b, x: torch.func.functional_call(ref[0], (p, b), (x,)), in_dims=(0, 0, None))(
        tp, tb, tx)
    t_out.sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    for name, p in params.items():
        np.testing.assert_allclose(p.grad.numpy(), tp[name].grad.numpy(), rtol=1e-4, atol=1e-6)
    assert models[0][0].weight.grad is None  # the members' own parameters are not the stacked leaves


def test_stack_module_state_refuses_what_cannot_be_stacked():
    from engine import nn
    from engine.func import stack_module_state

    with pytest.raises(RuntimeError, match="at least one model"):
        stack_module_state([])
    with pytest.raises(RuntimeError, match="every model must be a Linear"):
        stack_module_state([nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2))])
    with pytest.raises(RuntimeError, match="mix training and eval"):
        stack_module_state([nn.Linear(2, 2), nn.Linear(2, 2).eval()])
    frozen = nn.Linear(2, 2)
    frozen.weight.requires_grad_(False)
    with pytest.raises(RuntimeError, match="'weight' requires grad in some models"):
        stack_module_state([nn.Linear(2, 2), frozen])
