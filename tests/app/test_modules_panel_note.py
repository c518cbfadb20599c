"""The Modules panel of an iteration whose ops ran outside any module (the code after a training loop) says so,
where it was blank and read as if the model had been lost."""

import textwrap

from app.graph_presenter import NO_MODULE_CALLS
from tests.app.test_export_and_record_summary import CLEAN_SCRIPT
from tests.app.test_window import TIMEOUT

# a clean training loop, then code after it that calls no module
SCRIPT = textwrap.dedent(CLEAN_SCRIPT) + "w = fc.weight.detach().clamp(-1, 1)\nprint(float(w.abs().max()))\n"


def test_an_iteration_without_module_calls_says_so_in_the_modules_panel(qtbot, make_window, tmp_path):
    window = make_window()
    script = tmp_path / "after.py"
    script.write_text(SCRIPT)
    assert window.run_script(str(script), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.module_tree.empty_note() == NO_MODULE_CALLS, timeout=TIMEOUT)
    assert window.module_tree.topLevelItemCount() == 0
