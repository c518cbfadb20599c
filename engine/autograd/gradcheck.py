"""torch.autograd.gradcheck and gradgradcheck: a function's gradients against central finite differences.

    engine.autograd.gradcheck(MyFunction.apply, (x, w))    # float64 inputs with requires_grad=True

The analytical Jacobian comes from one backward per output element, the numerical one from moving each input
element by +-eps; a mismatch raises GradcheckError naming the output, the input and the worst element. The
module imports nothing of the engine when loaded (engine.autograd imports it before Tensor exists).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(RuntimeError):
    """A gradient differs from finite differences (torch.autograd.gradcheck.GradcheckError)."""


def _unsupported(**flags) -> None:
    for name, on in flags.items():
        if on:
            raise NotImplementedError(f"gradcheck: {name}=True needs forward-mode AD, vmap or sparse tensors, which "
                                      "the engine does not have; leave it False")


def gradcheck(func: Callable, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, check_forward_ad: bool = False,
              check_backward_ad: bool = True, fast_mode: bool = False, masked: bool | None = None) -> bool:
    """True when the gradients of `func(*inputs)` with respect to the floating inputs that require grad match central
    differences (allclose with `rtol`, `atol`); else raises GradcheckError (or returns False).

    fast_mode checks the whole Jacobian too (it is only slower); undefined output gradients are the engine's zeros
    or None, as set_materialize_grads says, so check_undefined_grad has nothing more to check."""
    _unsupported(check_batched_grad=check_batched_grad, check_batched_forward_grad=check_batched_forward_grad,
                 check_forward_ad=check_forward_ad, masked=bool(masked))
    inputs = _as_tuple(inputs)
    try:
        if check_backward_ad:
            _check(func, inputs, eps, atol, rtol, nondet_tol, check_grad_dtypes)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(func: Callable, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  nondet_tol: float = 0.0, check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_fwd_over_rev: bool = False, check_rev_over_rev: bool = True,
                  fast_mode: bool = False, masked: bool = False) -> bool:
    """gradcheck of the gradient itself: the gradients of func's outputs (weighted by `grad_outputs`, random when
    None) with respect to its inputs, taken with create_graph=True, checked as a function of inputs and weights."""
    import engine

    _unsupported(check_batched_grad=check_batched_grad, check_fwd_over_rev=check_fwd_over_rev, masked=masked)
    inputs = _as_tuple(inputs)
    n = len(inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        outs = [o for o in _as_tuple(func(*inputs)) if _differentiable(o)]
        grad_outputs = tuple(engine.tensor(rng.standard_normal(o.array.shape), dtype=o.dtype, device=o.device,
                                           requires_grad=True) for o in outs)
    grad_outputs = _as_tuple(grad_outputs)

    def first_gradient(*args):
        xs = [a for a in args[:n] if _differentiable(a)]
        outs = [o for o in _as_tuple(func(*args[:n])) if _differentiable(o)]
        grads = engine.autograd.grad(outs, xs, args[n:], create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    if not check_rev_over_rev:
        return True
    return gradcheck(first_gradient, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol, check_grad_dtypes=check_grad_dtypes)


def _as_tuple(x) -> tuple:
    from engine.tensor import Tensor

    return (x,) if isinstance(x, Tensor) else tuple(x) if isinstance(x, Sequence) else (x,)


def _differentiable(t) -> bool:
    from engine.tensor import Tensor

    return isinstance(t, Tensor) and t.requires_grad and t.dtype.is_floating_point


def _check(func: Callable, inputs: tuple, eps: float, atol: float, rtol: float, nondet_tol: float,
           check_dtypes: bool) -> None:
    wrt = [i for i, t in enumerate(inputs) if _differentiable(t)]
    if not wrt:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of the them have "
                         "requires_grad=True.")
    for i in wrt:
        if inputs[i].array.dtype != np.float64:
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating point. This check "
                          "will likely fail if all the inputs are not of double precision floating point.",
                          stacklevel=3)
    analytical = _analytical(func, inputs, wrt, check_dtypes)
    again = _analytical(func, inputs, wrt, False)
    for j, (rows, rows2) in enumerate(zip(analytical, again)):
        for i, a, b in zip(wrt, rows, rows2):
            if np.abs(a - b).max(initial=0.0) > nondet_tol:
                raise GradcheckError(
                    f"Backward is not reentrant, i.e., running backward with same input and grad_output multiple "
                    f"times gives different values, although analytical gradient matches numerical gradient. The "
                    f"tolerance for nondeterminism was {nondet_tol} (output {j}, input {i}).")
    numerical = _numerical(func, inputs, wrt, eps)
    for j, (rows, nums) in enumerate(zip(analytical, numerical)):
        for i, a, num in zip(wrt, rows, nums):
            excess = np.abs(a - num) - (atol + rtol * np.abs(num))
            if excess.size and excess.max() > 0:
                k = np.unravel_index(int(excess.argmax()), excess.shape)
                shape_in, shape_out = inputs[i].array.shape, _outputs(func, inputs)[j].shape
                at_in = tuple(int(v) for v in np.unravel_index(k[1], shape_in)) if shape_in else ()
                at_out = tuple(int(v) for v in np.unravel_index(k[0], shape_out)) if shape_out else ()
                raise GradcheckError(
                    f"Jacobian mismatch for output {j} with respect to input {i}: worst at output element {at_out}, "
                    f"input element {at_in}: numerical {num[k]:.6g}, analytical {a[k]:.6g} (atol {atol}, "
                    f"rtol {rtol})")


def _outputs(func: Callable, inputs: tuple) -> list:
    """func's floating outputs, as copies of their arrays (an output may share an input's memory). Grad mode stays
    as it is: gradgradcheck's function takes a gradient inside."""
    from engine.tensor import Tensor

    return [o.array.copy() for o in _as_tuple(func(*inputs)) if isinstance(o, Tensor) and o.dtype.is_floating_point]


def _analytical(func: Callable, inputs: tuple, wrt: list, check_dtypes: bool) -> list:
    """[output][input] Jacobian blocks (output elements x input elements), from one backward per output element."""
    import engine
    from engine.backend import array_module
    from engine.tensor import Tensor

    outs = [o for o in _as_tuple(func(*inputs)) if isinstance(o, Tensor) and o.dtype.is_floating_point]
    blocks = []
    for o in outs:
        rows = [np.zeros((o.numel(), inputs[i].numel())) for i in wrt]
        if o.requires_grad:
            xp = array_module(o.array)
            for k in range(o.numel()):
                seed = xp.zeros(o.array.size, o.array.dtype)
                seed[k] = 1
                grads = engine.autograd.grad(o, [inputs[i] for i in wrt], Tensor._wrap(seed.reshape(o.array.shape)),
                                             retain_graph=True, allow_unused=True)
                for r, g, i in zip(rows, grads, wrt):
                    if g is None:
                        continue
                    if check_dtypes and g.dtype != inputs[i].dtype:
                        raise GradcheckError(f"Gradient has dtype mismatch: input {i} is {inputs[i].dtype.name}, "
                                             f"its gradient {g.dtype.name}")
                    r[k] = _host(g.array).reshape(-1)
        blocks.append(rows)
    return blocks


def _numerical(func: Callable, inputs: tuple, wrt: list, eps: float) -> list:
    """[output][input] Jacobian blocks from central differences, each input element moved in place and back."""
    base = _outputs(func, inputs)
    blocks = [[np.zeros((o.size, inputs[i].numel())) for i in wrt] for o in base]
    for col, i in enumerate(wrt):
        arr = inputs[i].array
        for k in range(arr.size):
            at = np.unravel_index(k, arr.shape)
            old = arr[at].copy()
            arr[at] = old + eps
            hi = _outputs(func, inputs)
            arr[at] = old - eps
            lo = _outputs(func, inputs)
            arr[at] = old
            for j, (h, low) in enumerate(zip(hi, lo)):
                blocks[j][col][:, k] = _host(h - low).reshape(-1) / (2 * eps)
    return blocks


def _host(a) -> np.ndarray:
    from engine.backend import to_host

    return np.asarray(to_host(a), dtype=np.float64)
