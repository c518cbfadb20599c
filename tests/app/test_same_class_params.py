"""Parameters of two models of one class (TD3's actor and its target network) get distinct labels in the graph,
live and in a replay; a run of one model labels its parameters as before ("net.0.weight")."""

import pytest

import engine
from app.graph_model import INPUT, PARAM, GraphModel
from engine import nn
from tests.app.graphs import record_events
from tests.app.test_window import TIMEOUT, script


class Actor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))

    def forward(self, s):
        return self.net(s)


def _source_labels(events) -> dict[str, str]:
    """Label of every parameter (or input) node of the graph `events` build, by node key."""
    model = GraphModel()
    model.apply_batch(events)
    view = model.view()
    return {key: label for key, kind, label in zip(view.keys, view.kind, view.label, strict=True)
            if kind in (PARAM, INPUT)}


def test_an_actor_and_its_target_network_label_their_parameters_apart():
    actor, actor_t = Actor(), Actor()
    s = engine.randn(3, 2)

    def iteration():  # TD3: the target network first, then the online one
        target = actor_t(s)
        ((actor(s) - target) ** 2).mean().backward()

    labels = _source_labels(record_events(iteration))
    params = {key: label for key, label in labels.items() if label != "input"}
    # the target network was called first, so it is the model "Actor" and the online one "Actor_2"
    assert params == {
        "Actor.net.0/linear:0/in1": "net.0.weight", "Actor.net.0/linear:0/in2": "net.0.bias",
        "Actor.net.2/linear:0/in1": "net.2.weight", "Actor.net.2/linear:0/in2": "net.2.bias",
        "Actor_2.net.0/linear:0/in1": "Actor_2.net.0.weight", "Actor_2.net.0/linear:0/in2": "Actor_2.net.0.bias",
        "Actor_2.net.2/linear:0/in1": "Actor_2.net.2.weight", "Actor_2.net.2/linear:0/in2": "Actor_2.net.2.bias",
    }
    assert len(set(params.values())) == 8  # two models' four parameters: no label twice


def test_a_replay_that_starts_at_the_second_model_labels_it_as_the_live_run_did():
    actor, actor_t = Actor(), Actor()
    s = engine.randn(3, 2)
    events = record_events(lambda: (actor(s), actor_t.net(s), actor_t(s)))
    # a replay scrubbed to where only the second model runs: its labels do not depend on the first one's call
    start = next(i for i, ev in enumerate(events) if getattr(ev, "path", "").startswith("Actor_2"))
    labels = _source_labels(events[start:])
    # the first call is of the submodule ("Actor_2.net"), without the model's own call that names its class
    assert {label for label in labels.values() if label != "input"} == {
        "Actor_2.net.0.weight", "Actor_2.net.0.bias", "Actor_2.net.2.weight", "Actor_2.net.2.bias"}


class Net_2(nn.Module):  # a class named like a second model's root name
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(x)


@pytest.mark.parametrize("make, expected", [
    (Actor, {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"}),
    (Net_2, {"fc.weight", "fc.bias"}),
])
def test_one_model_keeps_its_parameter_labels(make, expected):
    net = make()
    s = engine.randn(3, 2)

    def iteration():
        net(s).sum().backward()
        net(s).sum().backward()  # called twice: still one model

    labels = _source_labels(record_events(iteration))
    assert {label for label in labels.values() if label != "input"} == expected


TD3 = """
    import engine
    import engine.nn as nn

    class Actor(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))

        def forward(self, s):
            return self.net(s)

    engine.manual_seed(0)
    actor, actor_t = Actor(), Actor()
    actor_t.load_state_dict(actor.state_dict())
    opt = engine.optim.Adam(actor.parameters(), lr=1e-3)
    s = engine.randn(8, 2)
    for _ in range(2):
        with engine.no_grad():
            target = actor_t(s)
        loss = ((actor(s) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    gap = sum((p - pt).abs().sum() for p, pt in zip(actor.parameters(), actor_t.parameters()))
"""


def _shown_parameters(window) -> list[str]:
    """The labels of the graph's nodes that show a model's parameters (named, not "input")."""
    view = window.canvas.view
    return [label for kind, label in zip(view.kind, view.label, strict=True)
            if kind in (PARAM, INPUT) and label not in ("input", "constant")]


def test_the_window_labels_a_target_networks_parameters_apart_live_and_replayed(qtbot, window, tmp_path):
    tape = str(tmp_path / "td3.tape")
    window.set_stop_on_alerts("none")  # its gradients vanish: an alert, not a stop, in this run to the end
    assert window.run_script(script(tmp_path, "td3.py", TD3), run=True, record=tape)
    qtbot.waitUntil(lambda: window.session.ended is not None, timeout=TIMEOUT)
    # the last iteration is the gap between the networks: each subtraction takes the online network's parameter
    # ("Actor_2": the target network, called first, is "Actor") and the target network's, outside any module
    expected = ["Actor_2.net.0.weight", "net.0.weight", "Actor_2.net.0.bias", "net.0.bias", "Actor_2.net.2.weight",
                "net.2.weight", "Actor_2.net.2.bias", "net.2.bias"]
    qtbot.waitUntil(lambda: _shown_parameters(window) == expected, timeout=TIMEOUT)

    assert window.open_tape(tape)  # the names are on the tape
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    qtbot.waitUntil(lambda: _shown_parameters(window) == expected, timeout=TIMEOUT)
