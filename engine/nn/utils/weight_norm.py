"""The older hook-based weight normalisation, as torch.nn.utils.weight_norm / remove_weight_norm."""

from __future__ import annotations

from engine.autograd.grad_mode import no_grad
from engine.nn.module import Module
from engine.nn.parameter import Parameter
from engine.nn.utils.parametrizations import norm_except_dim, weight_normed
from engine.tensor import Tensor
from engine.user_warning import warn


class WeightNorm:
    """The forward pre hook that recomputes `<name>` from `<name>_g` and `<name>_v` before each call."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def compute_weight(self, module: Module) -> Tensor:
        """g * v / ||v||, from the module's current parameters."""
        g, v = getattr(module, self.name + "_g"), getattr(module, self.name + "_v")
        return weight_normed(g, v, self.dim)

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Replace parameter `name` by `name_g` (magnitude) and `name_v` (direction); see WeightNorm. Deprecated, as
    in torch, for engine.nn.utils.parametrizations.weight_norm (the same numbers, one parametrization)."""
    warn("engine.nn.utils.weight_norm is deprecated in favor of engine.nn.utils.parametrizations.weight_norm",
         FutureWarning)
    if any(isinstance(h, WeightNorm) and h.name == name for h in module._forward_pre_hooks.values()):
        raise RuntimeError(f"cannot register two weight_norm hooks on the same parameter {name}")
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"weight_norm: {type(module).__name__} has no parameter named '{name}'")
    fn = WeightNorm(name, -1 if dim is None else dim)
    del module._parameters[name]
    with no_grad():
        module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, fn.dim).detach().clone()))
        module.register_parameter(name + "_v", Parameter(weight.detach().clone()))
    object.__setattr__(module, name, fn.compute_weight(module))
    module.register_forward_pre_hook(fn)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo `weight_norm`: `name` becomes one parameter again, holding the current weight."""
    for hid, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, WeightNorm) and hook.name == name:
            with no_grad():
                weight = hook.compute_weight(module).detach().clone()
            del module._forward_pre_hooks[hid]
            del module._parameters[name + "_g"], module._parameters[name + "_v"]
            object.__delattr__(module, name)
            module.register_parameter(name, Parameter(weight))
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {type(module).__name__}")
