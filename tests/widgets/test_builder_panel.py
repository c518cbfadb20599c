"""The builder panel and the prediction view, offscreen: what a person sees and what the panel emits."""

import json

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QByteArray, QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QDropEvent

from app.builder import PanelServices, build, from_json, starter
from engine.data import GLYPH_NAMES
from tests.shots import shoot, shown
from widgets.decision_boundary import PredictionView, boundary_image, class_colors
from widgets.layer_tree import LAYER_MIME, MOVE_MIME


def rows(panel):
    """(path, layer text, output text, red?) of every row, top to bottom."""
    out = []

    def walk(item, path):
        red = item.foreground(1).color() == QColor("#c92a2a")
        out.append((path, item.text(0), item.text(1), red))
        for i in range(item.childCount()):
            walk(item.child(i), [*path, i])

    for i in range(panel.tree.topLevelItemCount()):
        walk(panel.tree.topLevelItem(i), [i])
    return out


def drop(tree, mime_type, payload, pos):
    mime = QMimeData()
    mime.setData(mime_type, QByteArray(payload.encode()))
    # what a drag from a QTreeWidget offers: copy or move
    actions = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    event = QDropEvent(QPointF(pos), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    tree.dropEvent(event)
    return event


def test_the_palette_lists_every_layer_and_filters(panel):
    names = {panel.palette.topLevelItem(g).child(i).text(0)
             for g in range(panel.palette.topLevelItemCount())
             for i in range(panel.palette.topLevelItem(g).childCount())}
    assert {"Linear", "Conv2d", "LSTM", "TransformerEncoder", "Residual", "Repeat"} <= names
    panel.filter.setText("pool")
    shown = [panel.palette.topLevelItem(g).child(i).text(0) for g in range(panel.palette.topLevelItemCount())
             for i in range(panel.palette.topLevelItem(g).childCount())
             if not panel.palette.topLevelItem(g).child(i).isHidden()]
    assert shown and all("pool" in s.lower() for s in shown)


def test_the_starting_build_shows_a_shape_per_layer_and_builds(panel, qtbot):
    assert [r[1:] for r in rows(panel)] == [
        ("Linear(2, 32)", "(N, 32)", False), ("ReLU", "(N, 32)", False), ("Linear(32, 32)", "(N, 32)", False),
        ("ReLU", "(N, 32)", False), ("Linear(32, 2)", "(N, 2)", False)]
    assert panel.status_text().startswith("\u2713 Ready: (N, 2) \u2192 (N, 2), 1,218 parameters")
    assert panel.build_button.isEnabled()
    shoot(panel, "builder_panel.png")
    with qtbot.waitSignal(panel.buildRequested) as signal:
        panel.build_button.click()
    spec = from_json(signal.args[0])
    assert [layer.type for layer in spec.layers] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert build(spec).model is not None


def test_a_mismatch_shows_in_red_at_the_layer_and_build_is_refused(panel, qtbot):
    panel.tree.setCurrentItem(panel.item_at([2]))
    panel.layer_args.editor("in_features").setValue(16)  # what typing 16 into the spin box does
    qtbot.waitUntil(lambda: not panel.report()["ok"])
    shown = rows(panel)
    assert shown[2] == ([2], "Linear(16, 32)", "\u2717 gets (N, 32), needs (N, 16)", True)
    assert not any(r[3] for i, r in enumerate(shown) if i != 2)
    assert panel.status_text() == "\u2717 layer 2 (Linear) expects (N, 16) (in_features=16) but gets (N, 32)"
    assert panel.layer_args.errors()["in_features"].startswith("layer 2 (Linear)")
    assert not panel.build_button.isEnabled()
    emitted = []
    panel.buildRequested.connect(emitted.append)
    assert panel.request_build() is False and emitted == []
    panel.tree.setCurrentItem(panel.item_at([4]))  # so the red row is not hidden by the selection
    shoot(panel, "builder_panel_mismatch.png")


def test_typed_arguments_are_parsed_and_bad_text_is_marked(panel):
    path = panel.add_layer("Conv1d", [5])
    assert path == [5] and panel.tree.currentItem().text(0).startswith("Conv1d(")
    panel.layer_args.set_text("kernel_size", "3, x")
    assert "kernel_size must be an integer or a tuple of integers" in panel.layer_args.errors()["kernel_size"]
    panel.layer_args.set_text("kernel_size", "5")
    assert "kernel_size" not in panel.layer_args.errors()
    assert panel.document()["layers"][5]["args"]["kernel_size"] == 5


def test_new_layers_are_sized_to_what_arrives(panel):
    panel.tree.setCurrentItem(panel.item_at([1]))
    item = panel.palette.findItems("LayerNorm", Qt.MatchFlag.MatchRecursive)[0]
    panel.palette.itemDoubleClicked.emit(item, 0)
    panel.check_now()
    assert rows(panel)[2][1:3] == ("LayerNorm(32)", "(N, 32)")
    assert panel.report()["ok"]


def test_layers_drop_from_the_palette_into_blocks_and_move_by_dragging(panel):
    panel.add_layer("Residual", [2])
    tree = panel.tree
    block = tree.visualItemRect(panel.item_at([2]))
    drop(tree, LAYER_MIME, "Tanh", block.center())  # onto the middle of a block: into it
    panel.check_now()
    assert [r[:2] for r in rows(panel)][2:4] == [([2], "Residual"), ([2, 0], "Tanh")]
    first = tree.visualItemRect(panel.item_at([0]))
    event = drop(tree, MOVE_MIME, json.dumps([3]), QPoint(first.center().x(), first.top() + 1))
    action = event.dropAction()
    assert action == Qt.DropAction.CopyAction  # Qt must not delete the moved row again
    panel.check_now()
    assert [r[1] for r in rows(panel)][:2] == ["Linear(32, 32)", "Linear(2, 32)"]
    assert "layer 0 (Linear) expects (N, 32)" in panel.status_text()  # the move broke the shapes
    assert panel.move_layer([0], [3], 0) == [2, 0]  # a block may hold it; it lands inside
    assert panel.move_layer([2], [2, 0], 0) == [2]  # never into itself


def test_save_load_round_trip_and_bad_files_say_why(panel, tmp_path):
    panel.add_layer("Repeat", [4])
    panel.add_layer("Tanh", [4, 0])
    path = tmp_path / "build.json"
    assert panel.save_to(str(path))
    saved = json.loads(path.read_text())
    assert saved["layers"][4] == {"type": "Repeat", "args": {"times": 2}, "children": [{"type": "Tanh"}]}
    panel.set_document(PanelServices().starter("sine"))
    assert panel.load_from(str(path))
    assert panel.document()["layers"] == saved["layers"]
    before = panel.document()
    path.write_text('{"layers": [}')
    assert not panel.load_from(str(path))
    assert panel.status_text() == "\u2717 build.json: not valid JSON (line 1, column 13: Expecting value)"
    assert panel.document() == before


def test_export_writes_a_script(panel, tmp_path):
    path = tmp_path / "model.py"
    assert panel.export_to(str(path))
    text = path.read_text()
    assert "def build_model" in text and "nn.Linear(2, 32)" in text
    compile(text, str(path), "exec")


def test_data_and_training_choices_change_the_document(panel, qtbot, tmp_path):
    panel.data.dataset.setCurrentIndex(panel.data.dataset.findData("sine"))
    qtbot.waitUntil(lambda: "layer 0 (Linear) expects (N, 2)" in panel.status_text())  # sine has one input
    panel.data.starter_button.click()
    panel.check_now()
    assert panel.report()["ok"] and panel.data.summary.text() == "200 samples of shape (1,), regression"
    loss = panel.training.combos["loss"]
    loss.setCurrentIndex(loss.findData("CrossEntropyLoss"))
    qtbot.waitUntil(lambda: "CrossEntropyLoss needs class labels, but sine has values" in panel.status_text())
    loss.setCurrentIndex(loss.findData("MSELoss"))
    panel.data.fields["batch_size"].setValue(8)
    panel.training.combos["scheduler"].setCurrentIndex(panel.training.combos["scheduler"].findData("StepLR"))
    doc = panel.document()
    assert doc["data"]["batch_size"] == 8 and doc["training"]["scheduler"] == "StepLR"
    assert doc["training"]["loss"] == "MSELoss"
    bad = tmp_path / "mine.csv"
    bad.write_text("a,b,c\n1,2\n")
    panel.set_data_file(str(bad))
    panel.check_now()
    assert panel.status_text() == "\u2717 mine.csv: line 2 has 2 fields, expected 3"
    assert panel.data.fields["path"].toolTip() == "mine.csv: line 2 has 2 fields, expected 3"
    panel.tabs.setCurrentIndex(1)
    shoot(panel, "builder_panel_data.png")
    panel.tabs.setCurrentIndex(2)
    shoot(panel, "builder_panel_training.png")


# ---- the prediction view ------------------------------------------------------------------------------
@pytest.fixture
def view(qtbot):
    return shown(qtbot, PredictionView(), 480, 440)


def test_the_boundary_colours_each_region_by_its_class(view):
    n = 40
    probs = np.zeros((n, n, 2), np.float32)
    probs[:, : n // 2, 0] = 1  # left half: class 0
    probs[:, n // 2:, 1] = 1
    view.show_boundary(probs, (-1, 1, -1, 1), np.array([[-0.5, 0.0], [0.5, 0.0]]), np.array([0, 1]))
    image = view.plot.grab().toImage()
    plot = view.plot.getPlotItem().vb
    left = view.plot.mapFromScene(plot.mapViewToScene(QPointF(-0.8, 0.8)))
    right = view.plot.mapFromScene(plot.mapViewToScene(QPointF(0.8, -0.8)))
    expected = boundary_image(np.eye(2, dtype=np.float32)[None])[0]
    for pos, rgb in ((left, expected[0]), (right, expected[1])):
        c = image.pixelColor(pos)
        assert abs(c.red() - rgb[0]) < 8 and abs(c.green() - rgb[1]) < 8 and abs(c.blue() - rgb[2]) < 8
    assert view.caption.text() == "Decision boundary: 2 classes, 2 points"


def test_a_trained_model_previews_on_every_kind_of_data(view):
    for name, epochs in (("spirals", 25), ("sine", 30), ("glyphs", 1)):
        s = starter(name)
        s.training.epochs = epochs
        if name == "glyphs":
            s.data.n = 400
        run = build(s)
        run.fit(report=None)
        preview = run.preview()
        view.show_preview(preview, f"{name} after {epochs} epochs")
        assert view.mode == {"spirals": "boundary", "sine": "curve", "glyphs": "images"}[name]
        shoot(view, f"prediction_{name}.png")
    labels = [i for i in view.plot.getPlotItem().items if isinstance(i, pg.TextItem) and i.isVisible()]
    assert len(labels) == 16 and all(label.toPlainText() in GLYPH_NAMES for label in labels)
    view.show_preview(None)
    assert view.caption.text().startswith("No preview for this data")


def test_class_colours_are_distinct():
    colors = class_colors(10)
    assert len({tuple(c) for c in colors}) == 10
