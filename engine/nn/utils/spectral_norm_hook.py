"""The older hook-based spectral normalisation, as torch.nn.utils.spectral_norm / remove_spectral_norm."""

from __future__ import annotations

from engine.autograd.grad_mode import no_grad
from engine.nn import functional as F
from engine.nn.layers.conv import _ConvTransposeNd
from engine.nn.module import Module
from engine.nn.parameter import Parameter
from engine.nn.utils.parametrizations import power_iteration_, spectral_normalized, weight_to_matrix
from engine.tensor import Tensor


class SpectralNorm:
    """The forward pre hook that recomputes `<name>` = `<name>_orig` / sigma before each call; in training
    it first refines the buffers `<name>_u` and `<name>_v` in place by power iteration."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.name, self.dim, self.n_power_iterations, self.eps = name, dim, n_power_iterations, eps

    def reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        """`weight` as a matrix with dimension `dim` as its rows."""
        return weight_to_matrix(weight, self.dim)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        """`<name>_orig` / sigma, after n power iteration steps on u and v when `do_power_iteration`."""
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            # v first, then u: torch's order here (the parametrization goes u first), so W.T plays the matrix
            power_iteration_(weight_mat.T, v, u, self.n_power_iterations, self.eps)
            # clones, so a backward through an earlier forward (D(real) - D(fake)) sees the u, v it used
            u, v = u.clone(), v.clone()
        return spectral_normalized(weight, weight_mat, u, v)

    def remove(self, module: Module) -> None:
        """Make `<name>` one parameter again, holding the current normalised weight."""
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        for suffix in ("", "_u", "_v", "_orig"):
            delattr(module, self.name + suffix)
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs) -> None:
        object.__setattr__(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int, eps: float) -> SpectralNorm:
        """Register the hook on `module`: `<name>` becomes `<name>_orig` plus the buffers `<name>_u`, `<name>_v`."""
        if any(isinstance(h, SpectralNorm) and h.name == name for h in module._forward_pre_hooks.values()):
            raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        if name not in module._parameters:
            raise KeyError(f"spectral_norm: {type(module).__name__} has no parameter named '{name}'")
        weight = module._parameters[name]
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        if hasattr(weight, "materialize"):
            raise ValueError("The module passed to `SpectralNorm` can't have uninitialized parameters. "
                             "Make sure to run the dummy forward before applying spectral normalization")
        if not 0 <= dim < weight.ndim:
            raise RuntimeError(f"spectral_norm: dim must be in [0, {weight.ndim}) for the {weight.ndim}-d "
                               f"parameter '{name}', got {dim}")
        with no_grad():
            h, w = fn.reshape_weight_to_matrix(weight).shape
            u = F.normalize(weight.new_empty(h).normal_(0, 1), dim=0, eps=fn.eps)
            v = F.normalize(weight.new_empty(w).normal_(0, 1), dim=0, eps=fn.eps)
        delattr(module, name)
        module.register_parameter(name + "_orig", weight)
        # `<name>` stays readable (weight init code reads it) as a plain attribute, not a second parameter
        object.__setattr__(module, name, weight.data)
        module.register_buffer(name + "_u", u)
        module.register_buffer(name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Divide parameter `name` by its spectral norm before every forward, as torch.nn.utils.spectral_norm."""
    if dim is None:
        dim = 1 if isinstance(module, _ConvTransposeNd) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo `spectral_norm`: `name` becomes one parameter again, holding the current normalised weight."""
    for hid, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[hid]
            return module
    raise ValueError(f"spectral_norm of '{name}' not found in {module}")
