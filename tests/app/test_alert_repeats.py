"""Alerts raised again stop a run once, muted ones never; the record summary calls an optimizer an optimizer; a click
on an alert of an optimizer step shows the line it names."""

from app.cli import main
from app.replay import ReplaySession
from app.session import LiveSession, Target
from engine.debug.alert_folds import Mutes
from tests.app.test_session import drained, live, write
from tests.app.test_window import TIMEOUT, paused

# a ReLU dead at iteration 0 and again at 25 (its check clears in between): each raises the dead-ReLU alert and the
# vanishing gradient behind it twice
REPEAT = """
    import engine, engine.nn as nn, engine.nn.functional as F
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = engine.optim.SGD(model.parameters(), lr=1e-3)
    x, y = engine.randn(16, 4), engine.randint(0, 2, (16,))
    for i in range(30):
        with engine.no_grad():
            model[0].bias.fill_(-100.0 if i in (0, 25) else 0.0)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
"""


def stops_of(qtbot, s) -> list[tuple[str, int]]:
    """(kind, iteration) of each alert the run stopped at, continuing after each until it ends."""
    stops = []
    while True:
        drained(qtbot, s, lambda: s.status == "paused" or s.ended is not None)
        if s.ended is not None:
            return stops
        stops.append((s.stop_alert.kind, s.stop_alert.iteration))
        s.command("resume")
        drained(qtbot, s, lambda: s.status != "paused" or s.ended is not None)


def test_an_alert_raised_again_stops_the_run_once_and_a_muted_kind_never(qtbot, sessions, tmp_path):
    # with every alert stopping, the same vanishing-gradient alert of a long run stopped it eight times
    path = write(tmp_path, "repeat.py", REPEAT)
    s = live(sessions, Target.script(path), pause_on_entry=False, record=str(tmp_path / "run.tape"))
    assert stops_of(qtbot, s) == [("dead_relu", 0), ("vanishing_grad", 0)]
    assert [(a.kind, a.iteration) for a in s.alerts] == [("dead_relu", 0), ("vanishing_grad", 0),
                                                         ("dead_relu", 25), ("vanishing_grad", 25)]
    muted = LiveSession(Target.script(path), pause_on_entry=False)
    muted.mutes = Mutes(kinds=frozenset({"dead_relu"}))
    sessions.append(muted.start())
    assert stops_of(qtbot, muted) == [("vanishing_grad", 0)]
    assert len(muted.alerts) == 4  # listed all the same
    # a replay's Continue stops where the live run did
    replayed = ReplaySession(str(tmp_path / "run.tape"))
    sessions.append(replayed)
    drained(qtbot, replayed, lambda: replayed.status == "finished")
    replayed.seek(replayed.first_seq)
    drained(qtbot, replayed, lambda: replayed.status == "paused")
    stops = []
    while replayed.status != "finished":
        replayed.command("resume")
        drained(qtbot, replayed, lambda: replayed.status in ("paused", "finished"))
        if replayed.stop_alert is not None and replayed.status == "paused":
            stops.append((replayed.stop_alert.kind, replayed.stop_alert.iteration))
    assert stops == [("dead_relu", 0), ("vanishing_grad", 0)]


def test_the_record_summary_calls_an_optimizer_an_optimizer(tmp_path, capsys):
    # "learning rate 0  first at iteration 29  parameter 'SGD'"
    path = write(tmp_path, "zeroed.py", """
        import engine, engine.nn as nn, engine.nn.functional as F
        model = nn.Linear(4, 2)
        opt = engine.optim.SGD(model.parameters(), lr=0.1)
        sched = engine.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 if s < 3 else 0.0)
        x, y = engine.randn(8, 4), engine.randint(0, 2, (8,))
        for i in range(8):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
    """)
    assert main(["record", path, "-o", str(tmp_path / "run.tape")]) == 0
    err = capsys.readouterr().err
    assert "learning rate 0  first at iteration 4  optimizer 'SGD' (zeroed.py:5)" in err


def zeroed_warmup():
    import engine
    import engine.nn as nn
    import engine.nn.functional as F
    model = nn.Linear(4, 2)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    sched = engine.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 if s < 3 else 0.0)  # the line to show
    x, y = engine.randn(8, 4), engine.randint(0, 2, (8,))
    for _ in range(8):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()


def test_clicking_a_step_alert_shows_the_line_it_names(qtbot, make_window, tmp_path):
    # the learning-rate alert named its lambda's line, and a click showed the opt.step() line
    window = make_window()
    window.run_function(zeroed_warmup, "warmup", __file__)
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("resume")
    qtbot.waitUntil(lambda: window.alerts_panel.topLevelItemCount() > 0, timeout=TIMEOUT)
    assert window.session.alerts[0].kind == "lr_zero"
    window.alerts_panel.itemClicked.emit(window.alerts_panel.topLevelItem(0), 0)
    assert "lambda s: 1.0 if s < 3 else 0.0" in window.source_view.current_line_text()
