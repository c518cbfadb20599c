"""GraphModel built from real engine events: nodes, edges, shapes, modules, iterations, values."""

from dataclasses import dataclass

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from app.graph_model import ERROR, FINITE, INF, INF_ONLY, INPUT, MODULE, NAN, NAN_INF, OP, PARAM, GraphModel
from engine import nn
from engine.debug import Debugger
from engine.events import AlertEvent
from tests.app.graphs import Twice, recorded_model
from tests.app.graphs import record_events as record


@pytest.fixture
def mlp():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(5, 4), engine.tensor([0, 1, 2, 0, 1])

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return model, step


def ops_of(view):
    return [(view.keys[i], view.label[i], view.sublabel[i]) for i in range(len(view)) if view.kind[i] == OP]


def edge_set(view):
    return {(view.keys[a], view.keys[b], view.edge_shape[e]) for e, (a, b) in enumerate(view.edges.tolist())}


def test_an_mlp_step_gives_its_ops_in_order_with_shapes(mlp):
    _, step = mlp
    model = GraphModel()
    model.apply_batch(record(step))
    view = model.view()
    assert ops_of(view) == [
        ("Sequential.0/linear:0", "linear", "5\u00d78"),
        ("Sequential.1/relu:0", "relu", "5\u00d78"),
        ("Sequential.2/linear:0", "linear", "5\u00d73"),
        ("cross_entropy:0", "cross_entropy", "scalar"),
    ]
    edges = edge_set(view)
    assert ("Sequential.0/linear:0", "Sequential.1/relu:0", "5\u00d78") in edges
    assert ("Sequential.1/relu:0", "Sequential.2/linear:0", "5\u00d78") in edges
    assert ("Sequential.2/linear:0", "cross_entropy:0", "5\u00d73") in edges
    assert len(edges) == 9  # 3 into each linear, 1 into relu, 2 into the loss


def test_parameters_and_inputs_are_source_nodes(mlp):
    net, step = mlp
    model = GraphModel()
    model.set_tensor_names({p.id: name for name, p in net.named_parameters()})
    model.apply_batch(record(step))
    view = model.view()
    sources = {view.keys[i]: (int(view.kind[i]), view.label[i], view.sublabel[i], view.module[i])
               for i in range(len(view)) if view.kind[i] != OP}
    assert sources == {
        "Sequential.0/linear:0/in0": (INPUT, "input", "5\u00d74", ""),
        "Sequential.0/linear:0/in1": (PARAM, "0.weight", "8\u00d74", "Sequential.0"),
        "Sequential.0/linear:0/in2": (PARAM, "0.bias", "8", "Sequential.0"),
        "Sequential.2/linear:0/in1": (PARAM, "2.weight", "3\u00d78", "Sequential.2"),
        "Sequential.2/linear:0/in2": (PARAM, "2.bias", "3", "Sequential.2"),
        "cross_entropy:0/in1": (INPUT, "input", "5", ""),
    }


def test_a_tensor_a_module_makes_itself_is_a_constant_not_a_nameless_param():
    # an LSTM's zero initial state showed as "param" beside its named weights, as if a parameter had lost its name
    lstm = nn.LSTM(3, 4)
    model = GraphModel()
    model.apply_batch(record(lambda: lstm(engine.randn(2, 1, 3))[0].sum().backward()))
    view = model.view()
    labels = {view.label[i] for i in range(len(view)) if view.kind[i] == PARAM}
    assert labels == {"constant", "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}


def test_module_hierarchy_becomes_groups(mlp):
    _, step = mlp
    model = GraphModel()
    model.apply_batch(record(step))
    view = model.view()
    assert view.groups == ["", "Sequential", "Sequential.0", "Sequential.1", "Sequential.2"]
    assert view.group_parent.tolist() == [-1, 0, 1, 1, 1]
    assert view.group_cls[2] == "Linear"
    relu = view.keys.index("Sequential.1/relu:0")
    assert view.groups[view.group[relu]] == "Sequential.1"


class Blocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.block1(x))


def test_a_collapsed_module_is_labelled_by_its_name_in_the_script_with_its_class_under_it():
    net = Blocks()
    model = GraphModel()
    model.apply_batch(record(lambda: net(engine.randn(2, 4)).sum().backward()))
    model.collapse("Blocks.block1")
    model.collapse("Blocks.head")
    view = model.view()
    shown = {view.keys[i]: (view.label[i], view.sublabel[i]) for i in range(len(view)) if view.kind[i] == MODULE}
    assert shown == {"Blocks.block1": ("block1", "Sequential"), "Blocks.head": ("head", "Linear")}


def test_collapsing_a_module_leaves_one_node_with_its_boundary_edges(mlp):
    _, step = mlp
    model = GraphModel()
    model.apply_batch(record(step))
    model.collapse("Sequential.0")
    view = model.view()
    node = view.keys.index("Sequential.0")
    assert view.kind[node] == MODULE and (view.label[node], view.sublabel[node]) == ("Sequential.0", "Linear")
    assert "Sequential.0/linear:0" not in view.keys and "Sequential.0/linear:0/in1" not in view.keys
    assert view.node_of["Sequential.0/linear:0"] == node  # hidden ops light up their module
    into = {view.keys[a] for a, b in view.edges.tolist() if b == node}
    out = {view.keys[b] for a, b in view.edges.tolist() if a == node}
    assert into == {"Sequential.0/linear:0/in0"}  # the input crosses the border; the weights live inside
    assert out == {"Sequential.1/relu:0"}
    assert "Sequential.0" not in view.groups

    model.collapse("Sequential")  # the whole model: input in, logits out to the loss
    view = model.view()
    node = view.keys.index("Sequential")
    assert {(view.keys[a], view.keys[b]) for a, b in view.edges.tolist()} == {
        ("Sequential.0/linear:0/in0", "Sequential"), ("Sequential", "cross_entropy:0"),
        ("cross_entropy:0/in1", "cross_entropy:0")}
    model.expand("Sequential")
    assert "Sequential" in model.view().groups and "Sequential.0" in model.view().keys


def test_same_structure_next_iteration_keeps_the_view_and_its_signature(mlp):
    _, step = mlp
    model = GraphModel()
    changes = []
    model.subscribe(changes.append)
    model.apply_batch(record(step))
    first = model.view()
    version = model.version
    model.apply_batch(record(step))
    assert [it.same_structure for it in changes[-1].iterations] == [True]
    assert not changes[-1].structure
    assert model.version == version
    assert model.view().signature == first.signature
    assert model.iteration == 2


def test_an_unchanged_iteration_reuses_the_view_it_already_built(mlp):
    # building the view of a ~900-node LSTM took ~30 ms, redone at every optimizer step while training ran
    _, step = mlp
    model = GraphModel()
    model.apply_batch(record(step))
    model.apply_batch(record(step))
    shown = model.view()
    model.apply_batch(record(step))
    model.new_iteration()  # an empty iteration between two marks changes nothing either
    assert model.view() is shown


def test_a_smaller_last_batch_shows_its_own_shapes():
    net = nn.Linear(4, 2)
    model = GraphModel()
    model.apply_batch(record(lambda: net(engine.randn(5, 4)).sum()))
    model.new_iteration()
    assert ("Linear/linear:0", "linear", "5\u00d72") in ops_of(model.view())
    model.apply_batch(record(lambda: net(engine.randn(3, 4)).sum()))
    info = model.new_iteration()
    assert info.same_structure
    assert ("Linear/linear:0", "linear", "3\u00d72") in ops_of(model.view())


def test_a_smaller_batch_that_raised_midway_shows_its_own_shapes_so_far():
    # a last batch of one raised in BatchNorm: the iteration never ended, and its nodes so far have its shapes,
    # not those of the full batches before (the Inspector read "16x12 -> 16x32" beside a 1x32 value)
    net = nn.Sequential(nn.Linear(4, 2), nn.Tanh())
    model = GraphModel()
    model.apply_batch(record(lambda: net(engine.randn(5, 4)).sum()))
    model.new_iteration()
    model.apply_batch(record(lambda: net[0](engine.randn(1, 4))))  # the same first op, then it stops
    view = model.view()
    i = view.node_of["Sequential.0/linear:0"]
    assert (view.out_shape[i], view.in_shapes[i].split(",")[0]) == ("1\u00d72", "1\u00d74")
    assert "Sequential.1/tanh:0" in view.keys  # the rest of the last iteration's graph is still shown


def test_changed_structure_reports_added_and_removed_keys():
    x = engine.randn(3, 4, requires_grad=True)
    model = GraphModel()
    changes = []
    model.subscribe(changes.append)
    model.apply_batch(record(lambda: x.relu().sum()))
    model.new_iteration()
    model.apply_batch(record(lambda: x.tanh().sum()))
    info = model.new_iteration()
    model.flush()
    assert not info.same_structure
    # x is keyed by its first consumer, so it counts as a new node too
    assert info.diff.added == ("tanh:0/in0", "tanh:0")
    assert info.diff.removed == ("relu:0/in0", "relu:0")
    assert ("tanh:0", "sum:0") in info.diff.added_edges and ("relu:0", "sum:0") in info.diff.removed_edges
    assert changes[-1].structure
    view = model.view()
    assert "tanh:0" in view.keys and "relu:0" not in view.keys
    assert [view.keys[i] for i in np.flatnonzero(view.added)] == ["tanh:0/in0", "tanh:0"]  # to highlight


def test_a_running_iteration_that_departs_shows_old_and_new_nodes():
    x = engine.randn(3, requires_grad=True)
    model = GraphModel()
    model.apply_batch(record(lambda: x.relu().sum()))
    model.new_iteration()
    before = model.version
    model.apply_batch(record(lambda: x.relu().exp()))  # same first op, then something new
    assert model.version > before
    keys = model.view().keys
    assert {"relu:0", "sum:0", "exp:0"} <= set(keys)
    assert keys.index("exp:0") > keys.index("relu:0")


def test_a_finished_run_shows_its_last_iteration_alone():
    # a training step, then an evaluation pass that no optimizer step closes: once the run has ended, the
    # evaluation is the whole of its iteration, not a departure from the training step before it
    net = nn.Sequential(nn.Linear(3, 2))
    x = engine.randn(4, 3)
    model = GraphModel()
    model.apply_batch(record(lambda: nn.functional.mse_loss(net(x), engine.zeros(4, 2)).backward()))
    model.new_iteration()
    model.apply_batch(record(lambda: [net(x) for _ in range(2)]))
    assert "mse_loss:0" in model.view().keys  # while it runs: the training graph, with the new calls over it
    changes = []
    model.subscribe(changes.append)
    model.end_run()
    assert model.flush().structure and changes
    view = model.view()
    assert "mse_loss:0" not in view.keys and list(view.groups) == ["", "Sequential", "Sequential.0", "Sequential#1",
                                                                   "Sequential.0#1"]
    assert len(view.backward) == 0


def test_first_iteration_grows_live_and_notifies_once_per_batch():
    x = engine.randn(2, 2)
    model = GraphModel()
    changes = []
    model.subscribe(changes.append)
    events = record(lambda: ((x + 1) * 2).sum())
    for ev in events[:2]:
        model.apply(ev)
    assert changes == []  # apply never notifies; flush (or apply_batch) does
    assert model.flush().structure
    assert [k for k in model.view().keys if ":" in k and "/" not in k] == ["add:0", "mul:0"]
    model.apply_batch(events[2:])
    assert len(changes) == 2 and changes[-1].current == "sum:0"
    assert model.current == "sum:0"


def test_a_module_called_twice_is_two_groups_with_distinct_keys():
    cell = nn.Linear(3, 3)
    x = engine.randn(1, 3)
    model = GraphModel()
    model.apply_batch(record(lambda: cell(cell(x))))
    view = model.view()
    assert [key for key, _, _ in ops_of(view)] == ["Linear/linear:0", "Linear/linear:0#1"]
    assert view.groups == ["", "Linear", "Linear#1"]
    first, second = view.keys.index("Linear/linear:0"), view.keys.index("Linear/linear:0#1")
    assert [view.groups[view.group[i]] for i in (first, second)] == ["Linear", "Linear#1"]
    assert [first, second] in view.edges.tolist()
    # the second call reuses the weights: one parameter node feeds both calls
    weight = view.keys.index("Linear/linear:0/in1")
    assert [weight, second] in view.edges.tolist()


def test_backward_nodes_link_to_their_forward_ops(mlp):
    _, step = mlp
    model = GraphModel()
    model.apply_batch(record(step))
    view = model.view()
    ran = [view.keys[i] for i in view.backward]
    assert ran == ["cross_entropy:0", "Sequential.2/linear:0", "Sequential.1/relu:0", "Sequential.0/linear:0"]
    flow = {(view.keys[a], view.keys[b]) for a, b in view.backward_edges.tolist()}
    assert ("cross_entropy:0", "Sequential.2/linear:0") in flow  # gradients run against the forward edges
    assert ("Sequential.1/relu:0", "Sequential.0/linear:0") in flow


def test_unknown_events_are_ignored():
    model = GraphModel()
    model.apply(object())
    model.apply("not an event")
    assert model.flush() is None and len(model.view()) == 0


@dataclass
class Summary:  # the parts of engine.debug's TensorSummary the model reads
    abs_max: float
    norm: float
    finite: bool
    nan_count: int = 0


@dataclass
class OpRecord:  # shaped like engine.debug's records: the event plus what the debugger saw
    event: object
    summary: Summary
    source: object = None


@dataclass
class Frame:
    file: str
    line: int
    text: str


def test_debugger_records_set_metrics_flags_and_source_lines():
    x = engine.randn(4)
    events = record(lambda: (x * 2).exp())
    model = GraphModel()
    model.apply(OpRecord(events[0], Summary(3.0, 5.0, True), Frame("train.py", 12, "y = x * 2")))
    model.apply(OpRecord(events[1], Summary(float("nan"), float("nan"), False, nan_count=4)))
    view = model.view()
    activation = model.metric_array(view, "activation")
    mul, exp = view.keys.index("mul:0"), view.keys.index("exp:0")
    assert activation[mul] == 3.0
    assert model.nonfinite_array(view).tolist() == [NAN if i == exp else FINITE for i in range(len(view))]
    assert "train.py:12  y = x * 2" in view.tooltip(mul)


def test_a_mask_of_minus_infinity_is_not_marked_but_the_nan_it_makes_is():
    scores = engine.randn(2, 3)
    mask = engine.tensor(np.array([[False, True, True], [True, True, True]]))  # row 1: all masked
    with Debugger("summary") as dbg:
        F.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    model = GraphModel()
    model.apply_batch(list(dbg.history))
    view = model.view()
    marked = {view.keys[i] for i in np.flatnonzero(model.nonfinite_array(view))}
    assert marked == {"softmax:0"}


def masked_attention_with_a_log_of_a_negative():
    """An additive causal mask (scores + -inf above the diagonal, by design) and a log(-1) that makes NaN,
    in two module calls: "Attend" (only the mask's -inf) and "Broken" (the mask's -inf and the NaN)."""
    class Attend(nn.Module):
        def forward(self, q, mask):
            return F.softmax(q @ q.transpose(0, 1) + mask, dim=-1)

    class Broken(nn.Module):
        def forward(self, q, mask):
            return (q @ q.transpose(0, 1) + mask).log()  # log of negatives: NaN

    upper = np.triu(np.ones((3, 3), bool), 1)
    mask = engine.tensor(np.where(upper, -np.inf, 0.0).astype(np.float32))
    q = engine.tensor(np.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.3]], np.float32))
    with Debugger("summary") as dbg, np.errstate(invalid="ignore"):
        Broken()(Attend()(q, mask), mask)
    model = GraphModel()
    model.apply_batch(list(dbg.history))
    return model


def test_a_node_holding_only_infinities_is_told_from_one_holding_nan():
    model = masked_attention_with_a_log_of_a_negative()
    view = model.view()
    level = dict(zip(view.keys, model.nonfinite_array(view).tolist(), strict=True))
    # the causal mask's -inf, which the softmax turned into zeros: a mask, not marked at all (it was amber, "±Inf
    # only", as if a fault)
    assert level["Attend/add:0"] == FINITE and model.is_mask("Attend/add:0")
    assert level["Attend/softmax:0"] == FINITE
    assert level["Broken/add:0"] == INF_ONLY  # the same -inf fed to a log: amber, not red
    assert not model.is_mask("Broken/add:0")
    assert level["Broken/log:0"] == NAN
    notes = model.nonfinite_notes(view)
    assert notes[view.keys.index("Broken/add:0")] == "\u00b1Inf in its output, no NaN"
    assert notes[view.keys.index("Broken/log:0")].startswith("NaN in its output")


def test_a_collapsed_module_shows_the_worst_of_its_members():
    model = masked_attention_with_a_log_of_a_negative()
    model.collapse("Attend")
    model.collapse("Broken")
    view = model.view()
    level = dict(zip(view.keys, model.nonfinite_array(view).tolist(), strict=True))
    assert level["Attend"] == FINITE  # its only infinities are its mask's
    assert level["Broken"] == NAN  # NaN over Inf
    notes = model.nonfinite_notes(view)
    assert notes[view.keys.index("Broken")] == "NaN in 1 of its ops; \u00b1Inf, no NaN, in 1"
    assert view.keys.index("Attend") not in notes


def test_an_alert_keeps_an_infinite_node_red_until_it_is_finite_again():
    x = engine.randn(4)
    events = record(lambda: x.exp())
    model = GraphModel()
    overflowed = Summary(float("nan"), float("nan"), False)  # +inf only
    model.apply(OpRecord(events[0], overflowed))
    view = model.view()
    i = view.keys.index("exp:0")
    assert model.nonfinite_array(view)[i] == INF_ONLY
    model.apply(AlertEvent(0, "nonfinite_forward", "exp overflowed", "exp", "exp:0", "", 0, 0,
                           "t.py", 1, "x.exp()", float("inf")))
    assert model.nonfinite_array(view)[i] == INF  # red, and named for what it holds: not "NaN"
    assert model.nonfinite_notes(view)[i] == "\u00b1Inf in its output, no NaN\nalert: exp overflowed"
    for summary, level in ((overflowed, INF), (Summary(1.0, 2.0, True), FINITE)):  # the next iterations
        model.new_iteration()
        model.apply(OpRecord(events[0], summary))
        assert model.nonfinite_array(model.view())[i] == level


def test_alerts_and_app_set_values_colour_nodes():
    x = engine.randn(4)
    model = GraphModel()
    model.apply_batch(record(lambda: x.exp()))
    model.apply(AlertEvent(0, "nonfinite_forward", "exp overflowed", "exp", "exp:0", "", 0, 0,
                           "t.py", 1, "x.exp()", float("inf")))
    model.set_metric("grad_norm", {"exp:0": 0.5, "nowhere:0": 1.0})
    view = model.view()
    i = view.keys.index("exp:0")
    # an engine alert is red, whatever the values hold; without a summary, not known to be NaN or Inf
    assert model.nonfinite_array(view)[i] == NAN_INF
    assert model.metric_array(view, "grad_norm")[i] == 0.5
    assert np.isnan(model.metric_array(view, "grad_norm")[0])  # the input has no gradient norm


def test_explicit_iteration_marks_take_over_from_optimizer_steps(mlp):
    @dataclass
    class IterationEvent:  # the debugger's explicit boundary
        seq: int
        iteration: int

    _, step = mlp
    model = GraphModel()
    model.apply(IterationEvent(0, 0))
    model.apply_batch(record(step))  # its optimizer step no longer ends the iteration
    assert model.iteration == 1
    model.apply(IterationEvent(0, 1))
    assert model.iteration == 2


def test_a_fan_of_like_sibling_ops_is_one_node_that_still_knows_each_op():
    # 900 slices of one tensor, stacked (a data loader's windows): a layer 900 nodes wide, unreadable at any zoom
    ids = engine.arange(200).float()
    events = record(lambda: engine.stack([ids[s:s + 8] for s in range(0, 180, 4)]).sum())
    model = GraphModel()
    model.apply_batch(events)
    view = model.view()
    labels = sorted(view.label)
    assert labels == sorted(["input", "getitem \u00d745", "stack", "sum"])
    fan = view.label.index("getitem \u00d745")
    slices = [e.key for e in events if getattr(e, "op", None) == "getitem"]
    assert len(slices) == 45 and {view.node_of[k] for k in slices} == {fan}
    assert view.sublabel[fan] == "each 8" and view.keys[fan] == slices[0]
    src, stack, total = (view.label.index(name) for name in ("input", "stack", "sum"))
    assert sorted(map(tuple, view.edges.tolist())) == sorted([(src, fan), (fan, stack), (stack, total)])
    model.set_nonfinite(slices[30])  # any member's NaN marks the node
    assert model.nonfinite_array(view)[fan]


def test_ops_of_one_name_that_feed_different_ops_stay_apart():
    # the time steps of an unrolled RNN read one tensor too, but each feeds its own step: nothing to merge
    x = engine.randn(3, 20, 4)
    w = engine.randn(4, 4)
    events = record(lambda: sum((x[:, t] @ w).tanh().sum() for t in range(20)))
    model = GraphModel()
    model.apply_batch(events)
    assert model.view().label.count("getitem") == 20


def test_breakpoints_mark_every_node_and_module_call_they_name():
    from app.graph_model import breakpoint_marks
    from engine.debug import Breakpoint

    net, ids = Twice(), engine.arange(40).float()
    events = record(lambda: (net(engine.randn(2, 3)).sum() + engine.stack([ids[s:s + 4] for s in range(20)]).sum()))
    model = GraphModel()
    model.apply_batch(events)
    view = model.view()

    def named(*specs):
        nodes, groups = breakpoint_marks(view, specs)
        return sorted(view.keys[i] for i in nodes.tolist()), sorted(view.groups[g] for g in groups.tolist())

    # the graph calls the second call's op "Twice.act/tanh:0#1"; the engine, and so a breakpoint, does not
    assert named(Breakpoint.op("tanh")) == (["Twice.act/tanh:0", "Twice.act/tanh:0#1"], [])
    assert named(Breakpoint.op("Twice.act/tanh:0")) == (["Twice.act/tanh:0", "Twice.act/tanh:0#1"], [])
    assert named(Breakpoint.op("getitem:7")) == (["getitem:0"], [])  # the fan that shows it
    assert named(Breakpoint.module("act", on="exit")) == ([], ["Twice.act", "Twice.act#1"])
    assert named(Breakpoint.iteration(3), Breakpoint.nonfinite()) == ([], [])  # no place in a graph
    model.collapse("Twice")
    view = model.view()
    assert named(Breakpoint.op("linear")) == (["Twice"], []) and named(Breakpoint.module("Twice")) == (["Twice"], [])


def test_an_op_that_raised_is_an_error_not_nan_and_a_module_names_what_its_ops_hold():
    # the tester's ShapeError node read "NaN" in the legend, and so did a node that held only Inf
    model = masked_attention_with_a_log_of_a_negative()
    model.set_failed("Broken/add:0")
    model.alerts["Broken/add:0"] = "ShapeError: add: shapes (3, 3) and (4, 4)"
    view = model.view()
    level = dict(zip(view.keys, model.nonfinite_array(view).tolist(), strict=True))
    assert level["Broken/add:0"] == ERROR and level["Broken/log:0"] == NAN
    assert model.nonfinite_notes(view)[view.keys.index("Broken/add:0")].endswith(
        "error: ShapeError: add: shapes (3, 3) and (4, 4)")
    model.collapse("Broken")
    view = model.view()
    assert model.nonfinite_array(view)[view.keys.index("Broken")] == ERROR
    assert model.nonfinite_notes(view)[view.keys.index("Broken")] == "an error in 1 of its ops; NaN in 1"


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batchnorms_running_statistics_are_named_as_buffers_not_constant(mode):
    # the tester's CNN showed two boxes labelled "constant" in each BatchNorm
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    getattr(net, mode)()
    model = recorded_model(lambda: net(engine.randn(5, 4)).sum())
    view = model.view()
    captions = {view.caption[i] for i in range(len(view)) if view.module[i] == "Sequential.1" and view.kind[i] == PARAM}
    assert captions == {"running_mean", "running_var", "weight", "bias"}
    i = view.caption.index("running_var")
    assert view.tooltip(i).startswith("running_var  (buffer)")
    assert view.tooltip(view.label.index("1.weight")).startswith("1.weight  (param)")
