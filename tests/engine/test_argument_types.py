"""Arguments of the wrong kind, said in one line where PyTorch refuses them (a Python bool as where's condition, a
number as copysign's or isclose's input, momentum=None for the functional batch_norm), and the numbers the engine
takes where torch asks for a tensor (maximum and minimum, which clamp relies on)."""

import numpy as np
import pytest

import engine
import engine.nn.functional as EF
from tests.engine.oracle import one_line, torch

REFUSED = {  # name -> (fn(L, F), the engine's message), written once for L = engine or torch
    "where_python_bool": (lambda L, F: L.where(True, L.ones(2), 0.5),
                          r"^where: condition must be a bool tensor, got bool$"),
    "where_float_condition": (lambda L, F: L.where(L.ones(2), L.ones(2), 0.5),
                              r"^where: condition must be a bool tensor, got engine.float32$"),
    "copysign_number_first": (lambda L, F: L.copysign(1, L.ones(2)),
                              r"^copysign\(\): argument 'input' \(position 1\) must be Tensor, not int$"),
    "isclose_number_first": (lambda L, F: L.isclose(False, L.ones(2)),
                             r"^isclose\(\): argument 'input' \(position 1\) must be Tensor, not bool$"),
    "batch_norm_momentum_none": (lambda L, F: F.batch_norm(L.ones(4, 3), L.zeros(3), L.ones(3), training=True,
                                                           momentum=None),
                                 r"^batch_norm: momentum must be a number, got None; .*nn.BatchNorm's momentum=None"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_argument_torch_refuses_is_named_in_one_line(name):
    fn, message = REFUSED[name]
    one_line(lambda: fn(engine, EF), TypeError, message)
    if torch is not None:
        with pytest.raises((TypeError, RuntimeError)):
            fn(torch, torch.nn.functional)


def test_batch_norm_module_with_momentum_none_keeps_a_cumulative_average():
    bn = engine.nn.BatchNorm1d(2, momentum=None)
    batches = [np.array([[1.0, 2.0], [3.0, 6.0]]), np.array([[5.0, 0.0], [7.0, 2.0]])]
    for b in batches:
        bn(engine.tensor(b, dtype=engine.float32))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([b.mean(0) for b in batches], axis=0), rtol=1e-6)
    if torch is not None:
        ref = torch.nn.BatchNorm1d(2, momentum=None)
        for b in batches:
            ref(torch.tensor(b, dtype=torch.float32))
        np.testing.assert_allclose(bn.running_var.numpy(), ref.running_var.numpy(), rtol=1e-6)


def test_maximum_and_minimum_take_a_number_as_clamp_does():
    """torch.maximum(x, 0.) is a TypeError; the engine computes it (clamp(x, min=tensor, max=number) is built on
    it), with the gradient split as for a tensor bound."""
    x = engine.tensor([1.0, -2.0, 0.0], requires_grad=True)
    (engine.maximum(x, 0.0) + engine.minimum(x, 0.0) * 2).sum().backward()
    np.testing.assert_array_equal(engine.maximum(x, 0.0).detach().numpy(), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0, 1.5])  # a tie splits evenly
    if torch is not None:
        t = torch.tensor([1.0, -2.0, 0.0], requires_grad=True)
        (torch.maximum(t, torch.tensor(0.0)) + torch.minimum(t, torch.tensor(0.0)) * 2).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
        bounded = engine.clamp(engine.tensor([-3.0, 0.5, 3.0]), min=engine.tensor(-1.0), max=1.0)
        np.testing.assert_array_equal(bounded.numpy(), torch.clamp(torch.tensor([-3.0, 0.5, 3.0]),
                                                                   min=torch.tensor(-1.0), max=1.0).numpy())
