"""The Alerts dock at the default window size: a run's handful of alerts in view, the current one's message under
them."""

import numpy as np
import pytest

from engine.debug.summary import summarize
from tests.widgets.test_alerts_and_status import LR10

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
