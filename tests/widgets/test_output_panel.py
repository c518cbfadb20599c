"""The output panel follows its end as a terminal does: while the person has not scrolled up, whatever
resizes it, and again from a new run on."""

from PySide6.QtCore import QPoint

from tests.shots import shown
from widgets.output_panel import OutputPanel


def last_line_shown(panel: OutputPanel) -> str:
    """The text of the lowest line in view (above the empty line the last newline starts)."""
    block = panel.cursorForPosition(QPoint(4, panel.viewport().height() - 4)).block()
    return block.text() or block.previous().text()


def epochs(panel: OutputPanel, start: int, stop: int) -> None:
    for epoch in range(start, stop):
        panel.append_text("stdout", f"epoch {epoch}  loss {3.0 + epoch % 7 / 10:.4f}\n")


def test_the_end_stays_in_view_after_the_panel_is_resized(qtbot):
    panel = shown(qtbot, OutputPanel(), 360, 240)
    epochs(panel, 1, 60)
    qtbot.waitUntil(lambda: last_line_shown(panel).startswith("epoch 59"))
    # the Editor tab widened the left column: the panel narrowed, a long line now scrolls sideways and the
    # horizontal bar took the bottom rows; the run went on printing and the panel stayed at epoch 56
    panel.append_text("stdout", "a line far wider than the panel " * 6 + "\n")
    panel.resize(200, 160)
    qtbot.wait(20)
    epochs(panel, 60, 400)
    qtbot.waitUntil(lambda: last_line_shown(panel).startswith("epoch 399"))
    assert panel.following
    panel.resize(420, 300)
    epochs(panel, 400, 402)
    qtbot.waitUntil(lambda: last_line_shown(panel).startswith("epoch 401"))


def test_scrolled_up_it_stays_where_the_person_is_until_they_scroll_back_to_the_end(qtbot):
    panel = shown(qtbot, OutputPanel(), 360, 240)
    epochs(panel, 1, 100)
    bar = panel.verticalScrollBar()
    bar.setValue(bar.maximum() // 3)  # the person scrolls up to read
    kept = bar.value()
    epochs(panel, 100, 140)
    panel.resize(300, 200)
    assert not panel.following and abs(bar.value() - kept) <= 2
    bar.setValue(bar.maximum())  # and back to the end: it follows again
    epochs(panel, 140, 150)
    qtbot.waitUntil(lambda: last_line_shown(panel).startswith("epoch 149"))


def test_a_new_run_shows_its_own_output_even_where_the_person_had_scrolled_up(qtbot):
    panel = shown(qtbot, OutputPanel(), 360, 240)
    epochs(panel, 1, 100)
    panel.verticalScrollBar().setValue(0)
    panel.follow_end()  # what the window does when a session starts
    panel.note("\u25b6 spirals (model builder)")
    panel.append_text("stdout", "epoch 1  loss 0.6931\n")
    qtbot.waitUntil(lambda: last_line_shown(panel) == "epoch 1  loss 0.6931")
