"""Zero-initialised layers are a design, not a fault: no vanishing-gradient alert for what they block in the first
step, no large-update alert while they grow from zero; the same conditions without the zero start still alert."""

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger
from tests.engine.debug.test_alerts import conv_then


class Block(nn.Module):
    """A residual block whose last BatchNorm scale starts at zero (torchvision's zero_init_residual)."""

    def __init__(self, width: int, zero: bool) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)
        if zero:
            nn.init.zeros_(self.bn2.weight)

    def forward(self, x):
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


def _resnet(zero: bool):
    engine.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Block(8, zero), Block(8, zero), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 5))


def _alerts(model, opt, steps: int, scheduler=None, data=None):
    engine.manual_seed(1)
    x, y = data or (engine.randn(16, 3, 8, 8), engine.randint(0, 5, (16,)))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if scheduler is not None:
                scheduler.step()
    return [(a.kind, a.key, a.iteration) for a in dbg.alerts]


def test_a_zero_initialised_residual_scale_raises_no_alert_under_one_cycle():
    model = _resnet(zero=True)
    opt = engine.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    sched = engine.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=12)
    assert _alerts(model, opt, 12, sched) == []
    assert float(model[1].conv1.weight.grad.norm()) > 0  # the block behind the zero scale trains after step 0


def test_a_zero_initialised_output_embedding_is_no_vanishing_gradient():
    # word2vec's classic start: the context table is zeros, so the word table gets no gradient in step 0
    class SkipGram(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.out = nn.Embedding(50, 8), nn.Embedding(50, 8)
            self.out.weight.data.zero_()

        def forward(self, w, c):
            return (self.inp(w) * self.out(c)).sum(-1)

    engine.manual_seed(0)
    model = SkipGram()
    opt = engine.optim.Adam(model.parameters(), lr=0.01)
    w, c = engine.randint(0, 50, (32,)), engine.randint(0, 50, (32,))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(3):
            opt.zero_grad()
            (-F.logsigmoid(model(w, c))).mean().backward()
            opt.step()
    assert list(dbg.alerts) == [] and float(model.inp.weight.grad.norm()) > 0


def test_without_the_zero_start_the_same_conditions_still_alert():
    # a weight of zeros that never trains (frozen): what it blocks is a vanishing gradient, every step
    model = _resnet(zero=True)
    for block in (model[1], model[2]):
        block.bn2.weight.requires_grad_(False)
    opt = engine.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    found = _alerts(model, opt, 2)
    assert ("vanishing_grad", 0) in {(kind, it) for kind, _, it in found}
    # a learning rate far too high for a layer that did not start at zero
    model = _resnet(zero=False)
    opt = engine.optim.SGD(model.parameters(), lr=50.0)
    assert "large_update" in {kind for kind, _, _ in _alerts(model, opt, 6)}


def test_a_gradient_norm_hovering_at_the_limit_is_one_alert_until_it_stays_away():
    # a summed loss whose gradient norm crosses the limit every other step: one alert, not one per crossing;
    # after 20 steps under it, crossing again is a new alert
    engine.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = engine.optim.SGD(model.parameters(), lr=0.0)
    x = engine.randn(8, 4)
    scales = [1e4, 1.0] * 10 + [1.0] * 20 + [1e4]
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for scale in scales:
            opt.zero_grad()
            (model(x).square().sum() * scale).backward()
            opt.step()
    # (lr=0 keeps the gradients as they are: the learning rate's own alert says so, beside)
    assert [(a.kind, a.iteration) for a in dbg.alerts if a.kind != "lr_zero"] == [("exploding_grad", 0),
                                                                                   ("exploding_grad", 40)]


def test_a_parameter_that_cancels_out_and_stays_at_zero_is_no_large_update():
    # a pairwise loss (BPR): a global bias added to both sides gets a zero gradient and stays at its zero; its
    # update over its weight was 0/0, taken as infinite: "updates are infx its weights ... learning rate too high"
    class Pairwise(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 1)
            self.offset = nn.Parameter(engine.zeros(1))

        def forward(self, a, b):
            return (self.fc(a) + self.offset) - (self.fc(b) + self.offset)

    engine.manual_seed(0)
    model = Pairwise()
    opt = engine.optim.Adam(model.parameters(), lr=0.01)
    a, b = engine.randn(16, 4), engine.randn(16, 4)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(30):
            opt.zero_grad()
            (-F.logsigmoid(model(a, b))).mean().backward()
            opt.step()
    assert "large_update" not in {a.kind for a in dbg.alerts}
    assert float(model.offset.detach().abs().max()) == 0.0


def test_a_hinge_in_a_loss_is_no_dead_relu_but_a_dead_layer_still_is():
    # a capsule network's margin loss: relu(m_pos - lengths) is zero for every sample of a class it separates
    class Net(nn.Module):
        def __init__(self, dead: bool):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 3)
            if dead:
                self.fc1.bias.data.fill_(-100.0)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

    def kinds(dead: bool):
        engine.manual_seed(0)
        model = Net(dead)
        opt = engine.optim.SGD(model.parameters(), lr=0.1)
        x, target = engine.randn(16, 4), F.one_hot(engine.randint(0, 3, (16,)), 3).float()
        with Debugger("summary", model=model, optimizer=opt) as dbg:
            for _ in range(2):
                lengths = model(x).sigmoid()
                margin = target * F.relu(0.9 - lengths + 5.0).square() + (1 - target) * F.relu(lengths - 5.0)
                opt.zero_grad()
                margin.sum(1).mean().backward()
                opt.step()
        return {a.kind: a.module for a in dbg.alerts}

    assert "dead_relu" not in kinds(dead=False)
    assert kinds(dead=True).get("dead_relu") == "Net"


def test_a_tiny_learnable_scale_that_moves_by_its_size_is_no_learning_rate_too_high():
    # quantisation-aware training's learnable scale and a PReLU slope crossing zero: their updates are their own
    # size while they settle, yet the run trains well; the learning rate was blamed
    class Quant(nn.Module):
        def __init__(self, start: float):
            super().__init__()
            self.scale = nn.Parameter(engine.tensor([start]))

        def forward(self, x):
            return x * (1 + self.scale)

    def kinds(start: float, pull: float):
        engine.manual_seed(0)
        fc, q = nn.Linear(4, 2), Quant(start)
        model = nn.Sequential(fc, q)
        opt = engine.optim.SGD(model.parameters(), lr=0.1)
        x, y = engine.randn(16, 4), engine.randint(0, 2, (16,))
        with Debugger("summary", model=model, optimizer=opt) as dbg:
            for _ in range(10):
                opt.zero_grad()
                (F.cross_entropy(model(x), y) + pull * q.scale.square().sum()).backward()
                opt.step()
        return {a.kind for a in dbg.alerts}

    assert "large_update" not in kinds(0.02, 8.0)  # swings across zero, each swing smaller: it settles
    assert "large_update" in kinds(0.02, 15.0)  # each swing twice the last: the learning rate is too high


def test_a_conv_bias_before_an_instance_norm_is_no_vanishing_gradient():
    # InstanceNorm runs as a group_norm with a group per channel: the exemption named "instance_norm" never applied
    engine.manual_seed(0)
    alerts, bias_grad = conv_then(nn.InstanceNorm2d(4, affine=True))
    assert alerts == [] and bias_grad < 1e-5
    engine.manual_seed(0)
    assert conv_then(nn.GroupNorm(2, 4))[0] == []  # two channels a group: the bias is not removed, and learns
