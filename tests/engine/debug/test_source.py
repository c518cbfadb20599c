"""Source capture: the user-frame chain of every op, also when the walk reuses what it saw before."""

import gc
import weakref

import engine
from engine.debug import Debugger, OpRecord
from engine.debug.source import MAX_CHAIN


def _stacks(dbg) -> list[list[str]]:
    return [[f.function for f in r.stack] for r in dbg.history if isinstance(r, OpRecord)]


def inner(x):
    return x.exp()


def via_a(x):
    return inner(x)


def via_b(x):
    return inner(x)


def test_the_same_function_called_from_different_callers_keeps_each_chain():
    x = engine.ones(3)
    with Debugger("structure") as dbg:
        for _ in range(3):
            via_a(x)
            via_b(x)
    here = test_the_same_function_called_from_different_callers_keeps_each_chain.__name__
    assert [s[:3] for s in _stacks(dbg)] == [["inner", "via_a", here], ["inner", "via_b", here]] * 3


def test_ops_repeated_from_one_caller_share_their_stack():
    x = engine.ones(3)
    with Debugger("structure") as dbg:
        for _ in range(3):
            inner(x)
    recs = [r for r in dbg.history if isinstance(r, OpRecord)]
    assert recs[0].stack == recs[1].stack and recs[1].stack is recs[2].stack
    assert recs[0].stack[1].function == test_ops_repeated_from_one_caller_share_their_stack.__name__


def test_a_generator_resumed_from_different_callers_is_walked_afresh():
    def batches(x):
        while True:
            yield inner(x)

    def first(g):
        return next(g)

    def second(g):
        return next(g)

    g = batches(engine.ones(2))
    with Debugger("structure") as dbg:
        first(g)
        second(g)
        first(g)
    assert [s[:3] for s in _stacks(dbg)] == [["inner", "batches", "first"], ["inner", "batches", "second"],
                                             ["inner", "batches", "first"]]


def test_deep_recursion_is_cut_at_the_chain_limit():
    def down(x, n):
        return inner(x) if n == 0 else down(x, n - 1)

    with Debugger("structure") as dbg:
        for depth in (MAX_CHAIN + 5, 2, MAX_CHAIN + 5):
            down(engine.ones(2), depth)
    lengths = [len(s) for s in _stacks(dbg)]
    assert lengths[0] == lengths[2] == MAX_CHAIN and lengths[1] < MAX_CHAIN


def test_the_tracer_lets_go_of_user_frames_once_the_forward_phase_ends():
    class Payload:
        pass

    def forward(x):
        payload = Payload()  # a local of the frame that calls the op's function
        forward.ref = weakref.ref(payload)
        return via_a(x)

    x = engine.ones(3, requires_grad=True)
    with Debugger("structure"):
        y = forward(x)
        y.sum().backward()
        gc.collect()
        assert forward.ref() is None


def test_each_op_of_one_frame_gets_its_own_line_and_the_same_callers():
    def forward(x):
        a = x.exp()
        b = inner(a)  # a helper between: its frame is new, the forward's is remembered
        return b.sum()

    def caller(x):
        return forward(x)

    x = engine.ones(3)
    with Debugger("structure") as dbg:
        caller(x)
        caller(x)  # a new forward frame: walked afresh, never mistaken for the first call's
    recs = [r for r in dbg.history if isinstance(r, OpRecord)]
    lines = [(r.source.function, r.source.text) for r in recs]
    assert lines == [("forward", "a = x.exp()"), ("inner", "return x.exp()"), ("forward", "return b.sum()")] * 2
    assert all([f.function for f in r.stack][:3][-2:] == ["forward", "caller"] for r in recs[1::3])
    assert all([f.function for f in r.stack][:2] == ["forward", "caller"] for r in recs[0::3] + recs[2::3])
    assert [f.function for f in recs[1].stack][:3] == ["inner", "forward", "caller"]
    assert [f.text for f in recs[2].stack][:2] == ["return b.sum()", "return forward(x)"]


def test_a_loops_ops_share_their_stacks_from_one_iteration_to_the_next():
    def forward(x):
        return x.exp().sum()

    x = engine.ones(3, requires_grad=True)
    with Debugger("structure") as dbg:
        for _ in range(3):
            forward(x).backward()
            engine.debug.mark_iteration()
    recs = [r for r in dbg.history if isinstance(r, OpRecord)]
    by_iteration = [[r.stack for r in recs if r.iteration == i] for i in sorted({r.iteration for r in recs})]
    assert len(by_iteration) == 3 and all(len(stacks) == 2 for stacks in by_iteration)
    assert all(a is b for a, b in zip(by_iteration[1], by_iteration[2]))  # one stack object per call site
