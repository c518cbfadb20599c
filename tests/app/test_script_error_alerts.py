"""A script that fails with an error the debugger explains, run in the window: the Alerts panel names the line that
changed a saved tensor in place (or the op whose graph a carried-over tensor reused), beside the script's error."""

from tests.app.test_window import TIMEOUT

INPLACE = """\
import engine
lin = engine.nn.Linear(4, 4)
h = engine.sigmoid(lin(engine.ones(3, 4)))
h += 1
h.sum().backward()
"""


def test_an_inplace_error_in_a_script_is_an_alert_at_the_write(qtbot, make_window, tmp_path):
    path = tmp_path / "inplace.py"
    path.write_text(INPLACE)
    window = make_window()
    assert window.run_script(str(path), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    panel = window.alerts_panel
    qtbot.waitUntil(lambda: panel.topLevelItemCount() > 0, timeout=TIMEOUT)
    rows = [tuple(panel.topLevelItem(i).text(c) for c in range(4)) for i in range(panel.topLevelItemCount())]
    kinds = [kind for _, kind, _, _ in rows]
    assert "changed in place" in kinds
    message = rows[kinds.index("changed in place")][3]
    assert "changed in place at inplace.py:4 (`h += 1`)" in message and "sigmoid at inplace.py:3" in message
    assert "saved by sigmoid" in window.message_bar.text()  # the script's error, with both lines, too
