"""engine.autograd.gradcheck and gradgradcheck against torch's: verdicts on right and wrong custom Functions, the
one-line error naming the input and the worst element, and bad input."""

import numpy as np
import pytest

import engine
from engine.autograd.gradcheck import GradcheckError
from tests.engine.oracle import needs_torch, one_line, torch
from tests.engine.test_custom_function import ENGINE, TORCH

RNG = np.random.default_rng(1)


def _wrong(L):
    class Wrong(L.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, grad):
            x, y = ctx.saved_tensors
            return grad * y, grad * x * 1.1  # 10% off for y

    return Wrong


@needs_torch
def test_gradcheck_passes_on_right_functions_and_fails_on_a_wrong_one():
    Wrong = _wrong(engine)
    x, y = (engine.tensor(RNG.standard_normal((2, 3)), requires_grad=True) for _ in range(2))
    assert engine.autograd.gradcheck(ENGINE.Cube.apply, (x, y[0]))
    assert engine.autograd.gradgradcheck(ENGINE.Cube.apply, (x, y[0]))
    assert engine.autograd.gradcheck(ENGINE.Scale.apply, (x, y), eps=1e-6, atol=1e-5, rtol=1e-3)
    assert engine.autograd.gradcheck(lambda a: ENGINE.TwoOut.apply(a, True), x)
    one_line(lambda: engine.autograd.gradcheck(Wrong.apply, (x, y)), GradcheckError,
             r"Jacobian mismatch for output 0 with respect to input 1: worst at output element \(\d, \d\), input "
             r"element \(\d, \d\)")
    assert engine.autograd.gradcheck(Wrong.apply, (x, y), raise_exception=False) is False
    assert engine.autograd.gradcheck(Wrong.apply, (x, y), atol=1.0, rtol=0.5)  # within loose tolerances
    # torch gives each verdict too; as in torch, gradgradcheck fails for a @once_differentiable backward
    xt, yt = (torch.tensor(t.detach().numpy(), requires_grad=True) for t in (x, y))
    assert torch.autograd.gradcheck(TORCH.Cube.apply, (xt, yt[0]))
    assert torch.autograd.gradcheck(_wrong(torch).apply, (xt, yt), raise_exception=False) is False
    for L, F, a in ((engine, ENGINE, x), (torch, TORCH, xt)):
        assert L.autograd.gradgradcheck(F.ExpOnce.apply, (a,), raise_exception=False) is False
        assert L.autograd.gradgradcheck(F.Exp.apply, (a,))


def test_gradcheck_bad_input():
    x = engine.tensor([1.0, 2.0], dtype=engine.float64)
    one_line(lambda: engine.autograd.gradcheck(ENGINE.Exp.apply, (x,)), ValueError,
             "at least one input tensor to require gradient")
    one_line(lambda: engine.autograd.gradcheck(ENGINE.Exp.apply, (x.requires_grad_(),), check_forward_ad=True),
             NotImplementedError, "check_forward_ad=True needs forward-mode AD")
    with pytest.warns(UserWarning, match="not a double precision"):
        engine.autograd.gradcheck(ENGINE.Exp.apply, engine.ones(2, requires_grad=True), atol=1e-2, rtol=1e-2,
                                  eps=1e-3)


def test_gradcheck_of_a_function_with_a_scalar_output():
    # the commonest use, (a * a).sum(): numpy hands 0-d arithmetic back as a numpy scalar, which to_host refused
    x = engine.randn(3, dtype=engine.float64, requires_grad=True)
    assert engine.autograd.gradcheck(lambda a: (a * a).sum(), (x,))
    assert engine.autograd.gradgradcheck(lambda a: (a * a * a).sum(), (x,))
