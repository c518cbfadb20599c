"""The Alerts panel folds an alert raised again into its first row, and its context menu mutes a kind everywhere,
or a kind about one thing only: muted rows stay listed, greyed, and the panel tells the session
(which stops at none of them)."""

from engine.debug.alert_folds import Mutes
from engine.events import AlertEvent
from tests.shots import shown
from widgets.alerts_panel import AlertsPanel
from widgets.theme import MUTED_TEXT, pick

FADING = ("gradient norm of '{key}' is 9.9e-08, below 1e-07 (against 1.3 at '36.weight'), in layer '1', iteration "
          "{it}: the gradient fades on its way back through the layers. Add residual connections")


def vanishing(seq: int, iteration: int, key: str = "1.weight") -> AlertEvent:
    return AlertEvent(seq, "vanishing_grad", FADING.format(key=key, it=iteration), "", key, "", 0, iteration, "", 0,
                      "", 9.9e-8)


def not_shuffled(seq: int) -> AlertEvent:
    return AlertEvent(seq, "one_class_batches", "9 of the last 10 batches held a single class, iteration 9: shuffle",
                      "getitem", "getitem:1", "", 0, 9, "", 0, "", 9.0)


LONG_RUN = [not_shuffled(1), *(vanishing(10 + n, it) for n, it in
                               enumerate((1972, 2001, 2029, 2061, 2093, 2189, 2221, 2253)))]


EVERYWHERE = "Mute \u201cvanishing gradient\u201d Everywhere"
ONLY_HERE = "Mute \u201cvanishing gradient\u201d on 1.weight Only"


def texts(panel, col: int) -> list[str]:
    return [panel.topLevelItem(i).text(col) for i in range(panel.topLevelItemCount())]


def test_the_same_alert_raised_again_is_counted_on_its_first_row(qtbot):
    # a long run listed the vanishing gradient of '1.weight' eight times, thirty iterations apart
    panel = shown(qtbot, AlertsPanel(), 480, 260)
    panel.add_alerts(LONG_RUN)
    assert texts(panel, 0) == ["9", "1972 \u00d78"] and texts(panel, 2) == ["getitem", "1.weight"]
    assert "raised 8 times, the last at iteration 2253" in panel.topLevelItem(1).toolTip(0)
    assert panel.show_at(15) and panel.list.currentItem() is panel.topLevelItem(1)  # a repeat's timeline mark
    assert panel.detail_text().endswith("Raised 8 times, the last at iteration 2253.")
    panel.add_alerts([vanishing(30, 2300, key="0.weight")])  # about another parameter: a row of its own
    assert texts(panel, 0) == ["9", "1972 \u00d78", "2300"]


def test_a_kind_or_a_parameter_muted_from_the_context_menu_is_greyed_and_kept_for_the_session(qtbot):
    panel = shown(qtbot, AlertsPanel(), 480, 260)
    panel.add_alerts(LONG_RUN)
    told = []
    panel.mutesChanged.connect(told.append)
    row = panel.topLevelItem(1)
    menu = {a.text(): a for a in panel.context_menu(row).actions() if a.text()}
    assert list(menu) == [EVERYWHERE, ONLY_HERE, "Unmute All"]
    assert not menu["Unmute All"].isEnabled()
    menu[EVERYWHERE].trigger()
    assert told == [Mutes(kinds=frozenset({"vanishing_grad"}))]
    assert texts(panel, 1) == ["not shuffled", "vanishing gradient (muted)"]
    assert row.foreground(3).color().name() == pick(MUTED_TEXT, panel.palette()) and row.font(3).italic()
    assert panel.topLevelItem(0).foreground(3).color().name() != pick(MUTED_TEXT, panel.palette())
    panel.list.setCurrentItem(row)
    assert "Muted everywhere: it stops no run and leaves no timeline mark (right-click to unmute)." in \
        panel.detail_text()
    panel.clear()  # a restart: the mutes stay
    panel.add_alerts([vanishing(40, 3)])
    assert texts(panel, 1) == ["vanishing gradient (muted)"]
    menu = {a.text(): a for a in panel.context_menu(panel.topLevelItem(0)).actions() if a.text()}
    assert not menu[ONLY_HERE].isEnabled()  # muted everywhere: on 1.weight with the rest
    menu["Unmute \u201cvanishing gradient\u201d Everywhere"].trigger()
    {a.text(): a for a in panel.context_menu(panel.topLevelItem(0)).actions() if a.text()}[ONLY_HERE].trigger()
    # the kind on one parameter: the same kind on another is not muted, nor another kind
    panel.add_alerts([vanishing(41, 5, key="0.weight"), AlertEvent(43, "tiny_update", "update of '1.weight' tiny", "",
                                                                   "1.weight", "", 0, 6, "", 0, "", 1e-9)])
    assert told[-1] == Mutes(pairs=frozenset({("vanishing_grad", "1.weight")}))
    assert texts(panel, 1)[:2] == ["vanishing gradient (muted)", "vanishing gradient"]
    assert "(muted)" not in texts(panel, 1)[2]
    assert "Muted on 1.weight" in panel.detail_text()
    {a.text(): a for a in panel.context_menu(None).actions() if a.text()}["Unmute All"].trigger()
    assert told[-1] == Mutes() and texts(panel, 1)[:2] == ["vanishing gradient", "vanishing gradient"]
