"""A teacher and a student of one class (both nn.Sequential), offscreen: the Modules panel, the graph's module
groups and the gradient flow show two models, live and in the replay of its tape."""


from tests.app.test_window import TIMEOUT, script

DISTILL = """
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    engine.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    student = nn.Sequential(nn.Linear(4, 2), nn.Tanh(), nn.Linear(2, 3))
    opt_t = engine.optim.SGD(teacher.parameters(), lr=0.1)
    opt_s = engine.optim.Adam(student.parameters(), lr=0.01)
    x, y = engine.randn(16, 4), engine.randint(0, 3, (16,))
    for _ in range(2):
        opt_t.zero_grad()
        F.cross_entropy(teacher(x), y).backward()
        opt_t.step()
    teacher.requires_grad_(False)
    for _ in range(3):
        with engine.no_grad():
            target = F.softmax(teacher(x), -1)
        loss = F.kl_div(F.log_softmax(student(x), -1), target, reduction="batchmean")
        opt_s.zero_grad()
        loss.backward()
        opt_s.step()
"""


def _top_modules(window) -> list[tuple[str, str]]:
    """The Modules panel's top-level rows: (module, class)."""
    tree = window.module_tree
    return [(tree.topLevelItem(i).text(0), tree.topLevelItem(i).text(1)) for i in range(tree.topLevelItemCount())]


def _shows_two_models(window) -> None:
    # there was one "Sequential" row, and the student showed as a second call of the teacher ("Sequential#1");
    # then "Sequential" and "Sequential_2": each is named as the script calls it, its class beside it
    assert _top_modules(window) == [("teacher", "Sequential"), ("student", "Sequential")]
    tree = window.module_tree.topLevelItem(1)
    assert [tree.child(i).text(0) for i in range(tree.childCount())] == ["0", "1", "2"]
    groups = set(window.canvas.view.groups)
    assert {"Sequential", "Sequential.0", "Sequential_2", "Sequential_2.0"} <= groups
    assert not any("#" in g for g in groups)  # no module call taken for a second call of the other model
    labels, _ = window.gradient_flow.bars()
    # the student's Adam named its parameters "Adam:group0.0", ...: both models' "0.weight" made one path
    student = [label for label in labels if label.startswith("Adam:")]
    assert student == ["Adam:Sequential_2.0.weight", "Adam:Sequential_2.0.bias", "Adam:Sequential_2.2.weight",
                       "Adam:Sequential_2.2.bias"], labels


def test_a_teacher_and_a_student_of_one_class_are_two_models_live_and_replayed(qtbot, window, tmp_path):
    tape = str(tmp_path / "kd.tape")
    assert window.run_script(script(tmp_path, "kd.py", DISTILL), run=True, record=tape)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.module_tree.topLevelItemCount() == 2, timeout=TIMEOUT)
    _shows_two_models(window)

    assert window.open_tape(tape)  # the replay needs no script: the names are on the tape
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.module_tree.topLevelItemCount() == 2, timeout=TIMEOUT)
    _shows_two_models(window)
