"""A GAN's iteration in the graph is the debugger's: the generator's forward, the discriminator's step and the
generator's step together, not the stretch after the last optimizer step (the discriminator alone)."""

import engine
import engine.nn as nn
import engine.nn.functional as F
from app.graph_model import MODULE, GraphModel
from engine.debug import Debugger


def test_the_graph_of_a_gan_iteration_holds_both_models():
    engine.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    D = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    opt_d, opt_g = engine.optim.Adam(D.parameters(), lr=1e-3), engine.optim.Adam(G.parameters(), lr=1e-3)
    ones, zeros = engine.ones(16, 1), engine.zeros(16, 1)
    with Debugger("summary", model=G, optimizer=opt_g) as dbg:
        for _ in range(4):
            fake = G(engine.randn(16, 4))
            opt_d.zero_grad()
            err_d = F.binary_cross_entropy_with_logits(D(engine.randn(16, 2)), ones) + \
                F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
            err_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            F.binary_cross_entropy_with_logits(D(fake), ones).backward()
            opt_g.step()
    model = GraphModel()
    model.apply_batch(list(dbg.history))
    model.end_run()
    view = model.view()
    roots = {path.split(".")[0].split("#")[0] for path in view.groups if path}
    assert {"Sequential", "Sequential_2"} <= roots  # the generator and the discriminator
    calls = {path for path in view.groups if path.startswith("Sequential_2") and "." not in path}
    assert len(calls) == 3  # the discriminator on real, on detached fake and on fake


def test_a_gans_two_models_are_named_as_the_script_calls_them():
    # they read "Sequential" and "Sequential_2": the engine's names for two models of one class
    engine.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    D = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    opt_d, opt_g = engine.optim.Adam(D.parameters(), lr=1e-3), engine.optim.Adam(G.parameters(), lr=1e-3)
    with Debugger("summary", model=G, optimizer=opt_g) as dbg:
        for _ in range(2):
            z = engine.randn(16, 4); fake = G(z)  # noqa: E702 (two statements on one line, as g1_gan.py has it)
            opt_d.zero_grad()
            err_d = F.binary_cross_entropy_with_logits(D(engine.randn(16, 2)), engine.ones(16, 1)) + \
                F.binary_cross_entropy_with_logits(D(fake.detach()), engine.zeros(16, 1))
            err_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            F.binary_cross_entropy_with_logits(D(fake), engine.ones(16, 1)).backward()
            opt_g.step()
    model = GraphModel()
    model.apply_batch(list(dbg.history))
    model.end_run()
    view = model.view()
    assert view.root_names == {"Sequential": "G", "Sequential_2": "D"}
    model.collapse_below(1)  # each model one node: named so, its class under it
    view = model.view()
    shown = {(view.label[i], view.sublabel[i]) for i in range(len(view)) if view.kind[i] == MODULE}
    assert {("G", "Sequential"), ("D", "Sequential"), ("D#1", "Sequential"), ("D#2", "Sequential")} <= shown


def test_models_a_line_calls_one_inside_another_are_named_in_the_order_they_ran():
    from engine.debug.node_names import root_names
    from engine.debug.source import SourceFrame

    line = SourceFrame("train.py", 9, "train", "loss = criterion(model(x), y)  # model runs first")
    assert root_names([("Net", line), ("CrossEntropyLoss", line)]) == {"Net": "model", "CrossEntropyLoss": "criterion"}
    twice = SourceFrame("train.py", 4, "<module>", "for m in (a, b): m(x)")
    assert root_names([("Net", twice), ("Net_2", twice)]) == {}  # "m" names two models: neither
    unpaired = SourceFrame("train.py", 5, "<module>", "out = helper(model(x))")  # helper ran no model
    assert root_names([("Net", unpaired)]) == {}
    assert root_names([("Net", None)]) == {}
