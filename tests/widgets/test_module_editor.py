"""The module editor, offscreen: what the tree shows, inline refusal, and edits that apply and undo."""

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QGroupBox, QLabel, QPushButton, QScrollArea

import engine.nn as nn
import engine.optim as optim
from app.edit_history import EditHistory, describe_model
from engine.debug.edits import EditParam, Freeze, Reinit, Restore, SetOptimizer, SetSetting, SwapModule, prepare
from widgets.module_editor import ModuleEditor


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.act = nn.LeakyReLU(0.1)
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(self.drop(self.act(self.fc1(x))))


class Session:
    """Stands in for the window and the engine thread: shows the model, applies and undoes edits."""

    def __init__(self, editor: ModuleEditor) -> None:
        self.model = MLP()
        self.model.fc2.requires_grad_(False)
        self.opt = optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)
        self.editor = editor
        self.history = EditHistory()
        self.emitted = []
        editor.editRequested.connect(self.on_edit)
        self.refresh()

    def refresh(self) -> None:
        self.editor.set_model(*describe_model(self.model, self.opt))

    def apply(self, edits) -> None:
        for edit in edits:
            prepare(edit, self.model, self.opt)()
        self.refresh()

    def on_edit(self, edit, inverse, text) -> None:
        self.emitted.append((edit, inverse, text))
        self.history.push(edit, inverse, text)
        self.apply([edit])


def button(editor: ModuleEditor, text: str) -> QPushButton:
    """The button with this text among the selected module's editors."""
    return next(b for b in editor.details.findChildren(QPushButton) if b.text() == text)


@pytest.fixture
def session(qtbot):
    editor = ModuleEditor()
    qtbot.addWidget(editor)
    editor.resize(420, 640)
    editor.show()
    return Session(editor)


def test_tree_shows_hierarchy_classes_counts_mode_and_frozen(session):
    ed = session.editor
    assert ed.row("MLP") == ("MLP", "101,770", "train", Qt.CheckState.PartiallyChecked)
    assert ed.row("MLP.fc1") == ("Linear", "100,480", "train", Qt.CheckState.Unchecked)
    assert ed.row("MLP.fc2") == ("Linear", "1,290", "train", Qt.CheckState.Checked)
    assert ed.row("MLP.act")[:2] == ("LeakyReLU", "")
    fc1 = ed.tree.topLevelItem(0).child(0)
    assert fc1.text(0) == "fc1"
    session.model.drop.eval()
    session.refresh()
    assert ed.row("MLP.drop")[2] == "eval"


def test_out_of_range_setting_is_refused_inline_and_nothing_is_emitted(qtbot, session):
    ed = session.editor
    ed.select("MLP.drop")
    box = ed.editor("p")
    for text, reason in (("1.5", "allowed: a float in [0, 1]"), ("half", "not a number")):
        box.setFocus()
        box.selectAll()
        qtbot.keyClicks(box, text)
        with qtbot.assertNotEmitted(ed.editRequested):
            qtbot.keyClick(box, Qt.Key.Key_Return)
        assert reason in ed.error_text("p")
    assert session.model.drop.p == 0.1 and session.emitted == []


def test_a_valid_setting_is_emitted_with_its_inverse_and_undo_redo_restore_it(qtbot, session):
    ed = session.editor
    ed.select("MLP.drop")
    box = ed.editor("p")
    box.selectAll()
    qtbot.keyClicks(box, "0.5")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    edit, inverse, text = session.emitted[-1]
    assert edit == SetSetting("MLP.drop", "p", 0.5)
    assert inverse == (SetSetting("MLP.drop", "p", 0.1),)
    assert text == "MLP.drop.p = 0.5" and ed.error_text("p") == ""
    assert session.model.drop.p == 0.5
    session.apply(session.history.undo())
    assert session.model.drop.p == 0.1 and ed.editor("p").text() == "0.1"
    session.apply(session.history.redo())
    assert session.model.drop.p == 0.5 and ed.editor("p").text() == "0.5"


def test_optimizer_values_are_checked_and_undoable(qtbot, session):
    ed = session.editor
    lr = ed.editor("optimizer.lr")
    lr.selectAll()
    qtbot.keyClicks(lr, "-1")
    with qtbot.assertNotEmitted(ed.editRequested):
        qtbot.keyClick(lr, Qt.Key.Key_Return)
    assert "finite number >= 0" in ed.error_text("optimizer.lr")
    lr = ed.editor("optimizer.lr")
    lr.selectAll()
    qtbot.keyClicks(lr, "0.01")
    qtbot.keyClick(lr, Qt.Key.Key_Return)
    assert session.emitted[-1][:2] == (SetOptimizer("lr", 0.01, 0), (SetOptimizer("lr", 0.1, 0),))
    assert session.opt.param_groups[0]["lr"] == 0.01
    ed.editor("optimizer.nesterov").click()
    assert session.opt.param_groups[0]["nesterov"] is True
    session.apply(session.history.undo())
    session.apply(session.history.undo())
    assert session.opt.param_groups[0]["lr"] == 0.1 and session.opt.param_groups[0]["nesterov"] is False


def test_freeze_from_the_tree_and_undo_restores_a_mixed_state(qtbot, session):
    ed = session.editor
    root = ed.tree.topLevelItem(0)
    root.setCheckState(4, Qt.CheckState.Checked)  # what clicking the box does
    edit, inverse, _ = session.emitted[-1]
    assert edit == Freeze("MLP", True)
    assert set(inverse) == {Freeze("MLP.fc1.weight", False), Freeze("MLP.fc1.bias", False),
                            Freeze("MLP.fc2.weight", True), Freeze("MLP.fc2.bias", True)}
    assert not any(p.requires_grad for p in session.model.parameters())
    assert ed.row("MLP")[3] == Qt.CheckState.Checked
    session.apply(session.history.undo())
    assert session.model.fc1.weight.requires_grad and not session.model.fc2.weight.requires_grad
    assert ed.row("MLP")[3] == Qt.CheckState.PartiallyChecked


def test_swap_an_activation_and_swap_back_with_its_settings(qtbot, session):
    ed = session.editor
    ed.select("MLP.act")
    ed.editor("swap").setCurrentText("GELU")
    button(ed, "Swap").click()
    edit, inverse, _ = session.emitted[-1]
    assert edit == SwapModule("MLP.act", "GELU")
    assert inverse == (SwapModule("MLP.act", "LeakyReLU", (("negative_slope", 0.1), ("inplace", False))),)
    assert type(session.model.act).__name__ == "GELU" and ed.row("MLP.act")[0] == "GELU"
    session.apply(session.history.undo())
    assert type(session.model.act).__name__ == "LeakyReLU" and session.model.act.negative_slope == 0.1


def test_reinit_undoes_and_redoes_to_the_same_values_bit_for_bit(qtbot, session):
    ed = session.editor
    ed.select("MLP.fc1")
    before = session.model.fc1.weight.array.copy()
    button(ed, "Re-initialise parameters").click()
    edit, inverse, _ = session.emitted[-1]
    assert isinstance(edit, Reinit) and edit.module == "MLP.fc1" and edit.snapshot
    assert inverse == (Restore("MLP.fc1", edit.snapshot),)
    drawn = session.model.fc1.weight.array.copy()
    assert not (drawn == before).all()
    session.apply(session.history.undo())
    assert session.model.fc1.weight.array.tobytes() == before.tobytes()
    session.apply(session.history.redo())  # the values it drew, not a new draw
    assert session.model.fc1.weight.array.tobytes() == drawn.tobytes()


def test_a_module_with_nothing_to_edit_says_so(session):
    session.editor.select("MLP.fc2")
    groups = [g.title() for g in session.editor.details.findChildren(QGroupBox)]
    assert groups == ["Parameters", "Change values", "Optimizer: SGD"]  # a Linear has no runtime settings
    editor = session.editor
    editor.set_model([{"path": "Net", "cls": "Net", "training": True, "params": [], "settings": [], "swaps": [],
                       "kwargs": [], "reinit": False},
                      {"path": "Net.pool", "cls": "MaxPool2d", "training": True, "params": [], "settings": [],
                       "swaps": [], "kwargs": [], "reinit": False}])
    editor.select("Net.pool")
    texts = [w.text() for w in editor.details.findChildren(QLabel)]
    assert any("Nothing in MaxPool2d changes at runtime" in t for t in texts)


def test_a_container_freezes_everything_below_it_from_its_details(qtbot, session):
    ed = session.editor
    ed.select("MLP")  # its own details: the tree's Frozen column is out of sight in a narrow dock
    texts = [w.text() for w in ed.details.findChildren(QLabel)]
    assert not any("Nothing in MLP" in t for t in texts)  # its parameters below do change
    assert "Parameters: 101,770 inside" in [g.title() for g in ed.details.findChildren(QGroupBox)]
    check = next(c for c in ed.details.findChildren(QCheckBox) if c.text() == "Freeze all")
    assert check.checkState() == Qt.CheckState.PartiallyChecked  # fc2 is frozen, fc1 is not
    check.click()
    assert session.emitted[-1][0] == Freeze("MLP", True)
    assert ed.row("MLP")[3] == Qt.CheckState.Checked


def test_a_parameter_row_names_its_shape_and_a_freeze_box_ticked_while_frozen(qtbot, session):
    ed = session.editor
    ed.select("MLP.fc1")
    checks = [c for c in ed.details.findChildren(QCheckBox) if c.text() == "Freeze"]
    assert [c.isChecked() for c in checks] == [False, False]  # fc1 trains: no box reads "frozen"
    labels = [w.text() for w in ed.details.findChildren(QLabel)]
    assert any(t.startswith("weight") and "784" in t for t in labels)
    checks[0].click()
    assert session.emitted[-1][0] == Freeze("MLP.fc1.weight", True)


class Deep(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.transformer_blocks = nn.Sequential(nn.Sequential(nn.Dropout(0.1)))
        self.attention = nn.MultiheadAttention(64, 4)


def test_a_long_module_path_fits_a_narrow_dock_and_its_refusal_reads_whole(qtbot):
    editor = ModuleEditor()
    qtbot.addWidget(editor)
    editor.resize(200, 600)
    editor.show()
    editor.set_model(*describe_model(Deep()))
    editor.select("Deep.transformer_blocks.0.0")
    box = editor.editor("p")
    box.setText("1.5")
    box.editingFinished.emit()
    scroll = editor.findChild(QScrollArea)
    error = next(label for label in editor.details.findChildren(QLabel) if label.text() == editor.error_text("p"))
    qtbot.waitUntil(error.isVisible)
    # the details need no more width than the dock has: the refusal ("...allowed: a float in [0, 1]") wraps
    # inside it instead of running off its right edge behind a horizontal scroll bar
    assert editor.details.minimumSizeHint().width() <= scroll.viewport().width()
    qtbot.waitUntil(lambda: error.mapTo(scroll.viewport(), error.rect().topRight()).x() <= scroll.viewport().width())
    editor.select("Deep.attention")  # a long parameter name goes above its checkbox, not beside it
    assert editor.details.minimumSizeHint().width() <= scroll.viewport().width()


def test_a_scheduled_learning_rate_reads_whole_and_an_untouched_commit_edits_nothing(qtbot):
    editor = ModuleEditor()
    qtbot.addWidget(editor)
    editor.resize(220, 400)
    editor.show()
    sent = []
    editor.editRequested.connect(lambda edit, inverse, text: sent.append(edit))
    lr = 0.0003999999999999993  # what OneCycleLR leaves in param_groups
    editor.set_model([], {"cls": "AdamW", "groups": [{"lr": lr, "eps": 1e-08}]})
    field = editor.editor("optimizer.lr")
    assert field.text() == "0.0004"  # not cut to "...9999993" by the narrow field
    assert field.fontMetrics().horizontalAdvance(field.text()) < field.width()
    assert field.cursorPosition() == 0  # narrower still, it shows how the value starts, not "...9999993"
    assert repr(lr) in field.toolTip()
    field.editingFinished.emit()  # the person tabs through the field
    assert sent == []
    field.setText("0.001")
    field.editingFinished.emit()
    assert sent == [SetOptimizer("lr", 0.001, 0)]


def fill_values(qtbot, ed, param: str, elements: str, action: str, value: str) -> None:
    """Pick a parameter, type the elements and the value, and press Apply, as a person does."""
    combo = ed.editor("values.param")
    combo.setCurrentIndex(next(i for i in range(combo.count()) if combo.itemData(i)[0] == param))
    act = ed.editor("values.action")
    act.setCurrentIndex(act.findData(action))
    for key, text in (("values.elements", elements), ("values.value", value)):
        box = ed.editor(key)
        box.selectAll()
        box.del_()
        qtbot.keyClicks(box, text)
    ed.editor("values.apply").click()


def test_scale_a_slice_of_a_parameter_and_undo_redo_it_bit_for_bit(qtbot, session):
    ed, model = session.editor, session.model
    ed.select("MLP.fc1")
    before = model.fc1.weight.array.copy()
    fill_values(qtbot, ed, "weight", "0:2, 0:3", "scale", "3")
    edit, inverse, text = session.emitted[-1]
    assert isinstance(edit, EditParam) and edit.action == "scale" and edit.value == 3.0
    assert sorted(edit.indices) == [(r, c) for r in range(2) for c in range(3)]
    assert inverse == (Restore("MLP.fc1.weight", edit.snapshot),) and text == "scale MLP.fc1.weight[0:2, 0:3] by 3"
    after = model.fc1.weight.array.copy()
    np.testing.assert_array_equal(after[:2, :3], before[:2, :3] * np.float32(3))
    np.testing.assert_array_equal(after[2:], before[2:])
    session.apply(session.history.undo())
    assert model.fc1.weight.array.tobytes() == before.tobytes()  # not divided by 3: put back
    session.apply(session.history.redo())
    assert model.fc1.weight.array.tobytes() == after.tobytes()
    fill_values(qtbot, ed, "bias", "", "fill", "0")  # empty: every element
    assert session.emitted[-1][0].indices == () and not model.fc1.bias.array.any()


@pytest.mark.parametrize("elements, value, where, reason", [
    ("0, 999", "1", "values.elements", "index 999 is out of range for axis 1 of size 784"),
    ("0, 0, 0", "1", "values.elements", "3 indices for a 2-d parameter"),
    ("a:b", "1", "values.elements", "is not a slice"),
    ("5:5", "1", "values.elements", "selects no elements"),
    ("0, 0", "nan", "values.value", "finite number"),
    ("0, 0", "inf", "values.value", "finite number"),
    ("0, 0", "lots", "values.value", "'lots' is not a number"),
])
def test_bad_elements_or_values_are_refused_in_one_line_and_change_nothing(qtbot, session, elements, value,
                                                                           where, reason):
    ed, model = session.editor, session.model
    ed.select("MLP.fc1")
    before = {n: p.array.copy() for n, p in model.named_parameters()}
    with qtbot.assertNotEmitted(ed.editRequested):
        fill_values(qtbot, ed, "weight", elements, "fill", value)
    assert reason in ed.error_text(where) and "\n" not in ed.error_text(where)
    assert all(p.array.tobytes() == before[n].tobytes() for n, p in model.named_parameters())
    fill_values(qtbot, ed, "weight", "0, 0", "fill", "1")  # a good value clears the reason
    assert ed.error_text("values.elements") == ed.error_text("values.value") == ""
