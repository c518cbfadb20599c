"""The module tree: each module call of the shown iteration under the call that made it, named as a person
wrote it."""

from PySide6.QtCore import Qt

import engine
from app.graph_model import MODULE, GraphModel
from engine import nn
from tests.app.graphs import record_events
from tests.shots import shown
from widgets.module_tree import CLASS_CHARS, CLASS_LEAST, ModuleTree


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 4)
        self.blocks = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.blocks(self.embed(x)))


def tree_of(events) -> ModuleTree:
    model = GraphModel()
    model.apply_batch(events)
    view = model.view()
    paths, classes, parents = list(view.groups), list(view.group_cls), [int(p) for p in view.group_parent]
    for i in range(len(view)):
        if int(view.kind[i]) == MODULE:
            paths.append(view.keys[i])
            classes.append(view.op[i])
            parents.append(int(view.group[i]))
    tree = ModuleTree()
    tree.set_modules(paths, classes, parents, model.collapsed)
    return tree


def names(tree: ModuleTree) -> list:
    def walk(item, depth):
        out = [("  " * depth + item.text(0), item.text(1))]
        for i in range(item.childCount()):
            out += walk(item.child(i), depth + 1)
        return out

    return [row for i in range(tree.topLevelItemCount()) for row in walk(tree.topLevelItem(i), 0)]


def twelve_calls_tree(qtbot) -> ModuleTree:
    """The tree of a Tagger called twelve times (a text generator calling its model once per character)."""
    net, x = Tagger(), engine.randn(2, 3)

    def twelve_calls():
        with engine.no_grad():
            for _ in range(12):
                net(x)

    tree = tree_of(record_events(twelve_calls))
    qtbot.addWidget(tree)
    return tree


def test_a_model_called_many_times_names_each_calls_children_whole(qtbot):
    # the children of "Tagger#11" read "bed#11" and "ad#11": the parent's "#11" cut off the front of each child's name
    tree = twelve_calls_tree(qtbot)
    rows = names(tree)
    # the calls fold into one row per module (tests/widgets/test_module_tree_fold.py), named as written
    assert rows == [("Tagger", "Tagger \u00d712"), ("  embed", "Linear \u00d712"), ("  blocks", "Sequential \u00d712"),
                    ("    0", "Linear \u00d712"), ("    1", "Tanh \u00d712"), ("  head", "Linear \u00d712")]
    assert tree.paths()[-1] == "Tagger.head"  # the path the graph knows its first call by


def test_modules_a_script_calls_without_their_model_sit_under_a_row_of_it(qtbot):
    # a BiLSTM-CRF scored by model.neg_log_likelihood(): the model itself is never called, and its modules were
    # top-level rows "Tagger.embed", "Tagger.head" without the model they belong to
    net, x = Tagger(), engine.randn(2, 3)

    def by_a_method():
        net.head(net.blocks(net.embed(x))).sum().backward()

    tree = tree_of(record_events(by_a_method))
    qtbot.addWidget(tree)
    assert names(tree) == [("Tagger", "Tagger"), ("  embed", "Linear"), ("  blocks", "Sequential"),
                           ("    0", "Linear"), ("    1", "Tanh"), ("  head", "Linear")]
    model_row = tree.topLevelItem(0)
    assert not model_row.flags() & Qt.ItemFlag.ItemIsUserCheckable  # no calls of its own to fold
    tree.itemClicked.emit(model_row, 0)  # nothing to show, and no error


def _demo_tree(qtbot) -> ModuleTree:
    tree = ModuleTree()
    qtbot.addWidget(tree)
    tree.set_modules(["", "Net", "Net.fc1", "Net.out"], ["", "Net", "Linear", "Linear"], [0, 0, 1, 1], set())
    tree.resize(300, 200)
    tree.show()
    qtbot.waitExposed(tree)
    return tree


def _row(tree: ModuleTree, name: str):
    root = tree.topLevelItem(0)
    return next(root.child(i) for i in range(root.childCount()) if root.child(i).text(0) == name)


def test_a_click_picks_a_module_and_a_double_click_asks_to_zoom_onto_it(qtbot):
    # a click zoomed the graph onto the module: picking is one signal, zooming another
    tree = _demo_tree(qtbot)
    picked, activated = [], []
    tree.moduleSelected.connect(picked.append)
    tree.moduleActivated.connect(activated.append)
    at = tree.visualItemRect(_row(tree, "out")).center()
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert picked == ["Net.out"] and activated == []
    qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert activated == ["Net.out"]
    tree.setFocus()
    qtbot.keyClick(tree, Qt.Key.Key_Up)  # the arrow keys pick too
    assert picked[-1] == "Net.fc1"
    tree.set_modules(["", "Net", "Net.fc1", "Net.out", "Net.head"], ["", "Net", "Linear", "Linear", "Linear"],
                     [0, 0, 1, 1, 1], set())
    assert tree.currentItem() is not None and tree.currentItem().text(0) == "fc1"  # kept through a rebuild
    tree.clear_pick()
    assert tree.currentItem() is None and picked[-1] == "Net.fc1"  # taken back without a signal


def test_a_narrow_tree_shares_its_width_between_names_and_classes_without_scrolling_sideways(qtbot):
    """At 1024x640 the Modules panel is some 250 pixels wide: long names and classes once scrolled it sideways,
    the classes out of sight. The columns share the viewport, both cut in the middle, whole in their tooltips."""
    tree = ModuleTree()
    paths = ["", "SpiralClassifierWithResidualBlocks", "SpiralClassifierWithResidualBlocks.input_projection_of_the_"
             "spiral_coordinates", "SpiralClassifierWithResidualBlocks.classification_head"]
    tree.set_modules(paths, ["", "SpiralClassifierWithResidualBlocks", "NonDynamicallyQuantizableLinear", "Linear"],
                     [0, 0, 1, 1], set())
    shown(qtbot, tree, 240, 300)
    header = tree.header()
    qtbot.waitUntil(lambda: header.sectionSize(0) + header.sectionSize(1) == tree.viewport().width())
    assert tree.horizontalScrollBar().maximum() == 0
    least = min(tree.sizeHintForColumn(1), CLASS_LEAST * tree.fontMetrics().averageCharWidth())
    assert header.sectionSize(1) >= least  # the classes keep a few characters
    row = tree.topLevelItem(0).child(0)
    assert row.toolTip(0).startswith(paths[2]) and row.toolTip(1) == "NonDynamicallyQuantizableLinear"
    tree.resize(900, 300)  # a wide dock: the names whole, the classes the rest
    qtbot.waitUntil(lambda: header.sectionSize(0) >= tree.sizeHintForColumn(0))
    assert header.sectionSize(0) + header.sectionSize(1) == tree.viewport().width()


def transformer_rows() -> tuple[list, list, list]:
    """The module calls of a two-layer nn.TransformerEncoder language model: (paths, classes, parents)."""
    paths, classes, parents = [""], [""], [-1]

    def add(path: str, cls: str, parent: str) -> str:
        paths.append(path)
        classes.append(cls)
        parents.append(paths.index(parent))
        return path

    model = add("LM", "LM", "")
    add("LM.emb", "Embedding", model)
    encoder = add("LM.enc", "TransformerEncoder", model)
    for i in range(2):
        layer = add(f"LM.enc.layers.{i}", "TransformerEncoderLayer", encoder)
        attention = add(f"{layer}.self_attn", "MultiheadAttention", layer)
        add(f"{attention}.out_proj", "NonDynamicallyQuantizableLinear", attention)
        for name, cls in (("dropout1", "Dropout"), ("norm1", "LayerNorm"), ("linear1", "Linear"),
                          ("linear2", "Linear"), ("norm2", "LayerNorm")):
            add(f"{layer}.{name}", cls, layer)
    add("LM.out", "Linear", model)
    return paths, classes, parents


def test_a_transformers_names_and_classes_both_read_at_the_panels_width(qtbot):
    # at 1280x720 the panel took 303 pixels and cut "Transfo…erLayer" and "Multihe…tention" beside a names' column
    # 175 pixels wide, most of it empty: out_proj, five levels in, held it so
    tree = ModuleTree()
    tree.set_modules(*transformer_rows(), set())
    shown(qtbot, tree, 200, 200)  # short: its rows scroll
    width = min(tree.sizeHint().width(), 1280 // 4)  # what the window gives it at 1280x720 (a quarter at most)
    tree.resize(width, 200)
    qtbot.waitUntil(lambda: tree.verticalScrollBar().isVisible() and tree.width() == width)
    cut = []
    for item in tree.findItems("", Qt.MatchFlag.MatchContains | Qt.MatchFlag.MatchRecursive):
        for column in (0, 1):
            index = tree.indexFromItem(item, column)
            if tree.sizeHintForIndex(index).width() > tree.visualRect(index).width() and (
                    column == 0 or len(item.text(1)) <= CLASS_CHARS):  # a longer class may be cut, whole on hover
                cut.append(item.text(column))
    assert cut == [], (width, tree.header().sectionSize(0), tree.header().sectionSize(1))
