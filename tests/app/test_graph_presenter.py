"""GraphPresenter keeping the canvas in step with a growing model, with big views laid out off the GUI thread."""

import engine
from app.graph_model import GraphModel
from app.graph_presenter import SYNC_LAYOUT_NODES, GraphPresenter
from tests.app.graphs import record_events, recorded_model
from widgets.graph_canvas import GraphCanvas
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
    assert [row[0].strip() for row in names(tree)] == ["Tagger", "embed", "blocks", "head"]
