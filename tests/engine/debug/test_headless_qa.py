"""engine.debug from a script or CI: where warnings point, and what a wrong breakpoint says."""

import inspect
import warnings

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.debug import Breakpoint, Debugger, watch
from tests.engine.oracle import torch


def _log_of_zero(model, x):
    h = model(x)
    return (h * 0).abs().log().sum()  # the NaN origin


def test_a_nonfinite_warning_points_at_the_users_line():
    model = nn.Linear(3, 2)
    x = engine.randn(4, 3)
    with warnings.catch_warnings(record=True) as caught, watch(model, on_nonfinite="warn"):
        warnings.simplefilter("always")
        _log_of_zero(model, x)
    (w,) = [w for w in caught if "non-finite" in str(w.message)]
    lines, first = inspect.getsourcelines(_log_of_zero)
    assert w.category is RuntimeWarning
    assert w.filename == __file__  # not engine/debug/debugger.py
    assert w.lineno == first + next(i for i, line in enumerate(lines) if "NaN origin" in line)


def test_a_gradient_norm_warning_points_at_the_optimizer_step():
    model = nn.Linear(3, 3)
    opt = engine.optim.SGD(model.parameters(), lr=1e-9)
    x = engine.randn(4, 3) * 1e5
    with warnings.catch_warnings(record=True) as caught, watch(model, optimizer=opt, on_nonfinite="warn"):
        warnings.simplefilter("always")
        opt.zero_grad()
        (model(x) ** 2).sum().backward()
        opt.step(); line = inspect.currentframe().f_lineno  # noqa: E702
    (w,) = [w for w in caught if "gradient norm" in str(w.message)]
    assert (w.filename, w.lineno) == (__file__, line)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Breakpoint.iteration(-1), "iteration breakpoint: the iteration must be a whole number >= 0, got -1"),
    (lambda: Breakpoint.iteration(2.5), "iteration breakpoint: the iteration must be a whole number >= 0, got 2.5"),
    (lambda: Breakpoint.max_abs("big"), "max_abs breakpoint: the threshold must be a number, got 'big'"),
    (lambda: Breakpoint.norm(float("nan")), "norm breakpoint: the threshold must be a number, got nan"),
])
def test_a_bad_breakpoint_value_names_the_breakpoint(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == message


def test_numpy_numbers_make_breakpoints():
    assert Breakpoint.max_abs(np.float32(50)).value == 50.0
    assert Breakpoint.iteration(np.int64(2)).value == 2.0


def test_add_breakpoint_and_add_predicate_refuse_what_they_cannot_use():
    dbg = Debugger("summary")
    with pytest.raises(TypeError, match=r"add_breakpoint takes a Breakpoint \(e.g. Breakpoint.op\('relu'\)\), got str"):
        dbg.add_breakpoint("relu")
    with pytest.raises(TypeError, match="add_predicate takes a function of a record, got int"):
        dbg.add_predicate(42)
    assert dbg.list_breakpoints() == ()
    with dbg:  # nothing half-added stops or breaks a run
        (engine.randn(3, requires_grad=True) * 2).sum().backward()


def test_a_predicate_that_raises_is_named_in_the_error_of_the_run():
    model = nn.Linear(3, 2)
    x = engine.randn(4, 3)
    dbg = Debugger("summary", model=model)

    def big_output(rec):
        return rec.summary.abs_maximum > 10  # a typo: TensorSummary has abs_max

    dbg.add_predicate(big_output)
    run = dbg.run_callable(lambda: (model(x) ** 2).sum().backward())
    assert dbg.wait_for_stop(10) is None and run.join(10)
    assert isinstance(run.exception, RuntimeError)
    assert str(run.exception) == ("breakpoint predicate 'big_output' raised AttributeError: 'TensorSummary' object "
                                  "has no attribute 'abs_maximum' (at Linear/linear:0)")
    assert isinstance(run.exception.__cause__, AttributeError)  # the predicate's own traceback comes along


def test_run_script_of_a_missing_file_names_it_at_once(tmp_path):
    dbg = Debugger("summary")
    with pytest.raises(FileNotFoundError, match=f"run_script: no such script: {tmp_path / 'nope.py'}$"):
        dbg.run_script(tmp_path / "nope.py")
    with pytest.raises(FileNotFoundError, match=r"\(it is a folder\)$"):
        dbg.run_script(tmp_path)
    assert dbg.state.status == "detached"  # nothing started


def _adam_at_10(lib, steps: int = 30) -> list[float]:
    """The losses of a small classifier trained by Adam at lr=10 (engine or torch: one API, one seed, one init)."""
    lib.manual_seed(0)
    x, y = lib.randn(64, 4), lib.randint(0, 3, (64,))
    model = lib.nn.Sequential(lib.nn.Linear(4, 32), lib.nn.ReLU(), lib.nn.Linear(32, 3))
    opt = lib.optim.Adam(model.parameters(), lr=10)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = lib.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_watch_warns_that_adams_learning_rate_is_far_too_high():
    # watch() captures "structure", which asked optimizers for no update norms: the updates' size went unchecked
    with warnings.catch_warnings(record=True) as caught, watch() as dbg:
        warnings.simplefilter("always")
        losses = _adam_at_10(engine)
    assert [a.kind for a in dbg.alerts] == ["large_update"]
    (w,) = caught
    assert "the learning rate (10) is far too high" in str(w.message) and w.category is RuntimeWarning
    lines, first = inspect.getsourcelines(_adam_at_10)
    # at the line that writes lr=10, where the optimizer is made
    assert (w.filename, w.lineno) == (__file__, first + next(i for i, line in enumerate(lines) if "lr=10)" in line))
    if torch is not None:  # the loss blows up in torch as here: the rate is the cause
        theirs = _adam_at_10(torch)
        np.testing.assert_allclose(losses[:3], theirs[:3], rtol=1e-3)
        assert max(losses) > 100 * losses[0] and max(theirs) > 100 * theirs[0]
