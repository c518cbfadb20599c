"""The names a tape gives the parameters of optimizer steps, so that two optimizers' are told apart.

An optimizer given plain parameters calls them by position, "group0.0", "group0.1", ...; the debugger
renames those its model knows ("fc1.weight"). A second optimizer (a GAN's discriminator, a model trained
beside another) has parameters the model does not know, and they were "group0.0" too: on the tape and in a
replay two different tensors had one name. The tape names such a parameter by its optimizer (its class,
numbered from the second optimizer of a class that steps: "SGD", "Adam#2") and, where a recorded module call
owned it, by its module path as the graph shows it: "SGD:Discriminator.fc.weight". Where no recorded call
owned it, or module calls of two roots of one class (G and D both a Sequential) gave two tensors that path
before the step named it, by position: "SGD:group0.1". A parameter keeps the name its first step gave it.
The debugger's own optimizer (the one that trains its model, else the first that steps) keeps its names.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from engine.debug.records import EventRecord
from engine.events import renamed

MAX_TENSORS = 1 << 16  # module-owned parameters remembered (a script making new modules all the time)
_POSITIONAL = re.compile(r"group\d+\.\d+")


class NamedStep(NamedTuple):
    """An optimizer step of an optimizer other than the debugger's, with what names its parameters."""

    rec: EventRecord  # its event names the parameters as the optimizer and the debugger did
    optimizer: str  # "SGD", or "Adam#2" for the second Adam that stepped in this recording
    tensors: tuple[int, ...]  # the ids of the parameters, in the order of the event's names


class ParamNamer:
    """Tape names of optimizer parameters, on the writer thread (see the module docstring)."""

    def __init__(self) -> None:
        self._paths: dict[int, str] = {}  # tensor id -> "Root.sub.weight", from module calls
        self._path_owner: dict[str, int] = {}  # "Root.sub.weight" -> the first tensor a module call gave it
        self._clashes: set[str] = set()  # paths module calls gave two tensors: they name neither
        self.renamed: dict[int, str] = {}  # tensor id -> its tape name, where that is not the step's own
        self._owners: dict[str, int] = {}  # tape name -> the tensor it names

    def module_called(self, path: str, params: tuple) -> None:
        """Note the module path of a module call's own parameters ((tensor id, dotted name) pairs)."""
        if not params:
            return
        if len(self._paths) >= MAX_TENSORS or len(self._path_owner) >= MAX_TENSORS:
            self._paths.clear()
            self._path_owner.clear()
            self._clashes.clear()
        root = path.partition(".")[0]  # the dotted names start below the root, whose class begins the path
        for tensor, dotted in params:
            where = f"{root}.{dotted}"
            if self._path_owner.setdefault(where, tensor) != tensor:
                self._clashes.add(where)  # two roots of one class (or a model built anew): the path is ambiguous
            self._paths.setdefault(tensor, where)

    def step(self, named: NamedStep) -> EventRecord:
        """The step's record with the positional names ("group0.0") of its parameters qualified."""
        rec = named.rec
        ev = rec.event
        names = list(ev.weight_norms)
        if len(names) != len(named.tensors):  # not the parameters the event names: leave it as it is
            return rec
        new = {}
        for name, tensor in zip(names, named.tensors):
            tape_name = self.renamed.get(tensor)
            if tape_name is None and _POSITIONAL.fullmatch(name):
                where = self._paths.get(tensor)
                tape_name = f"{named.optimizer}:{name if where is None or where in self._clashes else where}"
                if self._owners.setdefault(tape_name, tensor) != tensor:  # named by path before a clash showed
                    tape_name = f"{named.optimizer}:{name}"
                self.renamed[tensor] = tape_name
            new[name] = tape_name or name
        if all(k == v for k, v in new.items()) or len(set(new.values())) != len(new):
            return rec
        return rec._replace(event=renamed(ev, new))
