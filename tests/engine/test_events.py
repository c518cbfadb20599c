"""The event hub: subscription, the events a small expression emits, stable keys, module scope, backward."""

import threading

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.events import BackwardEvent, ModuleEvent, OpEvent, hub


@pytest.fixture
def events():
    """Every event emitted during the test, in order; the hub is left as it was found."""
    assert not hub.active, "another test left a subscriber behind"
    got = []
    unsubscribe = hub.subscribe(got.append)
    hub.reset_top_level()
    yield got
    unsubscribe()
    hub.reset_top_level()
    assert hub.module_path == "", "module scopes were left open"


def _ops(events) -> list[OpEvent]:
    return [e for e in events if isinstance(e, OpEvent)]


def _backward(events) -> list[BackwardEvent]:
    return [e for e in events if isinstance(e, BackwardEvent)]


# ---- subscription ---------------------------------------------------------------------------------
def test_hub_is_inactive_without_subscribers():
    assert not hub.active
    got = []
    unsubscribe = hub.subscribe(got.append)
    assert hub.active
    unsubscribe()
    assert not hub.active
    engine.ones(2) * 2
    assert got == [], "an unsubscribed function hears nothing"


def test_unsubscribe_by_bound_method():
    # regression: unsubscribe compared with `is`, and each `obj.method` access is a new object
    class Listener:
        def __init__(self):
            self.count = 0

        def on_event(self, event):
            self.count += 1

    listener = Listener()
    hub.subscribe(listener.on_event)
    engine.ones(1) + 1
    hub.unsubscribe(listener.on_event)
    assert not hub.active
    engine.ones(1) + 1
    assert listener.count == 1


def test_every_subscriber_hears_every_event_in_subscription_order():
    heard = []
    first = hub.subscribe(lambda e: heard.append(("first", e.seq)))
    second = hub.subscribe(lambda e: heard.append(("second", e.seq)))
    try:
        engine.ones(1) * 3
    finally:
        first()
        second()
    assert [who for who, _ in heard] == ["first", "second"] and heard[0][1] == heard[1][1]
    hub.unsubscribe(print)  # unknown subscribers are ignored


def test_a_subscriber_without_ops_hears_module_and_optimizer_events_only():
    everything, quiet = [], []
    off = [hub.subscribe(everything.append), hub.subscribe(quiet.append, ops=False)]
    try:
        model = nn.Linear(3, 2)
        opt = engine.optim.SGD(model.parameters(), lr=0.1)
        model(engine.ones(4, 3)).sum().backward()
        opt.step()
    finally:
        for undo in off:
            undo()
    kinds = [type(e).__name__ for e in everything]
    assert {"OpEvent", "BackwardEvent", "ModuleEvent", "OptimizerEvent"} <= set(kinds)
    assert quiet == [e for e in everything if type(e).__name__ in ("ModuleEvent", "OptimizerEvent")]
    assert not hub.active and not hub.listened()


def test_subscribing_from_many_threads_while_ops_run_loses_nothing():
    permanent = []
    stop = threading.Event()
    errors = []
    ops_per_worker, workers = 300, 3
    done_ops = []

    def compute():
        try:
            x = engine.ones(4, requires_grad=True)
            n = 0
            for _ in range(ops_per_worker):
                (x * 2 + 1).backward(engine.ones(4))  # 2 forward events, 2 backward events
                n += 2
            done_ops.append(n)
        except Exception as err:  # reported by the assertion below
            errors.append(err)

    def churn():
        try:
            while not stop.is_set():
                sink = []
                unsubscribe = hub.subscribe(sink.append)
                hub.unsubscribe(lambda e: None)
                unsubscribe()
        except Exception as err:
            errors.append(err)

    unsubscribe = hub.subscribe(permanent.append)
    try:
        churners = [threading.Thread(target=churn) for _ in range(3)]
        computers = [threading.Thread(target=compute) for _ in range(workers)]
        for t in churners + computers:
            t.start()
        for t in computers:
            t.join()
        stop.set()
        for t in churners:
            t.join()
    finally:
        unsubscribe()
    assert errors == []
    assert not hub.active, "every churned subscriber is gone"
    assert len(_ops(permanent)) == sum(done_ops) == ops_per_worker * workers * 2
    assert len(_backward(permanent)) == ops_per_worker * workers * 2
    seqs = [e.seq for e in permanent]
    assert len(set(seqs)) == len(seqs), "sequence numbers are unique across threads"


# ---- forward events ---------------------------------------------------------------------------------
def test_ops_of_an_expression_arrive_in_order(events):
    a = engine.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    b = engine.tensor([[1.0], [2.0]])
    c = a * b
    d = c + a
    e = d * 2
    ops = _ops(events)
    assert [o.op for o in ops] == ["mul", "add", "mul"]
    assert [o.key for o in ops] == ["mul:0", "add:0", "mul:1"]
    assert [o.inputs for o in ops] == [(a.id, b.id), (c.id, a.id), (d.id,)]
    assert [o.output for o in ops] == [c.id, d.id, e.id]
    assert ops[0].input_shapes == ((1, 3), (2, 1)) and ops[0].output_shape == (2, 3)
    assert ops[2].input_shapes == ((2, 3),), "python scalars are not inputs"
    assert all(o.dtype == "float32" and o.device == "cpu" and o.requires_grad and o.module == "" for o in ops)
    assert ops[0].seq < ops[1].seq < ops[2].seq


def test_events_carry_dtype_and_requires_grad(events):
    _ = engine.tensor([1, 2]) * 2, engine.tensor([1.0], dtype=engine.float64) + 1, engine.tensor([1.0]) > 0
    ops = _ops(events)
    assert [(o.op, o.dtype, o.requires_grad) for o in ops] == [
        ("mul", "int64", False), ("add", "float64", False), ("gt", "bool", False)]


def test_tensor_ids_are_unique_and_stable():
    a, b = engine.ones(1), engine.ones(1)
    assert a.id != b.id and a.id == a.id and a.id > 0


def test_keys_are_stable_across_iterations(events):
    w = engine.tensor([0.5, -0.5], requires_grad=True)
    keys = []
    for _ in range(2):
        hub.reset_top_level()
        start = len(events)
        x = engine.tensor([1.0, 2.0])
        (x * w + x * 2).exp()
        keys.append([o.key for o in _ops(events[start:])])
    assert keys[0] == keys[1] == ["mul:0", "mul:1", "add:0", "exp:0"]


def test_keys_keep_counting_without_a_reset(events):
    x = engine.ones(2)
    x * 2
    x * 3
    assert [o.key for o in _ops(events)] == ["mul:0", "mul:1"]


# ---- module scope ---------------------------------------------------------------------------------------
def test_module_scope_gives_paths_and_keys(events):
    x = engine.ones(2, 3)
    w = engine.ones(3, 4, requires_grad=True)
    hub.enter_module("enc")
    h = x * 2
    hub.enter_module("enc.fc")
    assert hub.module_path == "enc.fc"
    y = x @ w
    y * 2
    hub.exit_module()
    h + 1
    hub.exit_module()
    x * 5
    ops = _ops(events)
    assert [(o.module, o.key) for o in ops] == [
        ("enc", "enc/mul:0"), ("enc.fc", "enc.fc/matmul:0"), ("enc.fc", "enc.fc/mul:0"), ("enc", "enc/add:0"),
        ("", "mul:0")]
    assert ops[1].output == y.id and ops[1].output_shape == (2, 4)


def test_each_module_call_restarts_its_counters(events):
    x = engine.ones(2)
    for _ in range(2):
        hub.enter_module("block")
        x * 2
        x * 3
        hub.exit_module()
    assert [o.key for o in _ops(events)] == ["block/mul:0", "block/mul:1"] * 2


def test_exit_at_top_level_is_harmless(events):
    hub.exit_module()
    assert hub.module_path == ""
    engine.ones(1) * 2
    assert _ops(events)[0].key == "mul:0"


def test_module_scope_is_per_thread(events):
    hub.enter_module("main_only")
    try:
        keys = []

        def other():
            engine.ones(1) * 2
            keys.append(hub.module_path)

        t = threading.Thread(target=other)
        t.start()
        t.join()
    finally:
        hub.exit_module()
    assert keys == [""] and _ops(events)[0].module == ""


def test_shape_errors_name_the_op_module_and_shapes():
    hub.enter_module("enc.fc")
    try:
        with pytest.raises(engine.ShapeError, match=r"mul in module 'enc.fc': .*\(inputs: \(2,\), \(3,\)\)"):
            engine.ones(2) * engine.ones(3)
    finally:
        hub.exit_module()


# ---- backward events --------------------------------------------------------------------------------------
def test_backward_events_once_per_node_in_reverse_order(events):
    a = engine.tensor([1.0, 2.0], requires_grad=True)
    b = engine.tensor([3.0, 4.0], requires_grad=True)
    c = a * b
    d = c + a
    e = (d * 2).exp()
    e.backward(engine.ones(2))
    ops, back = _ops(events), _backward(events)
    assert len(back) == len(ops) == 4, "one backward event per node"
    assert [bk.forward_seq for bk in back] == [o.seq for o in reversed(ops)]
    assert [bk.op for bk in back] == ["exp", "mul", "add", "mul"]
    assert [bk.key for bk in back] == ["exp:0", "mul:1", "add:0", "mul:0"]
    assert all(bk.seq > ops[-1].seq for bk in back)
    assert back[0].seq < back[1].seq < back[2].seq < back[3].seq
    assert len(back[1].grad_inputs) == 2 and back[1].grad_inputs[1] == 0, "the constant 2 gets no gradient"
    assert all(g > 0 for g in back[3].grad_inputs)


def test_a_node_used_twice_runs_once(events):
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    (h * h + h).backward(engine.ones(2))
    back = _backward(events)
    assert [bk.op for bk in back] == ["add", "mul", "exp"]


def test_no_backward_events_for_nodes_recorded_without_a_graph(events):
    x = engine.tensor([1.0], requires_grad=True)
    with engine.no_grad():
        x * 2
    (x * 3).backward()
    assert [bk.op for bk in _backward(events)] == ["mul"]
    assert [o.requires_grad for o in _ops(events)] == [False, True]


def test_an_op_after_an_inplace_change_consumes_the_inplace_result(events):
    y = engine.ones(2) * 2
    y.add_(1)
    y * 3
    mul, add, mul2 = _ops(events)
    assert add.inputs == (mul.output,)
    assert mul2.inputs == (add.output,), "the graph must show y * 3 reading the value add_ wrote"
    assert y.id == add.output, "after an in-place op the tensor takes the id of the value it holds"


def test_inplace_update_under_no_grad_is_an_event_with_a_new_value_id(events):
    p = engine.ones(3, requires_grad=True)
    g = engine.full((3,), 0.5)
    before = p.id
    with engine.no_grad():
        p -= g
    (sub,) = [e for e in _ops(events) if e.op == "sub"]
    assert sub.inputs == (before, g.id)
    assert sub.output == p.id != before
    np.testing.assert_array_equal(p.detach().numpy(), [0.5, 0.5, 0.5])


def test_an_op_event_carries_the_ops_settings_but_no_arrays_it_was_given():
    seen = []
    off = hub.subscribe(seen.append)
    try:
        x = engine.randn(50, 40)
        engine.sort(x, dim=1)  # sort hands its op the index array it computed
        nn.functional.cross_entropy(engine.randn(4, 3, requires_grad=True), engine.tensor([0, 2, 1, 0]))
    finally:
        off()
    ops = [e for e in seen if isinstance(e, OpEvent)]
    assert {e.op for e in ops} >= {"sort", "cross_entropy"}
    for e in ops:
        assert all(v.__class__ in (str, int, float, bool, type(None), tuple) for v in e.args.values()), e.args
    assert next(e for e in ops if e.op == "cross_entropy").args["reduction"] == "mean"


def test_a_submodule_called_by_itself_is_named_by_the_model_that_holds_it():
    # a CRF tagger's nll() calls self.emb and self.lstm: their calls were roots named "Embedding", "LSTM", and
    # their parameters "weight", where the model names them "emb.weight"
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.out = nn.Embedding(5, 3), nn.Sequential(nn.Linear(3, 2))

        def nll(self, tokens):
            return self.out(self.emb(tokens)).sum()

    model = Tagger()
    entered = []
    off = engine.hub.subscribe(lambda e: entered.append(e) if isinstance(e, ModuleEvent) and e.enter else None)
    try:
        model.nll(engine.tensor([1, 2]))
        nn.Linear(2, 2)(engine.zeros(1, 2))  # a module nobody holds: its class, as before
    finally:
        off()
    assert [(e.path, e.cls) for e in entered] == [("Tagger.emb", "Embedding"), ("Tagger.out", "Sequential"),
                                                  ("Tagger.out.0", "Linear"), ("Linear", "Linear")]
    assert [name for _, name in entered[0].params] == ["emb.weight"]
    assert [name for _, name in entered[2].params] == ["out.0.weight", "out.0.bias"]
