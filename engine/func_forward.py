"""torch.func's forward-mode transforms for engine.func: jvp and linearize.

The engine differentiates in reverse mode only, so a Jacobian-vector product is reverse mode twice (the double-vjp
trick): u -> J^T u is linear in u, so the gradient of <J^T u, t> by u, at any u, is J t. One forward pass and two
backward passes instead of forward mode's one dual pass; values agree with torch's to rounding.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.autograd.engine import grad as _autograd_grad
from engine.autograd.grad_mode import enable_grad
from engine.func_transforms import _call, _describe, _flatten, _kept, _split_aux, _tensor_leaves, _unflatten
from engine.tensor import Tensor

__all__ = ["jvp", "linearize"]

_API = "jvp(f, primals, tangents)"


def jvp(func: Callable, primals: tuple, tangents: tuple, *, strict: bool = False, has_aux: bool = False):
    """(func(*primals), J @ tangents) (and aux): the output and its directional derivative along `tangents`."""
    _checked(primals, tangents)
    out, tracked = _call(func, primals, {}, tuple(range(len(primals))) or 0)
    out, aux = _split_aux(out, has_aux, _API)
    outputs, out_spec = _tensor_leaves(out, _API)
    t_leaves = _flatten(tangents)[0]
    keep = tracked.connected(outputs) or any(t.requires_grad for t in t_leaves)
    dummies = [o.detach().new_zeros(o.shape).requires_grad_() for o in outputs]
    with enable_grad():
        back = _flatten(tracked.gradients(outputs, dummies, create_graph=True))[0]  # J^T u, linear in u
        pairs = [(b, t) for b, t in zip(back, t_leaves) if b.requires_grad]
        found = [None] * len(dummies)
        if pairs:
            found = _autograd_grad([b for b, _ in pairs], dummies, [t for _, t in pairs], create_graph=keep,
                                   allow_unused=True)
    products = [o.new_zeros(o.shape) if f is None else f for f, o in zip(found, outputs)]
    value, derivative = _kept(out, keep), _kept(_unflatten(out_spec, products), keep)
    return (value, derivative, _kept(aux, keep)) if has_aux else (value, derivative)


def linearize(func: Callable, *primals):
    """(func(*primals), jvp_fn): jvp_fn(*tangents) is J @ tangents at `primals` (func runs again per call)."""
    _checked(primals, primals)  # a tuple of tensors
    out, tracked = _call(func, primals, {}, tuple(range(len(primals))) or 0)
    value = _kept(out, tracked.connected(_tensor_leaves(out, "linearize(f, *primals)")[0]))

    def jvp_fn(*tangents):
        return jvp(func, primals, tangents)[1]

    return value, jvp_fn


def _checked(primals, tangents) -> None:
    """torch's errors for primals and tangents that do not pair up."""
    if not isinstance(primals, tuple):
        raise RuntimeError(f"{_API}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals).")
    p_leaves, p_spec = _flatten(primals)
    t_leaves, t_spec = _flatten(tangents)
    if p_spec != t_spec:
        raise RuntimeError(f"{_API}: Expected primals and tangents to have the same python structure. For example, "
                           f"if primals is a tuple of 3 tensors, tangents also must be. Got primals with structure "
                           f"{_describe(p_spec)} and tangents with structure {_describe(t_spec)}")
    for p, t in zip(p_leaves, t_leaves):
        if not isinstance(p, Tensor) or not isinstance(t, Tensor):
            raise RuntimeError(f"{_API}: expected primals and tangents to hold only tensors, got "
                               f"{type(p).__name__} and {type(t).__name__}")
        if p.shape != t.shape:
            raise RuntimeError(f"{_API}: a tangent has shape {tuple(t.shape)} but its primal has shape "
                               f"{tuple(p.shape)}; each tangent must be shaped as its primal")
