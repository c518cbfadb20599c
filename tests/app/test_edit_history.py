"""Undo and redo of runtime edits on a real model, and the model described as plain data (no Qt)."""

import pytest

import engine.nn as nn
import engine.optim as optim
from app.edit_history import EditHistory, describe_edit, describe_model
from engine.debug.edits import Freeze, Reinit, SetOptimizer, SetSetting, SwapModule, prepare


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.LeakyReLU(0.2)
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.drop(self.act(self.fc1(x))))


@pytest.fixture
def net():
    model = Net()
    return model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def apply(edits, model, opt) -> None:
    for edit in edits:
        prepare(edit, model, opt)()


def test_undo_and_redo_restore_values_on_the_model(net):
    model, opt = net
    history = EditHistory()
    edits = [(SetSetting("Net.drop", "p", 0.5), SetSetting("Net.drop", "p", 0.1)),
             (SetOptimizer("lr", 0.01), SetOptimizer("lr", 0.1)),
             (Freeze("Net.fc1"), Freeze("Net.fc1", False)),
             (SwapModule("Net.act", "Tanh"), SwapModule("Net.act", "LeakyReLU", (("negative_slope", 0.2),)))]
    for edit, inverse in edits:
        apply([edit], model, opt)
        history.push(edit, inverse)

    def state():
        return (model.drop.p, opt.param_groups[0]["lr"], model.fc1.weight.requires_grad,
                type(model.act).__name__)

    assert state() == (0.5, 0.01, False, "Tanh")
    assert history.undo_text == "Undo swap Net.act for Tanh"
    for expected in ((0.5, 0.01, False, "LeakyReLU"), (0.5, 0.01, True, "LeakyReLU"),
                     (0.5, 0.1, True, "LeakyReLU"), (0.1, 0.1, True, "LeakyReLU")):
        apply(history.undo(), model, opt)
        assert state() == expected
    assert model.act.negative_slope == 0.2 and not history.can_undo
    apply(history.redo(), model, opt)
    apply(history.redo(), model, opt)
    assert state() == (0.5, 0.01, True, "LeakyReLU")
    assert history.redo_text == "Redo freeze Net.fc1"


def test_a_new_edit_drops_the_redo_history():
    history = EditHistory()
    history.push(SetOptimizer("lr", 0.01), SetOptimizer("lr", 0.1))
    history.undo()
    assert history.can_redo
    history.push(SetOptimizer("lr", 0.5), SetOptimizer("lr", 0.1))
    assert not history.can_redo
    with pytest.raises(IndexError, match="nothing to redo"):
        history.redo()


def test_an_edit_without_inverse_cannot_be_undone_nor_what_came_before():
    history = EditHistory()
    history.push(SetOptimizer("lr", 0.01), SetOptimizer("lr", 0.1))
    history.push(Reinit("Net.fc1"), None)
    # the disabled menu item says why, rather than a bare "Undo Edit" greyed out for no visible reason
    assert not history.can_undo and history.undo_text == "Can't Undo re-initialise Net.fc1"
    with pytest.raises(ValueError, match="cannot be undone"):
        history.undo()
    assert history.entries() == ["lr = 0.01", "re-initialise Net.fc1"]


def test_a_refused_edit_is_discarded():
    history = EditHistory()
    ok, refused = SetOptimizer("lr", 0.01), SetSetting("Net.drop", "p", 2.0)
    history.push(ok, SetOptimizer("lr", 0.1))
    history.push(refused, SetSetting("Net.drop", "p", 0.1))
    assert history.discard(refused) and not history.discard(refused)
    assert history.undo() == (SetOptimizer("lr", 0.1),)


def test_history_is_bounded():
    history = EditHistory(limit=3)
    for i in range(5):
        history.push(SetOptimizer("lr", float(i)), SetOptimizer("lr", 0.1))
    assert history.entries() == ["lr = 2.0", "lr = 3.0", "lr = 4.0"]


def test_describe_model_is_plain_data_the_editor_needs(net):
    model, opt = net
    model.fc2.requires_grad_(False)
    modules, optimizer = describe_model(model, opt)
    by_path = {m["path"]: m for m in modules}
    assert list(by_path) == ["Net", "Net.fc1", "Net.act", "Net.drop", "Net.fc2"]
    assert by_path["Net.fc1"]["params"] == [("weight", (8, 4), True), ("bias", (8,), True)]
    assert by_path["Net.fc2"]["params"] == [("weight", (3, 8), False), ("bias", (3,), False)]
    assert by_path["Net.drop"]["settings"][0]["allowed"] == "a float in [0, 1]"
    act = by_path["Net.act"]
    assert "GELU" in act["swaps"] and "LeakyReLU" not in act["swaps"] and "Softmax" not in act["swaps"]
    assert act["kwargs"] == [("negative_slope", 0.2), ("inplace", False)]
    assert by_path["Net.fc1"]["swaps"] == [] and by_path["Net.fc1"]["reinit"]
    assert optimizer["cls"] == "SGD" and optimizer["groups"][0]["momentum"] == 0.9
    assert "params" not in optimizer["groups"][0]
    for edit in (SetSetting("Net.drop", "p", 0.3), SwapModule("Net.act", act["swaps"][0])):
        prepare(edit, model, opt)  # the paths it gives are the ones edits take


def test_describe_edit_reads_like_a_menu_entry():
    assert describe_edit(SetOptimizer("momentum", 0.5, group=-1)) == "momentum = 0.5 (all groups)"
    assert describe_edit(Freeze("Net.fc1.weight", False)) == "unfreeze Net.fc1.weight"


def test_redo_of_a_value_edit_puts_back_what_it_made_rather_than_drawing_again(net):
    from engine.debug.edits import EditParam, Restore

    model, opt = net
    history = EditHistory()
    reinit = Reinit("Net.fc1", "r1")
    history.push(reinit, Restore("Net.fc1", "r1"))
    apply([reinit], model, opt)
    drawn = model.fc1.weight.array.copy()
    apply(history.undo(), model, opt)
    assert history.redo() == (Restore("Net.fc1", "r1", after=True),)
    apply([Restore("Net.fc1", "r1", after=True)], model, opt)
    assert model.fc1.weight.array.tobytes() == drawn.tobytes()
    assert describe_edit(EditParam("Net.fc1.weight", "fill", (1.0, 2.0), ((0, 0), (1, 1)))) == \
        "fill Net.fc1.weight (2 elements) with 2 values"


def test_an_edit_on_the_timeline_reads_as_its_message_not_its_arguments():
    # a slice edit's marker listed every coordinate it touched (65,536 of them for a 256 x 256 weight)
    from app.debug_panels import _edit_text
    from engine.events import EditEvent

    coords = tuple((i, j) for i in range(256) for j in range(256))
    args = (("param", "net.0.weight"), ("indices", coords), ("value", 2.0))
    applied = EditEvent(7, "param", "net.0.weight", args, True, "scaled 65536 element(s) of 'net.0.weight' by 2.0", 3)
    assert _edit_text(applied) == "scaled 65536 element(s) of 'net.0.weight' by 2.0"
    refused = EditEvent(8, "param", "net.0.weight", args, False, "the value must be a finite number, got nan", 3)
    assert _edit_text(refused) == "refused param net.0.weight: the value must be a finite number, got nan"
    bare = EditEvent(9, "param", "net.0.weight", args, True, "", 3)
    assert len(_edit_text(bare)) == 160 and _edit_text(bare).endswith("\u2026")
