"""While a run goes on freely, a growing graph is rebuilt at a rate its cost allows; at a stop it is whole."""

import time

import engine
import engine.nn as nn
from tests.app.graphs import sgd_steps
from tests.app.test_window import TIMEOUT, paused


class Slow(nn.Linear):
    """A linear layer that takes a while, as a big one does: the window sees the graph grow over many frames."""

    def forward(self, x):
        time.sleep(0.01)
        return super().forward(x)


def grow(steps: int = 3):
    """A model whose graph grows op by op through its first iteration: 20 slow layers in a row."""
    sgd_steps(nn.Sequential(*[Slow(6, 6) for _ in range(20)]), engine.randn(4, 6), steps, lr=0.01)


def test_a_free_run_rebuilds_the_graph_at_its_pace_and_a_stop_shows_it_whole(qtbot, make_window, monkeypatch):
    # a 900-node LSTM rebuilt its graph (view, layout, items) at every frame while its first iterations grew,
    # and took 4 s an iteration instead of half a second
    import app.graph_presenter
    import app.window

    monkeypatch.setattr(app.window, "STRUCTURE_WAIT", 1e6, raising=False)  # one rebuild, then none until a stop
    rebuilds = []
    refresh = app.graph_presenter.GraphPresenter.refresh
    monkeypatch.setattr(app.graph_presenter.GraphPresenter, "refresh",
                        lambda self: (rebuilds.append(1), refresh(self)))
    window = make_window()
    window.run_function(grow, "grow")
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.session.debugger.add_breakpoint(engine.debug.Breakpoint.iteration(2))
    before = len(rebuilds)
    window.command("resume")
    qtbot.waitUntil(lambda: paused(window) and window.session.iteration == 2, timeout=TIMEOUT)
    during = len(rebuilds) - before
    assert during <= 2  # the first change of the run, and the stop
    view = window.canvas.view
    assert sum(1 for label in view.label if label == "linear") == 20  # the stop shows every op of the graph
