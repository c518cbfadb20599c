"""engine.autograd.functional, as torch.autograd.functional: vjp, jvp, jacobian, hessian, vhp and hvp of a function.

Inputs and outputs are a Tensor or a tuple of Tensors, and results nest as torch's do. Everything runs in reverse
mode: jvp and hvp by the double-backward trick (as torch does), and `vectorize=True` or `strategy="forward-mode"`
are accepted but computed the same way as without them, one backward per output element.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.autograd.engine import grad as _grad
from engine.autograd.grad_mode import enable_grad, is_grad_enabled, set_grad_enabled
from engine.tensor import Tensor

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]

_NOT_DIFFERENTIABLE = {  # strict mode: what it means that one of these does not require grad
    "outputs": "Output {i} of the user-provided function does not require gradients. The outputs must be computed "
               "in a differentiable manner from the input when running in strict mode.",
    "grad_inputs": "The gradient with respect to input {i} is independent of the inputs of the user-provided "
                   "function. This is not allowed in strict mode.",
    "jacobian": "While computing the hessian, found that the jacobian of the user-provided function with respect "
                "to input {i} is independent of the input. This is not allowed in strict mode. You should ensure "
                "that your function is twice differentiable and that the jacobian depends on the inputs (this would "
                "be violated by a linear function for example).",
    "hessian": "The hessian of the user-provided function with respect to input {i} is independent of the input. "
               "This is not allowed in strict mode. You should ensure that your function is thrice differentiable "
               "and that the hessian depends on the inputs.",
}
_INDEPENDENT = {  # strict mode: a product with no path from the function to input (or grad_outputs entry) i
    "back": "The output of the user-provided function is independent of input {i}. This is not allowed in strict "
            "mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the grad_outputs when using "
                  "the double backward trick to compute forward mode gradients. This is not allowed in strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. This is not allowed in "
                   "strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry {i} in the "
                         "grad_jacobian. This is not allowed in strict mode as it prevents from using the double "
                         "backward trick to replace forward mode AD.",
}
_CONSTANT = "The {what} of the user-provided function is independent of input {i}. This is not allowed in strict " \
            "mode when create_graph=True."


def _as_tuple(inp, arg_name: str, fn_name: str) -> tuple[bool, tuple]:
    """Whether `inp` was a tuple, and it as a tuple of Tensors."""
    is_tuple = isinstance(inp, tuple)
    items = inp if is_tuple else (inp,)
    for i, el in enumerate(items):
        if not isinstance(el, Tensor):
            where = f"the value at index {i}" if is_tuple else f"the given {arg_name}"
            raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors but "
                            f"{where} has type {type(el)}.")
    return is_tuple, items


def _unpack(res, to_unpack):
    """Undo `_as_tuple` on a result: one flag, or (outputs', inputs') flags for a result nested output by input."""
    if isinstance(to_unpack, tuple):
        if not to_unpack[1]:
            res = tuple(el[0] for el in res)
        to_unpack = to_unpack[0]
    return res if to_unpack else res[0]


def _preprocess(tensors: tuple, create_graph: bool, need_graph: bool) -> tuple:
    """New Tensor objects for the function (so its captured tensors are told apart from its inputs): views that
    keep the caller's graph under create_graph, else detached copies."""
    return tuple(t.view_as(t) if create_graph and t.requires_grad else t.detach().requires_grad_(need_graph)
                 for t in tensors)


def _postprocess(res, create_graph: bool):
    """Results without history unless create_graph (nested tuples kept)."""
    if isinstance(res, Tensor):
        return res if create_graph else res.detach()
    return tuple(_postprocess(r, create_graph) for r in res)


def _check_v(v, against: tuple, is_tuple: bool, fn_name: str, create_graph: bool) -> tuple:
    """`v` as a tuple of Tensors shaped as `against`."""
    _, v = _as_tuple(v, "v", fn_name)
    v = _preprocess(v, create_graph, need_graph=False)
    if len(v) != len(against):
        if is_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(against)} but got {len(v)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for i, (el_v, el) in enumerate(zip(v, against)):
        if el_v.shape != el.shape:
            entry = f"Entry {i} in " if is_tuple else ""
            raise RuntimeError(f"{entry}v has invalid size: should be {el.shape} but got {el_v.shape}.")
    return v


def _v_or_one(v, against: tuple, is_tuple: bool, fn_name: str, create_graph: bool, what: str):
    """`_check_v`'s tuple, or None where the one thing v stands against has one element."""
    if v is not None:
        return _check_v(v, against, is_tuple, fn_name, create_graph)
    if len(against) != 1 or against[0].numel() != 1:
        raise RuntimeError(f"The vector v can only be None if {what} a single Tensor with a single element.")
    return None


def _check_requires_grad(tensors: tuple, kind: str, strict: bool) -> None:
    if not strict:
        return
    for i, t in enumerate(tensors):
        if t is None:
            raise RuntimeError(_INDEPENDENT["back"].format(i=i))
        if not t.requires_grad:
            raise RuntimeError(_NOT_DIFFERENTIABLE[kind].format(i=i))


def _autograd_grad(outputs: tuple, inputs: tuple, grad_outputs=None, create_graph: bool = False) -> tuple:
    """autograd.grad over the outputs that require grad; None for an input none of them reaches."""
    grad_outputs = (None,) * len(outputs) if grad_outputs is None else grad_outputs
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    outs, seeds = zip(*pairs)
    return _grad(outs, inputs, seeds, retain_graph=True, create_graph=create_graph, allow_unused=True)


def _fill_in_zeros(grads: tuple, refs: tuple, strict: bool, create_graph: bool, stage: str) -> tuple:
    """Zeros (shaped as refs) for the missing gradients, or strict mode's error."""
    res = []
    for i, (g, ref) in enumerate(zip(grads, refs)):
        if g is None:
            if strict:
                raise RuntimeError(_INDEPENDENT[stage].format(i=i))
            g = ref.new_zeros(ref.shape)
        elif strict and create_graph and not g.requires_grad:
            raise RuntimeError(_CONSTANT.format(what="hessian" if "double" in stage else "jacobian", i=i))
        res.append(g)
    return tuple(res)


def _differentiated(create_graph: bool):
    """Grad mode for the final backward: on under create_graph, else as the caller had it."""
    return set_grad_enabled(True if create_graph else is_grad_enabled())


def vjp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T J): the vector-Jacobian product of func at inputs."""
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _preprocess(inputs, create_graph, need_graph=True)
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "vjp")
        _check_requires_grad(outputs, "outputs", strict)
        v = _v_or_one(v, outputs, is_outputs_tuple, "vjp", create_graph, "the user-provided function returns")
    with _differentiated(create_graph):
        res = _fill_in_zeros(_autograd_grad(outputs, inputs, v, create_graph), inputs, strict, create_graph, "back")
    return (_unpack(_postprocess(outputs, create_graph), is_outputs_tuple),
            _unpack(_postprocess(res, create_graph), is_inputs_tuple))


def jvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product, by the double-backward trick (reverse mode twice)."""
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _preprocess(inputs, create_graph, need_graph=True)
        v = _v_or_one(v, inputs, is_inputs_tuple, "jvp", create_graph, "the input to the user-provided function is")
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jvp")
        _check_requires_grad(outputs, "outputs", strict)
        us, grad_inputs = _transposed(outputs, inputs)
        _check_requires_grad(grad_inputs, "grad_inputs", strict)
    with _differentiated(create_graph):
        res = _autograd_grad(grad_inputs, us, v, create_graph)
        res = _fill_in_zeros(res, outputs, strict, create_graph, "back_trick")
    return (_unpack(_postprocess(outputs, create_graph), is_outputs_tuple),
            _unpack(_postprocess(res, create_graph), is_outputs_tuple))


def jacobian(func: Callable, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """The Jacobian of func at inputs: for output i and input j, a Tensor of shape out_i.shape + in_j.shape.

    One backward per output element whatever `vectorize` and `strategy` say (they are accepted for torch's API).
    """
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
                             'function has more outputs than inputs, "forward-mode" tends to be more performant. '
                             'Otherwise, prefer to use "reverse-mode".')
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError('torch.autograd.functional.jacobian: `create_graph=True` and `strategy='
                                      '"forward-mode"` are not supported together (yet). Please either set '
                                      '`create_graph=False` or `strategy="reverse-mode"`.')
        if strict:
            raise RuntimeError('torch.autograd.functional.jacobian: `strict=True` and `strategy="forward-mode"` are '
                               'not supported together (yet). Please either set `strict=False` or '
                               '`strategy="reverse-mode"`.')
        if not vectorize:
            raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse Hessian is only "
                                      "implemented for `vectorize=True`.")
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _preprocess(inputs, create_graph, need_graph=True)
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jacobian")
        _check_requires_grad(outputs, "outputs", strict)
        if vectorize and strict:
            raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
                               "supported together. Please either set `strict=False` or `vectorize=False`.")
        jac = tuple(_rows(i, out, inputs, create_graph, strict) for i, out in enumerate(outputs))
    return _unpack(_postprocess(jac, create_graph), (is_outputs_tuple, is_inputs_tuple))


def _rows(i: int, out: Tensor, inputs: tuple, create_graph: bool, strict: bool) -> tuple:
    """d out / d input for every input: one backward per element of `out`, seeded with that element's one-hot."""
    from engine.ops.shape import stack

    rows = tuple([] for _ in inputs)
    flat = out.new_zeros((out.numel(),))
    for j in range(out.numel()):
        onehot = flat.detach().clone()
        onehot.array[j] = 1
        vj = _autograd_grad((out,), inputs, (onehot.reshape(out.shape),), create_graph)
        for k, (row, g, inp) in enumerate(zip(rows, vj, inputs)):
            if g is None:
                if strict:
                    raise RuntimeError(f"Output {i} of the user-provided function is independent of input {k}. "
                                       "This is not allowed in strict mode.")
                g = inp.new_zeros(inp.shape)
            elif strict and create_graph and not g.requires_grad:
                raise RuntimeError(_CONSTANT.format(what="jacobian", i=i))  # torch names the output here
            row.append(g)
    return tuple(stack(row).reshape(out.shape + inp.shape) if row else inp.new_zeros(out.shape + inp.shape)
                 for row, inp in zip(rows, inputs))


def hessian(func: Callable, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of scalar func at inputs: for inputs i and j, a Tensor of shape in_i.shape + in_j.shape."""
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def single_output(*inp):
        out = func(*inp)
        is_out_tuple, t_out = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _check_requires_grad(t_out, "outputs", strict)
        _check_scalar(is_out_tuple, t_out, "hessian")
        return out.squeeze()

    def jac_func(*inp):
        if outer_jacobian_strategy == "forward-mode":
            inp = tuple(t.requires_grad_(True) for t in inp)
        jac = jacobian(single_output, inp, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
        return jac

    res = jacobian(jac_func, inputs, create_graph=create_graph, strict=strict, vectorize=vectorize,
                   strategy=outer_jacobian_strategy)
    return _unpack(res, (is_inputs_tuple, is_inputs_tuple))


def _check_scalar(is_tuple: bool, outputs: tuple, fn_name: str) -> None:
    if is_tuple:
        raise RuntimeError(f"The function given to {fn_name} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {fn_name} should contain a single element")


def _scalar_gradient(func: Callable, inputs, v, create_graph: bool, strict: bool, fn_name: str) -> tuple:
    """What vhp and hvp share: (inputs as tuple and whether they were one, v, func's output, its gradient with
    its graph)."""
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", fn_name)
    inputs = _preprocess(inputs, create_graph, need_graph=True)
    v = _v_or_one(v, inputs, is_inputs_tuple, fn_name, create_graph,
                  "the input to the user-provided function is")
    is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", fn_name)
    _check_requires_grad(outputs, "outputs", strict)
    _check_scalar(is_outputs_tuple, outputs, fn_name)
    jac = _autograd_grad(outputs, inputs, create_graph=True)
    _check_requires_grad(jac, "jacobian", strict)
    return is_inputs_tuple, inputs, v, outputs, jac


def vhp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T H): the vector-Hessian product of scalar func at inputs."""
    with enable_grad():
        is_inputs_tuple, inputs, v, outputs, jac = _scalar_gradient(func, inputs, v, create_graph, strict, "vhp")
    with _differentiated(create_graph):
        res = _autograd_grad(jac, inputs, v, create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, "double_back")
    return _postprocess(outputs, create_graph)[0], _unpack(_postprocess(res, create_graph), is_inputs_tuple)


def _transposed(ys: tuple, xs: tuple, like: tuple | None = None) -> tuple:
    """(us, J^T us) for zero placeholders us, shaped as `like` (default ys), that require grad: u -> J^T u is linear
    in u, so differentiating it with respect to u along v gives J v (jvp, and hvp over a gradient: the
    double-backward trick)."""
    us = tuple(t.new_zeros(t.shape).requires_grad_() for t in (ys if like is None else like))
    return us, _autograd_grad(ys, xs, us, create_graph=True)


def hvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v): the Hessian-vector product of scalar func, by the double-backward trick."""
    with enable_grad():
        is_inputs_tuple, inputs, v, outputs, jac = _scalar_gradient(func, inputs, v, create_graph, strict, "hvp")
        grad_jac, double_back = _transposed(jac, inputs, like=inputs)
        _check_requires_grad(jac, "hessian", strict)
    with _differentiated(create_graph):
        res = _autograd_grad(double_back, grad_jac, v, create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, "double_back_trick")
    return _postprocess(outputs, create_graph)[0], _unpack(_postprocess(res, create_graph), is_inputs_tuple)
