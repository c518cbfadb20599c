"""Parameter: a tensor that a Module registers as learnable when assigned as an attribute."""

from __future__ import annotations

from engine.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that modules list in `parameters()`; requires grad unless told otherwise."""

    __slots__ = ()

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        """Wrap `data` (shared, not copied), as `torch.nn.Parameter` does."""
        if data is None:
            from engine.creation import empty

            data = empty(0)
        self._hold(data.array if isinstance(data, Tensor) else data, requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        # the values only, as a fresh leaf without .grad (what torch's deepcopy of a parameter gives)
        out = Parameter(self.array.copy(), requires_grad=self.requires_grad)
        memo[id(self)] = out
        return out


def new_parameter(*shape: int, device=None, dtype=None) -> Parameter:
    """An uninitialised parameter of `shape` (layers fill it in `reset_parameters`)."""
    from engine.creation import empty

    return Parameter(empty(shape, dtype=dtype, device=device))


def add_weight_and_bias(module, weight_shape: tuple[int, ...], bias_size: int, bias: bool,
                        device=None, dtype=None) -> None:
    """Register `weight`, then `bias` (or None when `bias` is False), uninitialised, as torch's layers do."""
    module.weight = new_parameter(*weight_shape, device=device, dtype=dtype)
    module.register_parameter("bias", new_parameter(bias_size, device=device, dtype=dtype) if bias else None)
