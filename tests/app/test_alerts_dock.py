"""The Alerts dock at the default window size: a run's handful of alerts in view, the current one's message under
them."""

import numpy as np
import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QStyle

from engine.debug.alert_text import KINDS
from engine.debug.summary import summarize
from tests.shots import shoot
from tests.widgets.test_alerts_and_status import LR10
from widgets.alerts_panel import MESSAGE_SHARE

SIX = [*LR10, (4, "dead_relu", "relu in MLP", "95% of the units of 'relu' (MLP/relu:1) are zero for the whole "
                "batch, iteration 4: they pass no gradient back", "MLP/relu:1"),
       (8, "vanishing_grad", "fc1.weight", "gradient norm of 'fc1.weight' is 0, below 1e-07, in layer 'fc1', "
        "iteration 8: no gradient reaches it", "fc1.weight")]


def test_the_six_alerts_of_an_mlp_at_lr_10_are_all_in_view(qtbot, make_window):
    # at 1440x900 the dock was a fifth of the height: two rows showed, the third behind the message under them
    window = make_window((1440, 900))
    window.docks["alerts"].raise_()
    panel = window.alerts_panel
    for row in SIX:
        panel.add_row(*row)
    rows = panel.list
    area = window.docks["inspector"].widget()

    def all_in_view():
        assert window.inspector.height() <= area.viewport().height()  # the inspector still fits
        assert rows.isVisible() and panel.detail.isVisible()
        for i in range(len(SIX)):
            rect = rows.visualItemRect(panel.topLevelItem(i))  # (empty for a row out of view)
            assert not rect.isEmpty() and rect.bottom() <= rows.viewport().height(), i
        assert panel.detail.height() >= 3 * panel.detail.fontMetrics().lineSpacing()

    qtbot.waitUntil(all_in_view)


@pytest.mark.parametrize("size", [(1440, 900), (1024, 640)])
def test_the_inspectors_buttons_stay_in_view_beside_a_list_of_alerts(qtbot, make_window, size):
    # Copy and Save .npy were cut off at the dock's bottom at 1440x900 once the Alerts dock below had rows
    window = make_window(size)
    a = np.random.default_rng(0).standard_normal((64, 128)).astype(np.float32)
    shapes = "64\u00d7784, 128\u00d7784, 128 \u2192 64\u00d7128 float32"
    window.inspector.show_summaries("linear \u00b7 MLP.fc1/linear:0", summarize(a), summarize(a * 1e-3),
                                    subtitle=f"linear in MLP.fc1: {shapes}")
    for row in SIX:
        window.alerts_panel.add_row(*row)

    def whole(button):
        return button.isVisible() and button.visibleRegion().boundingRect() == button.rect()

    qtbot.waitUntil(lambda: all(whole(b) for b in (window.inspector.copy_button, window.inspector.save_button)))


@pytest.mark.parametrize("size", [(1200, 800), (1280, 720)])
def test_every_kind_of_alert_reads_whole_beside_a_share_of_its_message(qtbot, make_window, size):
    # at 1280x720 the Kind column read "weight decay too\u2026", at 1200x800 most kinds were cut: the kind gave way
    # first, down to 40 pixels, so that the message kept a quarter of the list's width
    window = make_window(size)
    window.docks["alerts"].raise_()
    panel = window.alerts_panel
    for i, (kind, (_short, found)) in enumerate(KINDS.items()):
        panel.add_row(i, kind, "fc2.weight", f"{found} in 'fc2', iteration {i}: try this", "fc2.weight")
    rows = panel.list
    margin = rows.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, rows) + 1  # (Qt's, each side)
    metrics = rows.fontMetrics()

    def readable():
        assert rows.isVisible()
        for i in range(panel.topLevelItemCount()):
            item = panel.topLevelItem(i)
            cell = rows.visualRect(rows.indexFromItem(item, 1))
            room = cell.width() - 2 * margin
            # its words on as many lines as the cell is high, none cut
            lines = metrics.boundingRect(QRect(0, 0, room, 1000), Qt.TextFlag.TextWordWrap, item.text(1))
            assert lines.width() <= room and lines.height() <= cell.height(), (item.text(1), cell)
        header, width = rows.header(), rows.viewport().width()
        assert header.sectionSize(3) >= MESSAGE_SHARE * width - 1  # the message keeps its share
        assert header.sectionViewportPosition(3) + header.sectionSize(3) <= width

    qtbot.waitUntil(readable)
    rows.scrollToItem(panel.topLevelItem(len(KINDS) - 1))
    shoot(window.docks["alerts"], f"alert_kinds_{size[0]}x{size[1]}.png")
