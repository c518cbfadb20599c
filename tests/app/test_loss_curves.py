"""A curve per loss in the session and the window, live and in replay: a GAN's errD and errG, the sum of
accumulated micro-batch losses, one loss as before, and a validation loss computed under no_grad as a dashed
evaluation curve beside the training loss, valued as its line computes it (a sum over rows / the rows: the mean);
a chance line per loss that has a chance level, named by its curve and in its colour."""

import json
import math
import textwrap

import pytest

import engine.tape
from app.replay import ReplaySession
from app.session import LiveSession, Target
from tests.app.test_window import TIMEOUT

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


PLAIN = """
    import engine, engine.nn as nn, engine.nn.functional as F

    engine.manual_seed(0)
    model = nn.Linear(5, 3)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(16, 5), engine.randint(0, 3, (16,))
    for it in range(4):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    print("[]")
"""

EVALUATE = """
    import json
    import engine, engine.nn as nn, engine.nn.functional as F

    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    criterion = nn.CrossEntropyLoss()
    opt = engine.optim.Adam(model.parameters(), lr=1e-2)
    x, y = engine.randn(24, 6), engine.randint(0, 3, (24,))
    val = [(engine.randn(12, 6), engine.randint(0, 3, (12,))) for _ in range(4)]
    evaluated, trained = {{}}, []
    for it in range({steps}):
        if it % {every} == 0:  # before the step: the first evaluation comes before any training
            model.eval()
            val_loss = 0.0
            with engine.no_grad():
                for xv, yv in val:
                    val_loss += F.cross_entropy(model(xv), yv).item()
            evaluated[it] = val_loss / len(val)
            model.train()
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        trained.append(loss.item())
    print(json.dumps([trained, evaluated]))
"""

SUMMED = """
    import json
    import engine, engine.nn as nn, engine.nn.functional as F

    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = engine.optim.Adam(model.parameters(), lr=1e-2)
    x, y = engine.randn(24, 6), engine.randint(0, 3, (24,))
    xv, yv = engine.randn(64, 6), engine.randint(0, 3, (64,))
    evaluated = {}
    for it in range(6):
        if it % 2 == 0:
            with engine.no_grad():
                val_loss = F.cross_entropy(model(xv), yv, reduction="sum") / len(yv)
            evaluated[it] = val_loss.item()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    print(json.dumps(evaluated))
"""

TWO_TASKS = """
    import engine, engine.nn as nn, engine.nn.functional as F

    engine.manual_seed(0)
    body = nn.Sequential(nn.Linear(6, 32), nn.ReLU())
    head_cls, head_bin = nn.Linear(32, 10), nn.Linear(32, 1)
    opt = engine.optim.SGD([*body.parameters(), *head_cls.parameters(), *head_bin.parameters()], lr=0.05)
    x, y_cls, y_bin = engine.randn(64, 6), engine.randint(0, 10, (64,)), engine.randint(0, 2, (64,)).float()
    for it in range(5):
        opt.zero_grad()
        h = body(x)
        loss_cls = F.cross_entropy(head_cls(h), y_cls)
        loss_cls.backward(retain_graph=True)
        loss_bin = F.binary_cross_entropy_with_logits(head_bin(h)[:, 0], y_bin)
        loss_bin.backward()
        opt.step()
    print("[]")
"""


def write(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def run_live(qtbot, sessions, path: str, record: str | None = None, capture: str = "summary") -> LiveSession:
    s = LiveSession(Target.script(path), pause_on_entry=False, record=record, capture=capture).start()
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


def test_the_window_draws_a_legend_for_a_gan_and_none_for_one_loss(qtbot, make_window, tmp_path):
    window = make_window()
    assert window.run_script(write(tmp_path, "gan.py", GAN.format(steps=5)), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None and window.loss_plot.labels() == ["errD", "errG"],
                    timeout=TIMEOUT)
    assert window.training_plots.loss_labels() == ["errD", "errG"]
    assert window.loss_plot.colour("errD") != window.loss_plot.colour("errG")
    assert len(window.loss_plot.series("errG")[0]) == 5
    assert window.run_script(write(tmp_path, "plain.py", PLAIN), run=True)  # one loss: as before
    qtbot.waitUntil(lambda: window.session.ended is not None and window.loss_plot.points == 4, timeout=TIMEOUT)
    assert window.loss_plot.labels() == [] and window.training_plots.loss_labels() == []
    assert not window.loss_plot.plotItem.titleLabel.isVisible()


def test_a_replayed_gan_tape_shows_both_curves_with_a_cursor(qtbot, make_window, tmp_path):
    from app.cli import main

    script = write(tmp_path, "gan.py", GAN.format(steps=4))
    tape = str(tmp_path / "gan.tape")
    assert main(["record", script, "-o", tape, "--capture", "summary"]) == 0
    window = make_window()
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    assert window.loss_plot.labels() == ["errD", "errG"] == window.training_plots.loss_labels()
    with engine.tape.open(tape) as t:
        assert list(t.loss_curves()) == ["errD", "errG"] and t.losses() == t.loss_curves()["errD"]
    assert window.loss_plot.cursor.isVisible() and window.loss_plot.cursor.value() == window.session.iteration


def test_a_validation_loss_every_k_iterations_is_an_evaluation_curve_of_the_printed_means(qtbot, sessions, tmp_path):
    tape = str(tmp_path / "evaluate.tape")
    s = run_live(qtbot, sessions, write(tmp_path, "evaluate.py", EVALUATE.format(steps=30, every=10)), record=tape)
    trained, evaluated = s.printed
    curves = s.eval_loss_curves()
    assert list(curves) == ["val_loss"]  # `val_loss += F.cross_entropy(...).item()`: named by its target
    its, means = curves["val_loss"]
    assert its == [0, 10, 20] == [int(k) for k in evaluated]
    assert means == pytest.approx(list(evaluated.values()), abs=1e-6)  # each the mean of the 4 batches
    # the training curve is the training loss alone, and the first curve though the evaluation came first
    assert list(s.loss_curves()) == ["loss"] and s.loss_curve()[1] == pytest.approx(trained, abs=1e-6)
    assert s.losses == dict(zip(*s.loss_curve())) and s.loss_history.first_op.requires_grad
    replayed = ReplaySession(tape)
    sessions.append(replayed)
    assert replayed.eval_loss_curves() == curves and replayed.loss_curves() == s.loss_curves()
    assert replayed.losses == s.losses


def test_a_no_grad_loss_inside_the_training_iteration_is_an_evaluation_curve(qtbot, sessions, tmp_path):
    s = run_live(qtbot, sessions, write(tmp_path, "accumulate.py", ACCUMULATE))
    assert list(s.loss_curves()) == ["loss"]  # as without it: the accumulated micro-batch losses
    assert s.loss_curve()[1] == pytest.approx(s.printed, abs=1e-6)
    line = textwrap.dedent(ACCUMULATE).splitlines().index(
        "        full.append(F.cross_entropy(model(x), y).item())  # the whole batch's loss, by hand") + 1
    assert s.eval_loss_curves() == {f"cross_entropy @ accumulate.py:{line}": ([0, 1, 2, 3], pytest.approx(s.printed))}


def test_a_structure_capture_draws_no_evaluation_curve(qtbot, make_window, sessions, tmp_path):
    from app.cli import main

    script = write(tmp_path, "evaluate.py", EVALUATE.format(steps=6, every=3))
    s = run_live(qtbot, sessions, script, capture="structure")  # no summaries: no loss values
    assert s.eval_loss_curves() == {} and s.loss_curves() == {}
    tape = str(tmp_path / "structure.tape")
    assert main(["record", script, "-o", tape, "--capture", "structure"]) == 0
    window = make_window()
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    assert window.session.eval_loss_curves() == {} and window.loss_plot.points == 0
    assert window.loss_plot.labels() == [] and window.training_plots.loss_labels() == []


def test_the_window_draws_a_validation_loss_dashed_and_named_live_and_in_replay(qtbot, make_window, tmp_path):
    from app.cli import main

    script = write(tmp_path, "evaluate.py", EVALUATE.format(steps=12, every=4))
    window = make_window()
    assert window.run_script(script, run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None and window.loss_plot.points == 12, timeout=TIMEOUT)
    plot = window.loss_plot
    assert plot.labels() == ["loss", "val_loss (eval)"] == window.training_plots.loss_labels()
    assert plot.dashed("val_loss (eval)") and not plot.dashed("loss")
    assert plot.colour("val_loss (eval)") != plot.colour("loss")
    assert plot.series("val_loss (eval)")[0].tolist() == [0, 4, 8]
    assert window.training_plots.series("eval:val_loss")[0].tolist() == [0, 4, 8]
    live = {label: plot.series(label) for label in plot.labels()}
    tape = str(tmp_path / "evaluate.tape")
    assert main(["record", script, "-o", tape, "--capture", "summary"]) == 0
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    assert plot.labels() == ["loss", "val_loss (eval)"]
    for label, (x, y) in live.items():  # the replay draws what the live run drew
        assert plot.series(label)[0].tolist() == x.tolist() and plot.series(label)[1] == pytest.approx(y)


def test_a_validation_loss_summed_over_its_rows_and_divided_is_drawn_as_its_line_computes(qtbot, sessions, tmp_path):
    tape = str(tmp_path / "summed.tape")
    s = run_live(qtbot, sessions, write(tmp_path, "summed.py", SUMMED), record=tape)
    printed = {int(it): v for it, v in s.printed.items()}
    # the line's value, the mean over 64 rows: not the sum the loss op made (64x as large)
    assert s.eval_loss_curves() == {"val_loss": ([0, 2, 4], pytest.approx(list(printed.values()), abs=1e-6))}
    replayed = ReplaySession(tape)
    sessions.append(replayed)
    assert replayed.eval_loss_curves() == s.eval_loss_curves()


def chance_lines(window) -> list[dict[str, tuple[float, str]]]:
    """Of each loss plot: label -> (level on a linear axis, colour) of every chance line drawn."""
    plots = ((window.loss_plot.chances, window.loss_plot.log),
             (window.training_plots.chances, window.training_plots.loss_plot.getAxis("left").logMode))
    return [{line.text(): (10 ** line.value() if log else line.value(), line.pen.color().name())
             for line in chances.lines if line.isVisible()} for chances, log in plots]


def uniform_loss(classes: int, rows: int = 64, binary: bool = False) -> float:
    """PyTorch's loss of scores that give every class the same probability."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    if binary:
        return float(F.binary_cross_entropy_with_logits(torch.zeros(rows), (torch.arange(rows) % 2).float()))
    return float(F.cross_entropy(torch.zeros(rows, classes), torch.arange(rows) % classes))


def test_each_task_of_a_two_task_run_has_its_chance_line_in_its_colour_live_and_in_replay(qtbot, make_window, tmp_path):
    from app.cli import main

    script = write(tmp_path, "two_tasks.py", TWO_TASKS)
    window = make_window()
    assert window.run_script(script, run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None and window.loss_plot.points == 5, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: len(chance_lines(window)[0]) == 2, timeout=TIMEOUT)
    assert window.loss_plot.labels() == ["loss_cls", "loss_bin"]
    colours = {"loss_cls": window.loss_plot.colour("loss_cls"), "loss_bin": window.loss_plot.colour("loss_bin")}
    assert colours == {"loss_cls": window.training_plots.colour("loss"),
                       "loss_bin": window.training_plots.colour("loss:loss_bin")}
    expected = {"chance: loss_cls (10 classes)": (pytest.approx(uniform_loss(10), rel=1e-6), colours["loss_cls"]),
                "chance: loss_bin (2 classes)": (pytest.approx(uniform_loss(2, binary=True), rel=1e-6),
                                                 colours["loss_bin"])}
    assert chance_lines(window) == [expected, expected]  # ln 10 is not the 2-class head's chance, nor ln 2 the other's
    tape = str(tmp_path / "two_tasks.tape")
    assert main(["record", script, "-o", tape, "--capture", "summary"]) == 0
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    assert chance_lines(window) == [expected, expected]


def test_a_gans_chance_line_is_errGs_alone_errD_a_sum_of_two_losses_has_none(qtbot, make_window, tmp_path):
    window = make_window()
    assert window.run_script(write(tmp_path, "gan.py", GAN.format(steps=4)), run=True)
    qtbot.waitUntil(lambda: window.session.ended is not None and window.loss_plot.labels() == ["errD", "errG"],
                    timeout=TIMEOUT)
    qtbot.waitUntil(lambda: chance_lines(window)[0] != {}, timeout=TIMEOUT)
    # errD = criterion(real) + criterion(fake): backward() starts from their sum, whose chance is no ln 2
    level = (pytest.approx(math.log(2), rel=1e-6), window.loss_plot.colour("errG"))
    assert chance_lines(window) == [{"chance: errG (2 classes)": level}] * 2
    assert window.run_script(write(tmp_path, "plain.py", PLAIN), run=True)  # one loss: as before, grey and unnamed
    qtbot.waitUntil(lambda: window.session.ended is not None and window.loss_plot.points == 4, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "chance (3 classes)" in chance_lines(window)[0], timeout=TIMEOUT)
    grey = window.loss_plot.chance.pen.color().name()
    assert grey not in (window.loss_plot.colour("loss"), level[1])
    assert chance_lines(window) == [{"chance (3 classes)": (pytest.approx(math.log(3), rel=1e-6), grey)}] * 2
