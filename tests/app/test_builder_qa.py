"""The model builder as a person uses it, offscreen: typing, keyboard access, and what its rows say."""

from PySide6.QtCore import Qt

from app.builder import PanelServices


def layer_texts(panel) -> list[str]:
    return [panel.tree.topLevelItem(i).text(0) for i in range(panel.tree.topLevelItemCount())]


def use_cnn(panel) -> None:
    panel.set_document(PanelServices().starter("glyphs"))


def test_text_that_is_not_a_value_blocks_build_until_it_is(qtbot, panel):
    # "abc" in a Dropout's p left the status at "Ready" and Build on (it built with the old p), and the
    # next edit anywhere took the field's red mark away while it still said "abc"
    path = panel.add_layer("Dropout", [1])
    panel.tree.setCurrentItem(panel.item_at(path))
    qtbot.waitUntil(lambda: panel.build_button.isEnabled())
    panel.layer_args.set_text("p", "abc")
    assert panel.status_text().startswith("\u2717 layer 1 (Dropout): p must be")
    assert not panel.build_button.isEnabled() and not panel.request_build()
    panel.training.epochs.setValue(3)  # another edit, and the check that follows it a moment later
    panel.check_now()
    assert "p" in panel.layer_args.errors() and panel.layer_args.editor("p").text() == "abc"
    assert not panel.build_button.isEnabled()
    panel.layer_args.set_text("p", "0.25")
    qtbot.waitUntil(lambda: panel.build_button.isEnabled())
    assert panel.status_text().startswith("\u2713 Ready") and not panel.layer_args.errors()


def test_a_training_argument_that_is_not_a_number_blocks_build(qtbot, panel):
    panel.training.forms["optimizer"].set_text("lr", "fast")
    assert panel.status_text().startswith("\u2717 Adam: lr must be")
    assert not panel.build_button.isEnabled()


def test_a_huge_integer_is_refused_in_one_line_not_a_traceback(qtbot, panel):
    # 99999999999999999999 raised OverflowError inside Qt's signal and left the panel half-updated
    use_cnn(panel)
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    panel.layer_args.set_text("kernel_size", "99999999999999999999")
    assert panel.status_text() == "\u2717 layer 0 (Conv2d): kernel_size is too large: at most 2,147,483,647"
    assert panel.document()["layers"][0]["args"]["kernel_size"] == 3
    assert not panel.build_button.isEnabled()


def test_rows_read_as_the_constructor_call(panel):
    # the arguments came back from Qt sorted by name: "Conv2d(1, 3, 8, 1)" for in=1, out=8, kernel=3,
    # padding=1, which reads as out_channels=3, kernel_size=8, stride=1
    use_cnn(panel)
    assert layer_texts(panel)[:3] == ["Conv2d(1, 8, 3, padding=1)", "ReLU", "MaxPool2d(2)"]
    panel.set_document(PanelServices().starter("text"))
    assert layer_texts(panel)[1] == "LSTM(32, 64, batch_first=True)"


def test_layers_are_added_and_moved_from_the_keyboard(qtbot, panel):
    panel.filter.setFocus()
    qtbot.keyClicks(panel.filter, "tanh")
    qtbot.keyClick(panel.filter, Qt.Key.Key_Return)  # to the first match in the palette
    assert panel.palette.hasFocus() and panel.palette.currentItem().text(0) == "Tanh"
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    qtbot.keyClick(panel.palette, Qt.Key.Key_Return)  # as a double-click: added after the selected row
    assert layer_texts(panel)[:2] == ["Linear(2, 32)", "Tanh"]
    panel.tree.setFocus()
    qtbot.keyClick(panel.tree, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    assert layer_texts(panel)[:2] == ["Tanh", "Linear(2, 32)"]
    qtbot.keyClick(panel.tree, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert layer_texts(panel)[:2] == ["Linear(2, 32)", "Tanh"]
