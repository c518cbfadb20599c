"""Optimizers keep their step count (and NAdam's, ASGD's running scalars) as torch does: a scalar tensor."""

import numpy as np
import pytest

import engine
from engine import optim
from tests.engine.oracle import cuda_or_skip, needs_torch, torch

KEEP_A_STEP = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop", "Rprop", "ASGD",
               "Adafactor"]


def stepped(name, lib, steps=3):
    p = (lib.nn.Parameter if lib is torch else engine.nn.Parameter)(lib.tensor(np.arange(6.0).reshape(2, 3)))
    opt = getattr(lib.optim, name)([p], lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
    return opt, p


@needs_torch
@pytest.mark.parametrize("name", KEEP_A_STEP)
def test_scalar_state_is_a_tensor_like_torchs(name):
    ours, p = stepped(name, engine)
    theirs, tp = stepped(name, torch)
    mine, reference = ours.state[p], theirs.state[tp]
    scalars = {k for k, v in reference.items() if v.ndim == 0}
    assert scalars and scalars == {k for k, v in mine.items() if isinstance(v, engine.Tensor) and v.ndim == 0}
    for key in scalars:
        assert mine[key].dtype == engine.float32 and mine[key].device.type == "cpu"
        assert mine[key].item() == pytest.approx(reference[key].item(), rel=1e-6), key
    assert mine["step"].item() == 3.0 and int(mine["step"]) == 3


def test_a_checkpoint_with_a_number_for_the_step_goes_on_counting():
    opt, p = stepped("Adam", engine, steps=2)
    saved = opt.state_dict()
    saved["state"][0]["step"] = 2  # as an older engine checkpoint kept it
    fresh = optim.Adam([p], lr=0.1)
    fresh.load_state_dict(saved)
    assert isinstance(fresh.state[p]["step"], engine.Tensor) and fresh.state[p]["step"].item() == 2.0
    (p * p).sum().backward()
    fresh.step()
    assert fresh.state[p]["step"].item() == 3.0


def test_state_dict_is_a_snapshot_of_the_step():
    opt, p = stepped("Adam", engine, steps=2)
    saved = opt.state_dict()
    (p * p).sum().backward()
    opt.step()
    assert saved["state"][0]["step"].item() == 2.0 and opt.state[p]["step"].item() == 3.0


@needs_torch
def test_torchs_state_dict_loads_and_continues_as_torch():
    theirs, tp = stepped("NAdam", torch, steps=2)
    ours = optim.NAdam([engine.nn.Parameter(engine.tensor(tp.detach().numpy()))], lr=0.1)
    state = theirs.state_dict()
    ours.load_state_dict({"state": {i: {k: engine.tensor(v.numpy()) for k, v in s.items()}
                                    for i, s in state["state"].items()},
                          "param_groups": state["param_groups"]})
    p = ours.param_groups[0]["params"][0]
    for lib_opt, param in ((ours, p), (theirs, tp)):
        lib_opt.zero_grad()
        (param * param).sum().backward()
        lib_opt.step()
    np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-6)
    assert ours.state[p]["mu_product"].item() == pytest.approx(theirs.state[tp]["mu_product"].item(), rel=1e-6)


@pytest.mark.parametrize("name", ["Adam", "NAdam", "ASGD", "RMSprop"])
def test_scalar_state_stays_on_the_cpu_for_cuda_parameters(name):
    cuda_or_skip()
    p = engine.nn.Parameter(engine.tensor(np.arange(6.0).reshape(2, 3), device="cuda"))
    opt = getattr(optim, name)([p], lr=0.1)
    cpu = engine.nn.Parameter(engine.tensor(np.arange(6.0).reshape(2, 3)))
    ref = getattr(optim, name)([cpu], lr=0.1)
    for param, o in ((p, opt), (cpu, ref)):
        for _ in range(3):
            o.zero_grad()
            (param * param).sum().backward()
            o.step()
    assert opt.state[p]["step"].device.type == "cpu" and opt.state[p]["step"].item() == 3.0
    np.testing.assert_allclose(p.detach().cpu().numpy(), cpu.detach().numpy(), rtol=1e-6)
