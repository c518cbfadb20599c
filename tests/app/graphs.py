"""Graph models recorded from real runs, for the graph model, layout, presenter, canvas and tree tests."""

import engine
from app.graph_model import GraphModel
from engine import nn
from engine.events import hub
from engine.nn.module import forget_root_names


def record_events(fn) -> list:
    """The events `fn()` emits, with top-level op keys counted from 0 (as after an iteration boundary), and models
    named as in a session that starts here (a Sequential is "Sequential" whatever earlier tests left alive)."""
    hub.reset_top_level()
    forget_root_names()
    events: list = []
    off = hub.subscribe(events.append)
    try:
        fn()
    finally:
        off()
    return events


def recorded_model(fn) -> GraphModel:
    """The GraphModel of what `fn()` runs."""
    model = GraphModel()
    model.apply_batch(record_events(fn))
    return model


def mlp_graph_model() -> GraphModel:
    """The GraphModel of one forward and backward of a small Sequential MLP, from its recorded events."""
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    return recorded_model(lambda: nn.functional.cross_entropy(net(engine.randn(5, 4)),
                                                             engine.tensor([0, 1, 2, 0, 1])).backward())


class Twice(nn.Module):
    """A module that calls its activation twice: the graph names the second call "Twice.act#1"."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.act = nn.Linear(3, 3), nn.Tanh()

    def forward(self, x):
        return self.act(self.fc(self.act(x)))


def sgd_steps(model, x, steps: int, lr: float = 0.1, after_step=None) -> None:
    """`steps` plain SGD steps on mean(model(x)^2): zero_grad, forward, backward, step (then after_step(opt))."""
    opt = engine.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        if after_step is not None:
            after_step(opt)
