"""A named op's box too narrow for its name and its op ("loss \u00b7 cros\u2026" at a scale factor of 1.5) reads
its name alone; the op is in its tooltip."""

import engine
from app.layout import layout_view
from engine import nn
from tests.app.graphs import recorded_model
from tests.shots import shown
from widgets.graph_canvas import GraphCanvas


def test_a_named_op_too_narrow_for_its_op_reads_its_name_whole(qtbot):
    net = nn.Linear(4, 3)
    model = recorded_model(lambda: nn.functional.cross_entropy(net(engine.randn(2, 4)),
                                                               engine.tensor([0, 1])).backward())
    view = model.view()
    view.caption[view.keys.index("cross_entropy:0")] = "loss"  # what `loss = F.cross_entropy(...)` names it
    canvas = shown(qtbot, GraphCanvas(), 900, 600)
    canvas.set_graph(view, layout_view(view))
    canvas.zoom_to_node("cross_entropy:0")
    qtbot.waitUntil(lambda: canvas.settled)
    assert "loss" in canvas.visible_labels()  # two lines: the name over its op and shape
    seen = set()
    for width in (260, 220, 180, 150):  # narrower canvases: one line, then narrower boxes
        canvas.resize(width, 140)
        canvas.fit()
        qtbot.waitUntil(lambda: canvas.settled)
        drawn = [t for t in canvas.drawn_labels() if t.startswith("loss")]
        assert all(t in ("loss", "loss \u00b7 cross_entropy") for t in drawn), drawn
        seen.update(drawn)
    assert "loss" in seen, seen
