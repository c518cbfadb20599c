"""What a traced run records: source lines, module depth, phases, iterations, links, tiers, values."""

import inspect

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine.debug import (
    BackwardRecord,
    Debugger,
    EventRecord,
    OpRecord,
    ValueCache,
    ValueUnavailable,
    mark_iteration,
)
from engine.debug.pacing import WAIT_STEPS
from engine.debug.source import capture
from tests.engine.debug.helpers import MLP, label, steppable, trainer


def _line_of(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def _ops(dbg):
    return [r for r in dbg.history if isinstance(r, OpRecord)]


def test_op_source_is_the_users_line():
    def inner(x):
        return x.exp() * 2.0

    def outer(x):
        return inner(x) + 1.0

    with Debugger("structure") as dbg:
        outer(engine.ones(3))
    exp, mul, add = _ops(dbg)
    assert exp.source.file == __file__ and exp.source.function == "inner"
    assert exp.source.line == _line_of(inner, "x.exp()") and exp.source.text == "return x.exp() * 2.0"
    callers = [f.function for f in exp.stack[:3]]
    assert callers == ["inner", "outer", test_op_source_is_the_users_line.__name__]
    assert add.source.line == _line_of(outer, "inner(x) + 1.0")
    assert exp.source is mul.source  # one shared frame object per (code, line): cached


def test_ops_inside_a_module_point_at_forward_and_know_their_depth():
    model = MLP()
    _opt, train = trainer(model)
    with Debugger("structure", model=model) as dbg:
        train()
    by_key = {r.event.key: r for r in _ops(dbg)}
    lin = by_key["MLP.fc1/linear:0"]
    assert lin.depth == 2 and lin.source.function == "forward" and "self.fc1(x)" in lin.source.text
    assert lin.stack[1].function == "train" and by_key["MLP/mul:0"].depth == 1
    assert by_key["cross_entropy:0"].depth == 0


def test_capture_outside_any_user_code_is_empty():
    assert capture(10_000) == (None, ())


def test_phases_iterations_and_backward_linked_to_forward():
    model = MLP()
    opt, train = trainer(model, steps=2)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        train()
    recs = list(dbg.history)
    labels = steppable([label(r) for r in recs])
    keys = ["MLP.fc1/linear:0", "MLP/relu:0", "MLP/mul:0", "MLP.fc2/linear:0", "cross_entropy:0"]
    fwd = ["fwd:" + k for k in keys]
    bwd = ["bwd:" + k for k in reversed(keys)]
    assert labels == (fwd + bwd + ["opt"]) * 2
    assert [r.iteration for r in recs if not isinstance(r, EventRecord)] == [0] * 10 + [1] * 10
    assert {r.phase for r in recs if isinstance(r, BackwardRecord)} == {"backward"}
    for b in (r for r in recs if isinstance(r, BackwardRecord)):
        assert b.forward is not None and b.forward.event.seq == b.event.forward_seq
        assert b.forward.event.key == b.event.key and b.depth == b.forward.depth
    fc1_back = [r for r in recs if isinstance(r, BackwardRecord) and r.event.key == "MLP.fc1/linear:0"][-1]
    shapes = [s.shape if s is not None else None for s in fc1_back.grad_inputs]
    assert shapes == [None, (6, 4), (6,)]  # x needs no gradient; the bias gradient is summed to (6,)
    assert np.isclose(fc1_back.grad_inputs[1].norm, np.linalg.norm(model.fc1.weight.grad.numpy()))


def test_mark_iteration_replaces_optimizer_steps_as_boundaries():
    x = engine.ones(3, requires_grad=True)
    with Debugger("structure") as dbg:
        for _ in range(3):
            (x * 2.0).sum().backward()
            mark_iteration()
    assert [r.iteration for r in _ops(dbg)] == [0, 0, 1, 1, 2, 2]
    assert dbg.state.iteration == 2


@pytest.mark.parametrize("capture", ["structure", "summary", "values"])
def test_capture_tiers(capture):
    x = engine.tensor(np.arange(6.0, dtype=np.float32), requires_grad=True)
    with Debugger(capture, values_limit=4) as dbg:
        y = (x * 3.0).sum()
        y.backward()
    mul, total = _ops(dbg)
    assert mul.event.output_shape == (6,) and mul.event.dtype == "float32"
    if capture == "structure":
        assert mul.summary is None and mul.value is None
        return
    assert mul.summary.max == 15.0 and mul.summary.mean == 7.5
    if capture == "values":
        assert mul.value is None  # 6 elements > values_limit 4
        np.testing.assert_array_equal(total.value, np.float32(45.0))
        back = next(r for r in dbg.history if isinstance(r, BackwardRecord) and r.event.op == "sum")
        np.testing.assert_array_equal(back.values[0], np.float32(1.0))
    else:
        assert total.value is None


def test_fetch_returns_recent_outputs_and_gradients_in_full():
    model = MLP()
    opt, train = trainer(model)
    with Debugger("structure", model=model, optimizer=opt) as dbg:
        train()
    relu = next(r for r in _ops(dbg) if r.event.op == "relu")
    value = dbg.fetch(relu.event.output)
    assert value.shape == (5, 6) and isinstance(value, np.ndarray) and (value >= 0).all()
    back = next(r for r in dbg.history if isinstance(r, BackwardRecord) and r.event.key == "MLP.fc1/linear:0")
    np.testing.assert_array_equal(dbg.fetch(back.event.grad_inputs[1]), model.fc1.weight.grad.numpy())
    with pytest.raises(ValueUnavailable):
        dbg.fetch(10**12)


def test_value_cache_is_bounded_lru_with_weak_fallback_and_version_checks():
    cache = ValueCache(max_bytes=3 * 800)
    arrays = [np.full(100, i, np.float64) for i in range(5)]  # 800 bytes each
    for i, a in enumerate(arrays):
        cache.put(i + 1, a)
    assert cache.nbytes == 3 * 800
    np.testing.assert_array_equal(cache.fetch(1), arrays[0])  # evicted, but alive: weakly kept
    arrays[0] = None
    with pytest.raises(ValueUnavailable):
        cache.fetch(1)
    t = engine.ones(4)
    cache.put(9, t.array, t._vc)
    t.add_(1.0)
    with pytest.raises(ValueUnavailable, match="changed in place"):
        cache.fetch(9)


def test_value_cache_keeps_strong_references_for_two_iterations_only():
    cache = ValueCache()
    for it in range(4):
        cache.new_iteration(it)
        cache.put(it + 1, np.full(3, it, np.float32))  # the caller drops its reference at once
    assert 1 not in cache and 2 not in cache and 3 in cache and 4 in cache


def test_detach_restores_the_untraced_hub():
    with Debugger("summary"):
        assert engine.hub.active
    assert not engine.hub.active and engine.hub.tensor_listeners == ()


def test_records_reach_listeners_in_order():
    seen = []
    with Debugger("structure", on_record=seen.append):
        F.relu(engine.ones(2) - 3.0)
    assert [label(r) for r in seen] == ["fwd:sub:0", "fwd:relu:0"]


def test_optimizer_steps_name_parameters_as_the_model_does():
    model = MLP()
    opt, train = trainer(model)  # an optimizer given plain parameters: to itself they are "group0.0", ...
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        train(2)
    steps = [r.event for r in dbg.history if isinstance(r, EventRecord) and r.phase == "optimizer"]
    names = [name for name, _ in model.named_parameters()]
    assert len(steps) == 2
    for event in steps:
        assert list(event.update_norms) == names == list(event.weight_norms)
    with Debugger("summary", model=model) as found:  # the optimizer found as it steps
        train(1)
    step = next(r.event for r in found.history if isinstance(r, EventRecord) and r.phase == "optimizer")
    assert list(step.update_norms) == names
    with Debugger("summary", optimizer=opt) as alone:  # without the model, the optimizer's own names
        train(1)
    step = next(r.event for r in alone.history if isinstance(r, EventRecord) and r.phase == "optimizer")
    assert list(step.update_norms) == [f"group0.{i}" for i in range(len(names))]


def test_two_optimizers_each_name_their_own_parameters():
    # a GAN-like loop: one optimizer per half of the model; the second one's steps were named with the
    # first one's parameters
    model = engine.nn.Sequential(engine.nn.Linear(3, 4), engine.nn.Linear(4, 2))
    first = engine.optim.SGD(model[0].parameters(), lr=0.1)
    second = engine.optim.SGD(model[1].parameters(), lr=0.1)
    with Debugger("summary", model=model, optimizer=first) as dbg:  # the app names one optimizer, if any
        for opt in (first, second):
            opt.zero_grad()
            model(engine.ones(1, 3)).sum().backward()
            opt.step()
    steps = [r.event for r in dbg.history if isinstance(r, EventRecord) and r.phase == "optimizer"]
    assert [list(e.update_norms) for e in steps] == [["0.weight", "0.bias"], ["1.weight", "1.bias"]]


def _step_iterations(pattern: str, steps: int = 4, main: str = "G", critic: bool = True) -> list[tuple[str, int]]:
    """(which optimizer, iteration) of each step when a generator ('G') and a critic ('D') step in `pattern` per
    training iteration, or a model is trained anew ('N': a new optimizer, same parameters); `main`: which of them
    the debugger is given; `critic`: whether the critic has an optimizer."""
    g_model, d_model = engine.nn.Linear(3, 2), engine.nn.Linear(2, 1)
    opts = {"G": engine.optim.SGD(g_model.parameters(), lr=0.01)}
    if critic:
        opts["D"] = engine.optim.SGD(d_model.parameters(), lr=0.01)
    seen = []
    with Debugger("structure", model=g_model if main == "G" else d_model, optimizer=opts[main]) as dbg:
        for _ in range(steps):
            for who in pattern:
                if who == "N":
                    opts["G"] = engine.optim.SGD(g_model.parameters(), lr=0.01)
                    who = "G"
                opt = opts[who]
                opt.zero_grad()
                d_model(g_model(engine.ones(1, 3))).sum().backward()
                opt.step()
                seen.append((who, dbg.history[-1].iteration))  # the step's own record
    return seen


def test_a_gans_critic_steps_fall_inside_the_generators_iterations():
    # each step ended an iteration: 20 G+D iterations were counted as 41, and the loss chart zigzagged; then the
    # first cycles were split while the loop showed its pattern (a DCGAN's 32 steps made 35 iterations)
    seen = _step_iterations("DG")
    assert seen == [("D", 0), ("G", 0), ("D", 1), ("G", 1), ("D", 2), ("G", 2), ("D", 3), ("G", 3)]
    seen = _step_iterations("DDDDDG", steps=3)  # a WGAN: five critic steps a generator step
    assert [it for _, it in seen] == [it for it in range(3) for _ in "DDDDDG"]
    # a generator optimizer made anew each iteration (same parameters) keeps ending them
    assert [it for _, it in _step_iterations("N", steps=3, critic=False)] == [0, 1, 2]


def test_an_optimizer_that_never_steps_is_waited_for_only_so_long():
    # the critic's optimizer exists and its parameters get gradients, but only the generator's steps: the first
    # iteration waits WAIT_STEPS of its steps for the critic's, then each step ends one
    seen = _step_iterations("G", steps=WAIT_STEPS + 3)
    assert [it for _, it in seen] == [0] * WAIT_STEPS + [1, 2, 3]
    # a critic whose parameters are frozen is not waited for
    g_model, d_model = engine.nn.Linear(3, 2), engine.nn.Linear(2, 1)
    d_model.requires_grad_(False)
    opt, _ = engine.optim.SGD(g_model.parameters(), lr=0.01), engine.optim.SGD(d_model.parameters(), lr=0.01)
    with Debugger("structure", model=g_model, optimizer=opt) as dbg:
        for _ in range(3):
            opt.zero_grad()
            d_model(g_model(engine.ones(1, 3))).sum().backward()
            opt.step()
    assert [r.iteration for r in dbg.history if isinstance(r, EventRecord) and r.phase == "optimizer"] == [0, 1, 2]


def test_iterations_end_at_the_optimizer_that_steps_last_in_the_loop_body():
    # a GAN loop calls its discriminator first, so the debugger finds it first: each of its steps ended an
    # iteration (3,004 iterations for 1,501 generator steps). Once the loop shows twice which optimizer steps just
    # before the first one again (the generator), that one's steps end iterations
    for pattern in ("DDG", "DG"):
        seen = _step_iterations(pattern, steps=8, main="D")
        g_iterations = [it for who, it in seen if who == "G"]
        assert g_iterations[-4:] == list(range(g_iterations[-4], g_iterations[-4] + 4))  # one iteration per cycle
        steady = seen[-4 * len(pattern):]  # the last four cycles: each cycle's steps share an iteration
        assert [it for _, it in steady] == [it for it in g_iterations[-4:] for _ in pattern]
        assert g_iterations[-1] <= 8 + 4  # a few more iterations than cycles, while it tells the body apart


def test_three_optimizers_of_an_actor_critic_loop_share_each_iteration():
    # SAC steps its critic, its actor, then its temperature; the debugger found the actor: each iteration held the
    # temperature step of the loop before (403 iterations for 400 loops, the first ones split)
    critic, actor = engine.nn.Linear(2, 1), engine.nn.Linear(2, 2)
    log_alpha = engine.zeros(1, requires_grad=True)
    opts = {"C": engine.optim.Adam(critic.parameters()), "A": engine.optim.Adam(actor.parameters()),
            "L": engine.optim.Adam([log_alpha])}
    seen = []
    with Debugger("structure", model=actor, optimizer=opts["A"]) as dbg:
        for _ in range(10):
            for who, opt in opts.items():
                opt.zero_grad()
                (critic(actor(engine.ones(1, 2))).sum() + log_alpha.exp().sum()).backward()
                opt.step()
                seen.append((who, dbg.history[-1].iteration))
    steady = seen[-12:]
    assert [who for who, _ in steady] == list("CAL") * 4
    its = [it for _, it in steady]
    assert its == [its[0] + k for k in range(4) for _ in range(3)]  # C, A and L of a loop in one iteration
    assert its[-1] <= 10 + 4
