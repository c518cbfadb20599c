"""What a damaged tape lost, on the timeline and the plots: a hatched break where the events were, its tooltip naming
them, and no curve drawn across the iterations lost."""

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QToolTip

from tests.widgets.test_timeline import events
from widgets.gap_marks import joins
from widgets.loss_plot import LossPlot
from widgets.theme import MUTED_TEXT, pick
from widgets.timeline import PHASE_COLOURS, RULER, Timeline
from widgets.training_plots import TrainingPlots

TIP = "Lost: events 20-40 (iterations 1-2)."


def test_a_gap_is_a_hatched_break_between_the_events_either_side_with_its_tooltip(qtbot):
    timeline = Timeline()
    qtbot.addWidget(timeline)
    timeline.resize(700, 110)
    timeline.show()
    qtbot.waitExposed(timeline)
    seqs, its, phases = events(4)
    keep = [i for i, s in enumerate(seqs) if not 20 <= s <= 40]  # the events a damaged tape lost
    timeline.set_events([seqs[i] for i in keep], [its[i] for i in keep], [phases[i] for i in keep])
    timeline.set_gaps([20], [TIP])
    view = timeline.view
    after = int(np.searchsorted(view.seqs(), 20))
    x = round((view.event_x(after - 1) + view.event_x(after)) / 2)
    image = view.grab().toImage()
    colours = {image.pixelColor(x + dx, RULER + 4).name() for dx in range(-3, 4)}
    assert pick(MUTED_TEXT) in colours and not colours & set(PHASE_COLOURS)
    assert image.pixelColor(x + 20, RULER + 4).name() in PHASE_COLOURS  # the bands go on after it
    QApplication.sendEvent(view, QMouseEvent(QMouseEvent.Type.MouseMove, QPointF(x, RULER + 4), QPointF(),
                                             Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                                             Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: QToolTip.text() == TIP, timeout=3000)
    timeline.clear()
    assert len(view.gaps()) == 0


def test_no_line_crosses_the_iterations_a_gap_lost_where_no_point_lies_in_them():
    x = np.array([0, 1, 2, 9, 10, 11], float)
    y = np.array([3, 2, np.nan, 1, 1, 1], float)
    assert joins(x, y, []) == "finite"
    assert joins(x, y, [(3, 8)]).tolist() == [True, False, False, True, True, False]  # (a NaN breaks it too)
    # points in every iteration of the gap (the optimizer steps a damaged tape kept): the line goes through it
    steps = np.arange(12, dtype=float)
    assert joins(steps, np.ones(12), [(3, 8)]) == "finite"


def test_a_lost_end_of_the_run_is_in_view_on_the_plots(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(400, 250)
    plot.show()
    plot.set_curve([0, 1, 2, 3], [1.0, 0.9, 0.8, 0.7])
    plot.set_gaps([(4, 59, TIP)])  # a file cut short: its last iterations lost
    plot.enableAutoRange()
    qtbot.waitUntil(lambda: plot.viewRange()[0][1] >= 59, timeout=3000)
    assert plot.gaps.bands[0].toolTip() == TIP
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.set_gaps([(4, 59, TIP)])
    assert all(len(marks.bands) == 1 for marks in plots.gaps)
    plots.clear()
    assert not any(marks.bands for marks in plots.gaps)
