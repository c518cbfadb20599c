"""Training-loop utilities a ported torch script reaches for: amp (autocast, GradScaler), nn.utils extras,
optimizer and module hooks, functional_call. Each is checked against PyTorch on the CPU."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
import engine.optim as optim
from tests.engine.oracle import cuda_or_skip, needs_torch, torch

rng = np.random.default_rng(0)


def _both(*shape, dtype=np.float64):
    a = rng.standard_normal(shape).astype(dtype)
    return engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _copy_weights(emod, tmod) -> None:
    with torch.no_grad():
        for (name, tp) in tmod.state_dict().items():
            dict(emod.state_dict(keep_vars=True))[name].array[...] = tp.numpy()


# ---- GradScaler ----------------------------------------------------------------------------------------
def _scaler_run(lib, scaler, bad_steps):
    p = lib.nn.Parameter(lib.tensor(np.ones(3)))
    opt = lib.optim.SGD([p], lr=0.1)
    seen = []
    for i in range(12):
        opt.zero_grad()
        scaler.scale((p * p).sum()).backward()
        if i in bad_steps:
            p.grad[1] = float("inf") if i % 2 else float("nan")
        scaler.step(opt)
        scaler.update()
        seen.append((scaler.get_scale(), scaler._get_growth_tracker(), p.detach().numpy().copy()))
    return seen, scaler.state_dict()


@needs_torch
@pytest.mark.parametrize("factors", [(2.0, 0.5, 3, {1, 2, 7}), (3.0, 0.3, 2, {0, 5, 6, 9})])
def test_grad_scaler_scale_sequence_and_skipped_steps_match_torch(factors):
    growth, backoff, interval, bad = factors
    kw = dict(init_scale=8.0, growth_factor=growth, backoff_factor=backoff, growth_interval=interval)
    mine, my_state = _scaler_run(engine, engine.amp.GradScaler("cpu", **kw), bad)
    ref, ref_state = _scaler_run(torch, torch.amp.GradScaler("cpu", **kw), bad)
    assert [m[:2] for m in mine] == [r[:2] for r in ref]  # scale (float32 values) and growth tracker
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(m[2], r[2])  # a step with inf/NaN left the parameter alone
    assert my_state == ref_state


def test_grad_scaler_state_dict_round_trip_and_errors():
    s = engine.amp.GradScaler("cpu", init_scale=4.0, growth_interval=1)
    p = nn.Parameter(engine.ones(2))
    opt = optim.SGD([p], lr=0.1)
    s.scale(p.sum()).backward()
    s.unscale_(opt)
    np.testing.assert_allclose(p.grad.numpy(), [1.0, 1.0])  # unscaled once
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        s.unscale_(opt)
    s.step(opt)  # does not unscale a second time
    np.testing.assert_allclose(p.detach().numpy(), [0.9, 0.9])
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        s.step(opt)
    s.update()
    assert s.get_scale() == 8.0
    other = engine.amp.GradScaler("cpu")
    other.load_state_dict(s.state_dict())
    assert other.state_dict() == s.state_dict()
    with pytest.raises(RuntimeError, match="source state dict is empty"):
        other.load_state_dict({})
    half = nn.Parameter(engine.ones(2, dtype=engine.float16))
    s.scale(half.sum().float()).backward()
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients"):
        s.unscale_(optim.SGD([half], lr=0.1))


def test_grad_scaler_disabled_is_a_pass_through():
    s = engine.amp.GradScaler("cpu", enabled=False)
    p = nn.Parameter(engine.ones(2))
    opt = optim.SGD([p], lr=0.5)
    loss = p.sum()
    assert s.scale(loss) is loss
    loss.backward()
    s.step(opt)
    s.update()
    np.testing.assert_allclose(p.detach().numpy(), [0.5, 0.5])
    assert s.get_scale() == 1.0 and s.state_dict() == {} and not s.is_enabled()


@needs_torch
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # float16 gradients of 65536: inf
@pytest.mark.parametrize("shape", [(), (3,)])
def test_grad_scaler_scales_a_float16_loss_as_torch(shape):
    # torch multiplies by a float32 0-dim tensor: a float16 scalar loss scales into float32 instead of inf
    mine = engine.full(shape, 2.0, dtype=engine.float16, requires_grad=True)
    ref = torch.full(shape, 2.0, dtype=torch.float16, requires_grad=True)
    scaled, tscaled = engine.amp.GradScaler("cpu").scale(mine), torch.amp.GradScaler("cpu").scale(ref)
    assert str(scaled.dtype).split(".")[1] == str(tscaled.dtype).split(".")[1]
    np.testing.assert_array_equal(scaled.detach().numpy(), tscaled.detach().numpy())
    scaled.sum().backward()
    tscaled.sum().backward()
    np.testing.assert_array_equal(mine.grad.numpy(), ref.grad.numpy())


@needs_torch
def test_grad_scaler_step_without_gradients_asserts_as_torch():
    for lib in (engine, torch):
        p = lib.nn.Parameter(lib.ones(2))
        scaler = lib.amp.GradScaler("cpu")
        scaler.scale(p.sum())  # no backward: no gradient to check
        with pytest.raises(AssertionError, match="No inf checks were recorded for this optimizer"):
            scaler.step(lib.optim.SGD([p], lr=0.1))
        np.testing.assert_array_equal(p.detach().numpy(), [1.0, 1.0])
        with pytest.raises((AssertionError, RuntimeError), match="No inf checks were recorded prior to update"):
            scaler.update()  # torch asserts; the engine raises RuntimeError, as it did before


def test_cuda_grad_scaler_without_a_gpu_disables_itself_with_a_warning():
    if engine.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        s = engine.cuda.amp.GradScaler()
    assert not s.is_enabled()


# ---- autocast --------------------------------------------------------------------------------------------
@needs_torch
def test_cpu_float16_autocast_matches_torch_in_dtypes_values_and_gradients():
    x = rng.standard_normal((4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 5)).astype(np.float32)
    target = [0, 1, 2, 0]
    ex, ew = engine.tensor(x), engine.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x), torch.tensor(w, requires_grad=True)
    with engine.autocast("cpu", dtype=engine.float16):
        ey = F.linear(ex, ew)
        eloss = F.cross_entropy(ey, engine.tensor(target))
        assert engine.is_autocast_enabled("cpu")
    with torch.autocast("cpu", dtype=torch.float16):
        ty = torch.nn.functional.linear(tx, tw)
        tloss = torch.nn.functional.cross_entropy(ty, torch.tensor(target))
    assert (str(ey.dtype), str(eloss.dtype)) == ("engine.float16", "engine.float32")
    assert (ty.dtype, tloss.dtype) == (torch.float16, torch.float32)
    np.testing.assert_array_equal(ey.detach().numpy(), ty.detach().numpy())
    np.testing.assert_allclose(eloss.item(), tloss.item(), rtol=1e-6)
    eloss.backward()
    tloss.backward()
    assert ew.grad.dtype == engine.float32  # the gradient comes back through the cast, in the weight's dtype
    np.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), rtol=1e-3, atol=1e-4)


def test_autocast_nesting_decorator_and_leaving_no_trace():
    from engine.ops.nn import Linear

    a, b = engine.randn(3, 4), engine.randn(2, 4)

    @engine.autocast("cpu", dtype=engine.float16)
    def product(x, y):
        return x @ y.T

    with engine.autocast("cpu", dtype=engine.float16):
        assert F.linear(a, b).dtype == engine.float16
        with engine.autocast("cpu", enabled=False):
            assert F.linear(a, b).dtype == engine.float32
            assert not engine.is_autocast_enabled("cpu")
        assert (a.double() @ b.double().T).dtype == engine.float64  # float64 is never cast
    assert product(a, b).dtype == engine.float16
    assert F.linear(a, b).dtype == engine.float32
    assert Linear.apply(a, b, None).dtype == engine.float32  # the op class itself casts nothing outside


def test_autocast_casts_only_in_its_own_thread():
    a = engine.randn(3, 4)
    entered, done, seen = threading.Event(), threading.Event(), []

    def other():
        entered.wait(10)
        seen.append((a @ a.T).dtype)
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with engine.autocast("cpu", dtype=engine.float16):
        entered.set()
        done.wait(10)
        assert (a @ a.T).dtype == engine.float16
    t.join()
    assert seen == [engine.float32]


def test_autocast_casts_ops_imported_after_its_first_use():
    # the op lists are looked up by name: conv and the losses live in modules that `import engine` does not load
    import subprocess
    import sys

    code = ("import engine\n"
            "with engine.autocast('cpu', dtype=engine.float16):\n"
            "    pass\n"
            "import engine.nn.functional as F\n"
            "x, w = engine.randn(1, 2, 5, 5), engine.randn(3, 2, 3, 3)\n"
            "with engine.autocast('cpu', dtype=engine.float16):\n"
            "    y = F.conv2d(x, w)\n"
            "    loss = F.mse_loss(y, engine.zeros(1, 3, 3, 3, dtype=engine.float16))\n"
            "print(y.dtype, loss.dtype)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["engine.float16", "engine.float32"]


def test_autocast_casts_a_user_op_defined_after_its_first_use():
    with engine.autocast("cpu", dtype=engine.float16):
        pass
    seen = []

    class Project(engine.Function):
        op = "linear"  # an op of autocast's float16 list

        def forward(ctx, x, w):
            seen.append((x.dtype, w.dtype))
            return x @ w.T

        def backward(ctx, grad):
            raise NotImplementedError

    a, b = engine.randn(2, 4), engine.randn(3, 4)
    with engine.autocast("cpu", dtype=engine.float16):
        assert Project.apply(a, b).dtype == engine.float16
    assert Project.apply(a, b).dtype == engine.float32
    assert seen == [(np.float16, np.float16), (np.float32, np.float32)]


@needs_torch
def test_autocast_of_another_device_type_leaves_the_cpu_one_on_as_torch():
    x = rng.standard_normal((4, 4)).astype(np.float32)
    ex, tx = engine.tensor(x), torch.tensor(x)
    with engine.autocast("cpu", dtype=engine.float16), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no GPU here: the cuda autocast warns that it is disabled
        with engine.autocast("cuda", enabled=False):
            mine = ((ex @ ex).dtype, engine.is_autocast_enabled("cpu"), engine.is_autocast_enabled("cuda"))
        with engine.autocast("cuda"):
            assert (ex @ ex).dtype == engine.float16
        with engine.autocast("cpu", enabled=False):
            assert (ex @ ex).dtype == engine.float32
        assert engine.get_autocast_dtype("cpu") == engine.float16
    with torch.autocast("cpu", dtype=torch.float16), torch.autocast("cuda", enabled=False):
        ref = ((tx @ tx).dtype, torch.is_autocast_enabled("cpu"), torch.is_autocast_enabled("cuda"))
    assert (str(mine[0]), *mine[1:]) == ("engine.float16", True, False)
    assert ref == (torch.float16, True, False)


def _count_casts(run) -> int:
    ops = []
    unsubscribe = engine.hub.subscribe(lambda ev: ops.append(getattr(ev, "op", None)))
    try:
        run()
    finally:
        unsubscribe()
    return ops.count("to")


@needs_torch
def test_autocast_casts_a_weight_once_per_region_as_torch():
    w0 = rng.standard_normal((8, 8)).astype(np.float32)
    h0 = rng.standard_normal((2, 8)).astype(np.float32)

    def chain(lib, w, cache_enabled=True):
        h = lib.tensor(h0)
        with lib.autocast("cpu", dtype=lib.float16, cache_enabled=cache_enabled):
            for _ in range(5):
                h = (h @ w).tanh()
        return h

    ew, tw = engine.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    assert _count_casts(lambda: chain(engine, ew)) == 2  # the input once, the weight once for its 5 uses
    assert _count_casts(lambda: chain(engine, ew, cache_enabled=False)) == 6
    assert _count_casts(lambda: (chain(engine, ew), chain(engine, ew))) == 4  # a new region casts anew
    eh, th = chain(engine, ew), chain(torch, tw)
    np.testing.assert_allclose(eh.detach().numpy(), th.detach().numpy(), rtol=1e-3, atol=1e-3)
    eh.sum().backward()
    th.sum().backward()
    np.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), rtol=1e-2, atol=1e-2)

    x = engine.ones(1, 8)
    with engine.autocast("cpu", dtype=engine.float16):
        with engine.no_grad():
            x @ ew  # a cast made without grad must not serve the next use, which needs one
        before = (x @ ew).sum()
        with engine.no_grad():
            ew.mul_(2.0)  # an in-place change inside the region: the next use sees the new values
        after = (x @ ew).sum()
    np.testing.assert_allclose(after.item(), 2 * before.item(), rtol=1e-2)
    ew.grad = None
    before.backward()
    np.testing.assert_allclose(ew.grad.numpy(), np.ones((8, 8)))


def test_autocast_that_cannot_cast_warns_once_and_changes_nothing():
    from engine import amp

    amp._warned.clear()
    a = engine.randn(3, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            with engine.autocast("cpu"):  # torch's CPU default is bfloat16, which the engine lacks
                assert (a @ a.T).dtype == engine.float32
            with engine.cpu.amp.autocast():
                pass
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "bfloat16" in messages[0] and "\n" not in messages[0]
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'tpu'"):
        engine.autocast("tpu")


def test_cuda_autocast_without_a_gpu_warns_and_casts_nothing():
    if engine.cuda.is_available():
        pytest.skip("a GPU is present")
    from engine import amp

    amp._warned.clear()
    with pytest.warns(UserWarning, match="CUDA is not available"), engine.cuda.amp.autocast():
        assert (engine.randn(2, 2) @ engine.randn(2, 2)).dtype == engine.float32


def test_cuda_autocast_runs_matmuls_in_float16_and_losses_in_float32():
    cuda_or_skip()
    x = engine.randn(8, 16, device="cuda")
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).to("cuda")
    target = engine.randint(0, 4, (8,), device="cuda")
    scaler = engine.amp.GradScaler()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with engine.autocast("cuda"):
        out = model(x)
        loss = F.cross_entropy(out, target)
        probs = F.softmax(out, 1)
        norm = F.layer_norm(out, (4,))
    assert (out.dtype, loss.dtype, probs.dtype, norm.dtype) == (engine.float16, engine.float32, engine.float32,
                                                                engine.float32)
    scaler.scale(loss).backward()
    assert model[0].weight.grad.dtype == engine.float32
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 2.0**16


# ---- nn.utils and nn.init ------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, float("inf")])
def test_get_total_norm_and_clip_grads_with_norm_match_torch(norm_type):
    grads = [rng.standard_normal(s) for s in [(3, 4), (5,), (2, 2, 2)]]
    eps = [nn.Parameter(engine.zeros(*g.shape, dtype=engine.float64)) for g in grads]
    tps = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
    for e, t, g in zip(eps, tps, grads):
        e.grad, t.grad = engine.tensor(g), torch.tensor(g)
    mine = nn.utils.get_total_norm([p.grad for p in eps], norm_type)
    ref = torch.nn.utils.get_total_norm([p.grad for p in tps], norm_type)
    np.testing.assert_allclose(mine.item(), ref.item(), rtol=1e-12)
    nn.utils.clip_grads_with_norm_(eps, 0.5, mine)
    torch.nn.utils.clip_grads_with_norm_(tps, 0.5, ref)
    for e, t in zip(eps, tps):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-12)


@needs_torch
@pytest.mark.parametrize("transpose", [False, True])
def test_fuse_conv_bn_eval_gives_torchs_fused_layer(transpose):
    conv_cls = "ConvTranspose2d" if transpose else "Conv2d"
    econv, tconv = getattr(nn, conv_cls)(3, 4, 3).double(), getattr(torch.nn, conv_cls)(3, 4, 3).double()
    ebn, tbn = nn.BatchNorm2d(4).double(), torch.nn.BatchNorm2d(4).double()
    with torch.no_grad():
        tbn.running_mean.uniform_(-1, 1)
        tbn.running_var.uniform_(0.5, 2)
        tbn.weight.uniform_(0.5, 2)
        tbn.bias.uniform_(-1, 1)
    _copy_weights(econv, tconv)
    _copy_weights(ebn, tbn)
    econv.eval(), ebn.eval(), tconv.eval(), tbn.eval()
    mine = nn.utils.fuse_conv_bn_eval(econv, ebn, transpose=transpose)
    ref = torch.nn.utils.fuse_conv_bn_eval(tconv, tbn, transpose=transpose)
    np.testing.assert_allclose(mine.weight.detach().numpy(), ref.weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(mine.bias.detach().numpy(), ref.bias.detach().numpy(), rtol=1e-12)
    ex, _ = _both(2, 3, 6, 6)
    np.testing.assert_allclose(mine(ex).detach().numpy(), ebn(econv(ex)).detach().numpy(), rtol=1e-9, atol=1e-12)
    assert isinstance(mine.weight, nn.Parameter) and econv.weight is not mine.weight  # conv itself untouched
    econv.train()
    with pytest.raises(AssertionError, match="Fusion only for eval"):
        nn.utils.fuse_conv_bn_eval(econv, ebn)


@needs_torch
@pytest.mark.parametrize("shape,groups", [((4, 2, 3), 1), ((6, 3, 3, 3), 2), ((4, 4, 1, 3, 3), 1)])
def test_dirac_matches_torch(shape, groups):
    mine = nn.init.dirac_(engine.empty(*shape), groups)
    ref = torch.nn.init.dirac_(torch.empty(shape), groups)
    np.testing.assert_array_equal(mine.numpy(), ref.numpy())
    with pytest.raises(ValueError, match="3, 4, or 5 dimensions"):
        nn.init.dirac_(engine.empty(2, 2))


def test_sparse_zeroes_that_many_entries_of_each_column():
    t = nn.init.sparse_(engine.empty(10, 6), sparsity=0.25, std=0.01)
    zeros_per_column = (t.numpy() == 0).sum(axis=0)
    assert (zeros_per_column == 3).all()  # ceil(0.25 * 10)
    assert 0 < np.abs(t.numpy()).max() < 0.1
    with pytest.raises(ValueError, match="2 dimensions"):
        nn.init.sparse_(engine.empty(2, 2, 2), 0.5)


def test_skip_init_builds_the_module():
    layer = nn.utils.skip_init(nn.Linear, 3, 2)
    assert isinstance(layer, nn.Linear) and tuple(layer.weight.shape) == (2, 3)
    with pytest.raises(RuntimeError, match="Expected a Module"):
        nn.utils.skip_init(int)


# ---- optimizer ----------------------------------------------------------------------------------------
def test_tensor_lr_steps_like_a_float_lr():
    a, b = nn.Parameter(engine.ones(3)), nn.Parameter(engine.ones(3))
    opt_a, opt_b = optim.Adam([a], lr=engine.tensor(0.1)), optim.Adam([b], lr=0.1)
    for _ in range(3):
        for p, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            (p * p).sum().backward()
            opt.step()
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy())
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        optim.SGD([a], lr=engine.tensor([0.1, 0.2]))


def test_lbfgs_takes_a_tensor_lr_too():
    a, b = nn.Parameter(engine.tensor([1.5, -2.0])), nn.Parameter(engine.tensor([1.5, -2.0]))
    for p, lr in ((a, engine.tensor(0.5)), (b, 0.5)):
        opt = optim.LBFGS([p], lr=lr, max_iter=5)

        def closure(p=p, opt=opt):
            opt.zero_grad()
            loss = ((p - 1) ** 4).sum()
            loss.backward()
            return loss

        opt.step(closure)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy())


def _hooked_optimizer_calls(lib):
    calls = []
    p = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([p], lr=0.1)
    p.grad = lib.ones(2)
    opt.register_step_pre_hook(lambda o, a, kw: calls.append(("step_pre", o is opt, a[0] is opt, a[1:], kw)))
    opt.register_step_post_hook(lambda o, a, kw: calls.append(("step_post", o is opt, a[0] is opt, a[1:], kw)))
    opt.register_state_dict_pre_hook(lambda o: calls.append(("sd_pre", o is opt)))
    opt.register_state_dict_post_hook(lambda o, sd: calls.append(("sd_post", sorted(sd))))
    opt.register_state_dict_pre_hook(lambda o: calls.append(("sd_pre_first", o is opt)), prepend=True)

    def load_pre(o, sd):
        calls.append(("load_pre", sorted(sd)))
        sd = dict(sd)
        sd["param_groups"] = [{**sd["param_groups"][0], "lr": 0.5}]
        return sd

    opt.register_load_state_dict_pre_hook(load_pre)
    opt.register_load_state_dict_post_hook(lambda o: calls.append(("load_post", o.param_groups[0]["lr"])))
    opt.step()
    opt.step(None)
    handle = opt.register_step_pre_hook(lambda o, a, k: calls.append("removed"))
    handle.remove()
    opt.load_state_dict(opt.state_dict())
    return calls


@needs_torch
def test_optimizer_hooks_run_in_torchs_order_with_torchs_arguments():
    assert _hooked_optimizer_calls(engine) == _hooked_optimizer_calls(torch)


@needs_torch
def test_step_pre_hook_may_replace_the_arguments():
    for lib in (engine, torch):
        p = lib.nn.Parameter(lib.ones(1))
        opt = lib.optim.SGD([p], lr=0.1)
        p.grad = lib.ones(1)
        opt.register_step_pre_hook(lambda o, a, k: ((o, lambda: 7.0), {}))
        assert opt.step() == 7.0  # the closure the hook put in was called


@needs_torch
def test_sparse_adam_refuses_dense_gradients_as_torch_does():
    p = nn.Parameter(engine.ones(2))
    opt = optim.SparseAdam([p])
    p.grad = engine.ones(2)
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients, please consider Adam"):
        opt.step()
    with pytest.raises(ValueError, match="Invalid learning rate: 0"):
        optim.SparseAdam([p], lr=0)
    tp = torch.nn.Parameter(torch.ones(2))
    assert optim.SparseAdam([p]).defaults == torch.optim.SparseAdam([tp]).defaults


# ---- module state-dict hooks --------------------------------------------------------------------------
def _module_hook_calls(lib):
    calls = []
    model = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.Sequential(lib.nn.Linear(3, 1)))
    names = {id(m): n or "root" for n, m in model.named_modules()}
    for m in model.modules():
        m.register_state_dict_pre_hook(lambda mod, prefix, keep: calls.append(("pre", names[id(mod)], prefix, keep)))
        m.register_load_state_dict_post_hook(
            lambda mod, keys: calls.append(("load_post", names[id(mod)], sorted(keys.missing_keys))))
    model[0]._register_state_dict_hook(
        lambda mod, sd, prefix, meta: calls.append(("post", names[id(mod)], prefix, sorted(sd), meta)))
    state = model.state_dict(keep_vars=True)
    del state["1.0.bias"]
    model.load_state_dict(state, strict=False)
    return calls


@needs_torch
def test_module_state_dict_hooks_run_in_torchs_order_with_torchs_arguments():
    assert _module_hook_calls(engine) == _module_hook_calls(torch)


@needs_torch
def test_load_post_hook_clearing_missing_keys_lets_a_strict_load_pass():
    for lib in (engine, torch):
        model = lib.nn.Linear(2, 2)
        state = {"weight": model.state_dict()["weight"] * 0}
        model.register_load_state_dict_post_hook(lambda mod, keys: keys.missing_keys.clear())
        model.load_state_dict(state)  # strict, but the hook forgave the missing bias
        assert float(model.weight.detach().abs().sum()) == 0.0


def test_state_dict_hook_may_replace_the_dict_and_public_post_hook_may_not():
    model = nn.Linear(2, 2)
    model._register_state_dict_hook(lambda mod, sd, prefix, meta: {"only": 1})
    assert model.state_dict() == {"only": 1}
    other = nn.Linear(2, 2)
    other.register_state_dict_post_hook(lambda mod, sd, prefix, meta: {"only": 1})
    with pytest.raises(RuntimeError, match="must return None"):
        other.state_dict()
    calls = []
    other = nn.Linear(2, 2)
    other.register_state_dict_pre_hook(lambda *a: calls.append(a))
    other.load_state_dict(other.state_dict())
    assert len(calls) == 1  # loading does not run the saving hooks


# ---- functional_call -----------------------------------------------------------------------------------
@needs_torch
def test_functional_call_matches_torch_in_output_and_gradients():
    emodel = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2)).double()
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5), torch.nn.Tanh(),
                                 torch.nn.Linear(5, 2)).double()
    _copy_weights(emodel, tmodel)
    before = {k: v.numpy().copy() for k, v in emodel.state_dict().items()}
    new = {name: rng.standard_normal(tuple(p.shape)) for name, p in tmodel.named_parameters()}
    eparams = {k: engine.tensor(v, requires_grad=True) for k, v in new.items()}
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in new.items()}
    ex, tx = _both(6, 4)
    eout = engine.func.functional_call(emodel, eparams, (ex,))
    tout = torch.func.functional_call(tmodel, tparams, (tx,))
    np.testing.assert_allclose(eout.detach().numpy(), tout.detach().numpy(), rtol=1e-10)
    (eout * eout).sum().backward()
    (tout * tout).sum().backward()
    for k in new:
        np.testing.assert_allclose(eparams[k].grad.numpy(), tparams[k].grad.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-12)
    assert all(p.grad is None for p in emodel.parameters())  # the module's own parameters were not used
    after = emodel.state_dict()
    for k in ("0.weight", "0.bias", "3.weight"):
        np.testing.assert_array_equal(after[k].numpy(), before[k])
    # buffers too, and the older address
    stats = {"1.running_mean": engine.ones(5, dtype=engine.float64)}
    emodel.eval()
    tmodel.eval()
    eout = nn.utils.stateless.functional_call(emodel, {**eparams, **stats}, ex)
    tout = torch.func.functional_call(tmodel, {**tparams, "1.running_mean": torch.ones(5).double()}, tx)
    np.testing.assert_allclose(eout.detach().numpy(), tout.detach().numpy(), rtol=1e-10)
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\): 'nope'"):
        engine.func.functional_call(emodel, {"nope": engine.ones(1)}, ex, strict=True)


def test_functional_call_follows_tied_weights_and_restores_after_an_error():
    model = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False))
    model[1].weight = model[0].weight
    original = model[0].weight
    x = engine.randn(2, 3)
    out = engine.func.functional_call(model, {"0.weight": engine.eye(3)}, (x,))
    np.testing.assert_allclose(out.numpy(), x.numpy(), rtol=1e-6)  # both layers took the identity
    with pytest.raises(ValueError):
        engine.func.functional_call(model, {"0.weight": engine.eye(3)}, (engine.randn(2, 5),))
    assert model[0].weight is original and model[1].weight is original
