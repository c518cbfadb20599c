"""The in-place modification error names what was saved, the line that saved it and the line that changed it; a
backward through a freed graph names the op and iteration that made it."""

import inspect

import pytest

import engine
import engine.nn as nn
from engine.autograd import inplace
from engine.autograd.inplace import InplaceModifiedError
from engine.debug import Debugger
from engine.nn.module import forget_root_names

torch = pytest.importorskip("torch")


def _line_of(fn, marker: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if marker in line)


def _sigmoid_then_add(lib):
    lin = lib.nn.Linear(4, 4)
    h = lib.sigmoid(lin(lib.ones(3, 4)))  # saves its output
    h += 1  # changes it
    h.sum().backward()


def test_torch_raises_for_the_same_program_and_so_does_the_engine():
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        _sigmoid_then_add(torch)
    with pytest.raises(RuntimeError, match="modified by an inplace operation") as caught:
        _sigmoid_then_add(engine)
    err = caught.value
    assert isinstance(err, InplaceModifiedError)
    assert (err.node, err.op, err.saved) == ("SigmoidBackward0", "sigmoid", "the output")
    assert (err.version, err.expected) == (1, 0)
    # nobody listened: no line is known, and the message says how to get them
    assert err.op_site is None and err.write_site is None
    assert "set_detect_anomaly(True)" in str(err) and "clone()" in str(err)


def test_nothing_is_noted_while_nobody_listens():
    inplace.forget()
    with pytest.raises(InplaceModifiedError):
        _sigmoid_then_add(engine)
    assert not inplace._writes and not inplace._forwards


def test_anomaly_mode_names_the_line_that_saved_and_the_line_that_changed():
    with engine.autograd.detect_anomaly(), pytest.raises(InplaceModifiedError) as caught:
        _sigmoid_then_add(engine)
    err = caught.value
    assert err.op_site.frame.line == _line_of(_sigmoid_then_add, "saves its output")
    assert err.write_site.frame.line == _line_of(_sigmoid_then_add, "changes it")
    text = str(err)
    assert "h += 1" in text and "lib.sigmoid(lin(lib.ones(3, 4)))" in text
    assert text.index("changed in place") < text.index("saved by sigmoid")
    assert not inplace._forwards  # anomaly mode off again: what it kept is dropped


def test_an_inplace_relu_module_is_named_by_its_path():
    # numbered afresh, as a session starts: an earlier test's Sequential not yet collected (a debugger's cycles hold
    # it until the garbage collector runs) would make this one "Sequential_2"
    forget_root_names()
    net = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.ReLU(inplace=True), nn.Linear(8, 1))
    with engine.autograd.detect_anomaly(), pytest.raises(InplaceModifiedError) as caught:
        net(engine.ones(2, 4)).sum().backward()
    err = caught.value
    assert (err.op, err.op_site.module, err.write_site.module) == ("sigmoid", "Sequential.1", "Sequential.2")
    assert "changed in place in Sequential.2 at" in str(err)


def _write_through_a_view(x):
    y = x.exp()  # saves its output
    y[:, 0] *= 2  # a view's write
    y.sum().backward()


def test_a_write_through_a_view_is_found_too():
    x = engine.ones(2, 3, requires_grad=True)
    with pytest.raises(InplaceModifiedError) as caught, Debugger("structure") as dbg:
        _write_through_a_view(x)
    err = caught.value
    assert err.write_site.frame.line == _line_of(_write_through_a_view, "a view's write")
    assert err.op_site.frame.line == _line_of(_write_through_a_view, "saves its output")
    (alert,) = dbg.alerts
    assert alert.kind == "inplace" and alert.op == "exp"


def test_a_debugger_turns_it_into_an_alert_at_the_write():
    with pytest.raises(InplaceModifiedError) as caught, Debugger("summary") as dbg:
        _sigmoid_then_add(engine)
    (alert,) = dbg.alerts
    assert alert.kind == "inplace" and alert.op == "sigmoid" and alert.module == ""
    assert (alert.file, alert.line) == (__file__, _line_of(_sigmoid_then_add, "changes it"))
    assert alert.code == "h += 1  # changes it"
    # the op's line comes from the debugger's records (no anomaly mode), into the message too
    assert f"{__file__}:{_line_of(_sigmoid_then_add, 'saves its output')}" in alert.message
    assert alert.message in str(caught.value)
    assert dbg.explain_failure(caught.value) is None  # once


def test_a_recorded_tape_keeps_the_alert(tmp_path):
    path = tmp_path / "run.tape"
    with pytest.raises(InplaceModifiedError), engine.record(str(path), capture="summary"):
        _sigmoid_then_add(engine)
    with engine.tape.open(str(path)) as tape:
        (alert,) = tape.alerts()
    assert (alert.kind, alert.op, alert.line) == ("inplace", "sigmoid", _line_of(_sigmoid_then_add, "changes it"))


def test_other_errors_are_not_explained():
    with pytest.raises(ValueError), Debugger("structure") as dbg:
        raise ValueError("the user's own")
    assert not dbg.alerts


def _carried_hidden_state(lib, steps: int = 2):
    rnn = lib.nn.RNN(3, 4, batch_first=True)
    h = lib.zeros(1, 2, 4)
    for _ in range(steps):
        out, h = rnn(lib.ones(2, 5, 3), h)  # h carries iteration 0's graph into iteration 1
        out.sum().backward()


def test_a_hidden_state_carried_across_batches_names_its_op_and_iteration():
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        _carried_hidden_state(torch)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time") as plain:
        _carried_hidden_state(engine)
    assert "h = h.detach()" in str(plain.value) and "made in iteration" not in str(plain.value)
    with pytest.raises(inplace.FreedGraphError) as caught, Debugger("summary") as dbg:
        rnn = engine.nn.RNN(3, 4, batch_first=True)
        h = engine.zeros(1, 2, 4)
        for _ in range(2):
            out, h = rnn(engine.ones(2, 5, 3), h)  # the carried state
            out.sum().backward()
            engine.debug.mark_iteration()
    (alert,) = dbg.alerts
    assert (alert.kind, alert.op, alert.iteration) == ("graph_freed", "rnn_tanh", 0)
    assert alert.line == _line_of(test_a_hidden_state_carried_across_batches_names_its_op_and_iteration,
                                  "the carried state")
    assert "made in iteration 0" in str(caught.value) and "RNN" in str(caught.value)
