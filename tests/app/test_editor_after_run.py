"""The Editor dock after a run has ended: it shows the mode the script left the model in, and an edit it
cannot apply any more puts the module's own value back in the field, with the reason under it."""

import pytest

TIMEOUT = 30_000  # ms

SCRIPT = """
import engine
import engine.nn as nn

model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2))
opt = engine.optim.SGD(model.parameters(), lr=0.1)
for step in range(3):
    model.train()
    loss = model(engine.randn(16, 4)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
model.eval()
with engine.no_grad():
    print(model(engine.randn(4, 4)).argmax(1))
"""


@pytest.fixture
def ended(qtbot, make_window, tmp_path):
    script = tmp_path / "ends_in_eval.py"
    script.write_text(SCRIPT)
    window = make_window()
    assert window.run_script(str(script), run=True)
    qtbot.waitUntil(lambda: window.session is not None and window.session.ended is not None, timeout=TIMEOUT)
    window.docks["editor"].raise_()
    qtbot.waitUntil(lambda: window.module_editor.current_path() is not None, timeout=TIMEOUT)
    return window


def test_the_mode_column_says_eval_after_the_script_called_model_eval(ended):
    editor = ended.module_editor
    assert editor.row("Sequential")[2] == "eval"
    assert editor.row("Sequential.2")[2] == "eval"  # the dropout too, not "train" from the last stop


def test_an_edit_after_the_run_ended_shows_the_modules_value_again_with_the_reason(qtbot, ended):
    editor = ended.module_editor
    editor.select("Sequential.2")
    field = editor.editor("p")
    field.setText("0.5")
    field.editingFinished.emit()
    assert field.text() == "0.2"  # what the dropout still has, not the 0.5 typed
    assert "run has ended" in editor.error_text("p")
    assert not ended.message_bar.isVisible()  # no bar over the graph that outlives the session
    lr = editor.editor("optimizer.lr")
    lr.setText("3")
    lr.editingFinished.emit()
    assert lr.text() == "0.1" and "run has ended" in editor.error_text("optimizer.lr")
