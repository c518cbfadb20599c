"""A live run saved as a tape from the window (no tape recorded it) holds its parameters: snapshots kept as a
recording takes them, and their values as the last optimizer step left them; the save question says so, `info`
lists them, and a replay of the tape shows a weight's values."""

import numpy as np
import pytest

import app.unsaved
import engine
import engine.tape
from app import cli
from app.session import LiveSession, Target
from tests.app.test_quit_question import question
from tests.app.test_save_unrecorded_run import save
from tests.app.test_script_dialog import focus
from tests.app.test_session import drained
from tests.app.test_window import TIMEOUT, script
from tests.engine.tape.helpers import MLP

TRAIN = """
    import sys
    import numpy as np
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

    engine.manual_seed(0)
    model = MLP()
    opt = engine.optim.Adam(model.parameters(), lr=0.05)
    x, y = engine.randn(16, 4), engine.randint(0, 3, (16,))
    for step in range(13):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    np.savez(sys.argv[1], **{name: p.array for name, p in model.named_parameters()})  # the run's own copy
"""


def trained(steps: int):
    """A function to debug: `steps` Adam steps of an MLP; the model and its arrays after each step, kept."""
    kept = {"after": []}

    def train():
        engine.manual_seed(0)
        model = kept["model"] = MLP(6, 5, 3)
        opt = engine.optim.Adam(model.parameters(), lr=0.05)
        x, y = engine.randn(8, 6), engine.tensor([0, 1, 2, 1, 0, 2, 1, 0])
        for _ in range(steps):
            engine.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            opt.zero_grad()
            kept["after"].append({name: p.array.copy() for name, p in model.named_parameters()})
    return train, kept


def test_a_saved_live_run_holds_the_parameters_the_run_ended_with(qtbot, sessions, tmp_path, capsys):
    train, kept = trained(14)
    session = LiveSession(Target.of_function(train, "mlp"), pause_on_entry=False).start()
    sessions.append(session)
    drained(qtbot, session, lambda: session.ended is not None)
    path = str(tmp_path / "saved.tape")
    session.save_kept(path)
    model = kept["model"]
    with engine.tape.open(path) as tape:
        last = tape.parameters(iteration=13)
        assert sorted(last) == sorted(name for name, _ in model.named_parameters())
        for name, p in model.named_parameters():
            assert last[name].iteration == 13 and last[name].after_step
            np.testing.assert_array_equal(last[name].value, p.array)
            a = p.array.astype(np.float64)
            assert last[name].summary.norm == pytest.approx(float(np.linalg.norm(a)), rel=1e-6)
            tenth = tape.parameter(name, iteration=10)  # as the step of iteration 10 left it
            assert tenth.iteration == 10
            assert tenth.summary.mean == pytest.approx(float(kept["after"][10][name].astype(np.float64).mean()),
                                                       rel=1e-5, abs=1e-7)
    assert cli.main(["info", path]) == 0
    assert "  parameters: 16 snapshots of 4 parameters" in capsys.readouterr().out.splitlines()
    held = session.kept_parameters  # what the save question said it would hold
    assert held.end and held.every == 10 and held.snapshots == 3  # before the first forward, steps 0 and 10


@pytest.fixture
def window(qtbot, make_window, monkeypatch, tmp_path):
    window = make_window((1400, 900))
    focus(qtbot, window)
    chosen = str(tmp_path / "kept")  # what the person types in the save dialog (".tape" is added)
    monkeypatch.setattr(app.unsaved.QFileDialog, "getSaveFileName", lambda *args: (chosen, "Tapes (*.tape)"))
    return window


def test_the_question_says_what_the_tape_holds_and_its_replay_shows_a_weights_values(qtbot, window, tmp_path):
    ends = str(tmp_path / "ends.npz")
    window.set_stop_on_alerts("none")
    window.run_script(script(tmp_path, "train.py", TRAIN), (ends,), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    window.actions["open_demo"].trigger()
    shown = question(qtbot, window)
    assert ("It holds the parameters as the last optimizer step left them, with their values, and snapshots of "
            "them every 10 iterations before.") in shown.informativeText()
    assert "without the snapshots" not in shown.informativeText()
    save(qtbot, shown)
    qtbot.waitUntil(lambda: window.session.mode == "live" and window.session.target.kind == "demo", timeout=TIMEOUT)
    assert window.open_tape(str(tmp_path / "kept.tape"))
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    view = window.canvas.view
    window.canvas.select(next(key for key, text in zip(view.keys, view.label) if text == "fc1.weight"))
    inspector = window.inspector
    assert "value: after the optimizer step of iteration 12 (recorded every 10 iterations)" in inspector.meta.text()
    with np.load(ends) as final:
        final_weight = final["fc1.weight"]
    weight = final_weight.astype(np.float64)
    for stat, expected in (("L2 norm", np.linalg.norm(weight)), ("mean", weight.mean()), ("min", weight.min()),
                           ("max", weight.max())):
        assert float(inspector.stat_text(stat, "value")) == pytest.approx(float(expected), rel=1e-4, abs=1e-7), stat
    # the tape holds the end's raw values, though it holds no other tensor's: they load (the heatmap, Values, Copy)
    qtbot.waitUntil(lambda: "value" in inspector.arrays(), timeout=TIMEOUT)
    np.testing.assert_array_equal(inspector.arrays()["value"], final_weight)
    assert inspector.load_button.isEnabled()
    window.canvas.select(next(key for key, text in zip(view.keys, view.label) if text == "linear"))
    assert not inspector.load_button.isEnabled()  # an op's output: the tape holds no value of it
