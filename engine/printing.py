"""`repr(tensor)` in PyTorch's style."""

from __future__ import annotations

import numpy as np

from engine import dtypes

_DEFAULT_SHOWN = {dtypes.float32, dtypes.int64, dtypes.bool_}


def _float_formatter(a: np.ndarray):
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return lambda v: f"{v}"
    if np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e8:
        return lambda v: f"{v:.0f}." if np.isfinite(v) else f"{v}"
    big, small = np.abs(finite).max(), np.abs(finite[finite != 0]).min() if np.any(finite != 0) else 1.0
    if big >= 1e8 or small < 1e-4 or big / small > 1e3 and big > 1e4:
        return lambda v: f"{v:.4e}" if np.isfinite(v) else f"{v}"
    return lambda v: f"{v:.4f}" if np.isfinite(v) else f"{v}"


def tensor_repr(t) -> str:
    """tensor([...], dtype=..., device=..., grad_fn=<...>) as PyTorch prints it."""
    a = t._host()
    prefix = "tensor("
    if a.size == 0:
        body = "[]" if a.ndim == 1 else f"[], size={tuple(a.shape)}"
    else:
        fmt = {}
        if a.dtype.kind == "f":
            fmt = {"float_kind": _float_formatter(a)}
        elif a.dtype.kind == "b":
            fmt = {"bool": lambda v: "True" if v else "False"}
        body = np.array2string(a, separator=", ", prefix=prefix, formatter=fmt, threshold=1000, edgeitems=3,
                               max_line_width=80)
    extras = []
    if t.dtype not in _DEFAULT_SHOWN:
        extras.append(f"dtype={t.dtype!r}")
    if t.device.type != "cpu":
        extras.append(f"device='{t.device}'")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extras) + ")"
