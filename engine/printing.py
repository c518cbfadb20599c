"""`repr(tensor)` written the way PyTorch writes it, so a PyTorch user reads our output at a glance.

All elements of a tensor share one format (integral, fixed or scientific, chosen from the magnitudes
of its finite nonzero values) and one column width. Tensors of more than THRESHOLD elements show only
EDGEITEMS entries at each end of every long axis; only those entries are copied to the host.
"""

from __future__ import annotations

import math

import numpy as np

from engine import dtypes
from engine.backend import CPU, array_module, to_device

PRECISION = 4  # digits after the point
THRESHOLD = 1000  # more elements than this are summarized with "..."
EDGEITEMS = 3  # entries kept at each end of a summarized axis
LINEWIDTH = 80
SCI_MODE = None  # True or False forces scientific notation on or off; None chooses it from the magnitudes

# dtypes PyTorch leaves out of the repr of a non-empty tensor, with the default float (an empty one only omits
# the default float)
_DEFAULT_SHOWN = {dtypes.int64, dtypes.bool_}


class _Format:
    """The notation and column width shared by every element of one tensor."""

    def __init__(self, a: np.ndarray) -> None:
        self.floating = a.dtype.kind == "f"
        self.style = "int"  # floats: "int" (1.), "fixed" (1.5000) or "sci" (1.5000e+08)
        self.width = 1
        if not self.floating:
            self.width = max((len(str(v)) for v in a.reshape(-1).tolist()), default=1)
            return
        vals = a[np.isfinite(a) & (a != 0)].astype(np.float64)
        if vals.size == 0:  # only zeros, nans and infs: integral style, no width to reserve
            return
        mags = np.abs(vals)
        lo, hi = mags.min(), mags.max()
        if SCI_MODE if SCI_MODE is not None else (hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4):
            self.style = "sci"
        elif not np.all(vals == np.ceil(vals)):
            self.style = "fixed"
        self.width = max(len(self._plain(v)) for v in vals.tolist())

    def _plain(self, v) -> str:
        if not self.floating:
            return str(v)
        if self.style == "sci":
            return f"{v:.{PRECISION}e}"
        if self.style == "fixed":
            return f"{v:.{PRECISION}f}"
        # integral floats keep a trailing point so they still read as floats
        return f"{v:.0f}." if math.isfinite(v) else f"{v:.0f}"

    def text(self, v) -> str:
        """One element, right-aligned to the shared width."""
        return self._plain(v).rjust(self.width)


def _edges(a, cut: tuple[bool, ...]):
    """Keep EDGEITEMS entries at each end of every axis marked in `cut` (on the array's own device)."""
    xp = array_module(a)
    for axis, c in enumerate(cut):
        if c:
            head = (slice(None),) * axis + (slice(0, EDGEITEMS),)
            tail = (slice(None),) * axis + (slice(-EDGEITEMS, None),)
            a = xp.concatenate((a[head], a[tail]), axis=axis)
    return a


def _body(a: np.ndarray, cut: tuple[bool, ...], indent: int, fmt: _Format) -> str:
    if a.ndim == 0:
        return fmt.text(a.item())
    n = a.shape[0]
    if a.ndim == 1:
        vals = a.tolist()
        items = [fmt.text(v) for v in vals]
        if cut[0]:
            items = [*items[:EDGEITEMS], " ...", *items[n - EDGEITEMS:]]
        per_line = max(1, (LINEWIDTH - indent) // (fmt.width + 2))
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    rows = [_body(a[i], cut[1:], indent + 1, fmt) for i in range(n)]
    if cut[0]:
        rows = [*rows[:EDGEITEMS], "...", *rows[n - EDGEITEMS:]]
    # sub-blocks of a 3-d tensor are separated by a blank line, as in PyTorch
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _with_suffixes(text: str, suffixes: list[str], indent: int) -> str:
    # a suffix that would run past the line width goes on its own line (PyTorch's measure of the last line)
    last = len(text) - text.rfind("\n") + 1
    for s in suffixes:
        if last + len(s) + 2 > LINEWIDTH:
            text += ",\n" + " " * indent + s
            last = indent + len(s)
        else:
            text += ", " + s
            last += len(s) + 2
    return text + ")"


def tensor_repr(t) -> str:
    """tensor([...], dtype=..., device=..., grad_fn=<...>) as PyTorch prints it."""
    prefix = "tensor("
    a = t.array
    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{t.device}'")
    if a.size == 0:
        body = "[]"
        if a.ndim != 1:
            suffixes.append(f"size={tuple(a.shape)}")
        if t.dtype is not dtypes.default_float:
            suffixes.append(f"dtype={t.dtype!r}")
    else:
        summarize = a.size > THRESHOLD
        cut = tuple(summarize and n > 2 * EDGEITEMS for n in a.shape)
        shown = to_device(_edges(a, cut), CPU)  # copy only the entries shown
        body = _body(shown, cut, len(prefix), _Format(shown))
        if t.dtype not in _DEFAULT_SHOWN and t.dtype is not dtypes.default_float:
            suffixes.append(f"dtype={t.dtype!r}")
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return _with_suffixes(prefix + body, suffixes, len(prefix))
