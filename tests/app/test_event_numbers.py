"""Every place that names an event number names the same one for the same moment."""

import re

from PySide6.QtCore import QPointF

from tests.app.test_stepping_qa import two_blocks
from tests.app.test_window import TIMEOUT, paused, status


def _numbers(window) -> dict[str, int | None]:
    def found(pattern, text):
        m = re.search(pattern, text)
        return int(m.group(1).replace(",", "")) if m else None
    return {"timeline": found(r"event ([\d,]+)", window.timeline.where_text()),
            "status": found(r"Showing event ([\d,]+)", window.status_panel.note.text()),
            "inspector": found(r"as recorded at event ([\d,]+)", window.inspector.meta.text())}


def test_a_live_run_stepped_back_names_one_event_number_everywhere(qtbot, window):
    # stepped back onto an optimizer step, the status note named the backward record before it (one less than
    # the timeline); onto a backward node, the inspector named its forward op's event, twenty events earlier
    window.run_function(two_blocks, "two blocks")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    view = window.timeline.view
    phases = set()
    while view.cursor_index() > 0 and len(phases) < 3:
        window.timeline.step_back()  # what Ctrl+Shift+F11 does
        phase = view.describe(view.cursor_index())[2]
        qtbot.waitUntil(lambda: _numbers(window)["inspector"] is not None, timeout=TIMEOUT)
        numbers = _numbers(window)
        assert numbers["timeline"] == numbers["status"] == numbers["inspector"], (phase, numbers)
        phases.add(phase)
    assert phases == {"optimizer", "backward", "forward"}


def deep(steps: int = 4):
    """Twelve Linear-LayerNorm-GELU blocks: a graph taller than the view (l1_long.py's model, smaller)."""
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    layers = []
    for i in range(12):
        layers += [nn.Linear(4 if i == 0 else 8, 8), nn.LayerNorm(8), nn.GELU()]
    model = nn.Sequential(*layers, nn.Linear(8, 2))
    opt = engine.optim.Adam(model.parameters(), lr=1e-3)
    x, y = engine.randn(16, 4), engine.randint(0, 2, (16,))
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def test_the_timeline_counts_in_the_event_numbers_the_status_bar_and_inspector_use(qtbot, window):
    # at one position the timeline said "step 140,113/172,162" and the status bar "event 274,947"
    window.run_function(deep, "deep")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    timeline = window.timeline
    seqs = timeline.view.seqs()
    assert timeline.go_to_event(timeline.event_number(int(seqs[30])))
    qtbot.waitUntil(lambda: _numbers(window)["inspector"] is not None, timeout=TIMEOUT)
    numbers = _numbers(window)
    assert numbers["timeline"] == numbers["status"] == numbers["inspector"] == timeline.event_number(int(seqs[30]))
    assert "step" not in timeline.where_text()
    assert timeline.where_text().endswith(f"/{timeline.event_number(int(seqs[-1])):,}")  # of the newest event


def test_a_paused_run_scrubbed_back_shows_the_inspected_node_in_the_graph(qtbot, window):
    # after a scrub the Inspector showed layer_norm in Sequential.34 while the graph marked linear in Sequential.9,
    # where the run was paused, the node selected out of sight
    window.run_function(lambda: deep(steps=3), "deep")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_next_iteration")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 1, timeout=TIMEOUT)
    for _ in range(8):  # into the first blocks of iteration 1
        window.command("step_into")
        qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    timeline, canvas = window.timeline, window.canvas
    seqs = timeline.view.seqs()
    late = next(i for i in range(len(seqs)) if window.session.record_at(int(seqs[i])).event.key.startswith(
        "Sequential.31/"))  # a block far below the one paused in, in iteration 0
    assert timeline.go_to_event(timeline.event_number(int(seqs[late])))
    key = window.session.record_at(int(seqs[late])).event.key
    qtbot.waitUntil(lambda: window.inspector.title.text().endswith(key), timeout=TIMEOUT)
    view = canvas.view
    assert canvas.selected_key == key
    assert view.keys[canvas.marks_item.current] == key  # marked where the timeline's cursor is, as a replay does
    x, y = canvas.layout_data.pos[view.keys.index(key)]
    qtbot.waitUntil(lambda: canvas.box.viewRect().contains(QPointF(float(x), float(y))), timeout=TIMEOUT)  # in view
    assert status(window).startswith("Paused at op")  # the run itself stays where it is
    timeline.go_to_end()  # back at the head: the graph marks the stop again
    assert view.keys[canvas.marks_item.current] == window.session.model.current
