"""Autograd: functions (graph nodes), grad mode and the backward scheduler."""

__all__ = ["grad"]

# imports nothing of the engine at load: the function shadows its module's name, as torch.autograd.gradcheck does
from engine.autograd.gradcheck import gradcheck, gradgradcheck


def __getattr__(name: str):
    # engine.autograd.grad as torch.autograd.grad; looked up on first use because engine.tensor imports this
    # package (for grad mode) before the scheduler, which needs Tensor, can be imported
    if name == "grad":
        from engine.autograd.engine import grad

        globals()["grad"] = grad
        return grad
    if name == "functional":  # engine.autograd.functional.jacobian after a bare `import engine`, loaded on first use
        import importlib

        return importlib.import_module("engine.autograd.functional")
    if name == "Function":  # torch.autograd.Function, the public base of custom ops (engine.autograd.custom)
        from engine.autograd.custom import Function

        globals()["Function"] = Function
        return Function
    raise AttributeError(f"module 'engine.autograd' has no attribute {name!r}")
