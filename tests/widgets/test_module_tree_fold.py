"""The Modules panel folds the calls of a module called many times (an unrolled cell, an ODE's vector field, a
sampling loop) into one row, and lists a Sequential's children in the order it defines them."""

from PySide6.QtCore import Qt

from tests.widgets.test_module_tree import names, twelve_calls_tree
from widgets.module_tree import CALLS, ModuleTree

TIMES = "\u00d7"


def test_the_calls_of_a_module_make_one_row_that_counts_them(qtbot):
    # 12 calls made 72 rows: "Tagger", "Tagger#1", ... each with its children again
    tree = twelve_calls_tree(qtbot)
    assert names(tree) == [("Tagger", f"Tagger {TIMES}12"), ("  embed", f"Linear {TIMES}12"),
                           ("  blocks", f"Sequential {TIMES}12"), ("    0", f"Linear {TIMES}12"),
                           ("    1", f"Tanh {TIMES}12"), ("  head", f"Linear {TIMES}12")]
    head = tree.topLevelItem(0).child(2)
    assert head.data(0, CALLS) == ["Tagger.head"] + [f"Tagger.head#{n}" for n in range(1, 12)]
    assert tree.paths()[-1] == "Tagger.head"  # a row stands for its first call where the graph wants one call
    # the count is of the iteration the graph shows, not of the run: the hover says so
    assert head.toolTip(1) == "Linear, called 12 times in the iteration shown"
    assert head.toolTip(0).startswith("Tagger.head: called 12 times in the iteration shown (Tagger.head \u2026")
    assert "iteration shown" in tree.headerItem().toolTip(1)


def test_a_module_called_once_reads_as_before(qtbot):
    tree = ModuleTree()
    qtbot.addWidget(tree)
    tree.set_modules(["", "Net", "Net.fc", "Net.act", "Net.act#1"], ["", "Net", "Linear", "ReLU", "ReLU"],
                     [-1, 0, 1, 1, 1], set())
    assert names(tree) == [("Net", "Net"), ("  fc", "Linear"), ("  act", f"ReLU {TIMES}2")]
    assert tree.topLevelItem(0).child(0).toolTip(0).startswith("Net.fc: its fold box \u229f (minus): drawn open in "
                                                              "the graph")
    tree.set_modules(["", "Net", "Net.fc"], ["", "Net", "Linear"], [-1, 0, 1], {"Net.fc"})
    fc = tree.topLevelItem(0).child(0)  # the box says what it does, not "enabled": a tester read it so
    assert fc.checkState(0) == Qt.CheckState.Unchecked
    assert fc.toolTip(0).endswith("now folded into one box in the graph")


def test_a_sequentials_children_are_listed_in_its_order_not_last_when_they_show_nothing(qtbot):
    # a Dropout in eval runs no op, so it was listed after its siblings: "4 Linear" before "3 Dropout"
    tree = ModuleTree()
    qtbot.addWidget(tree)
    calls = ["Net", "Net.net", "Net.head", "Net.blocks.2", "Net.blocks.10", "Net.net.0", "Net.net.1", "Net.net.2",
             "Net.net.4", "Net.net.3"]
    tree.set_modules(["", *calls], ["", "Net", "Sequential", "Linear", "Block", "Block", "Linear", "ReLU", "Linear",
                                    "Linear", "Dropout"], [-1, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2], set())
    assert [row[0] for row in names(tree)] == ["Net", "  net", "    0", "    1", "    2", "    3", "    4", "  head",
                                               "  blocks.2", "  blocks.10"]
    tree.set_modules(["", "Net", "Net.blocks.10", "Net.head", "Net.blocks.2"], ["", "Net", "B", "L", "B"],
                     [-1, 0, 1, 1, 1], set())
    assert [row[0] for row in names(tree)] == ["Net", "  blocks.2", "  head", "  blocks.10"]


def test_a_folded_rows_box_asks_for_every_call_and_shows_a_mix_as_partly_checked(qtbot):
    tree = ModuleTree()
    qtbot.addWidget(tree)
    paths = ["", "Net", "Net.cell", "Net.cell#1", "Net.cell#2", "Net.head"]
    classes = ["", "Net", "Cell", "Cell", "Cell", "Linear"]
    parents = [-1, 0, 1, 1, 1, 1]
    tree.set_modules(paths, classes, parents, {"Net.cell#1"})
    cell, head = tree.topLevelItem(0).child(0), tree.topLevelItem(0).child(1)
    assert cell.checkState(0) == Qt.CheckState.PartiallyChecked
    with qtbot.waitSignal(tree.expandCallsRequested) as many:
        cell.setCheckState(0, Qt.CheckState.Unchecked)
    assert many.args == [["Net.cell", "Net.cell#1", "Net.cell#2"], False]
    with qtbot.waitSignal(tree.expandRequested) as one:
        head.setCheckState(0, Qt.CheckState.Unchecked)
    assert one.args == ["Net.head", False]
    tree.set_modules(paths, classes, parents, {"Net.cell", "Net.cell#1", "Net.cell#2"})
    assert tree.topLevelItem(0).child(0).checkState(0) == Qt.CheckState.Unchecked


def test_clicking_a_folded_row_again_shows_its_next_call(qtbot):
    tree = ModuleTree()
    qtbot.addWidget(tree)
    tree.set_modules(["", "Net", "Net.cell", "Net.cell#1", "Net.head"], ["", "Net", "Cell", "Cell", "Linear"],
                     [-1, 0, 1, 1, 1], set())
    shown = []
    tree.moduleSelected.connect(shown.append)
    cell, head = tree.topLevelItem(0).child(0), tree.topLevelItem(0).child(1)
    for item in (cell, cell, cell, head, cell):
        tree.itemClicked.emit(item, 0)
    assert shown == ["Net.cell", "Net.cell#1", "Net.cell", "Net.head", "Net.cell"]


def test_an_empty_tree_shows_its_note_until_rows_come(qtbot):
    tree = ModuleTree()
    qtbot.addWidget(tree)
    tree.set_modules([""], [""], [-1], set())
    tree.set_empty_note("No module was called in this iteration")
    assert tree.empty_note() == "No module was called in this iteration"
    tree.set_modules(["", "Net", "Net.fc"], ["", "Net", "Linear"], [-1, 0, 1], set())
    assert tree.empty_note() == ""  # rows listed: no note over them


def test_a_long_class_name_does_not_widen_the_panel_and_reads_whole_in_its_tooltip(qtbot):
    # nn.MultiheadAttention's out_proj, a NonDynamicallyQuantizableLinear, widened the Modules dock by half
    short, long = ModuleTree(), ModuleTree()
    for tree, cls in ((short, "Linear"), (long, "NonDynamicallyQuantizableLinear")):
        qtbot.addWidget(tree)
        tree.set_modules(["", "Net", "Net.attn", "Net.attn.out_proj"], ["", "Net", "MultiheadAttention", cls],
                         [-1, 0, 1, 2], set())
    chars = long.fontMetrics().averageCharWidth()
    assert long.sizeHint().width() - short.sizeHint().width() <= 12 * chars  # not the 25 more the name has
    proj = long.topLevelItem(0).child(0).child(0)
    assert proj.toolTip(1) == "NonDynamicallyQuantizableLinear"
