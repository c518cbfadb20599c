"""A GAN's graph fits its view large: the generator, which waits for nothing but its noise, is laid out beside the
discriminator's call on real data, not in a layer of its own above it (three model boxes high where two fit)."""

import engine
import engine.nn as nn
import engine.nn.functional as F
from app.graph_model import GraphModel
from app.layout import layout_view
from engine.debug import Debugger


def gan_view():
    engine.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_d, opt_g = engine.optim.Adam(D.parameters(), lr=1e-3), engine.optim.Adam(G.parameters(), lr=1e-3)
    ones, zeros = engine.ones(32, 1), engine.zeros(32, 1)
    with Debugger("summary", model=G, optimizer=opt_g) as dbg:
        for _ in range(2):
            real = engine.randn(32, 2) * 0.5 + 2.0  # two ops before D(real): D's call starts two layers down
            fake = G(engine.randn(32, 4))
            opt_d.zero_grad()
            errD = F.binary_cross_entropy_with_logits(D(real), ones) + \
                F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
            errD.backward()
            opt_d.step()
            opt_g.zero_grad()
            errG = F.binary_cross_entropy_with_logits(D(fake), ones)
            errG.backward()
            opt_g.step()
    model = GraphModel()
    model.apply_batch(list(dbg.history))
    model.end_run()
    return model.view()


def test_the_generator_and_the_discriminator_share_their_layers():
    view = gan_view()
    layout = layout_view(view)
    box = {name: layout.group_rect[g] for g, name in enumerate(view.groups)}
    g, d = box["Sequential"], box["Sequential_2"]
    assert abs(g[1] - d[1]) < 1 and (g[0] + g[2] <= d[0] or d[0] + d[2] <= g[0])  # side by side, top to top
    calls = [box["Sequential_2#1"], box["Sequential_2#2"]]
    assert all(c[1] >= d[1] + d[3] for c in calls)  # D's calls on fakes below (they take D's weights and G's output)
    height = layout.bounds[3] - layout.bounds[1]
    # two boxes high (and the ops around them), not three: the whole graph was 1,754 units tall, 1,286 now
    assert height < d[3] + max(c[3] for c in calls) + 12 * 38
