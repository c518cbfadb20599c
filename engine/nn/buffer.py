"""Buffer, the marker that makes a tensor a module's buffer when assigned as an attribute (torch.nn.Buffer),
and UninitializedBuffer, a lazy layer's buffer whose shape the first call decides (torch.nn.UninitializedBuffer).
"""

from __future__ import annotations

from engine import creation
from engine.tensor import Tensor


class Buffer(Tensor):
    """A tensor that `module.name = Buffer(t)` registers as buffer `name` (persistent: in state_dict).

    It is `data.detach()` with data's requires_grad, as torch's: the same values and version counter (a write
    through it is caught by a backward that saved data). Once registered it is a plain Tensor again."""

    __slots__ = ()
    persistent = True

    def __init__(self, data: Tensor | None = None, *, persistent: bool = True) -> None:
        if data is None:
            data = creation.empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Buffer: expected a Tensor as data, got {type(data).__name__}")
        self._hold(data.array, data.requires_grad)
        self._vc = data._vc
        if not persistent:
            self.__class__ = _NonPersistentBuffer


class _NonPersistentBuffer(Buffer):
    """A Buffer left out of state_dict."""

    __slots__ = ()
    persistent = False


def unmark(tensor: Tensor | None) -> Tensor | None:
    """`tensor` as a plain Tensor (the same object) when it is a Buffer marker."""
    if isinstance(tensor, Buffer):
        tensor.__class__ = Tensor
    return tensor


class UninitializedBuffer(Tensor):
    """A buffer whose shape is not known yet; `materialize(shape)` makes it an ordinary Tensor."""

    __slots__ = ()

    def __init__(self, requires_grad: bool = False, device=None, dtype=None) -> None:
        self._hold(creation.empty(0, device=device, dtype=dtype).array, requires_grad)

    def materialize(self, shape: tuple[int, ...]) -> None:
        """Give the buffer `shape` (uninitialised values, same device and dtype) and make it a Tensor."""
        self.array = creation.empty(tuple(shape), device=self.device, dtype=self.dtype).array
        self._vc[0] += 1
        self.__class__ = Tensor

    def __deepcopy__(self, memo: dict) -> UninitializedBuffer:
        if id(self) not in memo:
            memo[id(self)] = UninitializedBuffer(self.requires_grad, self.device, self.dtype)
        return memo[id(self)]

    def __repr__(self) -> str:
        return "<UninitializedBuffer>"
