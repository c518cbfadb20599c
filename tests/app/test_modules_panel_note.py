"""The Modules panel of an iteration whose ops ran outside any module (the code after a training loop) says so,
where it was blank and read as if the model had been lost."""

from app.graph_presenter import NO_MODULE_CALLS
from tests.app.test_window import TIMEOUT, make_window

SCRIPT = """
import engine
import engine.nn as nn

model = nn.Linear(3, 1)
opt = engine.optim.SGD(model.parameters(), lr=0.1)
x = engine.randn(8, 3)
for _ in range(3):
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()
weights = model.weight.detach().clamp(-1, 1)
print(float(weights.abs().max()))
"""


def test_an_iteration_without_module_calls_says_so_in_the_modules_panel(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    script = tmp_path / "after.py"
    script.write_text(SCRIPT)
    assert window.run_script(str(script), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.module_tree.empty_note() == NO_MODULE_CALLS, timeout=TIMEOUT)
    assert window.module_tree.topLevelItemCount() == 0
