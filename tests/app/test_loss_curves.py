"""A curve per loss in the session and the window, live and in replay: a GAN's errD and errG, the sum of
accumulated micro-batch losses, one loss as before."""

import json
import textwrap

import pytest

import engine.tape
from app.replay import ReplaySession
from app.session import LiveSession, Target
from tests.app.test_window import TIMEOUT, make_window

GAN = """
    import json, sys
    import engine, engine.nn as nn

    engine.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    criterion = nn.BCEWithLogitsLoss()
    optD = engine.optim.Adam(D.parameters(), lr=2e-3)
    optG = engine.optim.Adam(G.parameters(), lr=2e-3)
    ones, zeros = engine.ones(32, 1), engine.zeros(32, 1)
    seen = []
    for it in range({steps}):
        real = engine.randn(32, 2) * 0.5 + 1.0
        fake = G(engine.randn(32, 4))
        optD.zero_grad()
        errD = criterion(D(real), ones) + criterion(D(fake.detach()), zeros)
        errD.backward()
        optD.step()
        optG.zero_grad()
        errG = criterion(D(fake), ones)
        errG.backward()
        optG.step()
        seen.append((errD.item(), errG.item()))
    print(json.dumps(seen))
"""

ACCUMULATE = """
    import json
    import numpy as np
    import engine, engine.nn as nn, engine.nn.functional as F

    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(32, 5), engine.tensor(np.arange(32) % 3)
    full = []
    for it in range(4):
        with engine.no_grad():
            full.append(F.cross_entropy(model(x), y).item())  # the whole batch's loss, by hand
        opt.zero_grad()
        for k in range(4):
            loss = F.cross_entropy(model(x[8 * k:8 * k + 8]), y[8 * k:8 * k + 8])
            loss = loss / 4
            loss.backward()
        opt.step()
    print(json.dumps(full))
"""


def write(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def run_live(qtbot, sessions, path: str, record: str | None = None) -> LiveSession:
    s = LiveSession(Target.script(path), pause_on_entry=False, record=record).start()
    sessions.append(s)
    printed = []

    def done():
        change = s.drain()
        printed.extend(c.text for c in (change.output if change else ()) if c.stream == "stdout")
        assert s.ended is not None
    qtbot.waitUntil(done, timeout=TIMEOUT)
    assert s.status == "finished", s.ended
    s.printed = json.loads("".join(printed))
    return s


def test_a_live_gan_has_an_errD_and_an_errG_curve_and_its_replay_the_same(qtbot, sessions, tmp_path):
    tape = str(tmp_path / "gan.tape")
    s = run_live(qtbot, sessions, write(tmp_path, "gan.py", GAN.format(steps=6)), record=tape)
    curves = s.loss_curves()
    assert list(curves) == ["errD", "errG"]
    its_d, errD = curves["errD"]
    its_g, errG = curves["errG"]
    # iteration by iteration the values the script printed, each loop one iteration from the first on (its first
    # loop spanned two while the debugger learnt the order of the two optimizers' steps)
    assert errD == pytest.approx([d for d, _ in s.printed], abs=1e-6)
    assert errG == pytest.approx([g for _, g in s.printed], abs=1e-6)
    assert its_d == its_g == list(range(len(s.printed)))
    assert s.loss_curve() == curves["errD"] and s.losses == dict(zip(its_d, errD))
    replayed = ReplaySession(tape)
    sessions.append(replayed)
    assert replayed.loss_curves() == curves


def test_accumulated_quarter_losses_plot_the_whole_batchs_loss(qtbot, sessions, tmp_path):
    s = run_live(qtbot, sessions, write(tmp_path, "accumulate.py", ACCUMULATE))
    assert list(s.loss_curves()) == ["loss"]
    iterations, losses = s.loss_curve()
    assert iterations == [0, 1, 2, 3]
    assert losses == pytest.approx(s.printed, abs=1e-6)  # not the first micro-batch's loss / 4


def test_the_window_draws_a_legend_for_a_gan_and_none_for_one_loss(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    assert window.run_script(write(tmp_path, "gan.py", GAN.format(steps=5)), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None and window.loss_plot.labels() == ["errD", "errG"],
                    timeout=TIMEOUT)
    assert window.training_plots.loss_labels() == ["errD", "errG"]
    assert window.loss_plot.colour("errD") != window.loss_plot.colour("errG")
    assert len(window.loss_plot.series("errG")[0]) == 5
    assert window.run_script(write(tmp_path, "accumulate.py", ACCUMULATE), run=True)  # one loss: as before
    qtbot.waitUntil(lambda: window.session.ended is not None and window.loss_plot.points == 4, timeout=TIMEOUT)
    assert window.loss_plot.labels() == [] and window.training_plots.loss_labels() == []
    assert not window.loss_plot.plotItem.titleLabel.isVisible()


def test_a_replayed_gan_tape_shows_both_curves_with_a_cursor(qtbot, tmp_path):
    from app.cli import main

    script = write(tmp_path, "gan.py", GAN.format(steps=4))
    tape = str(tmp_path / "gan.tape")
    assert main(["record", script, "-o", tape, "--capture", "summary"]) == 0
    window = make_window(qtbot, tmp_path)
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    assert window.loss_plot.labels() == ["errD", "errG"] == window.training_plots.loss_labels()
    with engine.tape.open(tape) as t:
        assert list(t.loss_curves()) == ["errD", "errG"] and t.losses() == t.loss_curves()["errD"]
    assert window.loss_plot.cursor.isVisible() and window.loss_plot.cursor.value() == window.session.iteration
