"""A graph model recorded from a real step, for the layout and canvas tests."""

import engine
from app.graph_model import GraphModel
from engine import nn
from engine.events import hub


def mlp_graph_model() -> GraphModel:
    """The GraphModel of one forward and backward of a small Sequential MLP, from its recorded events."""
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    events: list = []
    hub.reset_top_level()
    off = hub.subscribe(events.append)
    nn.functional.cross_entropy(net(engine.randn(5, 4)), engine.tensor([0, 1, 2, 0, 1])).backward()
    off()
    model = GraphModel()
    model.apply_batch(events)
    return model
