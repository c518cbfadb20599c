"""The timeline (cursor, keys, scrubbing, follow head, markers) and the breakpoints panel, offscreen."""

import itertools

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtWidgets import QApplication, QLabel

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Breakpoint, Debugger, EventRecord
from engine.debug.records import PHASES
from widgets.breakpoints_panel import BreakpointsPanel
from widgets.timeline import MARKER_COLOURS, PHASE_COLOURS, RULER, Timeline

PER_ITERATION = (("forward", 6), ("backward", 7), ("optimizer", 1))


def events(iterations: int = 4):
    """(seqs, iterations, phases) like a training run's: gaps in seq where module events were."""
    seqs, its, phases = [], [], []
    seq = 1
    for it in range(iterations):
        for phase, n in PER_ITERATION:
            for _ in range(n):
                seq += 3
                seqs.append(seq)
                its.append(it)
                phases.append(phase)
    return seqs, its, phases


@pytest.fixture
def timeline(qtbot):
    t = Timeline()
    qtbot.addWidget(t)
    t.resize(700, 110)
    t.show()
    qtbot.waitExposed(t)
    t.set_events(*events())
    return t


def test_arrow_keys_move_the_cursor_one_event(qtbot, timeline):
    seqs = events()[0]
    timeline.set_cursor(seqs[5])
    view = timeline.view
    view.setFocus()
    with qtbot.waitSignal(timeline.cursorMoved) as sig:
        qtbot.keyClick(view, Qt.Key.Key_Right)
    assert sig.args == [seqs[6]]
    for _ in range(2):
        qtbot.keyClick(view, Qt.Key.Key_Left)
    assert timeline.cursor_seq() == seqs[4]
    qtbot.keyClick(view, Qt.Key.Key_Home)
    with qtbot.assertNotEmitted(timeline.cursorMoved):
        qtbot.keyClick(view, Qt.Key.Key_Left)  # already at the first event
    assert timeline.cursor_seq() == seqs[0]
    with qtbot.waitSignal(timeline.cursorMoved) as sig:
        qtbot.keyClick(view, Qt.Key.Key_PageDown)  # the first event of the next iteration
    assert sig.args == [seqs[14]]
    assert "iteration 1/3 \u00b7 forward" in timeline.where.text()


def test_a_position_too_long_for_a_narrow_timeline_ends_in_an_ellipsis(qtbot, timeline):
    seqs = events()[0]
    timeline.set_cursor(seqs[20])
    full = timeline.where.text()
    timeline.resize(240, 110)  # too narrow for the position even without the legend
    qtbot.waitUntil(lambda: 0 < timeline.where.width() < timeline.where.fontMetrics().horizontalAdvance(full)
                    and len(QLabel.text(timeline.where)) > 1)  # (the legend is hidden in a second layout pass)
    shown = QLabel.text(timeline.where)  # what is painted
    assert shown.endswith("\u2026") and full.startswith(shown[:-1])
    assert timeline.where.toolTip().startswith(full + "\n")  # then what the numbers count


@pytest.mark.parametrize("width", [760, 460, 330])
def test_the_position_stays_whole_and_the_legend_gives_way_where_the_timeline_is_narrow(qtbot, timeline, width):
    # a 1000-pixel window left the timeline ~460 wide: the legend kept its width and the position vanished
    timeline.set_cursor(events()[0][20])
    whole = timeline.where.text()
    timeline.resize(width, 110)
    qtbot.waitUntil(lambda: timeline.where.width() >= timeline.where.fontMetrics().horizontalAdvance(whole))
    legends = (timeline.legend, timeline.stacked_legend, timeline.short_legend)
    assert QLabel.text(timeline.where) == whole  # iteration, phase and event painted whole
    assert sum(label.isVisible() for label in legends) <= 1
    for label in legends:  # a legend shown lies inside the timeline, after the position
        if label.isVisible():
            assert label.geometry().left() >= timeline.where.geometry().right()
            assert label.geometry().right() <= timeline.width()
    assert timeline.minimumSizeHint().width() < 200  # a legend, shown or not, never holds the dock wide
    if width == 760:
        assert timeline.legend.isVisible()
    elif width == 460:
        # every name, over two lines, or at least the swatches (the names in their tooltip)
        shown = next(label for label in legends[1:] if label.isVisible())
        assert all(name in shown.text() + shown.toolTip() for name in ("backward", "breakpoint"))


def test_set_cursor_between_events_lands_on_the_earlier_and_emits_nothing(qtbot, timeline):
    seqs = events()[0]
    with qtbot.assertNotEmitted(timeline.cursorMoved):
        timeline.set_cursor(seqs[9] + 1)
    assert timeline.cursor_seq() == seqs[9]


def _drag(view, xs):
    """Press at xs[0], move through the rest with the button held, release."""
    y = RULER + 5
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    mods = Qt.KeyboardModifier.NoModifier
    for i, x in enumerate(xs):
        kind = QMouseEvent.Type.MouseButtonPress if i == 0 else QMouseEvent.Type.MouseMove
        pos = QPointF(x, y)
        QApplication.sendEvent(view, QMouseEvent(kind, pos, view.mapToGlobal(pos), left if i == 0 else none,
                                                 left, mods))
    pos = QPointF(xs[-1], y)
    QApplication.sendEvent(view, QMouseEvent(QMouseEvent.Type.MouseButtonRelease, pos, view.mapToGlobal(pos),
                                             left, none, mods))


def test_dragging_scrubs_both_ways(qtbot, timeline):
    seqs = events()[0]
    view = timeline.view
    moved = []
    timeline.cursorMoved.connect(moved.append)
    _drag(view, [view.event_x(30), view.event_x(40), view.event_x(10)])
    assert moved[0] == seqs[30] and moved[-1] == seqs[10]
    assert seqs[40] in moved
    assert timeline.cursor_seq() == seqs[10]


def test_follow_head_tracks_new_events_until_the_person_moves(qtbot, timeline):
    timeline.set_live(True)
    assert timeline.follow_button.isVisible()
    timeline.follow_button.click()
    assert timeline.following()
    timeline.append_events([1000, 1003], [4, 4], ["forward", "forward"])
    assert timeline.cursor_seq() == 1003
    with qtbot.waitSignal(timeline.followChanged) as sig:
        qtbot.keyClick(timeline.view, Qt.Key.Key_Left)
    assert sig.args == [False] and not timeline.follow_button.isChecked()
    timeline.append_events([1006], [4], ["forward"])
    assert timeline.cursor_seq() == 1000  # stays where the person put it


def test_bands_and_markers_are_drawn_where_their_events_are(qtbot, timeline):
    seqs = events()[0]
    timeline.set_markers("breakpoint", [seqs[3]], ["op matmul"])
    timeline.add_marker("alert", seqs[20], "NaN in log")
    view = timeline.view
    image = view.grab().toImage()

    def colour_at(i: int, y: int) -> QColor:
        return image.pixelColor(QPoint(int(view.event_x(i)), y))

    band = RULER + 11
    assert colour_at(2, band) == QColor(PHASE_COLOURS[0])  # forward
    assert colour_at(8, band) == QColor(PHASE_COLOURS[1])  # backward
    marks = RULER + 22 + 1 + 7
    assert colour_at(3, marks) == QColor(MARKER_COLOURS["breakpoint"])
    assert colour_at(20, marks) == QColor(MARKER_COLOURS["alert"])
    assert colour_at(30, marks) != QColor(MARKER_COLOURS["alert"])
    assert list(timeline.view.markers("alert")) == [seqs[20]]


def test_wheel_zoom_keeps_the_cursor_steppable(qtbot, timeline):
    view = timeline.view
    view.set_view(10, 20)
    assert view.view_range() == (10, 20) and timeline.scroll.isVisible()
    timeline.set_cursor(events()[0][19])
    qtbot.keyClick(view, Qt.Key.Key_Right)
    x0, x1 = view.view_range()
    assert x0 <= 20 < x1  # the view followed the cursor
    timeline.fit_button.click()
    x0, x1 = view.view_range()
    assert x0 == 0 and len(events()[0]) < x1 < len(events()[0]) + 3  # a margin after the last event


class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 5), nn.Linear(5, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def test_records_from_a_live_run_and_its_tape_give_the_same_timeline(qtbot, tmp_path):
    model = _MLP()
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    records = []
    dbg = Debugger("summary", model=model, interactive=False, cache_bytes=0, on_record=records.append)
    path = str(tmp_path / "run.tape")
    x, y = engine.randn(6, 4), engine.tensor([0, 1, 2, 0, 1, 2])
    with dbg, engine.record(path, debugger=dbg):
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    live, replay = Timeline(), Timeline()
    qtbot.addWidget(live)
    qtbot.addWidget(replay)
    live.add_records(records)
    with engine.tape.open(path) as tape:
        replay.add_records(list(tape.records()))
    steps = [r for r in records if not (isinstance(r, EventRecord) and r.phase != "optimizer")]
    assert 0 < live.view.count == len(steps) < len(records)  # module boundaries are not steps
    assert np.array_equal(live.view.seqs(), replay.view.seqs())
    live.set_cursor(steps[-1].seq)
    assert "iteration 1/1 \u00b7 optimizer" in live.where.text()


# ---- the breakpoints panel ------------------------------------------------------------------------
@pytest.fixture
def panel(qtbot):
    p = BreakpointsPanel()
    qtbot.addWidget(p)
    p.resize(380, 420)
    p.show()
    dbg = Debugger("summary", interactive=False, cache_bytes=0)
    dbg.add_breakpoint(Breakpoint.op("matmul"))
    dbg.add_breakpoint(Breakpoint.max_abs(1e3, on="grad"))
    dbg.enable_breakpoint(2, False)
    p.set_breakpoints(dbg.list_breakpoints())
    p.debugger = dbg
    return p


def test_panel_lists_breakpoints_and_toggles_them(qtbot, panel):
    assert panel.rows() == [("op matmul  (forward)", 0, True), ("max |x| > 1000  (grad)", 0, False)]
    item = panel.list.topLevelItem(0)
    with qtbot.waitSignal(panel.enableRequested) as sig:
        item.setCheckState(0, Qt.CheckState.Unchecked)
    assert sig.args == [1, False]


def test_editor_adds_a_valid_spec_the_debugger_accepts(qtbot, panel):
    panel.add_button.click()
    editor = panel.editor
    editor.kind.setCurrentIndex(editor.kind.findData("module"))
    qtbot.keyClicks(editor.pattern, "MLP.fc2")
    editor.on.setCurrentText("exit")
    with qtbot.waitSignal(panel.addRequested) as sig:
        editor.ok.click()
    spec = sig.args[0]
    assert spec == Breakpoint.module("MLP.fc2", on="exit").validate()
    bid = panel.debugger.add_breakpoint(spec)
    panel.set_breakpoints(panel.debugger.list_breakpoints())
    assert panel.rows()[-1] == ("module MLP.fc2  (exit)", 0, True) and bid == 3
    assert editor.isHidden()


def test_editor_refuses_a_bad_condition_inline_and_emits_nothing(qtbot, panel):
    panel.edit_new(Breakpoint.norm(100.0))
    editor = panel.editor
    assert editor.value.text() == "100"
    editor.value.setText("-3")
    with qtbot.assertNotEmitted(panel.addRequested):
        qtbot.keyClick(editor.value, Qt.Key.Key_Return)
    assert "finite number >= 0" in editor.error.text() and not editor.error.isHidden()
    editor.kind.setCurrentIndex(editor.kind.findData("op"))
    with qtbot.assertNotEmitted(panel.addRequested):
        editor.ok.click()  # an op breakpoint needs a pattern: Breakpoint.validate() says so
    assert "needs a pattern" in editor.error.text()


def test_edit_and_delete_emit_the_id(qtbot, panel):
    panel.list.setCurrentItem(panel.list.topLevelItem(1))
    panel.edit_button.click()
    assert panel.editor.value.text() == "1000" and panel.editor.ok.text() == "Save"
    panel.editor.value.setText("50")
    with qtbot.waitSignal(panel.replaceRequested) as sig:
        panel.editor.ok.click()
    assert sig.args == [2, Breakpoint.max_abs(50.0, on="grad").validate()]
    with qtbot.waitSignal(panel.removeRequested) as sig:
        panel.delete_button.click()
    assert sig.args == [2]


def test_optimizer_steps_do_not_paint_over_iterations_a_few_pixels_wide(qtbot, timeline):
    # a 440k-event tape: 240 iterations of ~1800 events, each under 4 px wide; its one-event optimizer
    # steps, widened to 3 px, painted three quarters of the strip green, as if it were all optimizer
    n_fwd, n_bwd, iterations = 1000, 800, 240
    per = n_fwd + n_bwd + 1
    timeline.resize(1000, 110)
    phases = np.tile(np.repeat(np.array([0, 1, 2], np.int8), [n_fwd, n_bwd, 1]), iterations)
    timeline.set_events(np.arange(1, per * iterations + 1), np.repeat(np.arange(iterations), per), phases)
    view = timeline.view
    image = view.grab().toImage()
    row = [image.pixelColor(QPoint(x, RULER + 11)) for x in range(view.width())]
    green = sum(c == QColor(PHASE_COLOURS[2]) for c in row)
    assert green < 0.3 * len(row)
    assert sum(c == QColor(PHASE_COLOURS[0]) for c in row) > 0.2 * len(row)  # the forward ops show


def test_a_cursor_before_the_first_event_is_at_the_start_not_on_the_first_event(qtbot, timeline):
    seqs = events()[0]  # the first steppable event is seq 4: a replay at seq 1 (a module call) has not reached it
    timeline.set_cursor(seqs[0] - 2)
    assert timeline.cursor_seq() is None
    assert timeline.where.text() == "start \u00b7 before event 4/169"
    x = timeline.view.event_x(0)
    image = timeline.view.grab().toImage()
    assert image.pixelColor(int(x), RULER + 3) != QColor("#212529")  # no cursor drawn on the first event
    with qtbot.waitSignal(timeline.cursorMoved) as moved:
        qtbot.keyClick(timeline.view, Qt.Key.Key_Right)  # the next event from the start is the first
    assert moved.args == [seqs[0]] and timeline.where.text().endswith("event 4/169")
    timeline.set_cursor(None)  # no cursor at all is still no position
    assert "start" not in timeline.where.text()


def test_the_rulers_labels_are_whole_or_not_drawn(timeline):
    # the label of an iteration starting at the right edge was cut to "it 1…"
    from PySide6.QtGui import QFontMetricsF

    view = timeline.view
    metrics = QFontMetricsF(view._ruler_font())
    starts = view._iter_starts
    w = view.width()
    xs = np.array([10.0, 120.0, w - 12.0, w + 0.0][:len(starts)])
    labels = view._ruler_labels(starts[:len(xs)], xs, w, metrics)
    assert [x for x, _ in labels] == [10.0, 120.0]
    assert all(x + 3 + metrics.horizontalAdvance(text) <= w for x, text in labels)


def test_the_legend_keeps_its_names_beside_a_long_position(qtbot, timeline):
    # at iteration 241 of a long run the position took the room and the legend shrank to bare colour squares
    seqs, its, phases = events(250)
    timeline.set_origin(0)
    timeline.set_events(np.array(seqs) + 70_000, its, phases)
    timeline.resize(760, 110)
    timeline.set_cursor(seqs[241 * 14 + 8] + 70_000)
    full = timeline.where_text()
    assert full == "iteration 241/249 \u00b7 backward \u00b7 event 80,150/80,501"
    # the whole legend, beside the whole position, not "step 3,383/3,500 · ev…"
    qtbot.waitUntil(lambda: timeline.legend.isVisible())
    qtbot.waitUntil(lambda: QLabel.text(timeline.where) == full)
    timeline.resize(520, 110)  # narrower: the legend gives way, the position stays whole
    qtbot.waitUntil(lambda: QLabel.text(timeline.where) == full)


def test_the_position_follows_the_newest_event_while_the_cursor_stays_back(qtbot, timeline):
    # scrubbed back in a live run, it kept saying "step 6/6" while the run went on to iteration 979
    seqs = events()[0]
    timeline.set_live(True)
    timeline.set_cursor(seqs[5])
    assert timeline.where_text() == "iteration 0/3 \u00b7 forward \u00b7 event 19/169"
    timeline.append_events([1000, 1003], [979, 979], ["forward", "forward"])
    assert timeline.cursor_seq() == seqs[5]
    assert timeline.where_text() == "iteration 0/979 \u00b7 forward \u00b7 event 19/1,003"


def test_event_numbers_count_from_the_sessions_first_event(qtbot, timeline):
    # after a Restart the engine's numbers went on from the run before: "event 67224" at the fourth op
    seqs = events()[0]
    timeline.set_origin(seqs[0] - 1)
    timeline.set_cursor(seqs[3])
    assert timeline.where_text().endswith(f"event {seqs[3] - seqs[0] + 1}/{seqs[-1] - seqs[0] + 1}")
    assert timeline.event_number(seqs[3]) == 10
    timeline.view.add_marker("alert", seqs[3], "NaN")
    x = timeline.view.event_x(3)
    assert timeline.view._marker_text_at(QPointF(x, RULER + 30)).startswith("alert at event 10:")


def test_step_back_goes_to_the_event_before_and_step_back_over_skips_nested_calls(qtbot):
    t = Timeline()
    qtbot.addWidget(t)
    # an op of the model (depth 1), a layer's two ops (depth 2), the model's next op, the optimizer step
    t.set_events([2, 5, 6, 9, 12], [0] * 5, ["forward"] * 4 + ["optimizer"], [1, 2, 2, 1, 0])
    assert not t.can_step_back()  # no cursor
    t.set_cursor(9)
    moved = []
    t.cursorMoved.connect(moved.append)
    assert t.can_step_back() and t.step_back(over=True)
    assert moved == [2]  # over the layer's ops, to the model's op before them
    t.set_cursor(9)
    t.step_back()
    assert moved == [2, 6] and t.cursor_seq() == 6
    t.set_cursor(2)
    assert not t.can_step_back() and not t.step_back()
    assert moved == [2, 6]


def test_the_module_form_says_what_its_pattern_matches_with_the_models_own_names(qtbot, panel):
    # it suggested "MLP.fc1" to a person debugging a SpiralNet, whose "out" was what works
    wanted = []
    panel.namesWanted.connect(lambda: wanted.append(1) or panel.set_names(
        ["SpiralNet", "SpiralNet.fc1", "SpiralNet.fc2", "SpiralNet.out"],
        ["SpiralNet.fc1/linear:0", "SpiralNet/tanh:0", "SpiralNet.out/linear:0"]))
    panel.add_button.click()
    assert wanted  # asked for the names as it opened: the model may have grown
    editor = panel.editor
    editor.kind.setCurrentIndex(editor.kind.findData("module"))
    assert editor.pattern.placeholderText() == "e.g. fc1, SpiralNet.fc1, fc*"
    assert "MLP" not in editor.pattern.placeholderText()
    assert editor.hint.isVisible() and "Modules tree" in editor.hint.text() and "*" in editor.hint.text()
    assert "SpiralNet.fc1" in editor.hint.toolTip()
    completer = editor.pattern.completer()
    completer.setCompletionPrefix("ou")
    assert completer.currentCompletion() == "out"
    editor.kind.setCurrentIndex(editor.kind.findData("op"))
    assert editor.pattern.placeholderText() == "e.g. linear, SpiralNet.fc1/linear:0, SpiralNet.fc1/*"
    editor.kind.setCurrentIndex(editor.kind.findData("iteration"))
    assert not editor.hint.isVisible()


def test_the_position_reads_whole_beside_the_legend_never_cut(qtbot, timeline):
    # at 1440x900 the position read "step 23,903/23,903 · ev…" beside the whole legend
    timeline.set_cursor(events()[0][20])
    full = timeline.where.text()
    for width in range(420, 900, 15):
        timeline.resize(width, 110)
        qtbot.waitUntil(lambda width=width: timeline.width() == width)
        QApplication.processEvents()
        assert QLabel.text(timeline.where) == full, width  # the legend gives way first
    timeline.resize(900, 110)
    qtbot.waitUntil(lambda: QLabel.text(timeline.where) == full, timeout=1000)


# ---- markers close together: one badge, its count, its list ----------------------------------------------
def _close_alerts(timeline):
    """A run like the lr=10 MLP's: alerts of four kinds a few events apart (and an edit among them), and one alone."""
    seqs, its, phases = events(60)
    timeline.set_events(seqs, its, phases)
    close = [(seqs[30], "exploding gradient"), (seqs[31], "dead ReLU"), (seqs[33], "exploding gradient"),
             (seqs[36], "vanishing gradient")]
    timeline.set_markers("alert", [s for s, _ in close] + [seqs[600]], [f"about {t}" for t, _ in enumerate(close)]
                         + ["NaN"], [tag for _, tag in close] + ["NaN/Inf (forward)"])
    timeline.add_marker("edit", seqs[32], "lr 10 \u2192 0.1")
    return seqs, close


def _overlapping(groups) -> bool:
    return any(b.left < a.right for a, b in itertools.pairwise(groups))


def test_markers_close_together_are_one_badge_with_their_count(qtbot, timeline):
    # alerts of several kinds a few events apart were drawn atop each other: unreadable, and a click went to
    # the event under the pointer, whichever marker that was
    seqs, close = _close_alerts(timeline)
    view = timeline.view
    groups = view.marker_groups()
    assert not _overlapping(groups)
    (badge,) = [g for g in groups if len(g.markers) > 1]
    assert [m[1] for m in badge.markers] == sorted([s for s, _ in close] + [seqs[32]])
    assert len([g for g in groups if len(g.markers) == 1]) == 1  # the NaN, far off, alone
    # drawn: the count on the badge, the kinds' colours side by side in it
    image = view.grab().toImage()
    top = RULER + 22 + 1 + 1
    colours = {image.pixelColor(QPoint(x, y)).name() for x in range(int(badge.left), int(badge.right))
               for y in range(top, top + 12)}
    tag_colours = {view.tag_colour("alert", tag).name() for _, tag in close} | {view.tag_colour("edit", "").name()}
    assert len(tag_colours) == 4 and tag_colours <= colours
    white = [x for x in range(int(badge.left), int(badge.right))
             for y in range(top, top + 12) if image.pixelColor(QPoint(x, y)).lightness() > 240]
    assert white  # the count, in white
    # its tooltip lists them all, by kind, in event order
    tip = view._marker_text_at(QPointF((badge.left + badge.right) / 2, RULER + 30))
    assert tip.startswith("<nobr><b>4 alerts, 1 edit</b>")
    assert [row.split("&nbsp;")[1].split(" \u00b7 ")[0] for row in tip.split("<br>")[1:]] == [
        "exploding gradient", "dead ReLU", "edit", "exploding gradient", "vanishing gradient"]
    # a click on the badge goes to its first marker's event, not to the one under the pointer
    with qtbot.waitSignal(timeline.cursorMoved) as moved:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(int(badge.right) - 1, RULER + 30))
    assert moved.args == [seqs[30]]


def test_zoomed_in_the_badge_parts_into_single_markers(qtbot, timeline):
    seqs, close = _close_alerts(timeline)
    view = timeline.view
    for span in (view._extent(), 400, 100, 30, 10):  # at any zoom, no marker is drawn over another
        view.set_view(20, 20 + span)
        assert not _overlapping(view.marker_groups()), span
    view.set_view(25, 45)
    groups = view.marker_groups()
    assert [len(g.markers) for g in groups] == [1] * 5
    # the kinds keep their colours; the first kind has the alerts' own colour, as the legend says
    assert view.tag_colour("alert", "exploding gradient") == QColor(MARKER_COLOURS["alert"])
    assert len({view.tag_colour("alert", tag).name() for _, tag in close}) == 3
    tip = view._marker_text_at(QPointF((groups[1].left + groups[1].right) / 2, RULER + 30))
    assert tip == f"alert at event {view.event_number(seqs[31]):,}: dead ReLU: about 1"


def test_a_marker_between_two_events_names_the_event_a_click_goes_to(qtbot, timeline):
    # an alert's own seq comes just after the op that raised it: the tooltip said "event 135" and a click on it
    # went to event 134, as the label then read
    seqs = events()[0]
    timeline.set_origin(seqs[0] - 1)
    assert seqs[4] - seqs[3] > 1
    timeline.view.add_marker("alert", seqs[3] + 1, "NaN")
    x = timeline.view.event_x(3)
    assert timeline.view._marker_text_at(QPointF(x, RULER + 30)).startswith(
        f"alert at event {timeline.event_number(seqs[3])}:")
    qtbot.mouseClick(timeline.view, Qt.MouseButton.LeftButton, pos=QPointF(x, RULER + 30).toPoint())
    assert f"event {timeline.event_number(seqs[3])}/" in timeline.where_text()


def test_the_legend_keeps_its_names_while_the_position_fits_beside_them(qtbot, timeline):
    # beside the Builder dock the legend read "forward backward optimizer ● ▲ ◆" where all six names fitted
    timeline.set_cursor(events()[0][20])
    position = timeline.where.text()
    metrics = timeline.where.fontMetrics()
    spacing = timeline._bar.spacing()
    for width in range(420, 900, 15):
        timeline.resize(width, 110)
        qtbot.waitUntil(lambda width=width: timeline.width() == width)
        QApplication.processEvents()
        margins = timeline.layout().contentsMargins()
        room = width - margins.left() - margins.right() - sum(
            b.sizeHint().width() + spacing for b in (timeline.follow_button, timeline.fit_button) if not b.isHidden())
        need = timeline.legend.sizeHint().width() + spacing + metrics.horizontalAdvance(position) + 4
        if need + 10 <= room:  # (10 pixels either way: the bar's own rounding)
            assert timeline.legend.isVisible(), width  # all six names
        elif need - 10 > room:
            assert timeline.legend.toolTip() == "" and not timeline.legend.isVisible(), width
            assert timeline.stacked_legend.isVisible() or timeline.short_legend.isVisible(), width
            shown = timeline.stacked_legend if timeline.stacked_legend.isVisible() else timeline.short_legend
            assert "breakpoint" in shown.text() + shown.toolTip()  # the names, over two lines or on hover


def test_where_its_line_does_not_fit_the_legend_names_every_mark_on_two_lines(qtbot, timeline):
    # beside the Model Builder at a scale factor of 1.5 (a timeline 641 pixels wide) the legend was bare swatches
    timeline.set_cursor(events()[0][20])
    margins, spacing = timeline.layout().contentsMargins(), timeline._bar.spacing()
    beside = margins.left() + margins.right() + sum(
        b.sizeHint().width() + spacing for b in (timeline.follow_button, timeline.fit_button) if not b.isHidden()) + \
        spacing + 4 + timeline.where.fontMetrics().horizontalAdvance(timeline.where.text())
    width = beside + timeline.legend.sizeHint().width() - 40  # too narrow for the legend's one line
    timeline.resize(width, 110)
    qtbot.waitUntil(lambda: timeline.width() == width)
    shown = [label for label in timeline.findChildren(QLabel) if label.isVisible() and label is not timeline.where]
    assert len(shown) == 1
    words = QLabel.text(shown[0]).replace("<br>", " ")
    assert all(name in words for name in (*PHASES, "breakpoint", "alert", "edit")), words
    legend = shown[0]
    assert legend.width() >= legend.sizeHint().width() and legend.height() >= legend.sizeHint().height()  # not cut
    assert legend.geometry().right() <= timeline.width()
    assert timeline.view.geometry().top() >= legend.geometry().bottom()


# ---- going to a place: Home, End, Go to Iteration or Event ------------------------------------------------
def test_go_to_moves_the_cursor_as_a_person_does(qtbot, timeline):
    seqs = events()[0]  # four iterations of 14 events, seqs 4, 7, 10, ...
    with qtbot.waitSignal(timeline.cursorMoved) as moved:
        assert timeline.go_to_iteration(2)
    assert moved.args == [seqs[28]] and timeline.position() == (2, seqs[28])
    assert timeline.go_to_event(seqs[5] + 1)  # a module call's number, between two steps: the step before it
    assert timeline.cursor_seq() == seqs[5]
    assert not timeline.go_to_iteration(9)  # past the last
    assert timeline.go_to_start() and timeline.cursor_seq() == seqs[0]
    timeline.set_live(True)
    assert timeline.go_to_end() and timeline.cursor_seq() == seqs[-1] and timeline.following()  # the head again
    assert timeline.bounds() == (0, 3, seqs[0], seqs[-1])


def test_the_go_to_dialog_starts_at_the_cursor_and_keeps_what_was_typed_per_kind(qtbot):
    from widgets.timeline_goto import GoToDialog

    dialog = GoToDialog((0, 40, 1, 9_000), "iteration", at=(12, 1_234))
    qtbot.addWidget(dialog)
    assert dialog.choice() == ("iteration", 12) and dialog.hint.text().startswith("0 to 40")
    dialog.number.setValue(30)
    dialog.kind.setCurrentIndex(1)
    assert dialog.choice() == ("event", 1_234) and dialog.hint.text().startswith("1 to 9,000")
    dialog.kind.setCurrentIndex(0)
    assert dialog.choice() == ("iteration", 30)  # what was typed for iterations is still there
    with qtbot.waitSignal(dialog.chosen) as chosen:
        dialog.accept()
    assert chosen.args == ["iteration", 30]
