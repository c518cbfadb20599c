"""Optimizer: parameter groups, per-parameter state, step events and PyTorch-shaped state dicts.

A subclass writes its math once, in `_update(param, grad, state, group)`, on raw arrays (numpy or
cupy, through `xp = array_module(param)`), changing `param` and the state buffers in place. The base
class does the bookkeeping PyTorch users expect: groups with defaults filled in, `zero_grad`, closures,
`state_dict` / `load_state_dict` with parameters referred to by integer index, and one
`OptimizerEvent` per step for the debugger.
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
import sys
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from engine import backend, dtypes, zero_grads
from engine.autograd.grad_mode import enable_grad, no_grad
from engine.backend import array_module, host_floats, square_sum, update_squares
from engine.events import OptimizerEvent, hub, next_seq
from engine.tensor import Tensor
from engine.user_warning import caller_site

# How hyper-parameters are named in PyTorch's "Invalid ... : value" errors.
_stepping = threading.local()  # the optimizer whose OptimizerEvent this thread is delivering


def stepping_optimizer() -> Optimizer | None:
    """The optimizer whose step is delivering its OptimizerEvent on this thread (None outside of one)."""
    return getattr(_stepping, "optimizer", None)


_alive: weakref.WeakSet = weakref.WeakSet()  # every optimizer not yet collected, for optimizer_of
_made = itertools.count()
_newest = [-1]  # the _made of the optimizer put in _alive last
_live: tuple = (None, ())  # live_optimizers' last order: ((len(_alive), _newest[0]) then, weak references)


def live_optimizers() -> list[Optimizer]:
    """Every optimizer not yet collected, oldest first."""
    # asked three times at each step a debugger watches, where walking and sorting the weak set cost more than the
    # checks that ask: the order stands until an optimizer is made (_newest changes: each one's _made is new) or
    # collected (_alive shrinks)
    global _live
    key = (len(_alive), _newest[0])
    seen, refs = _live
    if seen != key:
        refs = tuple(weakref.ref(opt) for opt in sorted(_alive, key=lambda opt: opt._made))
        _live = (key, refs)
    return [opt for ref in refs if (opt := ref()) is not None]


def optimizer_of(params) -> Optimizer | None:
    """The newest live optimizer that updates any of these parameters (a model's), or None."""
    ids = {id(p) for p in params}
    mine = [opt for opt in list(_alive) if any(id(p) in ids for group in opt.param_groups for p in group["params"])]
    return max(mine, key=lambda opt: opt._made, default=None)


def made_at(opt: Optimizer) -> tuple[str, int] | None:
    """(file, line) of the person's code that made `opt` (its hyper-parameters are written there), or None."""
    return opt.__dict__.get("_made_at")


def optimizer_clock() -> int:
    """A number that every optimizer made from now on exceeds in `training_optimizer`."""
    return next(_made)


def training_optimizer(since: int, tensor_ids) -> bool:
    """Whether a live optimizer trains, maybe accumulating gradients before its first step (where a loop that
    updates by hand has none): one made after `since` (an optimizer_clock()), or one holding a parameter with a
    gradient whose id is among `tensor_ids` (an optimizer left from an earlier run holds other tensors)."""
    return any(opt._made > since or any(p.grad is not None and p._id in tensor_ids
                                        for group in opt.param_groups for p in group["params"])
               for opt in list(_alive))


_LABELS = {
    "lr": "learning rate",
    "eps": "epsilon value",
    "momentum": "momentum value",
    "weight_decay": "weight_decay value",
    "alpha": "alpha value",
    "dampening": "dampening value",
    "lr_decay": "lr_decay value",
    "initial_accumulator_value": "initial_accumulator_value value",
    "momentum_decay": "momentum_decay value",
}


class Optimizer:
    """Base class of the optimizers: holds `param_groups` and per-parameter `state`."""

    # hyper-parameters that must be real numbers >= 0 (checked for every group)
    non_negative: tuple[str, ...] = ("lr",)

    def __init__(self, params, defaults: dict) -> None:
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or "
                            "dicts, but got a Tensor; wrap it in a list: [tensor]")
        if isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        self.defaults = dict(defaults)
        # as torch's, a defaultdict: an optimizer written by hand (SAM, Lookahead) sets self.state[p]["e_w"]
        self.state: defaultdict[Tensor, dict] = defaultdict(dict)
        self.param_groups: list[dict] = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        self._made = next(_made)
        self._made_at = caller_site(sys._getframe(1))  # (a subclass's __init__ calls ours): where it was made
        _alive.add(self)
        _newest[0] = self._made
        self._in_step = False
        cls = type(self)
        if not getattr(cls.step, "_hooked", False):  # as torch: the class's step runs the step hooks
            cls.step = _with_step_hooks(cls.step)

    # ---- what subclasses write -------------------------------------------------------------
    def _init_state(self, param, group: dict) -> dict:
        """The fresh state of one parameter (array `param`): buffers as Tensors, counters as scalar_state()."""
        return {}

    def _update(self, param, grad, state: dict, group: dict):
        """Change the array `param` in place from its gradient `grad` (also an array).

        Where `_gives_step` says so, return the step subtracted (param_new = param_old - step): the
        update norm is then read from it, with no copy of the parameter taken before the update."""
        raise NotImplementedError

    def _gives_step(self, param, group: dict) -> bool:
        """Whether `_update` of this array in this group returns its step (see `_update`)."""
        return False

    def _check_group(self, group: dict) -> None:
        """Raise ValueError for a hyper-parameter out of range (PyTorch's messages)."""
        for key in self.non_negative:
            value = group[key]
            if isinstance(value, Tensor):  # torch takes a 0-d tensor lr (a scheduler may change it in place)
                if value.numel() != 1:
                    raise ValueError(f"Tensor {key} must be 1-element")
                value = value.item()
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"Invalid {_LABELS.get(key, key)}: {value}")
        # PyTorch's implementation switches: foreach, fused and capturable pick how torch runs the same math
        # (loops, one kernel, CUDA-graph safe), so they change nothing here; differentiable cannot be honoured
        if group.get("differentiable"):
            raise ValueError(f"{type(self).__name__}: differentiable=True is not supported: the engine's "
                             "optimizers update parameters in place outside autograd, so a step has no gradient")
        if group.get("fused") and group.get("foreach"):
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")

    # ---- groups --------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (a dict with "params" and optional per-group hyper-parameters)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        if "params" not in group:
            raise ValueError("param_group needs a 'params' entry: {'params': [tensors], 'lr': ...}")
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        params = list(params)
        named = [isinstance(p, tuple) for p in params]
        if any(named):
            if not all(named):
                raise ValueError("all optimizer params should be with/without names. "
                                 "Some param names are missing")
            group["param_names"] = [name for name, _ in params]
            params = [p for _, p in params]
        group["params"] = params
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but param {i} of the group is "
                                f"{type(p).__name__}")
            if not (p.is_leaf or p.retains_grad):
                raise ValueError(f"can't optimize a non-leaf Tensor (param {i} of the group was made by "
                                 f"{p.grad_fn.name()}); optimize the leaf it came from, or detach() it")
            if not p.dtype.is_floating_point:
                raise TypeError(f"optimizer can only optimize floating point Tensors, param {i} is {p.dtype}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer got a parameter group with duplicate parameters; "
                             "list each tensor once")
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_group(group)
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        for g in self.param_groups:
            if ("param_names" in g) != ("param_names" in group):
                with_names = "with names" if "param_names" in group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {with_names} to the optimizer")
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # ---- the training-loop calls ---------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set `.grad` to None (default) or fill it with zeros in place."""
        cleared = False
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                cleared = True
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad = p.grad.detach()
                    p.grad.array.fill(0)
                    p.grad._vc[0] += 1
        zero_grads.called(self, cleared)  # where, for a debugger: between backward and step, or outside the loop

    def step(self, closure: Callable[[], object] | None = None):
        """Update every parameter that has a gradient; returns `closure()`'s loss when one is given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        watching = hub.optimizer_norms  # norms cost a copy and reductions: only when asked for
        names, squares = [], []  # squared gradient, update and weight norms, three per parameter
        with no_grad():
            for g, group in enumerate(self.param_groups):
                numeric = _numeric_lr(group)
                for i, p in enumerate(group["params"]):
                    if p.grad is None:
                        continue
                    state = self.state.get(p)
                    if not state:  # as torch: a state read (made empty) before the first step is started too
                        state = self.state[p] = self._init_state(p.array, numeric)
                    data = p.array
                    before = None
                    if watching:
                        names.append(self._param_name(g, i, group, p))
                        squares.append(square_sum(p.grad.array))  # before the update reads it
                        before = data.copy() if not self._gives_step(data, group) else None
                    step = self._update(data, p.grad.array, state, numeric)
                    p._vc[0] += 1
                    if watching:
                        if before is not None:
                            update_squares(before, data, squares)
                        else:
                            squares += (square_sum(step), square_sum(data))
        self._announce_step(names, squares)
        return loss

    def _announce_step(self, names: list[str], squares: list) -> None:
        """Emit this step's OptimizerEvent and end the iteration.

        `squares` holds three squared norms per name (gradient, update, weight), empty unless
        `hub.optimizer_norms` asked for them."""
        if hub.active:
            norms = [math.sqrt(v) for v in host_floats(squares)]
            _stepping.optimizer = self  # for listeners that name parameters as a model does
            try:
                hub.emit(OptimizerEvent(
                    next_seq(), type(self).__name__, tuple(float(group["lr"]) for group in self.param_groups),
                    dict(zip(names, norms[1::3])), dict(zip(names, norms[2::3])), dict(zip(names, norms[0::3])),
                ))
            finally:
                _stepping.optimizer = None
        hub.reset_top_level()  # a step ends an iteration: op keys restart for the next forward

    @staticmethod
    def _param_name(g: int, i: int, group: dict, p: Tensor) -> str:
        if "param_names" in group:
            return group["param_names"][i]
        name = getattr(p, "_name", None)
        return name if name else f"group{g}.{i}"

    # ---- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}, as in PyTorch.

        Unlike PyTorch, state tensors are copies: the dict is a snapshot that later steps do not change.
        """
        for hook in self._hooks("_state_dict_pre_hooks").values():
            hook(self)
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, s in self.state.items():
            if id(p) in index:
                state[index[id(p)]] = {k: _snapshot(v) for k, v in s.items()}
        out = {"state": state, "param_groups": groups}
        for hook in self._hooks("_state_dict_post_hooks").values():
            changed = hook(self, out)
            if changed is not None:
                out = changed
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and state saved by `state_dict` (copies; tensors move to each param)."""
        if isinstance(state_dict, dict):
            state_dict = state_dict.copy()  # shallow, as torch: pre hooks may edit their copy
        for hook in self._hooks("_load_state_dict_pre_hooks").values():
            changed = hook(self, state_dict)
            if changed is not None:
                state_dict = changed
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            got = sorted(map(str, state_dict)) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"optimizer state_dict must be a dict with exactly the keys 'state' and "
                             f"'param_groups', got {got}")
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, list | tuple) or len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        by_index: dict[int, Tensor] = {}
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            if not isinstance(saved, dict) or len(saved.get("params", ())) != len(group["params"]):
                raise ValueError("loaded state dict contains a parameter group "
                                 "that doesn't match the size of optimizer's group")
            by_index.update(zip(saved["params"], group["params"]))
            new = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            new["params"] = group["params"]
            for k, default in self.defaults.items():  # a key newer than the checkpoint keeps its default
                new.setdefault(k, copy.deepcopy(default))
            if "param_names" in group and "param_names" not in new:
                new["param_names"] = group["param_names"]
            self._check_group(new)
            new_groups.append(new)
        state = {}
        for key, values in state_dict["state"].items():
            if key not in by_index:
                raise ValueError(f"optimizer state_dict has state for parameter index {key!r}, but its "
                                 f"param_groups list only {sorted(by_index)}")
            if not isinstance(values, dict):
                raise ValueError(f"optimizer state for parameter {key} must be a dict, "
                                 f"got {type(values).__name__}")
            p = by_index[key]
            state[p] = self._restore_state(values, p)
        self.param_groups = new_groups
        self.state = defaultdict(dict, state)
        for hook in self._hooks("_load_state_dict_post_hooks").values():
            hook(self)

    # ---- hooks -------------------------------------------------------------------------------------
    def _hooks(self, table: str) -> dict:
        return self.__dict__.get(table) or {}

    def _add_hook(self, table: str, hook: Callable, prepend: bool = False):
        from engine.nn.hooks import add_hook  # engine.nn loads after engine.optim

        return add_hook(self.__dict__.setdefault(table, {}), hook, prepend)

    def register_step_pre_hook(self, hook: Callable):
        """Call `hook(optimizer, args, kwargs)` before each step; it may return new (args, kwargs)."""
        return self._add_hook("_step_pre_hooks", hook)

    def register_step_post_hook(self, hook: Callable):
        """Call `hook(optimizer, args, kwargs)` after each step."""
        return self._add_hook("_step_post_hooks", hook)

    def register_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """Call `hook(optimizer)` before `state_dict` builds its dict."""
        return self._add_hook("_state_dict_pre_hooks", hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """Call `hook(optimizer, state_dict)` after `state_dict`; a dict it returns is returned instead."""
        return self._add_hook("_state_dict_post_hooks", hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """Call `hook(optimizer, state_dict)` before loading; a dict it returns is loaded instead."""
        return self._add_hook("_load_state_dict_pre_hooks", hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """Call `hook(optimizer)` after `load_state_dict` has loaded."""
        return self._add_hook("_load_state_dict_post_hooks", hook, prepend)

    def _restore_state(self, values: dict, param: Tensor) -> dict:
        """Copies of one parameter's saved state, on its device (see `load_state_dict`)."""
        return {k: restore_state_value(v, param, k) for k, v in values.items()}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k not in ("params", "param_names")]
        return "\n".join([*lines, ")"])


_global_step_pre_hooks: dict = {}
_global_step_post_hooks: dict = {}


def register_optimizer_step_pre_hook(hook: Callable):
    """Call `hook(optimizer, args, kwargs)` before every optimizer's step (torch's global hook)."""
    from engine.nn.hooks import add_hook

    return add_hook(_global_step_pre_hooks, hook, False)


def register_optimizer_step_post_hook(hook: Callable):
    """Call `hook(optimizer, args, kwargs)` after every optimizer's step."""
    from engine.nn.hooks import add_hook

    return add_hook(_global_step_post_hooks, hook, False)


def _with_step_hooks(step: Callable) -> Callable:
    """`step` running the global and the optimizer's step hooks around it, in torch's order."""

    def hooked_step(self, *args, **kwargs):
        pre, post = self._hooks("_step_pre_hooks"), self._hooks("_step_post_hooks")
        if self.__dict__.get("_in_step") or not (pre or post or _global_step_pre_hooks or _global_step_post_hooks):
            return step(self, *args, **kwargs)
        args = (self, *args)  # as torch: a hook's args start with the optimizer
        for hook in [*_global_step_pre_hooks.values(), *pre.values()]:
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"{hook} must return None or a tuple of (new_args, new_kwargs), but got "
                                       f"{result}.")
                args, kwargs = result
        self._in_step = True
        try:
            out = step(*args, **kwargs)
        finally:
            self._in_step = False
        for hook in [*self._hooks("_step_post_hooks").values(), *_global_step_post_hooks.values()]:
            hook(self, args, kwargs)
        return out

    hooked_step._hooked = True
    hooked_step.__wrapped__ = step
    hooked_step.__doc__ = step.__doc__
    hooked_step.__name__ = step.__name__
    return hooked_step


def _numeric_lr(group: dict) -> dict:
    """`group`, with a tensor lr read as a float for the update's arithmetic."""
    lr = group.get("lr")
    if isinstance(lr, Tensor):
        return {**group, "lr": lr.item()}
    return group


def _snapshot(value):
    if isinstance(value, Tensor):
        return Tensor._wrap(value.array.copy())
    return copy.deepcopy(value)


def restore_state_value(value, param: Tensor, key, check_shape: bool = True):
    """A copy of a saved state value on the parameter's device (floating buffers in its dtype)."""
    if key in SCALAR_STATE:  # from torch as a tensor, from an older checkpoint as a number
        return scalar_state(float(value.array if isinstance(value, Tensor) else value))
    if not isinstance(value, Tensor):
        return copy.deepcopy(value)
    arr = backend.to_device(value.array, param.device)
    if arr is value.array:
        arr = arr.copy()
    if arr.dtype.kind == "f":
        arr = arr.astype(param.array.dtype, copy=False)
    if check_shape and arr.shape != param.array.shape and arr.ndim:
        raise ValueError(f"optimizer state '{key}' has shape {tuple(arr.shape)} but its parameter has shape "
                         f"{tuple(param.shape)}; was the state_dict saved for a different model?")
    return Tensor._wrap(arr)


def l2_gradient(param, grad, group: dict):
    """The gradient to descend: negated when maximizing, plus `weight_decay * param` (L2 penalty)."""
    if group["maximize"]:
        grad = -grad
    if group["weight_decay"] != 0:
        grad = grad + group["weight_decay"] * param
    return grad


def decouples(group: dict) -> bool:
    """AdamW's decay (`p *= 1 - lr * weight_decay`) rather than the L2 term added to the gradient."""
    return bool(group.get("decoupled_weight_decay", False))


def decayed_gradient(param, grad, group: dict):
    """The gradient to descend for the Adam family: with `decoupled_weight_decay` the weights shrink here
    (AdamW's way) and the gradient is only negated when maximizing; else `l2_gradient`."""
    if not decouples(group):
        return l2_gradient(param, grad, group)
    if group["weight_decay"] != 0:
        param *= 1 - group["lr"] * group["weight_decay"]
    return -grad if group["maximize"] else grad


def check_betas(betas) -> None:
    """Raise ValueError unless `betas` is a pair of numbers in [0, 1) (PyTorch's message)."""
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        if not isinstance(beta, numbers.Real) or not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta}")


def zeros_state(param) -> Tensor:
    """A zero buffer shaped like the array `param`, as a Tensor for the state dict."""
    return Tensor._wrap(array_module(param).zeros_like(param))


# state kept as a scalar tensor of the default dtype on the CPU whatever the parameter's dtype and device, as
# torch keeps them (a ported script's `state["step"].item()` works, and the counts round as torch's do)
SCALAR_STATE = frozenset({"step", "mu_product", "eta", "mu"})


def scalar_state(value) -> Tensor:
    """A scalar tensor of the default floating dtype on the CPU holding `value` (see SCALAR_STATE)."""
    return Tensor._wrap(np.array(value, dtypes.default_float.np))


def count_step(state: dict) -> float:
    """Add one to `state["step"]` in place; returns the new count."""
    count = state["step"].array
    count += 1
    return float(count)


def set_scalar(state: dict, key: str, value: float) -> float:
    """Store `value` in the scalar state `key` in place; returns it as stored (rounded to the state's dtype)."""
    held = state[key].array
    held[...] = value
    return float(held)

