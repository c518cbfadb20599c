"""A tensor written in place without an op that names its new value (fill_, zero_, a write through a view under
no_grad) takes a new id while anyone listens: the ops after it hung from the op that made the old value, so the
graph drew an edge from a value that was no longer there (a Hopfield memory updated through mem[i].copy_)."""

import engine
from engine.events import OpEvent


def recorded(fn) -> list[tuple]:
    seen = []
    off = engine.hub.subscribe(lambda e: seen.append((e.op, e.inputs, e.output)) if isinstance(e, OpEvent) else None)
    try:
        fn()
    finally:
        off()
    return seen


def test_fill_and_zero_leave_no_edge_from_the_value_they_replaced():
    def run():
        a = engine.ones(3) * 2
        a.fill_(1.0)
        _ = a + 1
        a.zero_()
        _ = a * 3

    (_, _, made), (_, add_in, _), (_, mul_in, _) = recorded(run)
    assert add_in[0] != made and mul_in[0] not in (made, add_in[0])


def test_a_write_through_a_view_renames_its_base():
    def run():
        with engine.no_grad():
            m = engine.zeros(2, 3) * 1
            m[1].copy_(engine.ones(3))
            _ = m * 2

    events = recorded(run)
    made = events[0][2]
    assert events[-1][0] == "mul" and events[-1][1][0] != made


def test_an_op_that_names_the_written_value_still_lends_it_its_id():
    def run():
        a = engine.zeros(3)
        a.copy_(engine.ones(3) * 2)  # the copy's expand names the new value
        _ = a + 1

    events = recorded(run)
    assert events[-1][1][0] == events[-2][2]
