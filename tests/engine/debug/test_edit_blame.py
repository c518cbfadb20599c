"""Alerts soon after a runtime edit name the edit first and do not blame a learning rate that never changed."""

import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger
from engine.debug.edit_blame import EDIT_WINDOW, EditBlame
from engine.debug.edits import EditParam, SetOptimizer, SetSetting
from engine.events import AlertEvent, EditEvent

pytestmark = pytest.mark.filterwarnings("ignore:overflow", "ignore:invalid value")


def _train(edit, at: int = 50, steps: int = 60, optimizers=None, schedule=None) -> list:
    """The tester's edit.py: an MLP that trains fine at lr=0.05, then `edit` between two iterations; optimizers(model)
    (one SGD by default) step in turn, and schedule(first optimizer) (none by default) steps after them."""
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
    opts = optimizers(model) if optimizers else [engine.optim.SGD(model.parameters(), lr=0.05)]
    scheduler = schedule(opts[0]) if schedule else None
    x = engine.randn(256, 4)
    y = (x[:, :1] * 2 - x[:, 1:2]).detach()
    with Debugger("summary", model=model, optimizer=opts[0] if len(opts) == 1 else None, discover=True) as dbg:
        for it in range(steps):
            if it == at:
                done = dbg.edit(edit)
                dbg.apply_edits()
                assert done.result(1).applied and done.result(1).iteration == at  # the iteration it takes effect in
            for opt in opts:
                opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            for opt in opts:
                opt.step()
            if scheduler is not None:
                scheduler.step()
    return list(dbg.alerts)


def test_alerts_after_scaling_a_weight_name_the_edit_and_do_not_advise_a_smaller_learning_rate():
    alerts = _train(EditParam("Sequential.2.weight", "scale", 10.0))
    kinds = [a.kind for a in alerts]
    assert "exploding_grad" in kinds and "large_update" in kinds
    for alert in alerts:
        assert alert.message.startswith("After an edit: '2.weight' was scaled by 10 at iteration "), alert.message
        assert " iterations before. " in alert.message or "1 iteration before. " in alert.message
        assert "smaller learning rate" not in alert.message and "10 to 100 times smaller" not in alert.message
        assert "lower the learning rate" not in alert.message and "undo the edit" in alert.message
    large = next(a for a in alerts if a.kind == "large_update")
    assert "the learning rate (0.05) did not change since the edit" in large.message


def test_a_learning_rate_the_edit_raised_is_named_and_the_advice_to_lower_it_kept():
    alerts = _train(SetOptimizer("lr", 30.0))
    assert alerts, "an lr of 30 blows this model up"
    first = alerts[0]
    assert first.message.startswith("After an edit: the optimizer's lr was set to 30.0 (param group 0) at iteration")
    assert any("learning rate" in a.message and "did not change" not in a.message for a in alerts)


def _alert(kind: str, iteration: int, module: str = "") -> AlertEvent:
    text = "the learning rate (0.05) is far too high; try one 10 to 100 times smaller"
    return AlertEvent(0, kind, text, "", "2", module, 0, iteration, "", 0, "", 1.0)


def test_only_alerts_within_the_window_about_the_edited_model_name_the_edit():
    blame = EditBlame()
    blame.edited(EditEvent(1, "param", "Generator.0.weight", (("param", "Generator.0.weight"), ("action", "scale"),
                                                               ("value", 3.0), ("indices", ())), True, "", 100),
                 root="Generator")
    blame.edited(EditEvent(2, "freeze", "Generator.1", (("target", "Generator.1"), ("frozen", True)), False,
                           "refused", 100), root="Generator")  # refused: changed nothing, names nothing
    named = blame.explain(_alert("large_update", 100 + EDIT_WINDOW))
    assert named.message == ("After an edit: '0.weight' was scaled by 3 at iteration 100, 5 iterations before. The "
                             "learning rate (0.05) did not change since the edit, which made the updates this large: "
                             "undo the edit (Edit > Undo Edit)")
    for alert in (_alert("large_update", 101 + EDIT_WINDOW), _alert("large_update", 99),  # too late; before it
                  _alert("exploding_grad", 101, "Critic.2"),  # another model's module
                  _alert("accumulating_grad", 101)):  # the loop's own mistake, no edit's
        assert blame.explain(alert) is alert
    blame.stepped((0.01,))  # a scheduler changed the rate since: the advice about it stands
    assert blame.explain(_alert("large_update", 101)).message.endswith("try one 10 to 100 times smaller")


def _two_optimizers(model) -> list:
    """The body's SGD at lr=0.05 and the head's at 0.01, neither ever changed."""
    return [engine.optim.SGD([*model[0].parameters(), *model[2].parameters()], lr=0.05),
            engine.optim.SGD(model[4].parameters(), lr=0.01)]


@pytest.mark.parametrize("setup", ["cosine", "two optimizers"])
def test_a_schedules_drift_and_a_second_optimizers_rate_are_no_learning_rate_change(setup):
    cosine = lambda opt: engine.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1000)  # noqa: E731
    alerts = _train(EditParam("Sequential.2.weight", "scale", 10.0), schedule=cosine if setup == "cosine" else None,
                    optimizers=_two_optimizers if setup != "cosine" else None)
    assert any(a.kind == "large_update" for a in alerts)
    for alert in alerts:
        assert alert.message.startswith("After an edit: '2.weight' was scaled by 10 at iteration 50, "), alert.message
        assert "smaller learning rate" not in alert.message and "10 to 100 times smaller" not in alert.message
        assert "undo the edit" in alert.message


def test_an_edit_that_cannot_make_values_grow_is_said_to_come_before_but_not_blamed():
    """A dropout rate lowered, then a batch with a feature in the wrong units (x1e4) blows training up."""
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.Dropout(0.1), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for it in range(58):
            x = engine.randn(256, 4)
            if it == 54:
                x = x * engine.tensor([1e4, 1.0, 1.0, 1.0])
            y = (x[:, :1] * 2 - x[:, 1:2]).detach()
            if it == 50:
                done = dbg.edit(SetSetting("Sequential.1", "p", 0.05))
                dbg.apply_edits()
                assert done.result(1).applied
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
    after = [a for a in dbg.alerts if a.iteration >= 54]
    assert any(a.kind == "exploding_grad" for a in after)
    for alert in after[:2]:
        assert alert.message.startswith("An edit came just before ('1'.p was set to 0.05 at iteration 50, "), \
            alert.message
        assert "undo the edit" not in alert.message and "After an edit" not in alert.message
