"""Parametrizations, as torch.nn.utils.parametrize: a tensor of a module computed from others on access.

`register_parametrization(linear, "weight", P())` moves `linear.weight` to
`linear.parametrizations.weight.original` and makes `linear.weight` a property that returns
`P()(original)`, so gradients reach `original`. The module's class becomes `Parametrized<Class>`, a
subclass that holds the property, as in PyTorch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from engine.autograd.grad_mode import no_grad
from engine.events import hub
from engine.nn.containers import ModuleDict, ModuleList
from engine.nn.module import Module
from engine.nn.parameter import Parameter
from engine.tensor import Tensor

_cache_depth = 0
_cache: dict[tuple[int, str], Tensor] = {}


@contextlib.contextmanager
def cached() -> Iterator[None]:
    """Inside the block each parametrized tensor is computed once, on first access, and reused."""
    global _cache_depth
    _cache_depth += 1
    try:
        yield
    finally:
        _cache_depth -= 1
        if not _cache_depth:
            _cache.clear()


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order to `original` (or `original0`, `original1`...)."""

    def __init__(self, modules: list[Module], original: Tensor, unsafe: bool = False) -> None:
        super().__init__(modules)
        self.unsafe = unsafe
        new = original
        with no_grad():
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    new = module.right_inverse(new)
        self.is_tensor = isinstance(new, Tensor)
        trainable = isinstance(original, Parameter)
        if self.is_tensor:
            if not unsafe and (new.shape != original.shape or new.dtype != original.dtype):
                raise ValueError(
                    f"register_parametrization: right_inverse must keep the shape and dtype of the tensor "
                    f"({tuple(original.shape)}, {original.dtype}); it returned {tuple(new.shape)}, {new.dtype}")
            with no_grad():
                original.copy_(new)
            self._register_original("original", original, trainable)
        else:
            if not isinstance(new, tuple | list) or not all(isinstance(t, Tensor) for t in new):
                raise ValueError("register_parametrization: right_inverse must return a Tensor or a sequence of "
                                 f"Tensors, got {type(new).__name__}")
            for i, t in enumerate(new):
                t = t.detach().clone()
                if trainable:
                    t = Parameter(t, requires_grad=original.requires_grad)
                self._register_original(f"original{i}", t, trainable)
            self.ntensors = len(new)
        if not unsafe:
            value = self()
            if value.shape != original.shape or value.dtype != original.dtype:
                raise ValueError(
                    f"register_parametrization: the parametrization changes the tensor from {tuple(original.shape)}, "
                    f"{original.dtype} to {tuple(value.shape)}, {value.dtype}; pass unsafe=True if that is meant")

    def _register_original(self, name: str, t: Tensor, trainable: bool) -> None:
        if trainable:
            self.register_parameter(name, t if isinstance(t, Parameter) else Parameter(t))
        else:
            self.register_buffer(name, t)

    def right_inverse(self, value: Tensor) -> None:
        """Store `value` into the originals so that the parametrized tensor becomes `value`."""
        with no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not implement right_inverse, "
                                       "so the parametrized tensor cannot be assigned")
                value = module.right_inverse(value)
            if self.is_tensor:
                self.original.copy_(value)
            else:
                for i, t in enumerate(value):
                    getattr(self, f"original{i}").copy_(t)

    def forward(self) -> Tensor:
        """The parametrized tensor: the parametrizations applied in turn to the originals."""
        modules = list(self)
        if self.is_tensor:
            x = modules[0](self.original)
        else:
            x = modules[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in modules[1:]:
            x = module(x)
        return x


def _make_property(name: str) -> property:
    def get(self) -> Tensor:
        plist = self.parametrizations[name]
        if not _cache_depth:
            return plist()
        key = (id(self), name)
        if key not in _cache:
            _cache[key] = plist()
        return _cache[key]

    def set_(self, value: Tensor) -> None:
        self.parametrizations[name].right_inverse(value)

    return property(get, set_, doc=f"the parametrized '{name}', computed from parametrizations.{name}")


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make `module.<tensor_name>` the output of `parametrization` applied to the stored original."""
    # the checks call the parametrization before any model holds it: no module calls of the run, which a debugger
    # took for the model (a spectral norm's "ParametrizationList", its parameters named after it)
    with hub.silenced():
        return _register(module, tensor_name, parametrization, unsafe)


def _register(module: Module, tensor_name: str, parametrization: Module, unsafe: bool) -> Module:
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: the parametrization must be an nn.Module, got "
                        f"{type(parametrization).__name__}")
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            before = getattr(module, tensor_name)
            after = parametrization(before)
            if not isinstance(after, Tensor) or after.shape != before.shape or after.dtype != before.dtype:
                raise ValueError(f"register_parametrization: the new parametrization of '{tensor_name}' changes its "
                                 "shape or dtype; pass unsafe=True if that is meant")
        plist.append(parametrization)
        plist.unsafe |= unsafe
        return module
    if tensor_name not in module._parameters and tensor_name not in module._buffers:
        raise ValueError(f"Module '{type(module).__name__}' does not have a parameter, a buffer, or a parametrized "
                         f"element with name '{tensor_name}'")
    original = getattr(module, tensor_name)
    if original is None:
        raise ValueError(f"register_parametrization: '{tensor_name}' of {type(module).__name__} is None")
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    delattr(module, tensor_name)
    if not is_parametrized(module):
        _inject_new_class(module)
        module.parametrizations = ModuleDict()
    module.parametrizations[tensor_name] = plist
    setattr(type(module), tensor_name, _make_property(tensor_name))
    return module


def _inject_new_class(module: Module) -> None:
    cls = module.__class__
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), {"_parametrized_from": cls})


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether `module` has parametrizations (on `tensor_name`, when given)."""
    plists = module._modules.get("parametrizations")
    if not isinstance(plists, ModuleDict):
        return False
    return len(plists) > 0 if tensor_name is None else tensor_name in plists


def type_before_parametrizations(module: Module) -> type:
    """The module's class as it was before any parametrization was registered."""
    return type(module).__dict__.get("_parametrized_from", type(module))


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True) -> Module:
    """Undo `register_parametrization`: `tensor_name` becomes a plain parameter or buffer again."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {type(module).__name__} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                value = getattr(module, tensor_name)
            if value.shape != original.shape or value.dtype != original.dtype:
                raise ValueError(f"remove_parametrizations: '{tensor_name}' has another shape or dtype than its "
                                 "original; it cannot be left parametrized")
            with no_grad():
                original.copy_(value)
    else:
        if not leave_parametrized:
            raise ValueError("remove_parametrizations: leave_parametrized=False needs a single original tensor")
        with no_grad():
            value = getattr(module, tensor_name).detach().clone()
        if any(isinstance(p, Parameter) for p in plist.parameters(recurse=False)):
            value = Parameter(value)
        original = value
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    if isinstance(original, Parameter):
        module.register_parameter(tensor_name, original)
    else:
        module.register_buffer(tensor_name, original)
    if not is_parametrized(module):
        del module.parametrizations
        module.__class__ = type_before_parametrizations(module)
    return module
