"""What ported programs showed of model discovery and alerts: a GAN with spectrally normalised critics (the debugger
finds the generator and its optimizer, the critics' parameters keep their names, a critic's output bias that a hinge
or WGAN loss cancels is no vanishing gradient), a converged one-layer model, a block a growing model fades in, an
attention score's bias and a converged classifier's output bias."""

from __future__ import annotations

import numpy as np

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger
from engine.debug.records import EventRecord
from engine.events import ModuleEvent
from engine.nn.utils import parametrizations, spectral_norm


def critic(norm) -> nn.Sequential:
    return nn.Sequential(norm(nn.Linear(2, 16)), nn.LeakyReLU(0.2), norm(nn.Linear(16, 1)))


def test_registering_a_parametrization_makes_no_module_call_of_the_run():
    seen = []
    off = engine.hub.subscribe(lambda e: seen.append(e.path) if isinstance(e, ModuleEvent) else None)
    try:
        for make in (parametrizations.spectral_norm, parametrizations.weight_norm, parametrizations.orthogonal):
            layer = make(nn.Linear(3, 3))
        assert seen == []
        layer(engine.ones(1, 3))  # its calls inside the layer's are the run's
        assert "ParametrizedLinear.parametrizations.weight" in seen
    finally:
        off()


def gan(loss: str, loops: int = 4):
    """A generator and two critics (hook and parametrization spectral norms), two critic steps per generator step,
    the generator called first under no_grad; the critics' loss is `loss` ("hinge" or "wasserstein")."""
    engine.manual_seed(0)
    rng = np.random.default_rng(0)
    g = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    d1, d2 = critic(spectral_norm), critic(parametrizations.spectral_norm)
    opt_g = engine.optim.Adam(g.parameters(), lr=1e-3, betas=(0.0, 0.9))
    opt_d = engine.optim.Adam([*d1.parameters(), *d2.parameters()], lr=1e-3, betas=(0.0, 0.9))

    def score(x):
        return 0.5 * (d1(x) + d2(x))

    steps = []
    dbg = Debugger("summary", interactive=False, cache_bytes=0, discover=True,
                   on_record=lambda r: steps.append(r.event) if isinstance(r, EventRecord) and r.phase == "optimizer"
                   else None)
    with dbg:
        for _ in range(loops):
            for _ in range(2):
                real = engine.tensor(rng.standard_normal((32, 2)), dtype=engine.float32)
                with engine.no_grad():
                    fake = g(engine.randn(32, 4))
                if loss == "hinge":
                    d_loss = F.relu(1 - score(real)).mean() + F.relu(1 + score(fake)).mean()
                else:
                    d_loss = score(fake).mean() - score(real).mean()
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
            g_loss = -score(g(engine.randn(32, 4))).mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
    return dbg, g, opt_g, steps


def test_the_generator_called_first_is_the_model_and_critic_parameters_keep_their_names():
    dbg, g, opt_g, steps = gan("hinge")
    assert dbg.model is g and dbg.optimizer is opt_g
    critic_names = set(steps[0].grad_norms)
    assert "Adam:Sequential_3.0.parametrizations.weight.original" in critic_names
    assert "Adam:Sequential_2.0.weight_orig" in critic_names
    assert not any("ParametrizationList" in name for name in critic_names)
    assert set(steps[2].grad_norms) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_a_critic_output_bias_that_the_loss_cancels_raises_no_vanishing_alert():
    for loss in ("hinge", "wasserstein"):
        dbg, *_ = gan(loss)
        assert not [a for a in dbg.alerts if a.kind == "vanishing_grad"], loss


def test_a_module_called_before_the_model_gives_way_to_the_model_its_optimizer_trains():
    augment = nn.Sequential(nn.Dropout(0.1), nn.Identity())  # no parameters: no optimizer trains it
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    dbg = Debugger("summary", interactive=False, cache_bytes=0, discover=True)
    with dbg:
        for _ in range(2):
            x = augment(engine.randn(8, 3))
            loss = model(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert dbg.model is model and dbg.optimizer is opt
    step = next(r.event for r in dbg.history if isinstance(r, EventRecord) and r.phase == "optimizer")
    assert set(step.grad_norms) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_a_one_layer_model_that_converged_raises_no_vanishing_alert():
    # a linear regression's gradients fall to 1e-8 as its loss reaches 1e-12: 158 alerts said the gradient faded
    # "on its way back through the layers" of a model of one layer
    engine.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = engine.optim.SGD(model.parameters(), lr=0.2)
    x = engine.randn(64, 3)
    y = x @ engine.tensor([[0.5], [-1.0], [2.0]]) + 0.3
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(300):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
    assert loss.item() < 1e-10  # converged: its gradients fell below the vanishing limit
    assert not [a for a in dbg.alerts if a.kind == "vanishing_grad"]


def test_a_block_a_growing_model_fades_in_from_zero_raises_no_vanishing_alert():
    # progressive growing: a new block joins with alpha = 0, so its first step's gradient is exactly zero
    engine.manual_seed(0)
    blocks = nn.ModuleList([nn.Linear(4, 4)])
    head = nn.Linear(4, 1)
    opt = engine.optim.SGD([*blocks.parameters(), *head.parameters()], lr=0.05)
    x, y = engine.randn(16, 4), engine.randn(16, 1)
    with Debugger("summary", model=head, optimizer=opt) as dbg:
        for step in range(30):
            if step == 10:
                blocks.append(nn.Linear(4, 4))
                opt.add_param_group({"params": list(blocks[1].parameters())})
            h = engine.tanh(blocks[0](x))
            if len(blocks) > 1:
                alpha = min(1.0, (step - 10) / 10)
                h = (1 - alpha) * h + alpha * engine.tanh(blocks[1](h))
            opt.zero_grad()
            F.mse_loss(head(h), y).backward()
            opt.step()
    assert not [a for a in dbg.alerts if a.kind == "vanishing_grad"], [a.message for a in dbg.alerts]


def test_a_bias_a_batchnorm_takes_away_through_a_linear_raises_no_vanishing_alert():
    # BYOL's projector ends in a Linear whose output the predictor's Linear and BatchNorm take: the bias's gradient
    # is zero but for rounding (7e-8 against 0.74 in its module's weight); a vanishing alert named it
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8)))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = engine.randn(32, 8), engine.randn(32, 8)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(5):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
    assert not dbg.alerts, [a.message for a in dbg.alerts]


class AttentionPooling(nn.Module):
    """Gated attention over a bag of instances (multiple-instance learning): one score per instance, a softmax
    over the bag, the weighted mean of the instances' features classified."""

    def __init__(self, d: int = 12, hidden: int = 32) -> None:
        super().__init__()
        self.feature = nn.Sequential(nn.Linear(d, hidden), nn.ReLU())
        self.v, self.u = nn.Linear(hidden, 16), nn.Linear(hidden, 16)
        self.score = nn.Linear(16, 1)  # its bias shifts every score alike: the softmax takes it away
        self.classifier = nn.Linear(hidden, 1)

    def forward(self, bag):
        h = self.feature(bag)
        a = F.softmax(self.score(engine.tanh(self.v(h)) * engine.sigmoid(self.u(h))).t(), dim=1)
        return self.classifier(a @ h).squeeze(0)


def test_an_attention_score_bias_before_a_softmax_raises_no_vanishing_alert():
    # its gradient is the sum of the softmax's, zero but for float32 rounding: up to 1.4e-5 of its weight's in a
    # ported gated-attention model, which called it a gradient fading through the layers
    engine.manual_seed(0)
    rng = np.random.default_rng(2)
    model = AttentionPooling()
    opt = engine.optim.Adam(model.parameters(), lr=2e-3)
    bags, labels = [], []
    for _ in range(40):
        bag = rng.standard_normal((int(rng.integers(3, 20)), 12)).astype(np.float32)
        positive = rng.random() < 0.5
        if positive:  # a few witness instances make the bag positive
            bag[rng.choice(len(bag), max(1, len(bag) // 4), replace=False), :4] += 2.5
        bags.append(engine.tensor(bag))
        labels.append(engine.tensor([float(positive)]))
    ratios = []
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(20):
            for bag, label in zip(bags, labels):
                opt.zero_grad()
                F.binary_cross_entropy_with_logits(model(bag), label).backward()
                ratios.append(model.score.bias.grad.norm().item() / model.score.weight.grad.norm().item())
                opt.step()
    assert max(ratios) > 1e-5  # the case that alerted
    assert not [a for a in dbg.alerts if a.kind == "vanishing_grad"]


def test_a_converged_classifiers_output_bias_is_no_gradient_fading_through_the_layers():
    # the demo's SpiralNet, converged: its output bias's gradient (the mean of errors near zero) fell below the
    # limit while every earlier layer's stayed above it, and "the gradient fades on its way back" was raised
    def train(settings=None):
        engine.manual_seed(0)
        x = engine.randn(64, 2)
        y = (x[:, 0] > 0).long()
        model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
        opt = engine.optim.Adam(model.parameters(), lr=0.05)
        with Debugger("summary", model=model, optimizer=opt, alerts=settings) as dbg:
            for _ in range(150):
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
        steps = [r.event for r in dbg.history if isinstance(r, EventRecord) and r.phase == "optimizer"]
        return dbg, steps[-1].grad_norms

    _, norms = train()
    assert norms["2.bias"] == min(norms.values())  # the output bias: the smallest gradient at the end
    limit = (norms["2.bias"] * min(v for k, v in norms.items() if k != "2.bias")) ** 0.5
    from engine.debug import AlertSettings

    dbg, _ = train(AlertSettings(grad_norm_min=limit))
    assert not [a for a in dbg.alerts if a.kind == "vanishing_grad"]
    # the same gradients below a limit every layer is under: an alert still (a loss scaled down by mistake)
    dbg, _ = train(AlertSettings(grad_norm_min=1e9))
    assert [a.kind for a in dbg.alerts if a.kind == "vanishing_grad"] == ["vanishing_grad"]
