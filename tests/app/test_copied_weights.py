"""Weights set with `p.copy_(t)` under no_grad (a port loading another model's numbers) stay parameters: torch
records no node for the copy, and the graph shows each as the parameter it is, with the gradient that reaches it,
not as the output of an "expand" fed by an input (what copy_'s events said)."""

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from app.graph_model import OP, PARAM
from engine.events import OpEvent
from tests.app.graphs import record_events, recorded_model

RNG = np.random.default_rng(1)
W1, B1 = RNG.standard_normal((5, 4)).astype(np.float32), RNG.standard_normal(5).astype(np.float32)
X, Y = RNG.standard_normal((2, 4)).astype(np.float32), np.array([2, 0])


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 5), nn.Linear(5, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def _loaded(lib, net):
    with lib.no_grad():
        net.fc1.weight.copy_(lib.tensor(W1))
        net.fc1.bias.copy_(lib.tensor(B1))
    return net


def _step(lib, net) -> None:
    lib.nn.functional.cross_entropy(net(lib.tensor(X)), lib.tensor(Y)).backward()


def test_the_graph_shows_copied_weights_as_parameters():
    net = Net()
    model = recorded_model(lambda: (_loaded(engine, net), _step(engine, net)))
    view = model.view()
    kinds = {label: int(kind) for label, kind in zip(view.label, view.kind)}
    assert kinds["fc1.weight"] == PARAM and kinds["fc1.bias"] == PARAM
    assert "expand" not in [label for label, kind in zip(view.label, view.kind) if kind == OP]


def test_a_copy_under_no_grad_is_no_op_and_the_parameter_keeps_torchs_gradient():
    torch = pytest.importorskip("torch")

    class TorchNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(4, 5), torch.nn.Linear(5, 3)

        def forward(self, x):
            return self.fc2(torch.nn.functional.relu(self.fc1(x)))

    mine, theirs = Net(), _loaded(torch, TorchNet())
    with torch.no_grad():
        theirs.fc2.weight.copy_(torch.from_numpy(mine.fc2.weight.detach().numpy()))
        theirs.fc2.bias.copy_(torch.from_numpy(mine.fc2.bias.detach().numpy()))
    assert theirs.fc1.weight.is_leaf and theirs.fc1.weight.grad_fn is None  # torch: a leaf, no node for the copy
    events = record_events(lambda: (_loaded(engine, mine), _step(engine, mine)))
    _step(torch, theirs)
    ops = [e.op for e in events if isinstance(e, OpEvent)]
    assert "expand" not in ops and ops[0] == "linear"  # the first op is the forward's
    assert mine.fc1.weight.is_leaf and mine.fc1.weight.grad_fn is None
    np.testing.assert_array_equal(mine.fc1.weight.detach().numpy(), W1)
    np.testing.assert_allclose(mine.fc1.weight.grad.numpy(), theirs.fc1.weight.grad.numpy(), rtol=1e-3, atol=1e-4)


def test_copy_into_a_parameter_broadcasts_casts_and_names_a_bad_shape():
    p = nn.Parameter(engine.zeros(2, 3))
    with engine.no_grad():
        p.copy_(engine.tensor([1, 2, 3]))  # int64 row, broadcast over the rows, cast to float32
    np.testing.assert_array_equal(p.detach().numpy(), [[1, 2, 3], [1, 2, 3]])
    assert p.dtype == engine.float32
    with engine.no_grad(), pytest.raises(RuntimeError, match=r"copy_: a source of shape \(4,\) cannot be broadcast "
                                                            r"to the shape \(2, 3\)"):
        p.copy_(engine.ones(4))


def test_a_copied_weights_node_shows_its_gradient_in_a_replay(qtbot, make_window, tmp_path):
    """The tester's mlp_cmp.py: after loading the weights with copy_, fc1.weight's node showed no gradient."""
    net, tape = Net(), str(tmp_path / "run.tape")
    with engine.record(tape, capture="summary"):
        _loaded(engine, net)
        _step(engine, net)
    window = make_window((1400, 900))
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=15_000)
    view = window.canvas.view
    window.canvas.select(next(key for key, text in zip(view.keys, view.label) if text == "fc1.weight"))
    assert "gradient: as it reached it in the backward of iteration 0" in window.inspector.meta.text()
    grad = net.fc1.weight.grad.array
    assert float(window.inspector.stat_text("L2 norm", "gradient")) == pytest.approx(float(np.linalg.norm(grad)),
                                                                                       rel=1e-4)
