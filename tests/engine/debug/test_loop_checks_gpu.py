"""The loop checks of engine.debug.loop_checks on CUDA tensors: each bug of test_loop_mistakes and test_loose_ends
that reads values (targets, weights, masks, pixels, clipped norms) named as on the CPU, its values read on the
device."""

import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.debug import Debugger
from tests.engine.debug.test_gpu import _has_cuda

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _has_cuda(), reason="needs CuPy and a CUDA GPU")]
DEV = "cuda"


def trained(model, batches, loss=F.cross_entropy, steps: int = 3, clip: float | None = None, keep=None) -> set:
    """The kinds of alert of `steps` SGD steps per (x, y) of `batches`."""
    opt = engine.optim.SGD(model.parameters(), lr=0.05)
    kept = []
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        for _ in range(steps):
            for x, y in batches:
                opt.zero_grad()
                out = loss(model(x), y)
                out.backward()
                if clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                if keep is not None:
                    kept.append(keep(out))
    return {a.kind for a in dbg.alerts}


def test_class_weights_and_multi_hot_targets_are_read_on_the_device():
    engine.manual_seed(0)
    labels = engine.multinomial(engine.tensor([0.8, 0.15, 0.05]), 1200, replacement=True).to(DEV)
    counts = engine.bincount(labels, minlength=3).float()
    x = engine.randn(1200, 2, device=DEV)
    batches = [(x[i:i + 100], labels[i:i + 100]) for i in range(0, 1200, 100)]
    model = nn.Linear(2, 3).to(DEV)
    assert "class_weights" in trained(model, batches, lambda z, t: F.cross_entropy(z, t, weight=counts / 1200), 1)
    hot = (engine.rand(32, 3, device=DEV) > 0.4).float()
    hot[:, 0] = 1
    assert "several_labels" in trained(nn.Linear(2, 3).to(DEV), [(engine.randn(32, 2, device=DEV), hot)])


def test_uint8_pixels_identical_units_and_hard_clipping_are_found_on_the_device():
    engine.manual_seed(0)
    images = (engine.rand(16, 1, 8, 8, device=DEV) * 255).to(engine.uint8)
    labels = engine.randint(0, 3, (16,), device=DEV)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3)).to(DEV)
    opt = engine.optim.SGD(cnn.parameters(), lr=0.01)
    with Debugger("summary", model=cnn, optimizer=opt) as dbg:
        opt.zero_grad()
        F.cross_entropy(cnn(images.float()), labels).backward()
        opt.step()
    assert [a.kind for a in dbg.alerts if a.kind == "unscaled_pixels"] == ["unscaled_pixels"]
    mlp = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).to(DEV)
    nn.init.constant_(mlp[0].weight, 0.05)
    nn.init.constant_(mlp[2].weight, 0.05)
    x, y = engine.randn(32, 6, device=DEV), engine.randint(0, 3, (32,), device=DEV)
    assert "same_units" in trained(mlp, [(x, y)])
    engine.manual_seed(0)
    assert "clipped_hard" in trained(nn.Linear(6, 3).to(DEV), [(x, y)], steps=25, clip=1e-5)


def test_an_inverted_padding_mask_and_kept_losses_are_found_on_the_device():
    engine.manual_seed(0)
    emb, attn = nn.Embedding(10, 8, padding_idx=0).to(DEV), nn.MultiheadAttention(8, 2, batch_first=True).to(DEV)
    head = nn.Linear(8, 2).to(DEV)
    model = nn.ModuleList([emb, attn, head])
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    tokens = engine.randint(1, 10, (4, 6), device=DEV)
    tokens[:, 4:] = 0
    with Debugger("summary", model=model, optimizer=opt) as dbg:
        h = emb(tokens)
        out, _ = attn(h, h, h, key_padding_mask=tokens != 0)
        F.cross_entropy(head(out.mean(1)), engine.tensor([0, 1, 0, 1], device=DEV)).backward()
        opt.step()
    assert "padding_mask" in {a.kind for a in dbg.alerts}
    x, y = engine.randn(32, 6, device=DEV), engine.randint(0, 3, (32,), device=DEV)
    assert "history_kept" in trained(nn.Linear(6, 3).to(DEV), [(x, y)], steps=45, keep=lambda loss: loss)


def test_a_tie_made_by_copying_is_found_on_the_device():
    from tests.engine.debug.test_broken_tying import LM, run

    for tie, named in (("clone", True), ("assign", False)):
        engine.manual_seed(0)
        assert bool(run(LM(tie).to(DEV), device=DEV)) is named, tie


def test_a_wrong_custom_backward_is_found_on_the_device():
    from tests.engine.debug.test_custom_backward import MatMul, MatMulTransposed, checked, leaf, weights

    def on_device(t):
        return t.to(DEV).detach().requires_grad_()

    a, b, w = on_device(leaf(6, 6)), on_device(leaf(6, 6, seed=3)), weights((6, 6)).to(DEV)
    for fn, named in ((MatMulTransposed, True), (MatMul, False)):
        found, verdicts = checked(lambda fn=fn: (fn.apply(a, b) * w).sum().backward())
        assert bool(found) is named and verdicts[fn].outcome == ("wrong" if named else "agrees"), fn.__name__
