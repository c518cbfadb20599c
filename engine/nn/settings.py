"""Settings a person may change on a module while training runs, with their allowed values.

A Module class lists them as `settings = (Setting(...), ...)`; `module.set_setting(name, value)`
checks a new value against its Setting before touching the module. Anything not listed (such as
`Linear.out_features`) is fixed at construction, because changing it would no longer match the
parameters' shapes or the module's structure.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

_TYPE_NAMES = {float: "a float", int: "an integer", bool: "a bool", str: "a string"}


@dataclass(frozen=True, slots=True)
class Setting:
    """One runtime-editable attribute of a module class, with its type and allowed values.

    `low`/`high` bound numbers inclusively unless `low_open`/`high_open`; `choices` lists allowed
    values; `optional` also allows None; `reinit` re-initialises the module's parameters after a change.
    """

    name: str
    type: type
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    reinit: bool = False
    doc: str = ""
    low_open: bool = False
    high_open: bool = False
    optional: bool = False

    def allowed(self) -> str:
        """The allowed values in words, e.g. 'a float in [0, 1]'."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = _TYPE_NAMES.get(self.type, self.type.__name__)
            if self.low is not None or self.high is not None:
                lo = "-inf" if self.low is None else f"{self.low:g}"
                hi = "inf" if self.high is None else f"{self.high:g}"
                left = "(" if self.low_open or self.low is None else "["
                right = ")" if self.high_open or self.high is None else "]"
                text += f" in {left}{lo}, {hi}{right}"
        return text + (" or None" if self.optional else "")

    def validate(self, owner: str, value):
        """Return `value` converted to the setting's type, or raise a ValueError naming what is allowed."""
        if value is None and self.optional:
            return None
        converted = _convert(self.type, value)
        if converted is None or not self._in_range(converted):
            raise ValueError(
                f"{owner}: cannot set '{self.name}' to {value!r}; allowed: {self.allowed()}"
            )
        return converted

    def _in_range(self, v) -> bool:
        if self.choices is not None:
            return v in self.choices
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            return False
        return not (self.high is not None and (v > self.high or (self.high_open and v == self.high)))

    def describe(self, value) -> dict:
        """Plain data for a settings panel: name, type name, bounds, choices, current value, doc."""
        return {
            "name": self.name, "type": self.type.__name__, "value": value,
            "low": self.low, "high": self.high, "low_open": self.low_open, "high_open": self.high_open,
            "choices": None if self.choices is None else list(self.choices),
            "optional": self.optional, "reinit": self.reinit, "allowed": self.allowed(), "doc": self.doc,
        }


def _convert(kind: type, value):
    """`value` as `kind`, or None when it is not one (a bool is not a number here)."""
    if kind is bool:
        return bool(value) if isinstance(value, bool | np.bool_) else None
    if isinstance(value, bool | np.bool_):
        return None
    if kind is float:
        if isinstance(value, numbers.Real) and not math.isnan(float(value)):
            return float(value)
        return None
    if kind is int:
        return int(value) if isinstance(value, numbers.Integral) else None
    return value if isinstance(value, kind) else None
