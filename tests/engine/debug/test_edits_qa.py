"""Value edits as a person makes them while training runs: mid-iteration, undone, redone, or refused."""

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.debug import Breakpoint, Debugger
from engine.debug import edits as edits_module
from engine.debug.edits import EditParam, EditRejected, Reinit, Restore, prepare
from tests.engine.debug.helpers import TIMEOUT


def model():
    engine.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def values(m):
    return {n: p.array.copy() for n, p in m.named_parameters()}


@pytest.mark.parametrize("edit", [EditParam("Sequential.0.weight", "scale", 0.5),
                                  EditParam("Sequential.0.weight", "fill", 0.0, ((0, 0), (1, 2))),
                                  Reinit("Sequential.0")])
def test_a_value_edit_between_a_forward_and_its_backward_leaves_that_backward_working(edit):
    m = model()
    x = engine.randn(5, 3)
    loss = m(x).pow(2).sum()
    reference = model()  # the same model, not edited: the gradients the forward that ran should get
    reference(x).pow(2).sum().backward()
    prepare(edit, m, None)()  # a run going on, or a pause mid-forward: the edit lands here
    loss.backward()  # an in-place write made this raise "modified by an inplace operation"
    for (name, p), q in zip(m.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-6, err_msg=name)
    assert not np.array_equal(m[0].weight.array, reference[0].weight.array)  # the next forward sees the edit


def test_a_reinit_while_paused_mid_forward_lets_the_run_go_on():
    m = model()
    opt = engine.optim.SGD(m.parameters(), lr=0.1)
    x = engine.randn(5, 3)

    def train():
        for _ in range(3):
            opt.zero_grad()
            m(x).pow(2).sum().backward()
            opt.step()

    dbg = Debugger("structure", model=m, optimizer=opt)
    dbg.add_breakpoint(Breakpoint.op("tanh"))
    run = dbg.run_callable(train)
    assert dbg.wait_for_stop(TIMEOUT).record.phase == "forward"
    assert dbg.edit(Reinit("Sequential.0")).result(TIMEOUT).applied
    dbg.remove_breakpoint(1)
    dbg.resume()
    assert run.join(TIMEOUT) and run.exception is None, run.exception


@pytest.mark.parametrize("edit", [EditParam("Sequential.0.weight", "scale", 3.0, ((0, 1), (2, 2)), "s1"),
                                  EditParam("Sequential.2.bias", "fill", (1.5, -2.0), ((0,), (1,)), "s2"),
                                  Reinit("Sequential.2", "s3")])
def test_restore_puts_values_back_bit_for_bit_and_redo_puts_back_what_the_edit_made(edit):
    m = model()
    before = values(m)
    prepare(edit, m, None)()
    after = values(m)
    assert any(not np.array_equal(before[k], after[k]) for k in before)
    prepare(Restore("x", edit.snapshot), m, None)()
    assert all(values(m)[k].tobytes() == before[k].tobytes() for k in before)  # 3 * (1/3) would not be
    prepare(Restore("x", edit.snapshot, after=True), m, None)()
    assert all(values(m)[k].tobytes() == after[k].tobytes() for k in after)


def test_a_dropped_snapshot_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(edits_module, "SNAPSHOT_BYTES", 1)  # room for the newest one only
    m = model()
    prepare(Reinit("Sequential.0", "old"), m, None)()
    prepare(Reinit("Sequential.2", "new"), m, None)()
    with pytest.raises(EditRejected, match="were not kept"):
        prepare(Restore("Sequential.0", "old"), m, None)
    prepare(Restore("Sequential.2", "new"), m, None)()


@pytest.mark.parametrize("edit", [EditParam("Sequential.0.weight", "fill", float("nan")),
                                  EditParam("Sequential.0.weight", "fill", (1.0, float("inf")), ((0, 0), (1, 1))),
                                  EditParam("Sequential.0.weight", "scale", float("inf")),
                                  EditParam("Sequential.0.weight", "fill", 1.0, ((True, 0),)),
                                  EditParam("Sequential.0.weight", "fill", 1.0, ((4, 0),))])
def test_a_non_finite_value_or_a_bad_index_is_refused_and_changes_nothing(edit):
    m = model()
    before = values(m)
    with pytest.raises(EditRejected) as err:
        prepare(edit, m, None)
    assert "\n" not in str(err.value) and ("finite" in str(err.value) or "out of range" in str(err.value))
    assert all(values(m)[k].tobytes() == before[k].tobytes() for k in before)


def test_freezing_one_parameter_says_so_plainly():
    m = model()
    message = prepare(edits_module.Freeze("Sequential.0.bias"), m, None)()
    assert message == "froze 'Sequential.0.bias'"  # not "froze 1 parameter(s) of 'Sequential.0.bias'"
