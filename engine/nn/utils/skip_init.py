"""torch.nn.utils.skip_init."""

from __future__ import annotations

from engine.nn.module import Module


def skip_init(module_cls: type, *args, **kwargs) -> Module:
    """`module_cls(*args, **kwargs)`, whose parameters the caller is about to overwrite.

    torch builds the module on the meta device to skip the initialisation's cost; the engine has no meta
    device, so the module is built (and initialised) as usual. Its values are still yours to set.
    """
    if not isinstance(module_cls, type) or not issubclass(module_cls, Module):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    return module_cls(*args, **kwargs)
