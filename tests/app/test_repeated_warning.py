"""An (N, 1) output against (N,) targets in mse_loss, run in the window: the Alerts panel says what is wrong and what
to do, once, and the engine's warning shows once in the Output, as `python script.py` prints it, not at every
iteration (the window's plots change the warning filters many times a second, which clears Python's memory of the
warnings it has shown)."""

import sys
import threading
import warnings

import pytest

from app.script_io import capture_output, release_output
from tests.app.test_window import TIMEOUT, script

BROADCAST = """
    import engine, engine.nn as nn, engine.nn.functional as F
    engine.manual_seed(0)
    x = engine.randn(32, 4)
    y = x[:, 0] * 2 - x[:, 1]
    model = nn.Linear(4, 1)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    for step in range(12):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
"""
WARNED = "UserWarning: mse_loss: target shape (32,) differs from input shape (32, 1)"


@pytest.fixture
def printed(monkeypatch):
    """Warnings written to sys.stderr, as Python shows them: pytest records them in their place."""
    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    monkeypatch.setattr(warnings, "showwarning", show)


def test_a_loss_whose_shapes_broadcast_is_one_alert_and_its_warning_one_line_of_output(qtbot, make_window, tmp_path,
                                                                                       printed):
    window = make_window()
    window.set_stop_on_alerts("none")
    assert window.run_script(script(tmp_path, "bcast.py", BROADCAST), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    panel = window.alerts_panel
    qtbot.waitUntil(lambda: panel.topLevelItemCount() == 1, timeout=TIMEOUT)
    row = panel.topLevelItem(0)
    assert [row.text(c) for c in range(3)] == ["0", "loss shapes broadcast", "mse_loss"]
    found, advice = panel.detail_text().split("\n")  # what was found, and under it what follows and what to do
    assert found == ("'mse_loss' (mse_loss:0) at bcast.py:10 (loss = F.mse_loss(model(x), y)) takes an input of shape "
                     "(32, 1) and targets of shape (32,), iteration 0")
    assert advice.startswith("they broadcast to (32, 32), so every output is compared with the targets of every "
                             "sample, not only its own")
    assert advice.endswith("Pass output.squeeze(1) (or target.unsqueeze(1)), so that the shapes match")
    qtbot.waitUntil(lambda: "Finished" in window.output.text(), timeout=TIMEOUT)
    assert window.output.text().count(WARNED) == 1


def warned_in_runs(action: str, runs: int = 1, iterations: int = 3) -> list[str]:
    """What a captured thread's warning, from one line at each of `iterations`, wrote to the output of each of `runs`
    runs, the filters changed between iterations as the window's plots change them; `action`: the filter's."""
    outputs = []

    def run():
        out = []
        capture_output(threading.get_ident(), lambda stream, text: out.append(text))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter(action)
                for _ in range(iterations):
                    warnings.warn("target shape (8,) differs from input shape (8, 1)", UserWarning, stacklevel=1)
                    with warnings.catch_warnings():  # what pyqtgraph does as it draws, on the GUI thread
                        pass
        finally:
            release_output(threading.get_ident())
        outputs.append("".join(out))

    for _ in range(runs):
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(10)
    return [out.count("UserWarning: target shape (8,)") for out in outputs]


def test_a_warning_shows_once_per_run_and_line_as_pythons_default_filter_shows_it(printed, capsys):
    assert warned_in_runs("default", runs=2) == [1, 1]  # a new run shows it again
    assert warned_in_runs("always") == [3]  # a filter that asks for every one gets every one
    # Python's own: once per line, and again after each change of the filters
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for changed in (False, False, True, False):
            if changed:
                warnings.simplefilter("default")
            warnings.warn("once per line", UserWarning, stacklevel=1)
    assert capsys.readouterr().err.count("UserWarning: once per line") == 2
