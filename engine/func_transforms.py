"""torch.func's transforms for engine.func: grad, grad_and_value, vjp, jacrev, jacfwd, hessian and vmap.

They are built on reverse-mode autograd (engine.autograd.grad), so they compose with each other and with plain
autograd: a transform called where an enclosing one (or the caller) differentiates by its inputs or by a tensor
its function captured keeps the graph of what it returns (create_graph), and otherwise returns plain tensors.
jacfwd is computed in reverse mode too, and vmap runs the function once per batch element and stacks the results:
a loop, not batched kernels. Arguments may be nested tuples, lists and dicts of tensors, as torch's pytrees.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from functools import wraps

from engine.autograd.engine import grad as _autograd_grad
from engine.autograd.functional import _rows
from engine.autograd.grad_mode import enable_grad, is_grad_enabled
from engine.tensor import Tensor

__all__ = ["grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "vjp", "vmap"]

_RANDOMNESS = ("error", "different", "same")


# ---- pytrees: a spec is None for a leaf, else (container type, dict keys or None, child specs)

def _flatten(tree) -> tuple[list, object]:
    """The leaves of nested tuples, lists and dicts, and the spec that puts them back."""
    if isinstance(tree, tuple | list | dict):
        keys = list(tree) if isinstance(tree, dict) else None
        parts = [_flatten(c) for c in (tree.values() if keys is not None else tree)]
        return [leaf for leaves, _ in parts for leaf in leaves], (type(tree), keys, [s for _, s in parts])
    return [tree], None


def _unflatten(spec, leaves):
    """The tree of `spec` with `leaves` (an iterable, consumed in order) in its places."""
    it = iter(leaves)

    def build(s):
        if s is None:
            return next(it)
        kind, keys, children = s
        values = [build(c) for c in children]
        if keys is not None:
            return kind(zip(keys, values))
        return kind(*values) if hasattr(kind, "_fields") else kind(values)

    return build(spec)


def _describe(spec) -> str:
    """The spec as text for errors: `*` for a leaf."""
    if spec is None:
        return "*"
    kind, keys, children = spec
    parts = [_describe(c) for c in children]
    if keys is not None:
        return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(keys, parts)) + "}"
    if issubclass(kind, list):
        return "[" + ", ".join(parts) + "]"
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _per_leaf(prefix, tree, is_leaf_value) -> list | None:
    """`prefix` (a value, or a tree whose leaves stand for whole subtrees of `tree`) as one value per leaf of
    `tree`; None when its structure does not fit."""
    if is_leaf_value(prefix):
        return [prefix] * len(_flatten(tree)[0])
    same_kind = (isinstance(prefix, tuple | list) and isinstance(tree, tuple | list) and len(prefix) == len(tree)) \
        or (isinstance(prefix, dict) and isinstance(tree, dict) and set(prefix) == set(tree))
    if not same_kind:
        return None
    pairs = [(prefix[k], tree[k]) for k in tree] if isinstance(tree, dict) else zip(prefix, tree)
    out = []
    for p, t in pairs:
        part = _per_leaf(p, t, is_leaf_value)
        if part is None:
            return None
        out += part
    return out


# ---- the differentiation shared by grad, vjp and jacrev

def _argnums(args: tuple, argnums):
    """The differentiated part of args: args[argnums], or a tuple of them for a tuple of argnums."""
    if isinstance(argnums, bool) or not isinstance(argnums, int | tuple) or \
            (isinstance(argnums, tuple) and not all(isinstance(a, int) and not isinstance(a, bool) for a in argnums)):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    if isinstance(argnums, tuple) and not argnums:
        raise RuntimeError("argnums must be non-empty")
    if isinstance(argnums, tuple) and len(set(argnums)) != len(argnums):
        raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    for a in (argnums if isinstance(argnums, tuple) else (argnums,)):
        if not -len(args) <= a < len(args):
            raise RuntimeError(f"Got argnum={a}, but only {len(args)} positional inputs")
    return tuple(a % len(args) for a in argnums) if isinstance(argnums, tuple) else argnums % len(args)


class _Tracked:
    """The differentiated tensors of one transform call: fresh tensors standing in for the caller's, and
    whether the call was made with grad mode on (so an enclosing transform may differentiate its result)."""

    def __init__(self, primals) -> None:
        leaves, self.spec = _flatten(primals)
        for leaf in leaves:
            if not isinstance(leaf, Tensor):
                raise ValueError(f"Thing passed to transform API must be Tensor, got {type(leaf)}")
        self.outer = is_grad_enabled()
        # a view keeps the caller's graph where it has one; new Tensor objects either way, so the tensors the
        # function captured are told apart from its inputs
        self.fresh = [t.view_as(t) if self.outer and t.requires_grad else t.detach().requires_grad_()
                      for t in leaves]
        self.primals = _unflatten(self.spec, self.fresh)

    def connected(self, outputs: list) -> bool:
        """Whether outputs lead, in the graph, to any tensor but the fresh ones: then whoever called keeps
        differentiating, and the gradients need a graph of their own."""
        if not self.outer:
            return False
        own = {id(t) for t in self.fresh}
        seen: set[int] = set()
        stack = []
        for o in outputs:
            if o.grad_fn is not None:
                stack.append(o.grad_fn)
            elif o.requires_grad and id(o) not in own:
                return True
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            for e in getattr(node, "_next", ()):
                if isinstance(e, Tensor):
                    if id(e) not in own:
                        return True
                elif e is not None:
                    stack.append(e)
        return False

    def gradients(self, outputs: list, cotangents: list, create_graph: bool):
        """The gradients of sum(output * cotangent) by the primals, shaped as the primals (zeros where unused)."""
        pairs = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
        grads = [None] * len(self.fresh)
        if pairs:
            outs, seeds = zip(*pairs)
            grads = _autograd_grad(outs, self.fresh, seeds, retain_graph=True, create_graph=create_graph,
                                   allow_unused=True)
        return _unflatten(self.spec, [t.new_zeros(t.shape) if g is None else g for g, t in zip(grads, self.fresh)])


def _kept(tree, keep: bool):
    """The tree, its tensors detached unless an enclosing differentiation needs their graph."""
    if keep:
        return tree
    leaves, spec = _flatten(tree)
    return _unflatten(spec, [t.detach() if isinstance(t, Tensor) else t for t in leaves])


def _split_aux(out, has_aux: bool, api: str):
    if not has_aux:
        return out, None
    if not isinstance(out, tuple) or len(out) != 2:
        raise RuntimeError(f"{api}: output of function f should be a tuple: (output, aux) if has_aux is True")
    return out


def _tensor_leaves(out, api: str) -> tuple[list, object]:
    leaves, spec = _flatten(out)
    for leaf in leaves:
        if not isinstance(leaf, Tensor):
            raise RuntimeError(f"{api}: expected f(*primals) to return only tensors, got unsupported type "
                               f"{type(leaf)}")
    return leaves, spec


def _call(func: Callable, args: tuple, kwargs: dict, argnums) -> tuple:
    """func run on args with the argnums part made fresh: (its output, the _Tracked)."""
    index = _argnums(args, argnums)
    tracked = _Tracked(args[index] if isinstance(index, int) else tuple(args[i] for i in index))
    new_args = list(args)
    if isinstance(index, int):
        new_args[index] = tracked.primals
    else:
        for i, value in zip(index, tracked.primals):
            new_args[i] = value
    with enable_grad():
        return func(*new_args, **kwargs), tracked


# ---- the transforms

def grad_and_value(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """A function returning (gradient of func's scalar output by args[argnums], that output); with has_aux,
    (gradient, (output, aux))."""
    api = "grad_and_value(f)(*args)"

    @wraps(func)
    def wrapper(*args, **kwargs):
        out, tracked = _call(func, args, kwargs, argnums)
        out, aux = _split_aux(out, has_aux, api)
        if not isinstance(out, Tensor):
            raise RuntimeError(f"{api}: Expected f(*args) to return a Tensor, got {type(out)}")
        if out.dim() != 0:
            raise RuntimeError(f"{api}: Expected f(*args) to return a scalar Tensor, got tensor with {out.dim()} "
                               "dims. Maybe you wanted to use the vjp or jacrev APIs instead?")
        keep = tracked.connected([out])
        with enable_grad() if keep else nullcontext():
            g = tracked.gradients([out], [None], keep)
        value = _kept(out, keep)
        return (g, (value, _kept(aux, keep))) if has_aux else (g, value)

    return wrapper


def grad(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """A function returning the gradient of func's scalar output by args[argnums] (with has_aux, (grad, aux))."""
    both = grad_and_value(func, argnums, has_aux)

    @wraps(func)
    def wrapper(*args, **kwargs):
        g, value = both(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func: Callable, *primals, has_aux: bool = False):
    """(func(*primals), vjp_fn) (and aux): vjp_fn(cotangents) is the tuple of gradients of
    sum(output * cotangent) by each primal."""
    api = "vjp(f, *primals)"
    out, tracked = _call(func, primals, {}, tuple(range(len(primals))) or 0)
    out, aux = _split_aux(out, has_aux, api)
    outputs, out_spec = _tensor_leaves(out, api)
    connected = tracked.connected(outputs)

    def vjp_fn(cotangents, *, retain_graph: bool = True, create_graph: bool | None = None):
        leaves, spec = _flatten(cotangents)
        if spec != out_spec:
            raise RuntimeError("Expected pytree structure of cotangents to be the same as pytree structure of "
                               f"outputs to the function. cotangents: {_describe(spec)}, primal output: "
                               f"{_describe(out_spec)}")
        keep = create_graph if create_graph is not None else \
            connected or (is_grad_enabled() and any(isinstance(c, Tensor) and c.requires_grad for c in leaves))
        with enable_grad() if keep else nullcontext():
            return _kept(tracked.gradients(outputs, leaves, keep), keep)

    value = _kept(out, connected)
    return (value, vjp_fn, _kept(aux, connected)) if has_aux else (value, vjp_fn)


def jacrev(func: Callable, argnums=0, *, has_aux: bool = False, chunk_size: int | None = None,
           _preallocate_and_copy: bool = False) -> Callable:
    """A function returning the Jacobian of func by args[argnums]: per output, a tree shaped as the
    differentiated args of tensors shaped output.shape + input.shape (one backward per output element)."""
    return _jacobian(func, argnums, has_aux, "vjp(f, *primals)")


def jacfwd(func: Callable, argnums=0, has_aux: bool = False, *, randomness: str = "error") -> Callable:
    """jacrev's result, as torch.func.jacfwd gives it; computed in reverse mode here."""
    _check_randomness(randomness)
    return _jacobian(func, argnums, has_aux, "jvp(f, primals, tangents)")


def _jacobian(func: Callable, argnums, has_aux: bool, api: str) -> Callable:
    @wraps(func)
    def wrapper(*args, **kwargs):
        out, tracked = _call(func, args, kwargs, argnums)
        out, aux = _split_aux(out, has_aux, api)
        outputs, out_spec = _tensor_leaves(out, api)
        keep = tracked.connected(outputs)
        fresh = tuple(tracked.fresh)
        with enable_grad() if keep else nullcontext():
            jac = [_unflatten(tracked.spec, _rows(0, o, fresh, keep, False)) for o in outputs]
        jac = _kept(_unflatten(out_spec, jac), keep)
        return (jac, _kept(aux, keep)) if has_aux else jac

    return wrapper


def hessian(func: Callable, argnums=0) -> Callable:
    """A function returning the Hessian of func's output by args[argnums]: jacfwd(jacrev(func))."""
    return jacfwd(jacrev(func, argnums), argnums)


def _check_randomness(randomness: str) -> None:
    if randomness not in _RANDOMNESS:
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")


# ---- vmap

def vmap(func: Callable, in_dims=0, out_dims=0, randomness: str = "error", *,
         chunk_size: int | None = None) -> Callable:
    """func mapped over a dimension of its inputs: run once per batch element (a loop) and stacked at out_dims.

    in_dims and out_dims are an int, None (not mapped), or trees matching the inputs/outputs, as torch's.
    randomness "error" refuses a random draw from a CPU generator inside func; "same" gives every element the
    same draws; "different" lets each draw its own.
    """
    _check_randomness(randomness)
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
    name = getattr(func, "__name__", repr(func))

    def is_dim(d) -> bool:
        return d is None or (isinstance(d, int) and not isinstance(d, bool))

    if not is_dim(out_dims) and not isinstance(out_dims, tuple | list):
        raise ValueError(f"vmap({name}, ..., out_dims={out_dims}): `out_dims` must be an int, None or a python "
                         "collection of ints representing where in the outputs the vmapped dimension should appear.")

    @wraps(func)
    def wrapper(*args, **kwargs):
        where = f"vmap({name}, in_dims={in_dims}, ...)(<inputs>)"
        if not args:
            raise ValueError(f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are "
                             "trying to vmap over a function with no inputs. The latter is unsupported.")
        if not is_dim(in_dims) and not isinstance(in_dims, tuple):
            raise ValueError(f"{where}: expected `in_dims` to be int or a (potentially nested) tuple matching the "
                             f"structure of inputs, got: {type(in_dims)}.")
        leaves, spec = _flatten(args)
        dims = _per_leaf(in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args), args,
                         lambda d: not isinstance(d, tuple | list | dict))
        if dims is None:
            raise ValueError(f"{where}: in_dims is not compatible with the structure of `inputs`. in_dims has "
                             f"structure {_describe(_flatten(in_dims)[1])} but inputs has structure "
                             f"{_describe(spec)}.")
        sizes = [_batch_size(leaf, d, where) for leaf, d in zip(leaves, dims) if d is not None]
        if not sizes:
            raise ValueError("vmap: Expected at least one Tensor to vmap over")
        if len(set(sizes)) > 1:
            raise ValueError("vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                             f"{sizes} for the mapped dimension")

        def element(i: int):
            return func(*_unflatten(spec, [x if d is None else x.select(d, i) if i >= 0 else
                                           x.new_zeros(x.shape[:d % x.dim()] + x.shape[d % x.dim() + 1:])
                                           for x, d in zip(leaves, dims)]), **kwargs)

        results = _run(element, sizes[0], randomness)
        return _stacked(results, out_dims, name, sizes[0] == 0)

    return wrapper


def _batch_size(x, d, where: str) -> int:
    if not isinstance(x, Tensor):
        raise ValueError(f"{where}: Got in_dim={d} for an input but the input is of type {type(x)}. We cannot vmap "
                         "over non-Tensor arguments, please use None as the respective in_dim")
    if not isinstance(d, int) or isinstance(d, bool):
        raise ValueError(f"{where}: Got in_dim={d} for an input but in_dim must be either an integer dimension or "
                         "None.")
    n = x.dim()
    if not -n <= d < n:
        raise ValueError(f"{where}: Got in_dim={d} for some input, but that input is a Tensor of dimensionality {n} "
                         f"so expected in_dim to satisfy -{n} <= in_dim < {n}.")
    return x.shape[d]


def _run(element: Callable, size: int, randomness: str) -> list:
    """element(i) for each i (element(-1) once, on zeros, for an empty batch: the outputs' shapes), under the
    randomness rule."""
    from engine import random

    if size == 0:
        return [element(-1)]
    before = {dev: g._snapshot() for dev, g in random._generators.items()}
    results = []
    for i in range(size):
        if randomness == "same" and i:
            _restore(random, before)
        results.append(element(i))
        if randomness == "error" and _cpu_states(random) != {d: s for d, s in before.items() if d.type == "cpu"}:
            raise RuntimeError("vmap: called random operation while in randomness error mode. Please either use the "
                               "'same' or 'different' randomness flags on vmap or perform the randomness operation "
                               "out of vmap")
    return results


def _cpu_states(random) -> dict:
    return {dev: g._snapshot() for dev, g in random._generators.items() if dev.type == "cpu"}


def _restore(random, before: dict) -> None:
    for dev in list(random._generators):
        if dev in before:
            random._generators[dev]._restore(before[dev])
        else:
            del random._generators[dev]  # made by the first element: made afresh, from the same seed


def _stacked(results: list, out_dims, name: str, empty: bool):
    """The per-element outputs stacked at out_dims (empty: a batch of none, shaped from the one probe run)."""
    from engine.ops.shape import stack

    leaves, spec = _flatten(results[0])
    dims = _per_leaf(out_dims, results[0], lambda d: d is None or isinstance(d, int))
    if dims is None:
        raise ValueError(f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with the "
                         f"structure of `outputs`. out_dims has structure {_describe(_flatten(out_dims)[1])} but "
                         f"outputs has structure {_describe(spec)}.")
    columns = [leaves]
    for r in results[1:]:
        col, other = _flatten(r)
        if other != spec:
            raise ValueError(f"vmap({name}, ...): `{name}` returned outputs of different structures for different "
                             f"batch elements: {_describe(spec)} and {_describe(other)}")
        columns.append(col)
    out = []
    for k, d in enumerate(dims):
        first = leaves[k]
        if d is None:
            out.append(first)
            continue
        if not isinstance(first, Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(first)}. Did you "
                             "mean to set out_dims= to None for output?")
        column = stack([col[k] for col in columns], dim=d)
        out.append(column.narrow(d, 0, 0) if empty else column)
    return _unflatten(spec, out)
