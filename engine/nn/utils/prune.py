"""Pruning, as torch.nn.utils.prune: zero out entries or channels of a parameter through a mask.

Pruning `name` moves the parameter to `name_orig`, keeps the mask in the buffer `name_mask`, and makes
`module.name` the plain tensor `name_orig * name_mask`, recomputed before every call by the pruning method
itself, registered as a forward pre hook. Gradients reach `name_orig` through the mask (zero where pruned).
Pruning the same parameter again gathers the methods in a PruningContainer, and each new method acts only
on what is still unpruned. `remove` makes the pruning permanent. Masks are computed on raw arrays; among equal
scores the entries of lower index are kept first (torch leaves the choice to its sort routine: its tied picks may
differ).
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable

from engine.autograd.grad_mode import no_grad
from engine.backend import array_module
from engine.creation import ones_like, rand
from engine.nn.module import Module
from engine.nn.utils.vector import parameters_to_vector
from engine.ops.reduce import norm
from engine.tensor import Tensor

__all__ = ["BasePruningMethod", "CustomFromMask", "Identity", "L1Unstructured", "LnStructured", "PruningContainer",
           "RandomStructured", "RandomUnstructured", "custom_from_mask", "global_unstructured", "identity",
           "is_pruned", "l1_unstructured", "ln_structured", "random_structured", "random_unstructured", "remove"]


class BasePruningMethod(ABC):
    """A way of choosing what to prune; subclasses define `compute_mask` and PRUNING_TYPE."""

    PRUNING_TYPE: str  # "unstructured" (entries), "structured" (channels along `dim`) or "global"
    _tensor_name: str | None = None

    def __call__(self, module: Module, inputs) -> None:
        """The forward pre hook: set `module.<name>` to the original times the mask."""
        setattr(module, self._tensor_name, self.apply_mask(module))

    @abstractmethod
    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """The mask (t's shape) that prunes `t` on top of `default_mask`, the mask of earlier pruning."""

    def apply_mask(self, module: Module) -> Tensor:
        """`<name>_orig * <name>_mask` of `module` (differentiable in the original)."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {type(module).__name__} has to be pruned")
        mask = getattr(module, self._tensor_name + "_mask")
        orig = getattr(module, self._tensor_name + "_orig")
        return mask.to(dtype=orig.dtype) * orig

    @classmethod
    def apply(cls, module: Module, name: str, *args, importance_scores: Tensor | None = None, **kwargs):
        """Prune parameter `name` of `module` by `cls(*args, **kwargs)`, on top of earlier pruning of it."""
        hooks = [(k, h) for k, h in module._forward_pre_hooks.items()
                 if isinstance(h, BasePruningMethod) and h._tensor_name == name]
        if len(hooks) > 1:
            raise AssertionError(f"Avoid adding multiple pruning hooks to the same tensor {name} of module "
                                 f"{type(module).__name__}. Use a PruningContainer.")
        method = cls(*args, **kwargs)
        method._tensor_name = name
        old = hooks[0][1] if hooks else None
        kept = old._pruning_methods if isinstance(old, PruningContainer) else None
        if old is not None:  # combined with what pruned `name` before (torch's way), undone if this fails
            container = old if kept is not None else PruningContainer(old)
            container.add_pruning_method(method)
            method = container
        moved = False
        try:
            if old is None:
                _check_parameter(module, name)
            current = getattr(module, name)
            if importance_scores is not None and importance_scores.shape != current.shape:
                raise AssertionError(f"importance_scores should have the same shape as parameter {name} of "
                                     f"{type(module).__name__}, got {importance_scores.shape} vs {current.shape}")
            if old is None:
                module.register_parameter(name + "_orig", current)
                del module._parameters[name]
                moved = True
                default_mask = ones_like(current)
            else:
                default_mask = getattr(module, name + "_mask").detach().clone()
            with no_grad():
                mask = method.compute_mask(current if importance_scores is None else importance_scores,
                                           default_mask=default_mask)
            module.register_buffer(name + "_mask", mask)
            setattr(module, name, method.apply_mask(module))
        except Exception:
            if moved:
                module.__dict__.pop(name, None)
                module._buffers.pop(name + "_mask", None)
                module.register_parameter(name, module._parameters.pop(name + "_orig"))
            elif kept is not None:
                old._pruning_methods = kept
            raise
        for key, _ in hooks:
            del module._forward_pre_hooks[key]
        module.register_forward_pre_hook(method)
        return method

    def prune(self, t: Tensor, default_mask: Tensor | None = None, importance_scores: Tensor | None = None) -> Tensor:
        """`t` times the mask this method computes for it (from `importance_scores` when given)."""
        if importance_scores is not None and importance_scores.shape != t.shape:
            raise AssertionError(f"importance_scores should have the same shape as tensor t, "
                                 f"got {importance_scores.shape} vs {t.shape}")
        scores = t if importance_scores is None else importance_scores
        with no_grad():
            mask = self.compute_mask(scores, default_mask=ones_like(t) if default_mask is None else default_mask)
        return t * mask

    def remove(self, module: Module) -> None:
        """Make the pruning of `module` permanent: `<name>` is a plain parameter again (the `_orig` object,
        now holding the pruned values); the `_orig` parameter, the `_mask` buffer and the hook go."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {type(module).__name__} has to be pruned before pruning can be removed")
        name = self._tensor_name
        weight = self.apply_mask(module)
        module.__dict__.pop(name, None)
        orig = module._parameters.pop(name + "_orig")
        orig.data = weight.data
        del module._buffers[name + "_mask"]
        setattr(module, name, orig)


class PruningContainer(BasePruningMethod):
    """The methods that pruned one parameter, in order; the last one acts on what the others left."""

    def __init__(self, *args: BasePruningMethod) -> None:
        self._pruning_methods: tuple[BasePruningMethod, ...] = ()
        if args:
            self._tensor_name = args[0]._tensor_name
        for method in args:
            self.add_pruning_method(method)

    def add_pruning_method(self, method: BasePruningMethod) -> None:
        """Append `method`, which must prune the same parameter."""
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name != method._tensor_name:
            raise ValueError(f"Can only add pruning methods acting on the parameter named '{self._tensor_name}' "
                             f"to PruningContainer. Found '{method._tensor_name}'")
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """`default_mask` with the latest method's mask, computed on the still unpruned part of `t`, in it."""
        method = self._pruning_methods[-1]
        part = _UNPRUNED.get(method.PRUNING_TYPE)
        if part is None:
            raise ValueError(f"Unrecognized PRUNING_TYPE {method.PRUNING_TYPE}")
        old = default_mask.array
        where = part(method, old)
        partial = method.compute_mask(Tensor._of(t.array[where]), default_mask=Tensor._of(old[where]))
        mask = old.astype(t.array.dtype)  # a copy
        mask[where] = partial.array.astype(mask.dtype, copy=False)
        return Tensor._of(mask)


def _unpruned_channels(method: BasePruningMethod, mask) -> tuple:
    """The index of the channels along `method.dim` that earlier pruning left some entry of."""
    if not hasattr(method, "dim"):
        raise AttributeError('Pruning methods of PRUNING_TYPE "structured" need to have the attribute `dim` defined.')
    dim = _checked_dim(method.dim, mask.shape)
    keep = mask.sum(axis=tuple(d for d in range(mask.ndim) if d != dim)) != 0
    return (slice(None),) * dim + (keep,)


# what part of the tensor the newest method of a container sees, by its PRUNING_TYPE
_UNPRUNED = {
    "unstructured": lambda method, mask: mask == 1,  # the unpruned entries, flattened
    "structured": _unpruned_channels,
    "global": lambda method, mask: (Ellipsis,),  # all of it
}


class Identity(BasePruningMethod):
    """Prunes nothing: the mask of ones, with the mechanics of pruning."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return default_mask

    @classmethod
    def apply(cls, module: Module, name: str):
        return super().apply(module, name)


class _Unstructured(BasePruningMethod):
    """Prunes `amount` entries (a count, or a fraction of the entries), those that `_pick` names."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount: int | float) -> None:
        _validate_pruning_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        count = _count_to_prune(self.amount, t.numel())
        mask = default_mask.array.copy()
        if count:
            mask.reshape(-1)[self._pick(t, count)] = 0
        return Tensor._of(mask)


class RandomUnstructured(_Unstructured):
    """Prunes entries at random (the engine's generator)."""

    def _pick(self, t: Tensor, count: int):
        return _top(rand(t.numel(), device=t.device).array, count, largest=True)

    @classmethod
    def apply(cls, module: Module, name: str, amount: int | float):
        return super().apply(module, name, amount=amount)


class L1Unstructured(_Unstructured):
    """Prunes the entries of smallest absolute value (ties as torch.topk breaks them)."""

    def _pick(self, t: Tensor, count: int):
        return _top(abs(t.array).reshape(-1), count, largest=False)

    @classmethod
    def apply(cls, module: Module, name: str, amount: int | float, importance_scores: Tensor | None = None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class _Structured(BasePruningMethod):
    """Prunes `amount` channels along `dim`: keeps those with the largest `_channel_scores`."""

    PRUNING_TYPE = "structured"

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        if t.ndim <= 1:
            raise ValueError(f"Structured pruning can only be applied to multidimensional tensors. Found tensor "
                             f"of shape {t.shape} with {t.ndim} dims")
        dim = _checked_dim(self.dim, t.shape)
        channels = t.shape[dim]
        count = _count_to_prune(self.amount, channels)
        if count == 0:
            return default_mask
        keep = _top(self._channel_scores(t, dim), channels - count, largest=True)
        mask = array_module(t.array).zeros_like(t.array)
        mask[(slice(None),) * dim + (keep,)] = 1
        return Tensor._of(mask * default_mask.array)


class RandomStructured(_Structured):
    """Prunes channels along `dim` at random (the engine's generator)."""

    def __init__(self, amount: int | float, dim: int = -1) -> None:
        _validate_pruning_amount_init(amount)
        self.amount, self.dim = amount, dim

    def _channel_scores(self, t: Tensor, dim: int):
        return rand(t.shape[dim], device=t.device).array

    @classmethod
    def apply(cls, module: Module, name: str, amount: int | float, dim: int = -1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(_Structured):
    """Prunes the channels along `dim` of smallest L`n` norm (`n` as torch.norm's `p`)."""

    def __init__(self, amount: int | float, n, dim: int = -1) -> None:
        _validate_pruning_amount_init(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def _channel_scores(self, t: Tensor, dim: int):
        return norm(t, p=self.n, dim=[d for d in range(t.ndim) if d != dim]).array

    @classmethod
    def apply(cls, module: Module, name: str, amount: int | float, n, dim: int,
              importance_scores: Tensor | None = None):
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Prunes where a given mask is 0."""

    PRUNING_TYPE = "global"

    def __init__(self, mask: Tensor) -> None:
        self.mask = mask

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        if default_mask.shape != self.mask.shape:
            raise AssertionError(f"default_mask shape {default_mask.shape} must match self.mask shape "
                                 f"{self.mask.shape}")
        return default_mask * self.mask.to(dtype=default_mask.dtype)

    @classmethod
    def apply(cls, module: Module, name: str, mask: Tensor):
        return super().apply(module, name, mask=mask)


def identity(module: Module, name: str) -> Module:
    """Reparametrise `name` as pruning does, with a mask of ones."""
    Identity.apply(module, name)
    return module


def random_unstructured(module: Module, name: str, amount: int | float) -> Module:
    """Prune `amount` random entries of `name`."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module: Module, name: str, amount: int | float,
                    importance_scores: Tensor | None = None) -> Module:
    """Prune the `amount` entries of `name` of smallest absolute value (of `importance_scores` when given)."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module: Module, name: str, amount: int | float, dim: int) -> Module:
    """Prune `amount` random channels of `name` along `dim`."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module: Module, name: str, amount: int | float, n, dim: int,
                  importance_scores: Tensor | None = None) -> Module:
    """Prune the `amount` channels of `name` along `dim` of smallest L`n` norm."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def global_unstructured(parameters: Iterable[tuple[Module, str]], pruning_method: type[BasePruningMethod],
                        importance_scores: dict | None = None, **kwargs) -> None:
    """Prune the (module, name) parameters as one: `pruning_method(**kwargs)` ranks all their entries together."""
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    with no_grad():
        scores = parameters_to_vector([importance_scores.get((m, n), getattr(m, n)) for m, n in parameters])
        default_mask = parameters_to_vector([getattr(m, n + "_mask") if hasattr(m, n + "_mask")
                                             else ones_like(getattr(m, n)) for m, n in parameters])
    container = PruningContainer()
    container._tensor_name = "temp"
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(f'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
                        f"{pruning_method} of type {method.PRUNING_TYPE}")
    container.add_pruning_method(method)
    final_mask = container.compute_mask(scores, default_mask)
    start = 0
    for module, name in parameters:
        param = getattr(module, name)
        custom_from_mask(module, name, mask=final_mask[start:start + param.numel()].view_as(param))
        start += param.numel()


def custom_from_mask(module: Module, name: str, mask: Tensor) -> Module:
    """Prune `name` where `mask` is 0."""
    CustomFromMask.apply(module, name, mask)
    return module


def remove(module: Module, name: str) -> Module:
    """Make the pruning of `name` permanent: a plain parameter holding the pruned values, no mask, no hook."""
    for key, hook in module._forward_pre_hooks.items():
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ValueError(f"Parameter '{name}' of {type(module).__name__} has to be pruned before pruning can be removed")


def is_pruned(module: Module) -> bool:
    """Whether `module` or any module inside it has a pruning hook."""
    return any(isinstance(hook, BasePruningMethod)
               for _, sub in module.named_modules() for hook in sub._forward_pre_hooks.values())


def _check_parameter(module: Module, name: str) -> None:
    """TypeError unless `name` is a parameter of `module` (not a buffer, a plain attribute or None)."""
    if module._parameters.get(name) is None:
        what = "a buffer" if name in module._buffers else "None" if name in module._parameters else \
            f"a {type(getattr(module, name)).__name__}"
        raise TypeError(f"cannot prune '{name}' of {type(module).__name__}: it is {what}, not a Parameter")


# ---- amounts and dims, checked with torch's errors --------------------------------------------------------
def _validate_pruning_amount_init(amount) -> None:
    if not isinstance(amount, numbers.Real) or isinstance(amount, bool):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (amount < 0) if isinstance(amount, numbers.Integral) else not 0.0 <= float(amount) <= 1.0:
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _count_to_prune(amount, tensor_size: int) -> int:
    """How many of `tensor_size` entries or channels `amount` (a count or a fraction) prunes; at most all."""
    count = int(amount) if isinstance(amount, numbers.Integral) else round(amount * tensor_size)
    if count > tensor_size:
        raise ValueError(f"amount={count} should be smaller than the number of parameters to prune={tensor_size}")
    return count


def _checked_dim(dim: int, shape: tuple) -> int:
    """`dim` of a tensor of `shape`, made non-negative; IndexError when out of range."""
    if not -len(shape) <= dim < len(shape):
        raise IndexError(f"Invalid index {dim} for tensor of size {tuple(shape)}: dim must be in "
                         f"[{-len(shape)}, {len(shape) - 1}]")
    return dim % len(shape)


def _top(scores, k: int, largest: bool):
    """The indices of the `k` largest (or smallest) of the 1-D array `scores`, ties to the lower index."""
    order = array_module(scores).argsort(-scores if largest else scores, kind="stable")
    return order[:k]
