"""In the window, an op reads as what the script calls its output: Ctrl+F "scores" finds the div that
`scores = q @ k.transpose(-2, -1) / s` assigns, and the Inspector's title names it, its op and its key,
giving way in the module path's middle, never in the name or the op, where the dock is narrow."""

import math

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

import engine
from app.layout import layout_view
from engine import nn
from tests.app.test_op_names import attention_step, graph_of
from tests.app.test_window import TIMEOUT
from tests.shots import shoot, shown
from widgets.graph_canvas import GraphCanvas
from widgets.tensor_inspector import TensorInspector


class SelfAttention(nn.Module):
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.in_proj = nn.Linear(d, 3 * d)

    def forward(self, x):
        q, k, v = self.in_proj(x).chunk(3, dim=-1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        attn = scores.softmax(-1)
        return attn @ v


class Encoder(nn.Module):  # the attention three modules deep, as in a Transformer's layer
    def __init__(self) -> None:
        super().__init__()
        self.transformer_layers = nn.ModuleList([nn.Sequential(SelfAttention())])

    def forward(self, x):
        return self.transformer_layers[0](x)


@pytest.fixture
def attention_tape(tmp_path):
    path = tmp_path / "attention.tape"
    net = Encoder()
    with engine.record(path, "summary", max_bytes=0):
        net(engine.randn(2, 5, 8)).sum().backward()
    return str(path)


KEY = "Encoder.transformer_layers.0.0/div:0"


def test_find_scores_selects_the_div_and_the_inspector_names_it(qtbot, make_window, attention_tape):
    window = make_window()
    window.resize(1440, 900)
    assert window.open_tape(attention_tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    window.actions["find"].trigger()
    qtbot.keyClicks(window.search_box, "scores")
    assert window.search_count.text() == "1 match"
    qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    assert window.canvas.selected_key == KEY
    title = f"scores  \u00b7  div  \u00b7  {KEY}"
    qtbot.waitUntil(lambda: window.inspector.title.text() == title, timeout=TIMEOUT)
    view = window.session.model.view()
    assert view.tooltip(view.node_of[KEY]).startswith(f"scores  (div)\n{KEY}\n")
    shoot(window, "op-names-find-scores.png")


def test_a_title_that_does_not_fit_cuts_the_module_path_not_the_name_or_the_op(qtbot):
    inspector = shown(qtbot, TensorInspector(), 300, 500)
    inspector.show_summaries(f"scores  \u00b7  div  \u00b7  {KEY}")
    reads = QLabel.text(inspector.title)  # what it reads, not the whole title it keeps
    assert reads.startswith("scores  \u00b7  div  \u00b7  Enc") and reads.endswith("/div:0"), reads
    assert "\u2026" in reads and inspector.title.text() == f"scores  \u00b7  div  \u00b7  {KEY}"
    inspector.resize(900, 500)  # room for it all: nothing is cut
    qtbot.waitUntil(lambda: QLabel.text(inspector.title) == inspector.title.text())


def test_a_named_op_reads_its_name_over_its_op_and_on_one_line_both(qtbot):
    _model, view = graph_of(attention_step)
    canvas = shown(qtbot, GraphCanvas(), 900, 700)
    canvas.set_graph(view, layout_view(view))
    canvas.zoom_to_node("Attention/div:0")
    labels = canvas.visible_labels()
    assert labels[:2] == ["scores", "div \u00b7 2\u00d75\u00d75"]  # zoomed to the one box
    canvas.resize(260, 700)  # boxes too small for two lines: the name and the op share one
    canvas.fit()
    qtbot.waitUntil(lambda: "scores \u00b7 div" in canvas.visible_labels())
