"""tape.grad_norms(name): a layer's gradient norm per optimizer step, read back from a recorded tape."""


import numpy as np
import pytest

import engine
import engine.nn.functional as F
import engine.tape
from tests.engine.tape.helpers import MLP, as_format_1


def _record(path, steps: int = 4) -> list[float]:
    """Record `steps` SGD steps of an MLP; the norms of fc1.weight's gradient each step used, as measured here."""
    model = MLP()
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    x = engine.tensor(rng.standard_normal((8, 6)).astype(np.float32))
    y = engine.tensor(rng.integers(0, 3, 8))
    seen = []
    with engine.record(path, capture="summary", model=model):
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            seen.append(float(np.linalg.norm(model.fc1.weight.grad.numpy())))
            opt.step()
    return seen


def test_grad_norms_give_a_layers_gradient_norm_at_each_step(tmp_path):
    path = tmp_path / "run.tape"
    seen = _record(path)
    with engine.tape.open(path) as tape:
        iterations, norms = tape.grad_norms("fc1.weight")
        steps = tape.optimizer_steps()
    assert iterations.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(norms, seen, rtol=1e-5)
    # the same numbers the optimizer steps hold, which is where the accessor reads them
    assert norms.tolist() == [ev.grad_norms["fc1.weight"] for _, ev in steps]


def test_grad_norms_of_a_name_no_step_holds_lists_the_names_held(tmp_path):
    path = tmp_path / "run.tape"
    _record(path, steps=2)
    with engine.tape.open(path) as tape, pytest.raises(ValueError, match=r"'fc3.weight'.*fc1\.bias, fc1\.weight"):
        tape.grad_norms("fc3.weight")


def test_grad_norms_of_a_format_1_tape_say_it_is_too_old(tmp_path):
    path = tmp_path / "run.tape"
    _record(path, steps=2)
    as_format_1(path)
    with engine.tape.open(path) as tape, pytest.raises(ValueError, match="before tapes kept gradient norms"):
        tape.grad_norms("fc1.weight")
