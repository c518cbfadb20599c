"""GraphPresenter keeping the canvas in step with a growing model, with big views laid out off the GUI thread."""

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

import engine
from app.graph_model import GraphModel
from app.graph_presenter import SYNC_LAYOUT_NODES, GraphPresenter
from engine.events import AlertEvent
from tests.app.graphs import record_events, recorded_model
from tests.app.test_graph_model import masked_attention_with_a_log_of_a_negative
from widgets.graph_canvas import INFINITE, METRIC_BINS, NONFINITE, GraphCanvas
from widgets.module_tree import ModuleTree


class CountingModel(GraphModel):
    """A GraphModel that counts the views asked of it."""

    views = 0

    def view(self):
        self.views += 1
        return super().view()


def chain_events(length: int) -> list:
    """The events of `length` ops in a row (one node each, plus the input)."""
    def chain():
        x = engine.randn(3)
        for _ in range(length):
            x = x.relu()

    return record_events(chain)


def presenter_of(qtbot) -> GraphPresenter:
    """A presenter with its canvas and module tree."""
    canvas, tree = GraphCanvas(), ModuleTree()
    qtbot.addWidget(canvas)
    qtbot.addWidget(tree)
    return GraphPresenter(canvas, tree)


def test_a_growing_graph_is_not_rebuilt_on_the_gui_thread_while_its_layout_runs(qtbot):
    # each op of a diverging iteration (char_lstm's first, its text generation) rebuilt the whole view
    # on the GUI thread (~60 ms at 5,700 nodes), only for the result to wait until the layout was done
    presenter = presenter_of(qtbot)
    canvas = presenter.canvas
    model = CountingModel()
    events = chain_events(SYNC_LAYOUT_NODES + 300)
    model.apply_batch(events[:SYNC_LAYOUT_NODES + 100])
    presenter.set_model(model)
    assert presenter.busy
    asked = model.views
    for start in range(SYNC_LAYOUT_NODES + 100, len(events), 20):  # the pump's batches, one per frame
        model.apply_batch(events[start:start + 20])
        presenter.refresh()
        presenter.colours()
    assert model.views == asked
    qtbot.waitUntil(lambda: not presenter.busy and canvas.drawn_node_count == SYNC_LAYOUT_NODES + 301,
                    timeout=20000)


def test_collapsing_a_module_keeps_the_module_tree_in_call_order(qtbot):
    # a collapsed call was listed after its expanded siblings: embed, head, blocks
    from tests.widgets.test_module_tree import Tagger, names

    presenter = presenter_of(qtbot)
    tree = presenter.module_tree
    net = Tagger()
    model = recorded_model(lambda: net(engine.randn(2, 3)).sum().backward())
    presenter.set_model(model)
    expanded = [row[0].strip() for row in names(tree)]
    assert expanded == ["Tagger", "embed", "blocks", "0", "1", "head"]
    presenter.toggle("Tagger.blocks")
    assert [row[0].strip() for row in names(tree)] == expanded  # its children still listed, under it


def shown_presenter(qtbot, model) -> GraphPresenter:
    """A presenter showing `model` on a visible canvas, fitted."""
    presenter = presenter_of(qtbot)
    canvas = presenter.canvas
    canvas.resize(900, 700)
    canvas.show()
    qtbot.waitExposed(canvas)
    presenter.set_model(model)
    presenter.fit()
    return presenter


def colour_of(canvas, key) -> QColor:
    return canvas.render_image(1.0).pixelColor(canvas.view_point(key))


def test_a_mask_of_minus_infinity_is_amber_and_a_nan_red(qtbot):
    model = masked_attention_with_a_log_of_a_negative()
    presenter = shown_presenter(qtbot, model)
    canvas = presenter.canvas
    assert colour_of(canvas, "Broken/add:0") == QColor(INFINITE[0])
    assert colour_of(canvas, "Attend/add:0") != QColor(INFINITE[0])  # a mask's -inf, which its softmax zeroed
    assert colour_of(canvas, "Broken/log:0") == QColor(NONFINITE[0])
    i = canvas.view.keys.index("Broken/add:0")
    assert canvas.tooltip_for(i).endswith("\u00b1Inf in its output, no NaN")
    # a collapsed module shows its worst member: NaN over Inf
    presenter.toggle("Broken")
    assert colour_of(canvas, "Broken") == QColor(NONFINITE[0])
    assert "\u00b1Inf, no NaN, in 1" in canvas.tooltip_for(canvas.view.keys.index("Broken"))
    presenter.toggle("Attend")
    assert colour_of(canvas, "Attend") != QColor(INFINITE[0])
    assert "Inf" not in canvas.tooltip_for(canvas.view.keys.index("Attend"))


def test_an_engine_alert_keeps_its_node_red_and_a_metric_colours_the_rest(qtbot):
    model = masked_attention_with_a_log_of_a_negative()
    presenter = shown_presenter(qtbot, model)
    canvas = presenter.canvas
    model.apply(AlertEvent(0, "nonfinite_forward", "non-finite values first appear here", "add", "Attend/add:0",
                           "Attend", 0, 0, "t.py", 1, "q @ q.T + mask", float("nan")))
    model.flush()
    presenter.colours()
    assert colour_of(canvas, "Attend/add:0") == QColor(NONFINITE[0])
    family = colour_of(canvas, "Attend/softmax:0")
    presenter.set_colour_by("activation")
    # a metric colours the finite nodes as before; the flags stay over it
    bins = {QColor(*pg.colormap.get("viridis").map(t, mode="byte")[:3]).name()
            for t in np.linspace(0.1, 1.0, METRIC_BINS)}
    assert colour_of(canvas, "Attend/softmax:0") != family
    assert colour_of(canvas, "Attend/softmax:0").name() in bins
    assert colour_of(canvas, "Attend/add:0") == QColor(NONFINITE[0])
    assert colour_of(canvas, "Broken/add:0") == QColor(INFINITE[0])
    assert canvas.legend_text() == "Activation |max|"
