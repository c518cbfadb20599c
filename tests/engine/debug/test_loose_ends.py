"""Loose ends of a training loop the debugger names: a graph carried from iteration to iteration
(`total_loss += loss`), an op result nothing takes (a residual never added), an evaluation with dropout or
BatchNorm left in training mode (model.eval() forgotten, F.dropout without training=self.training), uint8 pixels
fed as 0..255, and class weights that favour the common classes. Each bug beside its fixed version, which raises
none of these."""

from __future__ import annotations

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger

KINDS = ("history_kept", "unused_result", "train_mode_eval")


def train(model, steps: int = 12, after_step=None, evaluate=None, every: int = 4, lr: float = 0.05) -> list:
    """The alerts of these kinds from `steps` SGD steps on one batch; `after_step(loss, i)` runs after each step,
    `evaluate()` every `every` steps."""
    engine.manual_seed(1)
    opt = engine.optim.SGD(model.parameters(), lr=lr)
    x, y = engine.randn(32, 6), engine.randint(0, 3, (32,))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for i in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step(loss, i)
            if evaluate is not None and i % every == every - 1:
                evaluate(x)
    return [a for a in dbg.alerts if a.kind in KINDS]


def mlp(dropout: float = 0.0, norm: bool = False) -> nn.Module:
    engine.manual_seed(0)
    layers = [nn.Linear(6, 16)] + ([nn.BatchNorm1d(16)] if norm else []) + [nn.ReLU()]
    return nn.Sequential(*layers, *([nn.Dropout(dropout)] if dropout else []), nn.Linear(16, 3))


# ---- a graph carried from step to step ----------------------------------------------------------------------


def test_a_running_total_of_losses_that_keeps_their_graphs_is_named_at_its_line():
    total = [0]

    def add(loss, i):
        total[0] += loss  # the bug: keeps every step's graph reachable

    (alert,) = train(mlp(), steps=14, after_step=add)
    assert alert.kind == "history_kept" and alert.op == "add"
    assert alert.code == "total[0] += loss  # the bug: keeps every step's graph reachable"
    assert alert.iteration == 8 and "loss.item()" in alert.message
    fixed = [0.0]

    def add_number(loss, i):
        fixed[0] += loss.item()

    assert train(mlp(), steps=14, after_step=add_number) == []


def test_a_moving_average_updated_with_gradients_on_is_named_and_under_no_grad_is_not():
    engine.manual_seed(0)
    model, shadow = mlp(), engine.zeros(16, 6)

    def ema(loss, i, grad=True):
        nonlocal shadow
        with engine.set_grad_enabled(grad):
            shadow = 0.9 * shadow + 0.1 * model[0].weight  # an EMA of a weight: with grad on, a graph per step

    (alert,) = train(model, after_step=ema)
    assert alert.kind == "history_kept" and "detach()" in alert.message
    shadow = engine.zeros(16, 6)
    assert train(mlp(), after_step=lambda loss, i: ema(loss, i, grad=False)) == []


def test_a_hidden_state_detached_between_batches_is_no_kept_graph():
    engine.manual_seed(0)
    rnn, head = nn.GRU(4, 8, batch_first=True), nn.Linear(8, 2)
    model = nn.ModuleList([rnn, head])
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    h = engine.zeros(1, 5, 8)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(12):
            out, h = rnn(engine.randn(5, 7, 4), h.detach())  # truncated backpropagation through time, done right
            loss = F.cross_entropy(head(out[:, -1]), engine.randint(0, 2, (5,)))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert [a for a in dbg.alerts if a.kind in KINDS] == []


# ---- a result nothing takes ---------------------------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, bug: str = "") -> None:
        super().__init__()
        self.bug = bug
        self.fc1, self.fc2, self.head = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 3)

    def forward(self, x):
        out = self.fc2(F.relu(self.fc1(x)))
        if self.bug == "residual":
            out + x
        else:
            out = out + x
        if self.bug == "relu":
            out.relu()
        else:
            out = out.relu()
        _, top = out.max(1)  # the values go unused, the indices are taken: a line that does its work
        self.aux = out.pow(2).mean()  # kept for the loop, which adds it to the loss
        features = out.tanh()  # for the caller, who ignores them
        return self.head(out) + 0 * top[:, None], features


def train_block(bug: str) -> list:
    engine.manual_seed(0)
    model = Block(bug)
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    x, y = engine.randn(32, 6), engine.randint(0, 3, (32,))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(3):
            opt.zero_grad()
            logits, _features = model(x)
            (F.cross_entropy(logits, y) + 0.01 * model.aux).backward()
            opt.step()
    return [a for a in dbg.alerts if a.kind in KINDS]


def test_a_residual_never_added_is_named_at_its_line():
    (alert,) = train_block("residual")
    assert alert.kind == "unused_result" and alert.op == "add" and alert.code == "out + x"
    assert alert.module == "Block" and "nothing takes" in alert.message and "out = out + x" in alert.message


def test_an_activation_whose_result_is_dropped_is_named():
    (alert,) = train_block("relu")
    assert alert.kind == "unused_result" and alert.op == "relu" and alert.code == "out.relu()"


def test_results_taken_by_a_sibling_output_the_caller_or_the_loop_are_no_loose_ends():
    assert train_block("") == []


# ---- an evaluation in training mode ---------------------------------------------------------------------------


def evaluation(model, eval_first: bool):
    def run(x):
        if eval_first:
            model.eval()
        with engine.no_grad():
            model(x).argmax(1)  # the predictions, scored
        model.train()
    return run


def test_an_evaluation_without_eval_is_named_and_with_eval_is_not():
    model = mlp(dropout=0.5)
    (alert,) = train(model, evaluate=evaluation(model, eval_first=False))
    assert alert.kind == "train_mode_eval" and alert.op == "dropout" and alert.iteration == 4
    assert "Dropout drops" in alert.message and "model.eval()" in alert.message
    model = mlp(dropout=0.5)
    assert train(model, evaluate=evaluation(model, eval_first=True)) == []


def test_batchnorm_in_training_mode_under_no_grad_names_its_running_statistics():
    model = mlp(norm=True)
    (alert,) = train(model, evaluate=evaluation(model, eval_first=False))
    assert alert.op == "batch_norm" and "running statistics" in alert.message


class FunctionalDropout(nn.Module):
    def __init__(self, fixed: bool) -> None:
        super().__init__()
        self.fixed = fixed
        self.fc1, self.fc2 = nn.Linear(6, 16), nn.Linear(16, 3)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = F.dropout(h, 0.5, training=self.training) if self.fixed else F.dropout(h, 0.5)
        return self.fc2(h)


def test_functional_dropout_in_an_eval_model_names_its_training_argument():
    model = FunctionalDropout(fixed=False)
    (alert,) = train(model, evaluate=evaluation(model, eval_first=True))
    assert "FunctionalDropout is in eval mode, but F.dropout drops anyway" in alert.message
    assert "training=self.training" in alert.message
    model = FunctionalDropout(fixed=True)
    assert train(model, evaluate=evaluation(model, eval_first=True)) == []


def test_a_target_network_in_training_mode_under_no_grad_is_not_an_evaluation():
    # BYOL's or MoCo's key encoder: run in training mode with gradients off, on purpose; no optimizer trains it
    target = mlp(norm=True)
    for p in target.parameters():
        p.requires_grad_(False)

    def targets(loss, i):
        with engine.no_grad():
            target(engine.randn(32, 6)).argmax(1)  # its outputs scored: only no optimizer's spares it

    assert train(mlp(norm=True), after_step=targets) == []


class Byol(nn.Module):
    """An online network the optimizer trains and, in the same wrapper, a target updated by a moving average."""

    def __init__(self) -> None:
        super().__init__()
        self.online, self.target = mlp(norm=True), mlp(norm=True)
        for p in self.target.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        with engine.no_grad():
            target = self.target(x)  # in training mode, gradients off: on purpose
            target.argmax(1)
        return self.online(x) + 0 * target


def test_a_target_network_inside_the_trained_wrapper_is_not_an_evaluation():
    model = Byol()
    opt = engine.optim.SGD(model.online.parameters(), lr=0.05)
    x, y = engine.randn(32, 6), engine.randint(0, 3, (32,))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(4):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    assert [a for a in dbg.alerts if a.kind in KINDS] == []


def test_monte_carlo_dropout_in_an_eval_model_is_not_an_evaluation_mistake():
    model = mlp(dropout=0.5)

    def mc_dropout(x):
        model.eval()
        for layer in model.modules():
            if isinstance(layer, nn.Dropout):
                layer.train()  # dropout on, on purpose, in a model in eval mode
        with engine.no_grad():
            for _ in range(3):
                model(x).argmax(1)
        model.train()

    assert train(model, evaluate=mc_dropout) == []


def test_sampling_a_generator_in_training_mode_under_no_grad_is_not_an_evaluation():
    # the DCGAN tutorial's samples from a fixed noise batch: the generator stays in training mode, nothing is scored
    model = mlp(norm=True)
    assert train(model, evaluate=lambda x: engine.no_grad()(model)(x)) == []
    model = mlp(norm=True)
    (alert,) = train(model, evaluate=evaluation(model, eval_first=False))  # the same pass, its outputs scored
    assert alert.kind == "train_mode_eval"


def test_recomputing_batchnorm_statistics_under_no_grad_is_not_an_evaluation():
    # swa_utils.update_bn (and "precise BN") run the training data through BatchNorm in training mode on purpose,
    # with a cumulative average (momentum None)
    model = mlp(norm=True)

    def recompute_then_validate(x):
        engine.optim.swa_utils.update_bn([x], model)
        evaluation(model, eval_first=True)(x)  # scored after, in eval mode

    assert train(model, evaluate=recompute_then_validate) == []


def test_an_evaluation_before_any_training_step_is_not_judged():
    engine.manual_seed(0)
    model = mlp(dropout=0.5)
    with engine.no_grad():
        model(engine.randn(4, 6))  # outside the debugger: nothing
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    with Debugger("summary", model=model, optimizer=opt) as dbg, engine.no_grad():
        model(engine.randn(4, 6))  # a sanity check before training: the loop has not trained yet
    assert [a for a in dbg.alerts if a.kind in KINDS] == []


# ---- inputs and class weights -------------------------------------------------------------------------------------


def train_on_pixels(prepare) -> list:
    engine.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    images = (engine.rand(16, 1, 8, 8) * 255).to(engine.uint8)
    labels = engine.randint(0, 3, (16,))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(prepare(images)), labels).backward()
            opt.step()
    return [a for a in dbg.alerts if a.kind == "unscaled_pixels"]


def test_uint8_pixels_fed_as_0_to_255_are_named_and_scaled_ones_are_not():
    (alert,) = train_on_pixels(lambda x: x.float())
    assert alert.op == "conv2d" and alert.iteration == 0 and alert.value == 254  # rand() * 255 stays below 255
    assert "made from uint8 ones as they are, 0 to 254" in alert.message and "x.float() / 255" in alert.message
    assert train_on_pixels(lambda x: x.float() / 255) == []
    assert train_on_pixels(lambda x: (x.float() - 128) / 64) == []


def weighted(frequencies: bool | None) -> list:
    engine.manual_seed(0)
    labels = engine.multinomial(engine.tensor([0.8, 0.15, 0.05]), 1200, replacement=True)
    counts = engine.bincount(labels, minlength=3).float()
    weight = {True: counts / counts.sum(), False: counts.sum() / (3 * counts), None: None}[frequencies]
    model = nn.Linear(2, 3)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x = engine.randn(1200, 2) + labels[:, None].float()
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for i in range(0, 1200, 100):
            opt.zero_grad()
            F.cross_entropy(model(x[i:i + 100]), labels[i:i + 100], weight=weight).backward()
            opt.step()
    return [a for a in dbg.alerts if a.kind == "class_weights"]


def test_class_weights_that_grow_with_class_frequency_are_named_and_inverse_ones_are_not():
    (alert,) = weighted(frequencies=True)
    assert alert.op == "cross_entropy" and alert.iteration == 4  # 500 labels seen
    assert "class 0, 8" in alert.message and "inverse frequency" in alert.message
    assert weighted(frequencies=False) == [] and weighted(frequencies=None) == []
