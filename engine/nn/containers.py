"""Containers: Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict (PyTorch's behaviour and key names)."""

from __future__ import annotations

import itertools
import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping

from engine.nn.module import Module, _indent
from engine.nn.parameter import Parameter
from engine.tensor import Tensor


def _index(idx, n: int, kind: str) -> int:
    """A position in 0..n-1 from a possibly negative index."""
    idx = operator.index(idx)
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for {kind} of length {n}")
    return idx % n


class _Indexed(Module):
    """Children named "0", "1", ...; kept numbered without gaps after deletion and insertion."""

    def _renumber(self, modules: Iterable[Module]) -> None:
        self._modules.clear()
        for i, m in enumerate(modules):
            self._modules[str(i)] = m

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return list(self._modules.values())[_index(idx, len(self), type(self).__name__)]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules)[_index(idx, len(self), type(self).__name__)]
        self.add_module(key, module)

    def __delitem__(self, idx) -> None:
        modules = list(self._modules.values())
        if isinstance(idx, slice):
            del modules[idx]
        else:
            del modules[_index(idx, len(modules), type(self).__name__)]
        self._renumber(modules)

    def append(self, module: Module) -> _Indexed:
        """Add `module` at the end."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> _Indexed:
        """Add each of `modules` at the end."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Put `module` before position `index`."""
        if not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)

    def pop(self, index: int = -1) -> Module:
        """Remove and return the module at `index`."""
        module = self[index]
        del self[index]
        return module

    def __iadd__(self, modules: Iterable[Module]) -> _Indexed:
        return self.extend(modules)

    def __dir__(self) -> list[str]:
        return [k for k in super().__dir__() if not k.isdigit()]


class Sequential(_Indexed):
    """Modules called one after another, each on the previous one's output."""

    def __init__(self, *args: Module) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], Mapping):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):  # keeps the children's names, as torch does
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)

    def __add__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise TypeError(f"add operator supports only Sequential objects, got {type(other).__name__}")
        return Sequential(*self, *other)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleList(_Indexed):
    """A list of modules, registered so their parameters belong to the owner; not callable itself."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self, *other])

    def __repr__(self) -> str:
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        lines, start = [], 0
        for text, group in itertools.groupby(reprs):  # runs of equal children print once: "(0-2): 3 x ..."
            n = len(list(group))
            line = f"({start}): {text}" if n == 1 else f"({start}-{start + n - 1}): {n} x {text}"
            lines.append(_indent(line, 2))
            start += n
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList is not callable; iterate over it and call its modules")


class _NamedEntries(Module):
    """A dict's methods over one of a module's registries (`_store`): ModuleDict's and ParameterDict's."""

    _store = ""  # the registry: "_modules" or "_parameters"
    _entry = ""  # what it holds, for messages: "module" or "tensor"

    def _entries(self) -> dict:
        return self.__dict__[self._store]

    def __getitem__(self, key: str):
        return self._entries()[key]

    def __delitem__(self, key: str) -> None:
        del self._entries()[key]

    def __len__(self) -> int:
        return len(self._entries())

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __contains__(self, key: str) -> bool:
        return key in self._entries()

    def keys(self):
        """The names, in insertion order."""
        return self._entries().keys()

    def items(self):
        """(name, entry) pairs, in insertion order."""
        return self._entries().items()

    def values(self):
        """The entries, in insertion order."""
        return self._entries().values()

    def update(self, entries) -> None:
        """Add or replace entries from a mapping or from (name, entry) pairs."""
        pairs = entries.items() if isinstance(entries, Mapping) else entries
        for pair in pairs:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise ValueError(f"{type(self).__name__}.update expects (name, {self._entry}) pairs, got {pair!r}")
            self[pair[0]] = pair[1]

    def pop(self, key: str):
        """Remove and return the entry named `key`."""
        value = self[key]
        del self[key]
        return value

    def clear(self) -> None:
        """Remove every entry."""
        self._entries().clear()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} is not callable; look a {self._entry} up by name")


class ModuleDict(_NamedEntries):
    """A dict of modules by name, registered so their parameters belong to the owner."""

    _store, _entry = "_modules", "module"

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)


def _as_parameter(value, kind: str):
    """A tensor assigned into a parameter container becomes a Parameter, as in torch."""
    if isinstance(value, Parameter) or value is None:
        return value
    if isinstance(value, Tensor):
        return Parameter(value)
    raise TypeError(f"{kind} holds tensors (engine.nn.Parameter), got {type(value).__name__}")


class ParameterList(Module):
    """A list of parameters named "0", "1", ..., registered so they belong to the owner."""

    def __init__(self, values: Iterable[Tensor] | None = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ParameterList(list(self)[idx])
        return self._parameters[str(_index(idx, len(self), "ParameterList"))]

    def __setitem__(self, idx: int, value: Tensor) -> None:
        self.register_parameter(str(_index(idx, len(self), "ParameterList")), _as_parameter(value, "ParameterList"))

    def append(self, value: Tensor) -> ParameterList:
        """Add `value` (made a Parameter) at the end."""
        self.register_parameter(str(len(self)), _as_parameter(value, "ParameterList"))
        return self

    def extend(self, values: Iterable[Tensor]) -> ParameterList:
        """Add each of `values` at the end."""
        for v in values:
            self.append(v)
        return self

    def __iadd__(self, values: Iterable[Tensor]) -> ParameterList:
        return self.extend(values)

    def __dir__(self) -> list[str]:
        return [k for k in super().__dir__() if not k.isdigit()]

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList is not callable; index it or iterate over it")


class ParameterDict(_NamedEntries):
    """A dict of parameters by name, registered so they belong to the owner."""

    _store, _entry = "_parameters", "tensor"

    def __init__(self, parameters: Mapping[str, Tensor] | Iterable[tuple[str, Tensor]] | None = None) -> None:
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __setitem__(self, key: str, value: Tensor) -> None:
        self.register_parameter(key, _as_parameter(value, "ParameterDict"))
