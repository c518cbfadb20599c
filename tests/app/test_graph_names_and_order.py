"""What the graph's boxes read and where a module that ran nothing sits: the data and the target are
told apart, parameters read by their names in their module ("weight", "bias"), and a module called but
not run (yet) sits after what ran before it, not at the top of its parent as if it ran first."""

from dataclasses import dataclass

import pytest

import engine
import engine.nn.functional as F
from app.graph_model import INPUT, PARAM, GraphModel
from app.layout import layout_view
from engine import nn
from engine.events import ModuleEvent, OpEvent
from tests.app.graphs import record_events
from tests.shots import shown
from widgets.graph_canvas import GraphCanvas


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(4, 8)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.drop(F.relu(self.fc1(self.flatten(x)))))


def step_events(train: bool = True) -> list:
    net = MLP()
    net.train(train)
    y = engine.tensor([0, 1, 2, 0, 1])
    return record_events(lambda: F.cross_entropy(net(engine.randn(5, 4) / 255.0), y))


@dataclass
class Frame:  # the source line the debugger found for an op
    file: str
    line: int
    text: str


@dataclass
class OpRecord:  # shaped like engine.debug's records
    event: object
    summary: object = None
    source: object = None


LINES = {"div": "x = x / 255.0", "cross_entropy": "loss = F.cross_entropy(logits, y)"}


def captions(view, kind: int) -> dict[str, str]:
    return {view.keys[i]: view.caption[i] for i in range(len(view)) if view.kind[i] == kind}


def test_the_data_and_the_target_read_as_the_scripts_names():
    model = GraphModel()
    for event in step_events():
        line = LINES.get(event.op) if isinstance(event, OpEvent) else None
        model.apply(OpRecord(event, source=Frame("mnist_mlp.py", 40, line)) if line else event)
    view = model.view()
    assert captions(view, INPUT) == {"div:0/in0": "x", "cross_entropy:0/in1": "y"}
    assert view.tooltip(view.keys.index("cross_entropy:0/in1")).startswith("y  (input)")


def test_without_source_lines_the_target_reads_as_the_losss_argument():
    model = GraphModel()
    model.apply_batch(step_events())
    # both read "input": which one is the data?
    assert sorted(captions(model.view(), INPUT).values()) == ["input", "target"]


def test_parameters_read_by_their_name_in_the_module_with_the_full_name_in_the_tooltip():
    model = GraphModel()
    model.apply_batch(step_events())
    view = model.view()
    assert sorted(captions(view, PARAM).values()) == ["bias", "bias", "weight", "weight"]  # not "out.bias"
    weight = view.keys.index("MLP.fc1/linear:0/in1")
    assert view.tooltip(weight).startswith("fc1.weight  (param)")
    assert view.label[weight] == "fc1.weight"  # the name the inspector and a tape's snapshots go by


def test_a_box_shows_a_parameters_short_name_and_an_inputs_name(qtbot):
    model = GraphModel()
    model.apply_batch(step_events())
    view = model.view()
    canvas = shown(qtbot, GraphCanvas(), 900, 700)
    canvas.set_graph(view, layout_view(view))
    canvas.fit()
    qtbot.waitUntil(lambda: bool(canvas.visible_labels()))
    labels = canvas.visible_labels()
    assert labels.count("weight") == 2 and labels.count("bias") == 2 and "out.bias" not in labels
    assert "input" in labels and "target" in labels


def box(view, layout, path: str):
    _x, y, _w, h = layout.group_rect[view.groups.index(path)]
    return y, y + h


def test_a_module_that_ran_nothing_sits_between_what_ran_before_and_after_it():
    model = GraphModel()
    model.apply_batch(step_events(train=False))  # a dropout in eval mode runs no op
    view = model.view()
    layout = layout_view(view)
    relu = layout.pos[view.keys.index("MLP/relu:0")][1]
    top, bottom = box(view, layout, "MLP.drop")
    assert relu < top and bottom < box(view, layout, "MLP.out")[0]  # it sat at the top right of MLP


@pytest.mark.parametrize("train", [True, False])
def test_a_module_called_but_not_run_yet_sits_below_what_ran(train):
    events = step_events(train)
    entered = next(i for i, e in enumerate(events) if isinstance(e, ModuleEvent) and e.enter and e.path == "MLP.out")
    model = GraphModel()
    model.apply_batch(events[:entered + 1])  # paused at a breakpoint on entering MLP.out
    view = model.view()
    layout = layout_view(view)
    ran = [layout.pos[i][1] for i in range(len(view)) if view.module[i].startswith("MLP")]
    assert box(view, layout, "MLP.out")[0] > max(ran)
    assert box(view, layout, "MLP.out")[0] > box(view, layout, "MLP.fc1")[1]


def test_tensors_indexed_on_one_line_read_as_the_scripts_names():
    # an MLP's minibatch loop read "input 1", "input 2", "input 3" for perm, X and Y: indexing (getitem) was
    # not looked for, and two uses of one op on a line both took the first one's name
    X, Y, perm = engine.randn(8, 4), engine.randint(0, 3, (8,)), engine.randperm(8)

    def batch():
        idx = perm[0:4]
        xb, yb = X[idx], Y[idx]
        return xb.sum() + yb.float().sum()

    lines = ["idx = perm[0:4]", "xb, yb = X[idx], Y[idx]", "xb, yb = X[idx], Y[idx]"]
    model = GraphModel()
    for event in record_events(batch):
        line = lines.pop(0) if isinstance(event, OpEvent) and event.op == "getitem" else None
        model.apply(OpRecord(event, source=Frame("mlp.py", 36, line)) if line else event)
    assert sorted(captions(model.view(), INPUT).values()) == ["X", "Y", "perm"]
    assert captions(model.view(), INPUT)["getitem:2/in0"] == "Y"
