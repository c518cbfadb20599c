"""The Output dock in the window: a new run's output shows, whatever the run before left scrolled."""

from tests.widgets.test_output_panel import last_line_shown

TIMEOUT = 30_000  # ms


def test_a_new_session_shows_its_own_output_not_where_the_last_one_was_scrolled(qtbot, make_window, tmp_path):
    # a new Build still showed the previous script's epoch 134..150
    window = make_window()
    output = window.output
    for epoch in range(1, 400):
        output.append_text("stdout", f"epoch {epoch}  loss 3.0\n")
    output.verticalScrollBar().setValue(output.verticalScrollBar().maximum() // 3)
    script = tmp_path / "prints.py"
    script.write_text("print('the new run')\n")
    assert window.run_script(str(script), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "Finished" in last_line_shown(output) or last_line_shown(output) == "the new run",
                    timeout=TIMEOUT)
