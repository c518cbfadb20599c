"""Fast construction of frozen slotted dataclasses, for records made on every op.

A frozen dataclass's generated __init__ pays an `object.__setattr__` call per field; setting the slots
through their descriptors does the same work at a fraction of the cost, and the instance is the same
frozen object afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields


def maker(cls: type) -> Callable:
    """A function taking every field positionally and returning a new instance of `cls`."""
    setters = tuple(cls.__dict__[f.name].__set__ for f in fields(cls))

    def make(*values, _new=object.__new__, _cls=cls, _setters=setters, _zip=zip):
        obj = _new(_cls)
        for set_slot, value in _zip(_setters, values):
            set_slot(obj, value)
        return obj

    make.__doc__ = f"Make a {cls.__name__} from all of its fields, in order."
    return make
