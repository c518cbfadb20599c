"""The inspector shows one op at one moment: a click on an alert shows the op's output and gradient of the alert's
iteration, never the output of a later pass (an evaluation on the whole set) beside a gradient of another."""

import textwrap

import pytest

import app.session
from app.cli import main
from engine.debug import BackwardRecord, OpRecord
from widgets.tensor_inspector import GRAD, VALUE

TIMEOUT = 60_000  # ms

# a ReLU MLP at lr=10 on batches of 32 (its ReLUs die in iteration 2), then an accuracy on all 128 rows under no_grad
SCRIPT = """
import engine
import engine.nn as nn
import engine.nn.functional as F

engine.manual_seed(0)
x = engine.rand(128, 784) * 255
y = engine.randint(0, 10, (128,))
model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
opt = engine.optim.SGD(model.parameters(), lr=10.0, momentum=0.9)
for step in range(8):
    rows = slice(step % 4 * 32, (step % 4 + 1) * 32)
    loss = F.cross_entropy(model(x[rows] / 255.0), y[rows])
    opt.zero_grad()
    loss.backward()
    opt.step()
with engine.no_grad():
    model.eval()
    acc = (model(x / 255.0).argmax(1) == y).float().mean().item()
"""
RELU = "Sequential.1/relu:0"


@pytest.fixture
def window(make_window):
    w = make_window()
    w.set_stop_on_alerts("none")  # run to the end: the alerts are clicked afterwards
    return w


def finished(qtbot, window, tmp_path):
    path = tmp_path / "lr10.py"
    path.write_text(textwrap.dedent(SCRIPT))
    assert window.run_script(str(path), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: any(a.kind == "dead_relu" for a in window.session.alerts), timeout=TIMEOUT)
    return window.session


def click_dead_relu(qtbot, window):
    panel = window.alerts_panel
    row = next(panel.topLevelItem(i) for i in range(panel.topLevelItemCount())
               if panel.topLevelItem(i).text(1) == "dead ReLU")
    panel.itemClicked.emit(row, 0)  # what a click on the row does
    window.panels.worker.wait(10_000)  # the values the selection asked for have landed
    qtbot.wait(50)  # their queued result, delivered to the GUI thread


def headers(window) -> list[str]:
    stats = window.inspector.stats
    return [stats.horizontalHeaderItem(i).toolTip() for i in range(stats.columnCount()) if not stats.isColumnHidden(i)]


def test_an_alerts_op_shows_its_output_and_gradient_of_the_alerts_iteration(qtbot, window, tmp_path):
    # the value column showed the last pass (the accuracy on 128 rows: 128x64, 8,192 elements) and the gradient
    # column the last training step's (32x64), neither labelled, beside an alert about iteration 2
    session = finished(qtbot, window, tmp_path)
    alert = next(a for a in session.alerts if a.kind == "dead_relu")
    assert alert.key == RELU and alert.iteration == 2
    click_dead_relu(qtbot, window)
    op = session.by_seq[alert.forward_seq]
    back = next(r for r in session.by_seq.values()
                if r.__class__ is BackwardRecord and r.event.forward_seq == op.seq)
    assert op.__class__ is OpRecord and back.iteration == op.iteration == 2
    inspector = window.inspector
    meta = inspector.meta.text()
    assert "32\u00d764" in meta and "2,048 elements" in meta and "128" not in meta
    assert f"as recorded at event {window.timeline.event_number(op.seq):,}, iteration 2" in meta
    assert headers(window) == ["value (iteration 2)", "gradient (iteration 2)"]
    for column, summary in ((VALUE, op.summary), (GRAD, back.grad_output)):
        assert float(inspector.stat_text("max", column)) == pytest.approx(summary.max, rel=1e-5)
        assert float(inspector.stat_text("L2 norm", column)) == pytest.approx(summary.norm, rel=1e-5)
    # values: those of iteration 2 where the value cache still holds them, else a note saying they are gone
    arrays = inspector.arrays()
    if arrays:
        assert arrays[VALUE].shape == (32, 64) and arrays[GRAD].shape == (32, 64)
    else:
        assert inspector.status.text() == "Values of iteration 2 are no longer kept"


def test_the_last_pass_of_an_op_shows_no_gradient_of_another_pass(qtbot, window, tmp_path):
    # selecting the ReLU after the run fetched the last training step's gradient beside the evaluation's output
    session = finished(qtbot, window, tmp_path)
    window.canvas.select(RELU)
    window.panels.worker.wait(10_000)
    qtbot.wait(50)
    inspector = window.inspector
    assert "128\u00d764" in inspector.meta.text() and inspector.columns() == [VALUE]
    assert "no gradient for this output (the last flowed in iteration 7)" in inspector.meta.text()
    assert set(inspector.arrays()) <= {VALUE}
    assert session.backward_of[RELU].iteration < session.node_info(RELU).iteration


def test_an_alert_whose_iteration_is_no_longer_kept_says_what_is_shown_instead(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr(app.session, "HISTORY", 40)  # records a live run keeps: iteration 2's are gone by the end
    session = finished(qtbot, window, tmp_path)
    alert = next(a for a in session.alerts if a.kind == "dead_relu")
    assert alert.forward_seq not in session.by_seq
    click_dead_relu(qtbot, window)
    last = session.node_info(RELU).iteration
    assert "iteration 2 is no longer kept" in window.inspector.meta.text()
    assert f"showing iteration {last}" in window.inspector.meta.text()


def test_a_replays_alert_shows_the_gradient_of_the_alerts_iteration_too(qtbot, window, tmp_path):
    # a replay seeks to the alert's op, where the gradient the cursor knows is the iteration before's: the alert
    # is about its iteration, whose gradient the tape holds a little further on
    script, tape = tmp_path / "lr10.py", tmp_path / "lr10.tape"
    script.write_text(textwrap.dedent(SCRIPT))
    assert main(["record", str(script), "-o", str(tape)]) == 0
    assert window.open_tape(str(tape))
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    session = window.session
    alert = next(a for a in session.recorded_alerts if a.kind == "dead_relu")
    click_dead_relu(qtbot, window)
    qtbot.waitUntil(lambda: session.status == "paused" and session.cursor == alert.forward_seq, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.canvas.selected_key == RELU, timeout=TIMEOUT)
    assert headers(window) == ["value (iteration 2)", "gradient (iteration 2)"]
    number = window.timeline.event_number(alert.forward_seq)  # as the session counts its events
    assert f"as recorded at event {number:,}, iteration 2" in window.inspector.meta.text()
    back = next(r for r in session.tape.records(alert.forward_seq)
                if r.__class__ is BackwardRecord and r.event.forward_seq == alert.forward_seq)
    assert float(window.inspector.stat_text("L2 norm", GRAD)) == pytest.approx(back.grad_output.norm, rel=1e-5)
    window.command("step_over")  # on from the alert: the cursor's own view again
    qtbot.waitUntil(lambda: session.status == "paused" and session.cursor > alert.forward_seq, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "as recorded" not in window.inspector.meta.text(), timeout=TIMEOUT)
