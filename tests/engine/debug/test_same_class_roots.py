"""Two models of one class called at the top level (a teacher and a student): their module paths, op keys and
parameter names stay apart, live and on a tape, numbered by class in the order they are first called."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
import engine.tape
from engine.debug.edits import EditRejected, Freeze, prepare
from engine.events import ModuleEvent, OpEvent, OptimizerEvent, hub
from engine.nn.module import forget_root_names, root_name


class Tower(nn.Module):
    """A class no other test calls, so no live model elsewhere holds its root name."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(3, width)
        self.out = nn.Linear(width, 2)

    def forward(self, x):
        return self.out(F.relu(self.fc(x)))


class Holder(nn.Module):
    """A model whose layer a script calls itself (model.fc(x)): its path runs through the holder's root name."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return self.fc(x)


def _module_paths(fn) -> list[str]:
    """The paths of the module calls `fn()` makes, in order of their enter events."""
    paths = []

    def listen(ev) -> None:
        if isinstance(ev, ModuleEvent) and ev.enter:
            paths.append(ev.path)

    off = hub.subscribe(listen, ops=False)
    try:
        fn()
    finally:
        off()
    return paths


def _x():
    return engine.tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))


def test_two_models_of_one_class_get_distinct_paths_in_order_of_first_call():
    forget_root_names()
    first, second = Tower(8), Tower(2)
    x = _x()
    # the second made is the first called: it is the one named by its class alone
    paths = _module_paths(lambda: (second(x), first(x), second(x)))
    assert paths == ["Tower", "Tower.fc", "Tower.out", "Tower_2", "Tower_2.fc", "Tower_2.out",
                     "Tower", "Tower.fc", "Tower.out"]
    assert root_name(second) == "Tower" and root_name(first) == "Tower_2"
    # a model of another class (a GAN's G and D) keeps its class name, as a model alone does
    holder = Holder()
    assert _module_paths(lambda: (holder(x), first(x))) == [
        "Holder", "Holder.fc", "Tower_2", "Tower_2.fc", "Tower_2.out"]


def test_a_name_comes_free_when_its_model_is_gone():
    # a module made anew for each call (nn.Tanh()(x) in a loop, a model per fold) is not numbered up forever
    forget_root_names()
    x = _x()
    assert _module_paths(lambda: [Tower()(x) for _ in range(3)])[::3] == ["Tower"] * 3
    kept = Tower()
    paths = _module_paths(lambda: (kept(x), [Tower()(x) for _ in range(2)]))
    assert paths[::3] == ["Tower", "Tower_2", "Tower_2"]


def test_a_deep_copy_is_a_model_of_its_own():
    forget_root_names()
    model = Tower()
    x = _x()
    model(x)
    ema = copy.deepcopy(model)
    assert _module_paths(lambda: (ema(x), model(x)))[::3] == ["Tower_2", "Tower"]


def test_a_held_layer_called_directly_is_named_through_its_holders_root_name():
    forget_root_names()
    a, b = Holder(), Holder()
    x = _x()
    assert _module_paths(lambda: (a(x), b.fc(x), a.fc(x))) == ["Holder", "Holder.fc", "Holder_2.fc", "Holder.fc"]


def _distill(path) -> tuple[nn.Module, nn.Module]:
    """Knowledge distillation on a tape, both models nn.Sequential: the teacher trained a step, then frozen while
    the student learns from it."""
    forget_root_names()
    teacher = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2))
    student = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
    opt_t = engine.optim.SGD(teacher.parameters(), lr=0.1)
    opt = engine.optim.Adam(student.parameters(), lr=0.01)
    x = _x()
    with engine.record(path, "summary"):
        teacher(x).square().mean().backward()
        opt_t.step()
        teacher.requires_grad_(False)
        for _ in range(2):
            with engine.no_grad():
                target = F.softmax(teacher(x), -1)
            loss = F.kl_div(F.log_softmax(student(x), -1), target, reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
    return teacher, student


def test_a_tape_keeps_a_teacher_and_a_student_of_one_class_apart(tmp_path):
    path = tmp_path / "kd.tape"
    teacher, student = _distill(path)
    with engine.tape.open(path) as tape:
        events = list(tape.events())
    modules = [ev for ev in events if isinstance(ev, ModuleEvent) and ev.enter]
    assert list(dict.fromkeys(ev.path for ev in modules)) == [
        "Sequential", "Sequential.0", "Sequential.1", "Sequential.2",
        "Sequential_2", "Sequential_2.0", "Sequential_2.1", "Sequential_2.2"]
    assert {ev.cls for ev in modules if "." not in ev.path} == {"Sequential"}
    ops = [ev for ev in events if isinstance(ev, OpEvent)]
    linear = {ev.key for ev in ops if ev.op == "linear"}
    assert {"Sequential.0/linear:0", "Sequential_2.0/linear:0"} <= linear
    # the recorder's model and optimizer are the teacher's (called first); the student's Adam names its parameters
    # by their module paths, where both models' "0.weight" made one path and left them "Adam:group0.0"
    steps = [ev for ev in events if isinstance(ev, OptimizerEvent)]
    assert set(steps[0].weight_norms) == {n for n, _ in teacher.named_parameters()}
    assert set(steps[1].weight_norms) == {f"Adam:Sequential_2.{n}" for n, _ in student.named_parameters()}
    # the student's own parameter pairs name it from its root, as the teacher's do
    pairs = {name for ev in modules if ev.path.startswith("Sequential_2") for _, name in ev.params}
    assert pairs == {n for n, _ in student.named_parameters()}


def test_edits_find_a_second_models_modules_by_its_root_name():
    from app.edit_history import describe_model

    forget_root_names()
    teacher, student = Tower(), Tower()
    x = _x()
    teacher(x), student(x)
    modules, _ = describe_model(student)
    assert [m["path"] for m in modules] == ["Tower_2", "Tower_2.fc", "Tower_2.out"]
    prepare(Freeze("Tower_2.fc"), student, None)()
    assert not student.fc.weight.requires_grad and teacher.fc.weight.requires_grad
    # the teacher's path never reaches the student
    with pytest.raises(EditRejected, match=r"no module 'Tower\.fc'"):
        prepare(Freeze("Tower.fc"), student, None)


def test_a_new_session_names_its_model_by_its_class_whatever_an_earlier_one_left_alive(tmp_path):
    # a script run again in one process (the app's Restart) while its first run's model is still alive: the
    # new run's model was "Tower_2", and its graph, breakpoints and parameter names no longer matched the first's
    forget_root_names()
    x = _x()
    old = Tower()
    with engine.debug.Debugger("summary"):
        old(x)
    new = Tower()
    with engine.debug.Debugger("summary"):
        assert _module_paths(lambda: new(x))[0] == "Tower"
    assert root_name(new) == "Tower" and old is not None
