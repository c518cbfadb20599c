"""Mistakes in a training loop the debugger names, each beside its fixed version (which raises none of these
alerts): a second optimizer never zeroed, a learning rate of 0 (a warmup scheduler never stepped), softmax over the
wrong dim of an image's scores, a sequence's class scores on the wrong dim, units initialised alike, multi-hot
targets in cross_entropy, clipping far below the gradients' norm, every loss kept alive."""

from __future__ import annotations

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger

KINDS = ("accumulating_grad", "lr_zero", "softmax_dim", "class_dim", "same_units", "several_labels", "clipped_hard",
         "history_kept", "term_without_gradient")


def kinds(dbg) -> list:
    return [a for a in dbg.alerts if a.kind in KINDS]


def classifier() -> nn.Module:
    engine.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def data(n: int = 32):
    engine.manual_seed(1)
    return engine.randn(n, 6), engine.randint(0, 3, (n,))


def classifier_run(steps: int, targets=None, loss=F.cross_entropy, before_step=None, after_step=None,
                   penalty=None, setup=None, model=None, lr: float = 0.1, every: bool = False) -> list:
    """The alerts of KINDS (`every`: all alerts) from `steps` SGD steps at `lr` of `model` (classifier()) on data()
    (or on `targets`): `setup(opt)` runs before the first, `before_step(model)` between backward and step,
    `after_step(opt, loss)` after it, and `penalty(model)` is added to the loss."""
    model = classifier() if model is None else model
    opt = engine.optim.SGD(model.parameters(), lr=lr)
    if setup is not None:
        setup(opt)
    x, y = data()
    y = y if targets is None else targets
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(steps):
            opt.zero_grad()
            value = loss(model(x), y)
            if penalty is not None:
                value = value + 1e-2 * penalty(model)
            value.backward()
            if before_step is not None:
                before_step(model)
            opt.step()
            if after_step is not None:
                after_step(opt, value)
    return list(dbg.alerts) if every else kinds(dbg)


def test_a_second_models_optimizer_never_zeroed_is_named():
    def run(zero_both: bool) -> list:
        engine.manual_seed(0)
        encoder, head = nn.Sequential(nn.Linear(6, 8), nn.ReLU()), nn.Linear(8, 3)
        opt_enc = engine.optim.SGD(encoder.parameters(), lr=0.05)
        opt_head = engine.optim.SGD(head.parameters(), lr=0.05)
        x, y = data()
        with Debugger("summary", discover=True) as dbg:  # it finds the encoder, the first model called, itself
            for _ in range(4):
                loss = F.cross_entropy(head(encoder(x)), y)
                opt_enc.zero_grad()
                if zero_both:
                    opt_head.zero_grad()
                loss.backward()
                opt_enc.step()
                opt_head.step()
        return kinds(dbg)

    (alert,) = run(zero_both=False)
    assert alert.kind == "accumulating_grad" and "Linear.weight" in alert.message and alert.iteration == 1
    assert run(zero_both=True) == []


def test_a_learning_rate_of_zero_names_the_scheduler_that_never_stepped():
    def run(step_scheduler: bool) -> list:
        warmups = []  # a warmup starts the rate at 0
        return classifier_run(25, setup=lambda opt: warmups.append(engine.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, s / 10))), after_step=lambda opt, loss: step_scheduler and warmups[0].step())

    (alert,) = run(step_scheduler=False)
    assert alert.kind == "lr_zero" and alert.iteration == 19 and "has been 0 for 20 steps" in alert.message
    assert "scheduler.step()" in alert.message and alert.line  # at the loop's step() call
    assert run(step_scheduler=True) == []


def test_softmax_over_an_images_last_dim_before_nll_loss_is_named():
    def run(dim: int, guard: bool = False) -> list:
        engine.manual_seed(0)
        model = nn.Conv2d(2, 4, 3, padding=1)
        opt = engine.optim.SGD(model.parameters(), lr=0.1)
        x, y = engine.randn(4, 2, 6, 6), engine.randint(0, 4, (4, 6, 6))
        with Debugger("summary", model=model, optimizer=opt) as dbg:
            for _ in range(2):
                opt.zero_grad()
                probs = F.softmax(model(x), dim=dim)
                F.nll_loss(engine.log(probs + 1e-8) if guard else engine.log(probs), y).backward()  # by hand
                opt.step()
        return kinds(dbg)

    for guard in (False, True):  # log(p), or log(p + 1e-8) as people guard it
        (alert,) = run(-1, guard)
        assert alert.kind == "softmax_dim" and alert.op == "softmax"
        assert "normalises over dim 3, size 6 (input (4, 4, 6, 6))" in alert.message and "Use dim=1" in alert.message
        assert run(1, guard) == []


def test_a_sequences_class_scores_on_the_last_dim_are_named_where_no_shape_error_does():
    def run(permute: bool) -> list:
        engine.manual_seed(0)
        emb, out = nn.Embedding(20, 8), nn.Linear(8, 5)
        model = nn.Sequential(emb, out)
        opt = engine.optim.SGD(model.parameters(), lr=0.1)
        tokens, tags = engine.randint(0, 20, (16, 5)), engine.randint(0, 5, (16, 5))  # 5 positions, 5 tags
        with Debugger("summary", model=model, optimizer=opt) as dbg:
            for _ in range(2):
                opt.zero_grad()
                logits = model(tokens)  # (N, T, C)
                F.cross_entropy(logits.permute(0, 2, 1) if permute else logits, tags).backward()
                opt.step()
        return kinds(dbg)

    (alert,) = run(permute=False)
    assert alert.kind == "class_dim" and alert.op == "linear"
    assert "reads dim 1 of its (16, 5, 5) input as the classes" in alert.message
    assert "no shape error says so" in alert.message and "logits.permute(0, 2, 1)" in alert.message
    assert run(permute=True) == []


def test_units_initialised_alike_are_named_and_the_fading_gradient_blames_them():
    def run(constant: bool) -> list:
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
        if constant:
            for layer in (model[0], model[2], model[4]):
                nn.init.constant_(layer.weight, 0.05)
        return classifier_run(3, model=model, every=True)

    alerts = run(constant=True)
    same = [a for a in alerts if a.kind == "same_units"]
    assert len(same) == 1 and "every unit of '0', '2' holds the same weights" in same[0].message
    assert all("identical-units alert" in a.message for a in alerts if a.kind == "vanishing_grad")
    engine.manual_seed(0)
    assert [a for a in run(constant=False) if a.kind == "same_units"] == []


def test_multi_hot_targets_in_cross_entropy_are_named():
    def run(loss) -> list:
        labels = (engine.rand(32, 3) > 0.4).float()
        labels[:, 0] = 1  # two or three labels in most rows
        return classifier_run(2, targets=labels, loss=loss)

    (alert,) = run(F.cross_entropy)
    assert alert.kind == "several_labels" and "hold up to 3 ones per row" in alert.message
    assert "binary_cross_entropy_with_logits" in alert.message
    assert run(F.binary_cross_entropy_with_logits) == []
    assert run(lambda z, t: F.cross_entropy(z, t / t.sum(1, keepdim=True))) == []  # soft labels that sum to 1


def test_clipping_far_below_the_gradients_norm_at_every_step_is_named():
    def run(max_norm: float) -> list:
        return classifier_run(25, before_step=lambda model: nn.utils.clip_grad_norm_(model.parameters(), max_norm))

    (alert,) = run(1e-4)
    assert alert.kind == "clipped_hard" and alert.iteration == 19 and "max_norm=0.0001" in alert.message
    assert run(1.0) == []


def test_every_loss_kept_alive_across_iterations_is_named():
    def run(keep) -> list:
        history = []
        return classifier_run(45, after_step=lambda opt, loss: history.append(keep(loss)))

    (alert,) = run(lambda loss: loss)
    assert alert.kind == "history_kept" and alert.iteration == 39 and "losses.append(loss.item())" in alert.message
    assert run(lambda loss: loss.item()) == [] and run(lambda loss: loss.detach()) == []


def test_a_validation_loss_rising_while_the_training_loss_falls_is_named():
    def run(noise: float, train_size: int) -> list:
        engine.manual_seed(0)
        w = engine.randn(10, 3)

        def sample(n):
            x = engine.randn(n, 10)
            return x, (x @ w + noise * engine.randn(n, 3)).argmax(1)

        (x, y), (xv, yv) = sample(train_size), sample(200)
        model = nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 3))
        opt = engine.optim.Adam(model.parameters(), lr=1e-2)
        with Debugger("summary", model=model, optimizer=opt) as dbg:
            for i in range(300):
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
                if i % 20 == 19:
                    with engine.no_grad():
                        val_loss = F.cross_entropy(model(xv), yv)  # noqa: F841 (a validation loss, as loops keep one)
        return [a for a in dbg.alerts if a.kind == "overfitting"]

    (alert,) = run(noise=3.0, train_size=24)  # labels mostly noise, a few samples: learnt by heart
    assert alert.op == "cross_entropy" and alert.code.startswith("val_loss = F.cross_entropy(model(xv), yv)")
    assert "'val_loss', a loss computed with gradients off" in alert.message and "has risen for 3 evaluations" \
        in alert.message and "early stopping" in alert.message
    assert run(noise=0.1, train_size=2000) == []  # labels that follow the inputs: both losses fall


def test_a_loss_term_built_from_data_cut_from_the_graph_is_named():
    def run(cut: bool) -> list:
        return classifier_run(3, penalty=lambda model: sum((p.data if cut else p).pow(2).sum()
                                                           for p in model.parameters()))

    (alert,) = run(cut=True)
    assert alert.kind == "term_without_gradient" and alert.op == "mul"
    assert alert.code == "value = value + 1e-2 * penalty(model)"
    assert "adds a term that carries no gradient" in alert.message and "p.data" in alert.message
    assert run(cut=False) == []


def test_a_key_padding_mask_true_on_the_tokens_is_named():
    def run(mask_of) -> list:
        engine.manual_seed(0)
        emb, attn, head = nn.Embedding(10, 8, padding_idx=0), nn.MultiheadAttention(8, 2, batch_first=True), \
            nn.Linear(8, 2)
        model = nn.ModuleList([emb, attn, head])
        opt = engine.optim.SGD(model.parameters(), lr=0.1)
        tokens = engine.randint(1, 10, (4, 6))
        tokens[:, 4:] = 0  # padded tails
        with Debugger("summary", model=model, optimizer=opt) as dbg:
            for _ in range(2):
                h = emb(tokens)
                out, _ = attn(h, h, h, key_padding_mask=mask_of(tokens))
                loss = F.cross_entropy(head(out.mean(1)), engine.tensor([0, 1, 0, 1]))
                opt.zero_grad()
                loss.backward()
                opt.step()
        return [a for a in dbg.alerts if a.kind == "padding_mask"]

    (alert,) = run(lambda t: t != 0)
    assert alert.op == "masked_fill" and alert.code.startswith("out, _ = attn(h, h, h, key_padding_mask=")
    assert "is True exactly where the tokens are not the padding index 0" in alert.message
    assert run(lambda t: t == 0) == []


def test_updates_capped_by_clipping_are_no_learning_rate_far_too_high():
    # the classic word language model: SGD at lr 20, its steps capped by clip_grad_norm_(0.25)
    def run(clip: bool) -> list:
        capped = (lambda model: nn.utils.clip_grad_norm_(model.parameters(), 0.25)) if clip else None
        return [a.kind for a in classifier_run(5, lr=20.0, before_step=capped, every=True) if a.kind == "large_update"]

    assert run(clip=True) == []
    assert run(clip=False) == ["large_update"]


# ---- correct programs the checks once took for mistakes --------------------------------------------------------


def test_a_constant_computed_from_the_targets_is_no_term_cut_from_the_graph():
    # a KL written as cross entropy minus the targets' entropy: the entropy is constant on purpose
    model = classifier()
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    x, _ = data()
    targets = F.softmax(engine.randn(32, 3), dim=1)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(3):
            opt.zero_grad()
            entropy = -(targets * targets.log()).sum(1).mean()
            (F.cross_entropy(model(x), targets) - entropy).backward()
            opt.step()
    assert kinds(dbg) == []


def test_a_scheduled_warmup_that_rises_to_the_given_rate_is_no_endless_warmup():
    def run(scheduled: bool) -> list:
        model = classifier()
        opt = engine.optim.SGD(model.parameters(), lr=0.1 if scheduled else 1e-6)
        warmup = engine.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, 1e-5 + s / 200)) if scheduled else None
        x, y = data()
        with Debugger("summary", model=model, optimizer=opt) as dbg:
            for _ in range(190):
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
                if scheduled:
                    warmup.step()  # from 1e-6 to 0.1 in 200 steps, by the scheduler
                else:
                    for group in opt.param_groups:
                        group["lr"] *= 1.1  # by hand, never capped
        return [a.kind for a in dbg.alerts if a.kind == "lr_rising"]

    assert run(scheduled=True) == []
    assert run(scheduled=False) == ["lr_rising"]


def test_an_earlier_stages_optimizer_kept_beside_the_fine_tuning_one_is_not_idle_and_frozen_norms_are_no_eval():
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    pretrain = engine.optim.SGD(model.parameters(), lr=0.1)
    x, y = data()
    with Debugger("summary", model=model, optimizer=pretrain) as dbg:
        for _ in range(5):  # stage 1: everything trains, BatchNorm in training mode
            pretrain.zero_grad()
            F.cross_entropy(model(x), y).backward()
            pretrain.step()
        for p in model[:2].parameters():
            p.requires_grad_(False)
        model[1].eval()  # stage 2: the norm frozen on purpose, the head fine-tuned by an optimizer of its own
        finetune = engine.optim.SGD(model[3].parameters(), lr=0.01)
        for _ in range(25):
            finetune.zero_grad()
            F.cross_entropy(model(x), y).backward()
            finetune.step()
    assert [a.kind for a in dbg.alerts if a.kind in ("optimizer_idle", "eval_mode")] == []


def test_a_head_frozen_part_way_and_left_in_the_optimizer_is_frozen_on_purpose():
    def freeze_late(opt, loss):
        if opt.state:  # after the first steps: the last layer is done
            for p in list(opt.param_groups[0]["params"])[-2:]:
                p.requires_grad_(False)

    assert [a.kind for a in classifier_run(6, after_step=freeze_late, every=True) if a.kind == "frozen"] == []
    frozen_first = classifier()
    for p in frozen_first[2].parameters():
        p.requires_grad_(False)
    assert [a.kind for a in classifier_run(6, model=frozen_first, every=True)] == ["frozen"]
