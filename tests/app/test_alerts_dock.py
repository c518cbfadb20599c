"""The Alerts dock at the default window size: a run's handful of alerts in view, the current one's message under
them."""

from tests.app.test_window import default_window
from tests.widgets.test_alerts_and_status import LR10

SIX = [*LR10, (4, "dead_relu", "relu in MLP", "95% of the units of 'relu' (MLP/relu:1) are zero for the whole "
                "batch, iteration 4: they pass no gradient back", "MLP/relu:1"),
       (8, "vanishing_grad", "fc1.weight", "gradient norm of 'fc1.weight' is 0, below 1e-07, in layer 'fc1', "
        "iteration 8: no gradient reaches it", "fc1.weight")]


def test_the_six_alerts_of_an_mlp_at_lr_10_are_all_in_view(qtbot, tmp_path):
    # at 1440x900 the dock was a fifth of the height: two rows showed, the third behind the message under them
    window = default_window(qtbot, tmp_path)
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
