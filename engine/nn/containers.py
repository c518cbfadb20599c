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
    """Entries named "0", "1", ... in one of a module's registries (`_store`), kept numbered without gaps
    after deletion and insertion: Sequential's and ModuleList's modules, ParameterList's parameters."""

    _store = "_modules"

    def _entries(self) -> dict:
        return self.__dict__[self._store]

    def _add(self, key: str, value) -> None:
        self.add_module(key, value)

    def _checked(self, value):
        """`value` as this container holds it, or TypeError."""
        if not isinstance(value, Module):
            raise TypeError(f"{type(value).__name__} is not a Module subclass")
        return value

    def _sliced(self, values: list):
        return ModuleList(values)

    def _renumber(self, values: Iterable) -> None:
        entries = self._entries()
        entries.clear()
        for i, v in enumerate(values):
            entries[str(i)] = v

    def __len__(self) -> int:
        return len(self._entries())

    def __iter__(self) -> Iterator:
        return iter(self._entries().values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return self._sliced(list(self._entries().values())[idx])
        return list(self._entries().values())[_index(idx, len(self), type(self).__name__)]

    def __setitem__(self, idx: int, value) -> None:
        key = list(self._entries())[_index(idx, len(self), type(self).__name__)]
        self._add(key, value)

    def __delitem__(self, idx) -> None:
        values = list(self._entries().values())
        if isinstance(idx, slice):
            del values[idx]
        else:
            del values[_index(idx, len(values), type(self).__name__)]
        self._renumber(values)

    def append(self, value) -> _Indexed:
        """Add `value` at the end."""
        self._add(str(len(self)), value)
        return self

    def extend(self, values: Iterable) -> _Indexed:
        """Add each of `values` at the end."""
        for v in values:
            self.append(v)
        return self

    def insert(self, index: int, value) -> None:
        """Put `value` before position `index`."""
        values = list(self._entries().values())
        values.insert(index, self._checked(value))
        self._renumber(values)

    def pop(self, index: int = -1):
        """Remove and return the entry at `index`."""
        value = self[index]
        del self[index]
        return value

    def __iadd__(self, values: Iterable) -> _Indexed:
        return self.extend(values)

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


class ParameterList(_Indexed):
    """A list of parameters named "0", "1", ..., registered so they belong to the owner."""

    _store = "_parameters"

    def __init__(self, values: Iterable[Tensor] | None = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    def _add(self, key: str, value: Tensor) -> None:
        self.register_parameter(key, self._checked(value))

    def _checked(self, value):
        return _as_parameter(value, "ParameterList")

    def _sliced(self, values: list) -> ParameterList:
        return ParameterList(values)

    def __repr__(self) -> str:
        lines = [f"    ({i}): Parameter containing: [engine.{p.dtype.name} of size {'x'.join(map(str, p.shape))}]"
                 for i, p in enumerate(self)]
        return "ParameterList(\n" + "\n".join(lines) + "\n)" if lines else "ParameterList()"

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
