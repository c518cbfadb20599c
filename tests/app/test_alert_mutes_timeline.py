"""Muting alerts from the Alerts panel's context menu takes their marks off the timeline (an unmute puts them back),
and "on ... Only" mutes that kind about that one thing, not the same kind about another."""

from app.session import alert_name
from tests.app.test_window import TIMEOUT, script
from tests.widgets.test_alerts_fold_and_mute import texts

# both ReLUs dead from the start: the dead-ReLU alert about each (and the vanishing gradient behind them), three marks
# on the timeline
TWO_DEAD = """
    import engine, engine.nn as nn, engine.nn.functional as F
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = engine.optim.SGD(model.parameters(), lr=1e-3)
    x, y = engine.randn(16, 4), engine.randint(0, 2, (16,))
    with engine.no_grad():
        model[0].bias.fill_(-100.0)
        model[2].bias.fill_(-100.0)
    for i in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
"""


def menu_of(panel, row: int) -> dict:
    return {a.text(): a for a in panel.context_menu(panel.topLevelItem(row)).actions() if a.text()}


def test_muted_alerts_leave_the_timeline_and_a_kind_muted_on_one_layer_only_mutes_that_one(qtbot, window, tmp_path):
    window.set_stop_on_alerts("none")
    window.run_script(script(tmp_path, "dead.py", TWO_DEAD), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None and window.alerts_panel.topLevelItemCount() == 3,
                    timeout=TIMEOUT)
    panel, marks = window.alerts_panel, lambda: window.timeline.view.markers("alert").size
    assert texts(panel, 1) == ["dead ReLU", "dead ReLU", "vanishing gradient"] and marks() == 3
    menu = menu_of(panel, 0)
    # the menu says which: the kind everywhere, or the kind about this row's layer only
    assert list(menu) == ["Mute \u201cdead ReLU\u201d Everywhere",
                          "Mute \u201cdead ReLU\u201d on relu in Sequential.1 Only",
                          "Unmute All"]
    menu["Mute \u201cdead ReLU\u201d on relu in Sequential.1 Only"].trigger()
    assert texts(panel, 1)[:2] == ["dead ReLU (muted)", "dead ReLU"]  # the other layer's is not muted
    assert marks() == 2  # and its mark stays
    assert window.session.mutes.hides("dead_relu", "Sequential.1/relu:0")
    assert not window.session.mutes.hides("dead_relu", "Sequential.3/relu:0")
    menu_of(panel, 1)["Mute \u201cdead ReLU\u201d Everywhere"].trigger()
    assert texts(panel, 1) == ["dead ReLU (muted)", "dead ReLU (muted)", "vanishing gradient"] and marks() == 1
    assert "Muted everywhere" in panel.detail_text()
    menu = menu_of(panel, 0)
    assert not menu["Unmute \u201cdead ReLU\u201d on relu in Sequential.1"].isEnabled()  # muted with the rest
    menu["Unmute \u201cdead ReLU\u201d Everywhere"].trigger()
    assert marks() == 2  # the layer muted on its own stays muted
    menu_of(panel, 0)["Unmute All"].trigger()
    assert marks() == 3 and alert_name(window.session.alerts[0]) == "dead ReLU"  # back on unmute
