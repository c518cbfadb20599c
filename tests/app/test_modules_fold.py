"""The Modules panel over a recorded model: a module called many times is one row whose box collapses or
expands every call in the graph, and a module with nothing to show keeps its place among its siblings."""

from PySide6.QtCore import Qt

import engine
from app.graph_model import MODULE
from engine import nn
from tests.app.graphs import recorded_model
from tests.app.test_graph_presenter import presenter_of
from tests.widgets.test_module_tree import names
from widgets.module_tree import CALLS

CALLS_MADE = 5


class Unrolled(nn.Module):
    """An RNN cell unrolled by hand: the graph has a group per call of "Unrolled.cell"."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        h = x
        for _ in range(CALLS_MADE):
            h = self.cell(h + x)
        return self.head(h)


class Regularised(nn.Module):
    """fc1, drop, fc2 in the order they are called; the Dropout runs nothing in eval."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(4, 2)
        self.seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Dropout(0.1), nn.Linear(2, 2))

    def forward(self, x):
        return self.seq(self.fc2(self.drop(self.fc1(x))))


def unrolled_presenter(qtbot):
    presenter = presenter_of(qtbot)
    net = Unrolled()
    presenter.set_model(recorded_model(lambda: net(engine.randn(3, 4)).sum().backward()))
    return presenter


def module_nodes(presenter) -> list:
    view = presenter.canvas.view
    return [view.keys[i] for i in range(len(view)) if int(view.kind[i]) == MODULE]


def test_an_unrolled_cell_is_one_row_counting_its_calls(qtbot):
    presenter = unrolled_presenter(qtbot)
    assert names(presenter.module_tree) == [
        ("Unrolled", "Unrolled"), ("  cell", f"Sequential \u00d7{CALLS_MADE}"), ("    0", f"Linear \u00d7{CALLS_MADE}"),
        ("    1", f"Tanh \u00d7{CALLS_MADE}"), ("  head", "Linear")]


def test_unchecking_a_folded_row_collapses_every_call_and_checking_expands_them(qtbot):
    presenter = unrolled_presenter(qtbot)
    model, tree = presenter.model, presenter.module_tree
    calls = ["Unrolled.cell"] + [f"Unrolled.cell#{n}" for n in range(1, CALLS_MADE)]
    tree.topLevelItem(0).child(0).setCheckState(0, Qt.CheckState.Unchecked)
    assert set(calls) <= model.collapsed
    assert module_nodes(presenter) == calls
    # the rows are made anew once Qt has finished setting the box (rebuilt inside it, the row was freed under it);
    # its children stay listed under it, folded away in the graph
    folded = tree.topLevelItem(0).child(0)
    qtbot.waitUntil(lambda: tree.topLevelItem(0).child(0) is not folded)
    cell = tree.topLevelItem(0).child(0)
    assert (cell.text(1), cell.childCount(), cell.checkState(0)) == (
        f"Sequential \u00d7{CALLS_MADE}", 2, Qt.CheckState.Unchecked)
    cell.setCheckState(0, Qt.CheckState.Checked)
    assert not model.collapsed and module_nodes(presenter) == []
    qtbot.waitUntil(lambda: tree.topLevelItem(0).child(0).checkState(0) == Qt.CheckState.Checked)


def test_a_call_collapsed_on_the_canvas_leaves_its_row_partly_checked_and_checking_expands_it(qtbot):
    presenter = unrolled_presenter(qtbot)
    presenter.toggle("Unrolled.cell#2")  # a double-click on one call's box in the graph
    cell = presenter.module_tree.topLevelItem(0).child(0)
    assert cell.checkState(0) == Qt.CheckState.PartiallyChecked
    # its children's rows count the call folded away too: the module was called that often
    assert [c.text(1) for c in (cell.child(0), cell.child(1))] == [f"Linear \u00d7{CALLS_MADE}",
                                                                  f"Tanh \u00d7{CALLS_MADE}"]
    cell.setCheckState(0, Qt.CheckState.Checked)
    assert not presenter.model.collapsed and module_nodes(presenter) == []


def test_clicking_a_folded_row_shows_its_first_call_then_the_next(qtbot):
    presenter = unrolled_presenter(qtbot)
    tree, canvas = presenter.module_tree, presenter.canvas
    cell = tree.topLevelItem(0).child(0)
    assert cell.data(0, CALLS)[:2] == ["Unrolled.cell", "Unrolled.cell#1"]
    centres = []
    for _ in range(2):
        tree.itemClicked.emit(cell, 0)
        (x0, x1), (y0, y1) = canvas.box.viewRange()
        centres.append(((x0 + x1) / 2, (y0 + y1) / 2))
    view, layout = canvas.view, canvas.layout_data
    for call, (cx, cy) in zip(("Unrolled.cell", "Unrolled.cell#1"), centres, strict=True):
        x, y, w, h = layout.group_rect[view.groups.index(call)]
        assert abs(cx - (x + w / 2)) < 1e-6 * max(1.0, w) + 1e-3 and abs(cy - (y + h / 2)) < 1e-3 + 1e-6 * max(1.0, h)


def test_a_dropout_in_eval_keeps_its_place_among_its_siblings(qtbot):
    # it runs no op, so it was listed last: fc1, fc2, seq, drop and, in the Sequential, "3 Linear" before "2"
    presenter = presenter_of(qtbot)
    net = Regularised()
    net.eval()
    presenter.set_model(recorded_model(lambda: net(engine.randn(3, 4))))
    assert [row[0].strip() for row in names(presenter.module_tree)] == [
        "Regularised", "fc1", "drop", "fc2", "seq", "0", "1", "2", "3"]
