"""Evaluation losses: the one-element outputs of loss ops that require no gradient (a validation loss under
no_grad), one curve per source line, each iteration's values of a line averaged, apart from the training curves;
a line's value is what it computes from its losses (`sum / len(y)`, `* 0.5`, two losses added), not the loss op's
own output; live from the debugger's records and read back from a tape alike (engine.debug.losses)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
import engine.ops.ctc
import engine.ops.loss
import engine.tape
from engine.autograd.function import op_classes
from engine.debug import Debugger
from engine.debug.losses import LOSS_OPS, EvalLoss, EvalOp, LossCurves, Root, Step
from engine.debug.records import OpRecord


def root(iteration: int, line: int, value: float, text: str = "loss = f(x)") -> Root:
    return Root(iteration, "/work/train.py", line, text, "cross_entropy", value)


def evaluated(iteration: int, line: int, value: float, text: str = "val_loss = f(xv)") -> EvalLoss:
    return EvalLoss(iteration, "/work/train.py", line, text, "cross_entropy", value)


# ---- the grouping, on plain data -------------------------------------------------------------------------
def test_an_evaluation_loop_inside_one_iteration_is_one_point_the_mean_of_its_batches():
    curves = LossCurves()
    curves.add([root(0, 10, 2.0), Step(0), root(1, 10, 1.5), Step(1),
                *(evaluated(2, 20, v) for v in (0.5, 0.7, 0.9, 1.1)), root(2, 10, 1.2), Step(2)])
    assert curves.curves() == {"loss": {0: 2.0, 1: 1.5, 2: 1.2}}  # the training curve, as without them
    assert curves.eval_curves() == {"val_loss": {2: pytest.approx(0.8)}}


def test_evaluation_before_the_first_step_is_not_the_first_curve():
    curves = LossCurves()
    curves.add([evaluated(0, 20, 1.1), evaluated(0, 20, 1.3), root(0, 10, 2.0), Step(0)])
    assert curves.first() == {0: 2.0} and list(curves.curves()) == ["loss"] and len(curves) == 1
    only_eval = LossCurves()
    only_eval.add([evaluated(0, 20, 1.0)])
    assert only_eval.first() == {} and only_eval.curves() == {} and only_eval.eval_curves() == {"val_loss": {0: 1.0}}


def test_a_validation_loss_named_loss_is_its_own_curve_beside_the_training_loss():
    curves = LossCurves()
    curves.add([root(0, 10, 2.0), evaluated(0, 30, 1.0, "loss = criterion(model(xv), yv)"), Step(0),
                evaluated(1, 31, 3.0, "loss = F.mse_loss(model(xv), yv)")])
    assert curves.curves() == {"loss": {0: 2.0}}
    assert curves.eval_curves() == {"loss": {0: 1.0}, "loss @ train.py:31": {1: 3.0}}


def test_the_ops_of_a_line_carry_its_losses_on_and_join_two_into_one_value():
    def loss(value: float, tensor: int, iteration: int = 0) -> EvalLoss:
        return EvalLoss(iteration, "/work/train.py", 20, "v = (f(a) + g(b)) / 2", "mse_loss", value, tensor=tensor)

    def op(line: int, inputs: tuple, tensor: int, value: float, iteration: int = 0) -> EvalOp:
        return EvalOp(iteration, "/work/train.py", line, inputs, tensor, value)

    curves = LossCurves()
    curves.add([loss(4.0, 11), loss(2.0, 12), op(20, (11, 12), 13, 6.0), op(20, (13,), 14, 3.0),  # (a + b) / 2: one
                op(21, (14,), 15, 30.0),  # another line takes it: that line's business, not this one's
                loss(1.0, 16), op(20, (99,), 17, 50.0),  # an op of the line that takes no loss of it
                loss(8.0, 18, iteration=1), op(20, (16,), 19, 70.0, iteration=1)])  # the iteration before's is done
    assert curves.eval_curves() == {"v": {0: pytest.approx((3.0 + 1.0) / 2), 1: 8.0}}


def test_every_loss_op_of_the_engine_is_a_loss():
    ops = {cls.op for cls in op_classes() if inspect.getmodule(cls) in (engine.ops.loss, engine.ops.ctc)}
    ops.discard("pointwiseloss")  # the base of mse_loss, l1_loss, smooth_l1_loss and huber_loss
    assert ops == LOSS_OPS


# ---- live records and a tape of the same run ---------------------------------------------------------------
def recorded(fn, tmp_path, capture: str = "summary") -> tuple[list, LossCurves]:
    """Run `fn` under a debugger and a recorder: (the debugger's records, the tape's LossCurves)."""
    records = []
    dbg = Debugger(capture, interactive=False, cache_bytes=0, on_record=records.append)
    path = tmp_path / "run.tape"
    with dbg, engine.record(path, capture=capture, debugger=dbg):
        fn()
    with engine.tape.open(path) as tape:
        return records, tape.loss_history()


def fed(records: list, batch: int) -> LossCurves:
    """A LossCurves fed `records` in batches of `batch`, as a session drains them."""
    live = LossCurves()
    for k in range(0, len(records), batch):
        live.feed(records[k:k + batch])
    return live


def traced(fn, tmp_path, capture: str = "summary"):
    """Run `fn` under a debugger and a recorder: (live LossCurves fed in batches, the tape's LossCurves)."""
    records, tape = recorded(fn, tmp_path, capture)
    return fed(records, 7), tape


def classifier():
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    return model, engine.optim.Adam(model.parameters(), lr=1e-2)


def step(model, opt, x, y) -> float:
    """One training step on the batch (x, y); its loss."""
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def test_a_validation_loss_every_k_iterations_is_the_mean_the_script_computed_live_and_on_tape(tmp_path):
    model, opt = classifier()
    x, y = engine.randn(32, 4), engine.randint(0, 3, (32,))
    val = [(engine.randn(10, 4), engine.randint(0, 3, (10,))) for _ in range(5)]
    means, trained = {}, []

    def train():
        for it in range(12):
            if it % 4 == 0:  # before the step, from the first iteration on
                with engine.no_grad():
                    total = 0.0
                    for xv, yv in val:
                        val_loss = F.cross_entropy(model(xv), yv)
                        total += val_loss.item()
                means[it] = total / len(val)
            trained.append(step(model, opt, x, y))

    live, tape = traced(train, tmp_path)
    assert live.eval_curves() == tape.eval_curves() == {"val_loss": pytest.approx(means, abs=1e-6)}
    assert list(live.eval_curves()["val_loss"]) == [0, 4, 8]
    assert live.curves() == tape.curves() == {"loss": pytest.approx(dict(enumerate(trained)), abs=1e-6)}
    assert live.first() == tape.first() == live.curves()["loss"]
    assert live.first_op.op == "cross_entropy" and live.first_op.requires_grad  # the chance line's: training


def test_an_evaluation_curve_is_what_its_line_computes_however_the_records_are_cut_and_on_tape(tmp_path):
    torch = pytest.importorskip("torch")
    model, opt = classifier()
    x, y = engine.randn(32, 4), engine.randint(0, 3, (32,))
    val = [(engine.randn(10, 4), engine.randint(0, 3, (10,)), engine.rand(10, 3)) for _ in range(4)]
    printed, by_torch, trained = {}, {}, []

    def train():
        for it in range(3):
            with engine.no_grad():
                total, items = 0, 0.0
                for xv, yv, pv in val:
                    out = model(xv)
                    val_loss = F.cross_entropy(out, yv, reduction="sum") / len(yv)
                    half = F.cross_entropy(out, yv) * 0.5
                    both = F.mse_loss(out, pv, reduction="sum") / len(yv) + F.l1_loss(out, pv)
                    total += F.cross_entropy(out, yv)  # a tensor summed over the batches: each batch's loss
                    items += F.cross_entropy(out, yv).item()  # .item(): Python's sum, no op
                    for name, v in (("val_loss", val_loss), ("half", half), ("both", both)):
                        printed.setdefault(name, {}).setdefault(it, []).append(v.item())
                    by_torch.setdefault(it, []).append(float(torch.nn.functional.cross_entropy(
                        torch.from_numpy(out.numpy()), torch.from_numpy(yv.numpy()))))
                printed.setdefault("total", {})[it] = [total.item() / len(val)]
                printed.setdefault("items", {})[it] = [items / len(val)]
            trained.append(step(model, opt, x, y))

    records, tape = recorded(train, tmp_path)
    means = {name: pytest.approx({it: np.mean(v) for it, v in values.items()}, abs=1e-5)
             for name, values in printed.items()}
    assert tape.eval_curves() == means  # the sum over 10 rows / 10 is the mean, not the sum (10x); *0.5 half
    assert tape.eval_curves()["val_loss"] == pytest.approx({it: np.mean(v) for it, v in by_torch.items()}, abs=1e-5)
    # live, a line's ops come in batches of records cut anywhere: one at a time, 7, all at once draw the same
    for live in (fed(records, 1), fed(records, 7), fed(records, len(records))):
        assert live.eval_curves() == means
        assert live.curves() == tape.curves() == {"loss": pytest.approx(dict(enumerate(trained)), abs=1e-6)}
    ops = [r.event.op if r.__class__ is OpRecord else "" for r in records]
    cut = ops.index("l1_loss") + 1  # `both`'s two losses in one feed, their add in the next
    assert ops[cut] == "add"
    split = LossCurves()
    split.feed(records[:cut])
    split.feed(records[cut:])
    assert split.eval_curves() == means


def test_a_summed_validation_loss_divided_by_the_dataset_size_on_a_later_line_is_the_per_sample_mean(tmp_path):
    # PyTorch's MNIST example: `test_loss += F.nll_loss(output, target, reduction="sum").item()` over the batches,
    # then `test_loss /= len(test_loader.dataset)`: the division is on another line, by the rows of all batches
    model, opt = classifier()
    x, y = engine.randn(32, 4), engine.randint(0, 3, (32,))
    sizes = (10, 10, 7)  # a last, smaller batch: the mean of per-batch means would differ
    val = [(engine.randn(n, 4), engine.randint(0, 3, (n,))) for n in sizes]
    printed, trained = {"test_loss": {}, "tot": {}}, []

    def train():
        for it in range(3):
            with engine.no_grad():
                test_loss = 0.0
                tot = engine.zeros(())
                for xv, yv in val:
                    out = model(xv)
                    test_loss += F.cross_entropy(out, yv, reduction="sum").item()
                    tot = tot + F.cross_entropy(out, yv, reduction="sum")  # a tensor total: the same sum
                printed["test_loss"][it] = test_loss / sum(sizes)
                printed["tot"][it] = tot.item() / sum(sizes)
            trained.append(step(model, opt, x, y))

    live, tape = traced(train, tmp_path)
    expected = {name: pytest.approx(values, abs=1e-5) for name, values in printed.items()}
    assert live.eval_curves() == tape.eval_curves() == expected


def test_each_loss_op_under_no_grad_is_a_curve_and_a_loss_of_many_elements_none(tmp_path):
    engine.manual_seed(0)
    w = engine.randn(6, 3, requires_grad=True)
    opt = engine.optim.SGD([w], lr=0.1)
    x, y = engine.randn(8, 6), engine.randint(0, 3, (8,))
    p = engine.rand(8, 3)
    calls = {
        "cross_entropy": lambda out: F.cross_entropy(out, y),
        "nll_loss": lambda out: F.nll_loss(F.log_softmax(out, 1), y),
        "mse_loss": lambda out: F.mse_loss(out, p),
        "l1_loss": lambda out: F.l1_loss(out, p),
        "smooth_l1_loss": lambda out: F.smooth_l1_loss(out, p),
        "huber_loss": lambda out: F.huber_loss(out, p),
        "kl_div": lambda out: F.kl_div(F.log_softmax(out, 1), F.softmax(p, 1), reduction="batchmean"),
        "binary_cross_entropy": lambda out: F.binary_cross_entropy(engine.sigmoid(out), p),
        "binary_cross_entropy_with_logits": lambda out: F.binary_cross_entropy_with_logits(out, p),
    }
    seen = {}

    def train():
        for it in range(2):
            with engine.no_grad():
                out = x @ w
                for name, call in calls.items():
                    seen.setdefault(name, {})[it] = call(out).item()
                F.mse_loss(out, p, reduction="none")  # a loss per element: no loss value
            opt.zero_grad()
            (x @ w).pow(2).mean().backward()
            opt.step()

    live, tape = traced(train, tmp_path)
    by_op = {label.split(" @ ")[0]: values for label, values in live.eval_curves().items()}
    assert by_op == {name: pytest.approx(v, abs=1e-6) for name, v in seen.items()}
    assert tape.eval_curves() == live.eval_curves()


def test_a_structure_capture_has_no_evaluation_curve(tmp_path):
    model, opt = classifier()
    x, y = engine.randn(8, 4), engine.randint(0, 3, (8,))

    def train():
        for _ in range(2):
            with engine.no_grad():
                F.cross_entropy(model(x), y)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

    live, tape = traced(train, tmp_path, capture="structure")
    assert live.eval_curves() == tape.eval_curves() == {} and live.curves() == tape.curves() == {}
    with engine.tape.open(tmp_path / "run.tape") as t:
        assert t.eval_loss_curves() == {} and t.loss_curves() == {} and t.losses() == {}


# ---- what the alerts read of the loss -----------------------------------------------------------------------
def test_a_validation_set_in_label_order_is_no_unshuffled_training_data():
    engine.manual_seed(0)
    y = engine.randint(0, 4, (320,))
    x = engine.randn(320, 6) + y[:, None].float()
    yv = engine.tensor(np.repeat(np.arange(4), 96))  # a validation set in label order, never shuffled: as it should
    xv = engine.randn(384, 6) + yv[:, None].float()
    model = nn.Linear(6, 4)
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    train = engine.utils.data.DataLoader(engine.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    val = engine.utils.data.DataLoader(engine.utils.data.TensorDataset(xv, yv), batch_size=32)
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(2):
            for xb, yb in train:
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
            with engine.no_grad():
                for xb, yb in val:
                    F.cross_entropy(model(xb), yb)
    assert [a.kind for a in dbg.alerts if a.kind == "one_class_batches"] == []


def test_a_line_adding_two_losses_to_its_total_adds_one_value_per_batch(tmp_path):
    # `val += crit(a) + crit(b)`: each batch adds the sum of its two losses, one value, to the total; the mean over
    # the batches is that sum's mean, not half of it (two values counted per batch)
    model, opt = classifier()
    x, y = engine.randn(32, 4), engine.randint(0, 3, (32,))
    val = [(engine.randn(10, 4), engine.randint(0, 3, (10,)), engine.rand(10, 3)) for _ in range(4)]
    printed, trained = {"items": {}, "total": {}}, []

    def train():
        for it in range(3):
            with engine.no_grad():
                items, total = 0.0, engine.zeros(())
                for xv, yv, pv in val:
                    out = model(xv)
                    items += (F.cross_entropy(out, yv) + F.mse_loss(out, pv)).item()
                    total += F.cross_entropy(out, yv) + F.l1_loss(out, pv)
                printed["items"][it] = items / len(val)
                printed["total"][it] = total.item() / len(val)
            trained.append(step(model, opt, x, y))

    records, tape = recorded(train, tmp_path)
    expected = {name: pytest.approx(values, abs=1e-5) for name, values in printed.items()}
    assert tape.eval_curves() == expected
    for live in (fed(records, 1), fed(records, 7), fed(records, len(records))):
        assert live.eval_curves() == expected
