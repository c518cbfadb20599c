"""The selected node at a glance: op, shapes, module, source line, and its output's and gradient's summary.

A placeholder for the tensor inspector: it takes plain data (any object with NodeInfo's fields, and
engine.debug TensorSummary objects) and shows it as text.
"""

from __future__ import annotations

import html
import math

from PySide6.QtWidgets import QTextBrowser

from widgets.theme import ERROR_TEXT, MUTED_TEXT, follow_palette, pick

TIMES = "\u00d7"


class NodeInfoPanel(QTextBrowser):
    """show_node(info) or show_nothing(); `plain_text()` is what a person reads."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self._shown = (self.show_nothing, ())
        # its colours are in its HTML: written again in the palette's colours when that turns light or dark
        follow_palette(self, lambda: self._shown[0](*self._shown[1]), now=False)
        self.show_nothing()

    def show_nothing(self, text: str = "Click a node to see its op, shapes and values.") -> None:
        """No node selected."""
        self._shown = (self.show_nothing, (text,))
        self.setHtml(f"<p style='color:{pick(MUTED_TEXT)}'>{html.escape(text)}</p>")

    def show_node(self, info) -> None:
        """Show a node: key, label, kind, op, module, in_shapes, out_shape, dtype, source, summary, grad."""
        self._shown = (self.show_node, (info,))
        kind = "buffer" if info.op == "buffer" else info.kind  # a module's tensor no optimizer steps (running_mean)
        rows = [("op", info.op), ("kind", kind), ("module", info.module or "top level"),
                ("inputs", info.in_shapes), ("output", f"{info.out_shape}  {info.dtype}".strip()),
                ("key", info.key)]
        src = info.source
        if src is not None:
            rows.append(("source", f"{_short(src.file)}:{src.line}  {src.text}"))
        name = getattr(info, "name", "")  # what the script calls an op's output ("q"), over its op
        header = f"{name}  \u00b7  {info.label}" if name else info.label
        parts = [f"<h3 style='margin:2px 0'>{html.escape(header)}</h3>", _table(rows)]
        if getattr(info, "alert", ""):
            parts.append(f"<p style='color:{pick(ERROR_TEXT)}'><b>{html.escape(info.alert)}</b></p>")
        for title, s in (("output", info.summary), ("gradient", info.grad)):
            if s is not None:
                parts.append(f"<p style='margin:6px 0 2px 0'><b>{title}</b></p>" + _table(_summary_rows(s)))
        self.setHtml("".join(parts))

    def plain_text(self) -> str:
        """What the panel shows, as plain text."""
        return self.toPlainText()


def _summary_rows(s) -> list[tuple[str, str]]:
    shape = TIMES.join(map(str, s.shape)) or "scalar"
    rows = [("shape", f"{shape}  {s.dtype}  {s.device}"),
            ("min / max", f"{_num(s.min)} / {_num(s.max)}"),
            ("mean \u00b1 std", f"{_num(s.mean)} \u00b1 {_num(s.std)}"),
            ("L2 norm", _num(s.norm)), ("zeros", f"{s.zero_count} of {s.numel}")]
    if s.nan_count or s.inf_count:
        rows.append(("NaN / Inf", f"<span style='color:{pick(ERROR_TEXT)}'>{s.nan_count} / {s.inf_count}</span>"))
    return rows


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><td style='color:{pick(MUTED_TEXT)};padding-right:10px'>{html.escape(k)}</td>"
                    f"<td>{v if v.startswith('<span') else html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table cellspacing='0' cellpadding='1'>{cells}</table>"


def _num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]
