"""Every place that names an event number names the same one for the same moment."""

import re

import pytest

from tests.app.test_stepping_qa import two_blocks
from tests.app.test_window import TIMEOUT, make_window, paused


@pytest.fixture
def window(qtbot, tmp_path):
    return make_window(qtbot, tmp_path)


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
