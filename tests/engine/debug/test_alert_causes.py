"""What an alert blames: unscaled regression targets, a summed loss, clipping before backward, an adaptive
optimizer, a BatchNorm over a batch of two, weights initialised to zero. Each bug program is checked beside its
fixed version, which raises none of these."""

from __future__ import annotations

import math
import warnings

import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger


def watched(model, opt, batches, loss=F.cross_entropy, prepare=None) -> list:
    """The alerts of training `model` with `opt`, one plain step per (x, y) of `batches`; `prepare(x)` runs inside
    the debugger (an op there is checked too)."""
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for x, y in batches:
            opt.zero_grad()
            loss(model(prepare(x) if prepare else x), y).backward()
            opt.step()
    return list(dbg.alerts)


def regression(targets_scale: float, opt_kind=engine.optim.Adam, lr: float = 1e-3, reduction: str = "mean",
               clip_first: bool = False, steps: int = 4) -> list:
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = opt_kind(model.parameters(), lr=lr)
    x = engine.randn(64, 8)
    y = (x[:, :1] * 3 + 20) * targets_scale
    with Debugger("summary", model=model, optimizer=opt) as dbg, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y, reduction=reduction)
            if clip_first:
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            loss.backward()
            if not clip_first:
                nn.utils.clip_grad_norm_(model.parameters(), 1e9)  # clipping after backward, as it should be
            opt.step()
    return [a for a in dbg.alerts if a.kind == "exploding_grad"]


def test_unscaled_targets_are_blamed_and_adam_is_not_told_a_smaller_learning_rate():
    (alert,) = regression(1000.0)
    assert "the targets of mse_loss reach" in alert.message and "Standardise the targets" in alert.message
    assert "Adam divides each step by the gradient's running size" in alert.message
    assert "Try a smaller learning rate" not in alert.message
    assert regression(1.0) == []  # the same targets standardised: nothing explodes


def test_a_summed_loss_is_named():
    (alert,) = regression(1.0, engine.optim.SGD, 1e-5, reduction="sum")
    assert "mse_loss sums over the batch (reduction='sum')" in alert.message
    assert "targets" not in alert.message  # they are on a small scale here
    assert "Try a smaller learning rate" in alert.message  # SGD's step grows with the gradient


def test_clipping_before_backward_is_named():
    (alert,) = regression(30.0, engine.optim.SGD, 1e-3, clip_first=True)
    assert "clip_grad_norm_ ran when no parameter had a gradient, so it clipped nothing" in alert.message


def test_sgd_with_nothing_else_to_blame_keeps_the_learning_rate_advice():
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    alerts = watched(model, opt, [(engine.randn(64, 8) * 1e4, engine.randint(0, 2, (64,)))])
    (alert,) = [a for a in alerts if a.kind == "exploding_grad"]
    assert "Try a smaller learning rate" in alert.message


def batch_norm_run(batch_sizes: list[int]) -> list:
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    alerts = watched(model, opt, [(engine.randn(n, 4), engine.randint(0, 2, (n,))) for n in batch_sizes])
    return [a for a in alerts if a.kind == "few_values"]


def test_a_batch_norm_over_two_values_per_channel_is_named_once():
    (alert,) = batch_norm_run([2] * 6)
    assert alert.module == "Sequential.1" and alert.value == 2
    assert "normalises each channel over only 2 values (input (2, 16))" in alert.message
    assert batch_norm_run([32] * 6) == []
    assert batch_norm_run([32, 32, 3, 32, 32, 3]) == []  # an epoch's last, smaller batch is no pattern


def test_a_batch_of_one_says_drop_last():
    bn = nn.BatchNorm1d(4)
    with pytest.raises(ValueError, match=r"expected more than 1 value per channel .*drop_last=True"):
        bn(engine.randn(1, 4))


def zero_init_run(zeroed: str, act=nn.ReLU) -> list:
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), act(), nn.Linear(16, 16), act(), nn.Linear(16, 2))
    for i, layer in enumerate(m for m in model if isinstance(m, nn.Linear)):
        if zeroed == "all" or (zeroed == "last" and i == 2):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    return watched(model, opt, [(engine.randn(32, 4), engine.randint(0, 2, (32,)))] * 30)


def test_weights_initialised_to_zero_are_named_and_not_blamed_on_the_learning_rate():
    alerts = zero_init_run("all", nn.Sigmoid)
    assert "large_update" not in [a.kind for a in alerts]  # no "learning rate far too high" once they grow
    assert alerts[0].kind == "zero_init"
    assert "the weights of 3 of the 3 layers ('0', '2', '4') started at zero" in alerts[0].message
    fading = [a for a in alerts if a.kind == "vanishing_grad"]
    assert fading and all("weights started at zero (see the zero-init alert)" in a.message for a in fading)
    dead = [a for a in zero_init_run("all") if a.kind == "dead_relu"]
    assert "Their input is exactly zero everywhere" in dead[0].message


def test_a_zero_last_layer_is_a_choice():
    assert zero_init_run("last") == []
    assert zero_init_run("none") == []


def classifier_run(head) -> list:
    engine.manual_seed(0)
    model = nn.Linear(6, 4)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    batches = [(engine.randn(32, 6), engine.randint(0, 4, (32,)))] * 3
    return watched(model, opt, batches, lambda out, y: F.nll_loss(head(out), y))


@pytest.mark.parametrize("head", [lambda z: F.log_softmax(z, dim=0), lambda z: engine.log(z.softmax(-2))])
def test_a_softmax_over_the_batch_is_named_at_its_line(head):
    (alert,) = classifier_run(head)
    assert alert.kind == "softmax_dim" and alert.op in ("log_softmax", "softmax")
    assert "normalises over dim 0, the batch (input (32, 4)), and nll_loss, which reads dim 1 as the classes, " \
        "takes it" in alert.message
    assert alert.line and "dim=" in alert.code and "Use dim=1" in alert.message


def test_a_softmax_over_the_classes_raises_nothing():
    assert classifier_run(lambda z: F.log_softmax(z, dim=1)) == []


def image_run(to_channels_first) -> list:
    engine.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    images = engine.rand(16, 8, 8, 3)  # stored channels last
    return watched(model, opt, [(images, engine.randint(0, 2, (16,)))] * 3, prepare=to_channels_first)


def test_a_view_where_permute_was_meant_is_named_once_with_the_permute():
    (alert,) = image_run(lambda x: x.view(16, 3, 8, 8))
    assert alert.kind == "reordering_view" and alert.op == "view"
    assert "views a (16, 8, 8, 3) tensor as (16, 3, 8, 8)" in alert.message
    assert alert.message.endswith("use .permute(0, 3, 1, 2)")
    assert image_run(lambda x: x.permute(0, 3, 1, 2)) == []


def test_reshapes_that_keep_the_order_raise_nothing():
    x = engine.randn(4, 1, 6, requires_grad=True)
    w = engine.randn(6, 6, requires_grad=True)
    opt = engine.optim.SGD([w], lr=0.1)
    with Debugger("summary", optimizer=opt) as dbg:
        for _ in range(2):
            opt.zero_grad()
            h = x.reshape(4, 6, 1).view(4, 6) @ w  # a size-1 dimension moved: the same order
            h.reshape(2, 12).view(24).sum().backward()
            opt.step()
    assert not dbg.alerts


def scheduled_run(make_scheduler, steps: int = 60, per_batch: bool = True, kinds=("lr_gone",), model=None,
                  lr: float = 0.1) -> list:
    """The alerts of `kinds` over `steps` SGD steps of `model` (a Linear(4, 2) by default), the scheduler
    make_scheduler(opt) stepped after each step (per_batch) or once an epoch of 20."""
    engine.manual_seed(0)
    model = model() if model is not None else nn.Linear(4, 2)
    opt = engine.optim.SGD(model.parameters(), lr=lr)
    scheduler = make_scheduler(opt)
    x, y = engine.randn(16, 4), engine.randint(0, 2, (16,))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for step in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if per_batch or step % 20 == 19:  # batches of an epoch of 20
                scheduler.step()
    return [a for a in dbg.alerts if a.kind in kinds]


def test_a_scheduler_stepped_every_batch_is_named():
    (alert,) = scheduled_run(lambda opt: engine.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    assert alert.key == "SGD" and alert.line  # at the step() call
    assert "has fallen from 0.1 (iteration 0) to" in alert.message
    assert "scheduler.step() once per epoch" in alert.message


def test_schedules_that_decay_as_meant_raise_nothing():
    assert scheduled_run(lambda opt: engine.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
                         per_batch=False) == []
    # cosine annealing to zero over the run reaches it at its very end only
    assert scheduled_run(lambda opt: engine.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=300), 300) == []
    # a warm-up from zero is a peak later, not a fall
    assert scheduled_run(lambda opt: engine.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 30))) == []


def sorted_labels_run(shuffle: bool, weights=(0.25, 0.25, 0.25, 0.25)) -> list:
    engine.manual_seed(0)
    y = engine.multinomial(engine.tensor(weights), 640, replacement=True)
    if not shuffle:
        y = y.sort().values
    x = engine.randn(640, 6) + y[:, None].float()
    model = nn.Linear(6, 4)
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    loader = engine.utils.data.DataLoader(engine.utils.data.TensorDataset(x, y), batch_size=32, shuffle=shuffle)
    return [a for a in watched(model, opt, loader) if a.kind == "one_class_batches"]


def test_batches_of_one_class_each_are_named():
    (alert,) = sorted_labels_run(shuffle=False)
    assert "of the last 10 batches of cross_entropy held a single class" in alert.message
    assert "shuffle=True" in alert.message and alert.line


def test_shuffled_and_imbalanced_data_raise_nothing():
    assert sorted_labels_run(shuffle=True) == []
    # nearly every batch holds the majority class alone: no ordering to blame
    assert sorted_labels_run(shuffle=True, weights=(0.995, 0.005, 0.0, 0.0)) == []


def loop_run(model, opt, steps: int = 30, order: str = "right", loss_fn=F.cross_entropy, head=None, passes=1):
    engine.manual_seed(1)
    x, y = engine.randn(32, 4), engine.randint(0, 2, (32,))
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(steps):
            opt.zero_grad()
            if order == "step first":
                opt.step()
            for _ in range(passes):
                out = model(x)
                loss_fn(head(out) if head else out, y).backward()
            if order == "right":
                opt.step()
    return list(dbg.alerts)


def small_net() -> nn.Module:
    engine.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))


def test_a_step_before_backward_is_named():
    model = small_net()
    alerts = loop_run(model, engine.optim.SGD(model.parameters(), lr=0.1), order="step first")
    assert [a.kind for a in alerts] == ["step_without_grad"]
    assert "the step comes before loss.backward()" in alerts[0].message and alerts[0].line


def test_a_learning_rate_far_too_low_is_named_early_and_a_healthy_one_is_not():
    model = small_net()
    (alert,) = loop_run(model, engine.optim.SGD(model.parameters(), lr=1e-8))
    assert alert.kind == "tiny_update" and "The learning rate (1e-08) is far too low" in alert.message
    model = small_net()
    assert loop_run(model, engine.optim.SGD(model.parameters(), lr=0.05)) == []
    model = small_net()
    assert loop_run(model, engine.optim.Adam(model.parameters(), lr=1e-4)) == []  # a fine-tuning rate


def test_a_sigmoid_before_a_loss_that_applies_its_own_is_named_at_the_sigmoid():
    def bce(out, y):
        return F.binary_cross_entropy_with_logits(out, y[:, None].float())

    def one_output():
        engine.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))

    model = one_output()
    alerts = loop_run(model, engine.optim.SGD(model.parameters(), lr=0.1), 5, loss_fn=bce, head=engine.sigmoid)
    (alert,) = [a for a in alerts if a.kind == "probabilities"]
    assert alert.op == "sigmoid" and "it applies a sigmoid itself" in alert.message
    model = one_output()
    assert loop_run(model, engine.optim.SGD(model.parameters(), lr=0.1), 5, loss_fn=bce) == []


def test_a_squared_error_on_softmax_against_one_hot_classes_is_named():
    def mse(probs, y):
        return F.mse_loss(probs, F.one_hot(y, 2).float())

    model = small_net()
    alerts = loop_run(model, engine.optim.SGD(model.parameters(), lr=0.1), 5, loss_fn=mse,
                      head=lambda o: F.softmax(o, dim=1))
    (alert,) = [a for a in alerts if a.kind == "probabilities"]
    assert alert.op == "softmax" and "Use cross_entropy on the logits" in alert.message


def test_accumulated_passes_are_named_beside_a_learning_rate_too_high():
    model = small_net()
    alerts = loop_run(model, engine.optim.SGD(model.parameters(), lr=3.0), 12, passes=4)
    big = [a for a in alerts if a.kind in ("large_update", "exploding_grad")]
    assert big and all("the gradients of 4 backward() calls add up before each step" in a.message for a in big)


def test_a_converged_fit_raises_no_vanishing_gradient():
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = engine.optim.Adam(model.parameters(), lr=0.01)
    x = engine.randn(64, 4)
    y = x @ engine.tensor([[1.0], [-2.0], [0.5], [0.0]])
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(600):  # to a loss ~1e-6 of its start: every gradient tiny
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
    assert loss.item() < 1e-3 * 2.0
    assert [a.kind for a in dbg.alerts if a.kind == "vanishing_grad"] == []


class ListMLP(nn.Module):
    def __init__(self, registered: bool) -> None:
        super().__init__()
        layers = [nn.Linear(4, 8), nn.Linear(8, 8)]
        self.layers = nn.ModuleList(layers) if registered else layers
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        for layer in self.layers:
            x = F.relu(layer(x))
        return self.head(x)


def test_layers_in_a_plain_list_are_named():
    model = ListMLP(registered=False)
    alerts = loop_run(model, engine.optim.SGD(model.parameters(), lr=0.1), 3)
    (alert,) = [a for a in alerts if a.kind == "unregistered"]
    assert "2 modules ('Linear') run inside ListMLP.forward but are not its submodules" in alert.message
    model = ListMLP(registered=True)
    assert loop_run(model, engine.optim.SGD(model.parameters(), lr=0.1), 3) == []


def test_another_models_module_called_inside_is_no_loose_layer():
    critic = nn.Linear(2, 2)  # trained by its own optimizer, called inside the actor's forward

    class Actor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(4, 2)

        def forward(self, x):
            return critic(self.body(x))

    model = Actor()
    critic_opt = engine.optim.SGD(critic.parameters(), lr=0.1)
    assert [a.kind for a in loop_run(model, engine.optim.SGD(model.parameters(), lr=0.1), 3)] == []
    del critic_opt


def token_run(classes: int, inputs_and_targets, ignore_index: int = -100) -> list:
    """The alerts of 3 steps of an Embedding (padding_idx 0) and a Linear over `classes`, on (inputs, targets) =
    inputs_and_targets(tokens), tokens padded with 0 from position 6."""
    engine.manual_seed(0)
    emb, head = nn.Embedding(12, 8, padding_idx=0), nn.Linear(8, classes)
    model = nn.Sequential(emb, head)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    tokens = engine.randint(1, 12, (16, 10))
    tokens[:, 6:] = 0  # the padded tail of every sequence
    inputs, targets = inputs_and_targets(tokens)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(inputs).reshape(-1, classes), targets.reshape(-1),
                            ignore_index=ignore_index).backward()
            opt.step()
    return list(dbg.alerts)


def padded_run(ignore_index: int) -> list:
    """A language model's: the targets are the next tokens."""
    return token_run(12, lambda tokens: (tokens[:, :-1], tokens[:, 1:]), ignore_index)


def test_padding_counted_in_the_loss_is_named():
    (alert,) = padded_run(-100)
    assert alert.kind == "padding_counted" and alert.value == pytest.approx(3 / 9)  # the padded inputs' positions
    assert "33% of the targets" in alert.message and "Pass ignore_index=0 to the loss" in alert.message
    assert padded_run(0) == []


def test_a_taggers_class_0_where_the_padding_token_is_0_and_its_padding_labelled_ignore_is_no_padding():
    def run(pad_label: int) -> list:
        def tagged(tokens):
            tags = (tokens % 3 == 0).long()  # most tokens are tag 0, "O"
            tags[:, 6:] = pad_label
            return tokens, tags

        return [a for a in token_run(3, tagged) if a.kind == "padding_counted"]

    assert run(-100) == []
    (alert,) = run(0)  # padding labelled "O" is counted: label it -100, not ignore_index=0 (that drops every "O")
    assert "Give the padded positions the loss's ignore_index (-100)" in alert.message


def test_labels_of_whole_sequences_that_equal_the_padding_index_are_no_padding():
    # a sequence classifier whose class 0 is the embedding's padding index: the labels are (N,), one per sequence
    engine.manual_seed(0)
    emb, head = nn.Embedding(12, 8, padding_idx=0), nn.Linear(8, 3)
    model = nn.ModuleList([emb, head])
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    tokens, labels = engine.randint(1, 12, (32, 10)), engine.zeros(32, dtype=engine.int64)
    labels[24:] = 1
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(head(emb(tokens).mean(1)), labels).backward()
            opt.step()
    assert [a.kind for a in dbg.alerts if a.kind == "padding_counted"] == []


class Classifier(nn.Module):
    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 8, batch_first=batch_first)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])  # "the last step", of a (batch, time, features) output


def sequence_run(batch_first: bool, batch: int = 16, steps: int = 7) -> list:
    engine.manual_seed(0)
    model = Classifier(batch_first)
    opt = engine.optim.Adam(model.parameters(), lr=0.01)
    return watched(model, opt, [(engine.randn(batch, steps, 3), engine.randint(0, 2, (batch,)))] * 3)


def test_a_batch_of_sequences_read_as_time_steps_is_named():
    (alert,) = sequence_run(batch_first=False)
    assert alert.kind == "time_as_batch" and alert.op == "lstm"
    assert "ran 16 steps over a batch of 7" in alert.message and "batch_first=True" in alert.message
    assert sequence_run(batch_first=True) == []
    assert sequence_run(batch_first=True, batch=7, steps=7) == []  # as many steps as samples: nothing to tell


def test_dropout_on_the_outputs_is_named_at_the_dropout():
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2), nn.Dropout(0.5))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    (alert,) = watched(model, opt, [(engine.randn(32, 4), engine.randint(0, 2, (32,)))] * 3)
    assert alert.kind == "dropout_on_output" and alert.op == "dropout" and alert.module == "Sequential.3"
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    assert watched(model, opt, [(engine.randn(32, 4), engine.randint(0, 2, (32,)))] * 3) == []


@pytest.mark.parametrize(("last", "shift", "alerted"), [(nn.ReLU, -1.0, True), (nn.Sigmoid, 0.5, True),
                                                         (nn.ReLU, 3.0, False), (nn.Identity, -1.0, False)])
def test_a_final_activation_whose_range_misses_the_targets_is_named(last, shift, alerted):
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1), last())
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    x = engine.randn(64, 4)
    y = x[:, :1] + shift  # about half below 0 (or above 1), or almost all above 0
    alerts = [a for a in watched(model, opt, [(x, y)] * 3, F.mse_loss) if a.kind == "output_range"]
    assert bool(alerts) == alerted
    if alerted:
        assert alerts[0].op == last().__class__.__name__.lower() and "can never be predicted" in alerts[0].message


def test_an_optimizer_that_never_steps_is_named():
    engine.manual_seed(0)
    gen, disc = nn.Linear(2, 2), nn.Linear(2, 1)
    g_opt = engine.optim.Adam(gen.parameters(), lr=1e-3)
    d_opt = engine.optim.Adam(disc.parameters(), lr=1e-3)
    model = nn.ModuleDict({"G": gen, "D": disc})

    def run(generator_steps: bool) -> list:
        with Debugger("summary", model=model) as dbg:
            for _ in range(20):
                d_opt.zero_grad()
                disc(gen(engine.randn(8, 2)).detach()).mean().backward()
                d_opt.step()
                g_opt.zero_grad()
                (-disc(gen(engine.randn(8, 2)))).mean().backward()
                (g_opt if generator_steps else d_opt).step()  # the bug: d_opt.step() in the generator's step
        return [a for a in dbg.alerts if a.kind == "optimizer_idle"]

    (alert,) = run(generator_steps=False)
    assert "holding 'G.weight', 'G.bias' did not step in 16 steps of Adam" in alert.message
    assert run(generator_steps=True) == []


def test_the_same_nan_origin_in_every_iteration_is_one_alert():
    model = nn.Linear(2, 1, bias=False)
    with engine.no_grad():
        model.weight.fill_(1e20)  # outputs of 2e20: finite, and their squares overflow in the loss, every step
    opt = engine.optim.SGD(model.parameters(), lr=0.0)  # the gradients stay finite; nothing changes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alerts = watched(model, opt, [(engine.ones(4, 2), engine.zeros(4, 1))] * 6, F.mse_loss)
    assert [(a.kind, a.iteration) for a in alerts if a.kind.startswith("nonfinite")] == [("nonfinite_forward", 0)]


def test_a_warmup_that_never_stops_is_named_and_a_capped_one_is_not():
    def run(cap: float) -> list:
        model = small_net()
        opt = engine.optim.SGD(model.parameters(), lr=1e-5)
        alerts = []
        with Debugger("summary", model=model, optimizer=opt) as dbg:
            for _ in range(150):
                opt.zero_grad()
                F.cross_entropy(model(engine.randn(8, 4)), engine.randint(0, 2, (8,))).backward()
                opt.step()
                for group in opt.param_groups:
                    group["lr"] = min(group["lr"] * 1.1, cap)  # warmup by hand
            alerts = [a for a in dbg.alerts if a.kind == "lr_rising"]
        return alerts

    (alert,) = run(cap=math.inf)
    assert "a warmup that never stops" in alert.message and alert.line
    assert run(cap=0.05) == []


def test_an_optimizer_given_the_inputs_is_named():
    model = small_net()
    x = engine.randn(32, 4, requires_grad=True)
    opt = engine.optim.SGD([x], lr=0.1)
    (alert,) = watched(model, opt, [(x, engine.randint(0, 2, (32,)))] * 2)
    assert alert.kind == "not_updated" and "holds none of the model's parameters" in alert.message


def test_a_loss_that_stays_at_chance_is_named():
    def run(shuffled: bool) -> list:
        engine.manual_seed(0)
        x = engine.randn(512, 6)
        y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()  # four classes the inputs decide
        if shuffled:
            y = y[engine.randperm(512)]  # labels shuffled apart from their inputs
        model = small_net()
        model[2] = nn.Linear(16, 4)
        opt = engine.optim.SGD(model.parameters(), lr=0.05)
        batches = [(x, y)] * 150  # full batches: no batch's own noise
        return [a for a in watched(model, opt, batches, prepare=lambda b: b[:, :4]) if a.kind == "at_chance"]

    (alert,) = run(shuffled=True)
    assert "has stayed within 2% of chance, ln 4 = 1.39" in alert.message and "shuffled apart?" in alert.message
    assert run(shuffled=False) == []
