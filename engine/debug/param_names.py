"""The names the parameters of optimizer steps get, so that two optimizers' are told apart (live and on a tape).

An optimizer given plain parameters calls them by position, "group0.0", "group0.1", ...; the debugger
renames those its model knows ("fc1.weight"). A second optimizer (a GAN's discriminator, a model trained
beside another) has parameters the model does not know, and they were "group0.0" too: on the tape and in a
replay two different tensors had one name. The tape names such a parameter by its optimizer (its class,
numbered from the second optimizer of a class that steps: "SGD", "Adam#2") and, where a recorded module call
owned it, by its module path as the graph shows it: "SGD:Discriminator.fc.weight". Where no recorded call
owned it, or module calls of two roots of one class (G and D both a Sequential) gave two tensors that path
before the step named it, by the variable the script holds it in ("SGD#2:b", engine.debug.script_names), else by
position: "SGD:group0.1". A parameter keeps the name its first step gave it.
The debugger's own optimizer (the one that trains its model, else the first that steps) keeps its names.
The debugger names each step this way as it happens; a tape writes the names the debugger gave.
"""

from __future__ import annotations

import re

from engine.events import OptimizerEvent, renamed

MAX_TENSORS = 1 << 16  # module-owned parameters remembered (a script making new modules all the time)
_POSITIONAL = re.compile(r"group\d+\.\d+")


class ParamNamer:
    """Names of other optimizers' parameters, from the module calls that own them (see the module docstring)."""

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

    def named(self, ev: OptimizerEvent, optimizer: str, tensors: tuple[int, ...],
              held: dict[str, str] | None = None) -> OptimizerEvent:
        """`ev` with the positional names of its parameters (ids `tensors`, in its order) qualified by
        `optimizer` ("Adam#2") and, where module calls owned them, their module paths, else the names the script
        holds them by (`held`: positional name -> variable)."""
        names = list(ev.weight_norms)
        if len(names) != len(tensors):  # not the parameters the event names: leave it as it is
            return ev
        new = {}
        for name, tensor in zip(names, tensors):
            tape_name = self.renamed.get(tensor)
            if tape_name is None and _POSITIONAL.fullmatch(name):
                where = self._paths.get(tensor)
                own = (held or {}).get(name, name)
                tape_name = f"{optimizer}:{own if where is None or where in self._clashes else where}"
                if self._owners.setdefault(tape_name, tensor) != tensor:  # named by path before a clash showed
                    tape_name = f"{optimizer}:{name}"
                self.renamed[tensor] = tape_name
            new[name] = tape_name or name
        if all(k == v for k, v in new.items()) or len(set(new.values())) != len(new):
            return ev
        return renamed(ev, new)


class StepLabels:
    """Which optimizer a step is ("SGD", "Adam#2": numbered by class in the order they first step) and the ids of
    the parameters it updated, in its order."""

    def __init__(self) -> None:
        self._labels: dict[int, str] = {}
        self._classes: dict[str, int] = {}
        self._tensors: dict[int, tuple] = {}

    def label(self, opt) -> str:
        """The label of `opt`: "SGD", or "SGD#2" for the second SGD to step."""
        label = self._labels.get(id(opt))
        if label is None:
            cls = type(opt).__name__
            n = self._classes[cls] = self._classes.get(cls, 0) + 1
            if len(self._labels) >= MAX_TENSORS:  # a script making a new optimizer all the time: stay bounded
                self._labels.clear()
            label = self._labels[id(opt)] = cls if n == 1 else f"{cls}#{n}"
        return label

    def tensors(self, opt, count: int) -> tuple[int, ...]:
        """The ids of the `count` parameters `opt`'s step updated, in its order: those of all its parameters,
        kept per (optimizer, group sizes), where every parameter had a gradient (the usual step)."""
        if not count:  # a step without norms names no parameters
            return ()
        groups = opt.param_groups
        sizes = tuple(len(group["params"]) for group in groups)
        hit = self._tensors.get(id(opt))
        if hit is None or hit[0] is not opt or hit[1] != sizes:
            if len(self._tensors) >= MAX_TENSORS:
                self._tensors.clear()
            hit = self._tensors[id(opt)] = (opt, sizes, tuple(p.id for group in groups for p in group["params"]))
        if count == len(hit[2]):
            return hit[2]
        return tuple(p.id for *_, p in updated_parameters(opt))  # some had no gradient: the ones that had


def updated_parameters(opt) -> list[tuple]:
    """(group index, index in it, group, parameter) of what `opt`'s step updated, in the order it did."""
    return [(g, i, group, p) for g, group in enumerate(opt.param_groups)
            for i, p in enumerate(group["params"]) if p.grad is not None]


def by_event_names(names, updated: list[tuple]) -> list[tuple] | None:
    """(name, parameter) of what a step updated (updated_parameters), named as its event names them (its norms'
    keys, in the step's order); None when the two do not line up one for one."""
    names = list(names)
    return [(name, u[3]) for name, u in zip(names, updated)] if len(names) == len(updated) else None
