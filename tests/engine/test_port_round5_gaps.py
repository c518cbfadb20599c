"""Gaps a fifth port round found: Tensor.unfold as a view, inference tensors, kl_div's warning about 'mean',
the scheduler-before-optimizer warning, and engine.load's map_location as a dict or a callable; next to PyTorch."""

import io
import json
import threading
import warnings

import numpy as np
import pytest

import engine
import engine.nn.functional as EF
from engine import serialization
from tests.engine.oracle import check_grads, cuda_or_skip, needs_torch, one_line, torch
from tests.engine.second_order import second_order_tests
from tests.engine.test_higher_order import _close

if torch is not None:
    import torch.nn.functional as TF


def _libs():
    return [engine, torch] if torch is not None else [engine]


# ---- Tensor.unfold: a view of its input --------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("shape, dim, size, step", [
    ((7,), 0, 3, 1), ((7,), 0, 3, 2), ((7,), 0, 2, 3), ((7,), -1, 7, 1), ((7,), 0, 0, 2),
    ((2, 6, 3), 1, 4, 1), ((2, 6, 3), 0, 1, 1), ((2, 6, 3), -1, 2, 1), ((4, 0), 1, 0, 1),
])
def test_unfold_values_and_strides_are_torchs(shape, dim, size, step):
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    x, xt = engine.tensor(a), torch.tensor(a)
    u, ut = x.unfold(dim, size, step), xt.unfold(dim, size, step)
    assert tuple(u.shape) == tuple(ut.shape)
    np.testing.assert_array_equal(u.numpy(), ut.numpy())
    if u.numel():
        assert u.stride() == ut.stride() and u.data_ptr() == x.data_ptr()


def test_unfold_memory_does_not_grow_with_the_window_count():
    x = engine.zeros(1_000_000)
    u = x.unfold(0, 1000, 1)  # 999001 windows: 4 GB as a copy
    assert tuple(u.shape) == (999_001, 1000) and np.shares_memory(u.array, x.array)
    assert u._base is x


@needs_torch
@pytest.mark.parametrize("write", [
    "u[0, 1] = 50", "u[1] = L.tensor([7., 8, 9])", "u[:, 0] = -1", "u[2][1] = 5", "u[0] += 100",
    "u[[0, 1], [1, 1]] = L.tensor([50., 60])", "u[u > 3] = 0", "u.fill_(3)", "u[1:3] = 9", "u[-1, -1] = 2",
])
def test_writes_through_the_windows_write_the_base_as_torch(write):
    got = []
    for L in (engine, torch):
        x = L.arange(6.)
        u = x.unfold(0, 3, 1)
        exec(write, {"L": L, "u": u})
        got.append((x.tolist(), u.tolist(), x._version == u._version))
    assert got[0] == got[1]


@needs_torch
def test_in_place_ops_on_windows_that_do_not_overlap_as_torch():
    got = []
    for L in (engine, torch):
        x = L.arange(8.).reshape(2, 4)
        x.unfold(1, 2, 2).mul_(L.tensor([10., 100]))
        got.append(x.tolist())
    assert got[0] == got[1]


@needs_torch
@pytest.mark.parametrize("change", ["y.add_(1)", "y[2] = 7", "y.mul_(2)"])
def test_a_change_of_the_base_reaches_the_windows_and_their_gradient(change):
    got = []
    for L in (engine, torch):
        w = L.tensor([1., 2, 3, 4, 5, 6], requires_grad=True)
        y = w * 1
        u = y.unfold(0, 3, 1)
        exec(change, {"y": y})
        (u * L.arange(12.).reshape(4, 3)).sum().backward()
        got.append((u.tolist(), w.grad.tolist()))
    np.testing.assert_allclose(got[0][0], got[1][0])
    np.testing.assert_allclose(got[0][1], got[1][1])


@needs_torch
def test_a_change_of_the_base_after_a_window_was_saved_is_an_error_as_in_torch():
    for L in (engine, torch):
        w = L.tensor([1., 2, 3, 4, 5], requires_grad=True)
        y = w * 1
        z = y.unfold(0, 3, 1).sin()  # sin saves its input: the windows
        y.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()


@needs_torch
def test_a_write_into_a_window_with_gradients_as_torch():
    got = []
    for L in (engine, torch):
        w = L.tensor([1., 2, 3, 4, 5, 6, 7], requires_grad=True)
        v = L.tensor(10., requires_grad=True)
        y = w * 1
        u = y.unfold(0, 3, 2)
        u[1, 0] = v * 2
        (u * L.arange(9.).reshape(3, 3)).sum().backward()
        got.append((y.tolist(), w.grad.tolist(), v.grad.item()))
    assert got[0] == got[1]


@pytest.mark.parametrize("change", ["u.mul_(2)", "u.add_(1)", "u.zero_()"])
def test_changing_overlapping_windows_as_a_whole_changes_each_element_once(change):
    expected = {"u.mul_(2)": [0, 2, 4, 6, 8, 10], "u.add_(1)": [1, 2, 3, 4, 5, 6], "u.zero_()": [0] * 6}
    slope = {"u.mul_(2)": 2, "u.add_(1)": 1, "u.zero_()": 0}
    w = engine.arange(6.0, requires_grad=True)
    y = w * 1
    exec(change, {"u": y.unfold(0, 3, 1)})  # recorded (tests/engine/test_unfold_writes.py has more)
    y.sum().backward()
    assert y.tolist() == expected[change] and w.grad.tolist() == [slope[change]] * 6
    x = engine.arange(6.0)
    exec(change, {"u": x.unfold(0, 3, 1)})  # without gradients: each element changed once
    assert x.tolist() == expected[change]


def test_a_write_into_the_windows_of_a_leaf_that_requires_grad_is_refused():
    w = engine.ones(5, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.unfold(0, 2, 1)[0, 0] = 3


@pytest.mark.parametrize("shape, dim, size, step", [((7,), 0, 3, 1), ((2, 7, 3), 1, 3, 2), ((2, 5), 1, 2, 3),
                                                    ((3, 4), 0, 3, 1), ((9,), 0, 8, 1)])
def test_unfold_gradient_adds_overlapping_windows(shape, dim, size, step):
    check_grads(lambda x: x.unfold(dim, size, step) * 1.5, [shape])


def test_unfold_of_a_0d_tensor_is_a_view_of_one_window():
    x = engine.tensor(5.0, requires_grad=True)
    y = x * 1
    u = y.unfold(0, 1, 1)
    assert tuple(u.shape) == (1,) and tuple(y.unfold(-1, 0, 1).shape) == (0,)
    u[0] = 3.0
    assert y.item() == 3.0
    s = engine.tensor(2.0)
    s.unfold(0, 1, 1).mul_(4)
    assert s.item() == 8.0
    check_grads(lambda t: t.unfold(0, 1, 1) * 3, [()])


@pytest.mark.parametrize("args, error, message", [
    ((2, 2, 1), IndexError, r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"),
    ((0, 4, 1), RuntimeError, "maximum size for tensor at dimension 0 is 3 but size is 4"),
    ((0, -1, 1), RuntimeError, "size is -1 but must be >= 0"),
    ((0, 2, 0), RuntimeError, "step is 0 but must be > 0"),
    ((1, 2, -1), RuntimeError, "step is -1 but must be > 0"),
    ((0, 2.0, 1), TypeError, "float"),
])
def test_unfold_errors_as_torch(args, error, message):
    for L in _libs():
        one_line(lambda L=L: L.zeros(3, 4).unfold(*args), error, message)
    one_line(lambda: engine.tensor(1.0).unfold(1, 1, 1), IndexError, "Dimension out of range")


CASES = {
    "unfold_overlapping": (lambda L, F, x: x.unfold(1, 3, 1).pow(3), [(2, 6)]),
    "unfold_gapped": (lambda L, F, x: (x.unfold(0, 2, 3) * x.unfold(0, 2, 3)).sum(-1), [(8, 2)]),
    "unfold_twice": (lambda L, F, x: x.unfold(0, 3, 1).unfold(1, 2, 1).sin(), [(6,)]),
}
test_second_order_matches_torch, test_second_order_matches_finite_differences = second_order_tests(CASES)


@needs_torch
def test_unfold_third_order_as_torch():
    a = np.random.default_rng(3).standard_normal(7)
    out = []
    for L in (engine, torch):
        x = L.tensor(a, requires_grad=True)
        y = x.unfold(0, 3, 1).pow(4).sum()
        (g,) = L.autograd.grad(y, x, create_graph=True)
        (h,) = L.autograd.grad((g * g).sum(), x, create_graph=True)
        (k,) = L.autograd.grad(h.sum(), x)
        out.append((g.detach(), h.detach(), k))
    for ours, theirs in zip(out[0], out[1]):
        _close(ours, theirs)


@needs_torch
@pytest.mark.parametrize("change", ["y.add_(1)", "u[1, 2] = y[0] * 3"])
def test_gradients_of_gradients_through_windows_taken_again_after_a_change_as_torch(change):
    out = []
    for L in (engine, torch):
        w = L.tensor([1., 2, 3, 4, 5, 6], dtype=L.float64, requires_grad=True)
        y = w * 1
        u = y.unfold(0, 3, 1)
        exec(change, {"y": y, "u": u})
        (g,) = L.autograd.grad((u ** 3).sum(), w, create_graph=True)
        (h,) = L.autograd.grad((g * g).sum(), w)
        out.append((g.detach(), h))
    for ours, theirs in zip(out[0], out[1]):
        _close(ours, theirs)


def test_unfold_on_cuda_is_a_view_with_gradients():
    cuda_or_skip()
    a = np.arange(10.0)
    x = engine.tensor(a, device="cuda", requires_grad=True)
    y = x * 1
    u = y.unfold(0, 4, 2)
    u[1, 0] = 100.0
    assert y.tolist()[2] == 100.0
    (u * engine.arange(16.0, device="cuda").reshape(4, 4)).sum().backward()
    expected = np.zeros(10)
    for w in range(4):
        expected[2 * w:2 * w + 4] += np.arange(4.0 * w, 4.0 * w + 4)
    expected[2] = 0.0
    np.testing.assert_allclose(x.grad.cpu().numpy(), expected)


# ---- inference tensors ---------------------------------------------------------------------------------------
@needs_torch
def test_tensors_made_in_inference_mode_are_inference_tensors_as_in_torch():
    seen = []
    for L in (engine, torch):
        normal = L.ones(3)
        with L.inference_mode():
            x = L.ones(3)
            inside = [x.is_inference(), L.is_inference_mode_enabled(), (normal * 2).is_inference(),
                      normal[:2].is_inference(), normal.view(3, 1).is_inference(), x[:2].is_inference()]
            with L.inference_mode(False):
                inside += [L.ones(1).is_inference(), L.is_inference_mode_enabled()]
            with L.no_grad():
                inside += [L.ones(1).is_inference(), L.is_inference_mode_enabled()]
        with L.no_grad():
            no_grad = [L.ones(1).is_inference(), L.is_inference_mode_enabled()]
        outside = [L.is_inference_mode_enabled(), normal.is_inference(), (x + 1).is_inference(),
                   x.clone().is_inference(), x[1:].is_inference(), x.view(3, 1).is_inference(),
                   x.detach().is_inference(), x.unfold(0, 2, 1).is_inference(), L.is_inference(x),
                   L.is_inference(x * 1)]
        seen.append((inside, no_grad, outside))
    assert seen[0] == seen[1]


def _decorated_and_threaded(L):
    @L.inference_mode()
    def made():
        return L.ones(1)

    @L.inference_mode
    def made_bare():
        return L.ones(1)

    w = L.ones(2, requires_grad=True)
    other = []
    with L.inference_mode():
        thread = threading.Thread(target=lambda: other.append(L.ones(1).is_inference()))
        thread.start()
        thread.join()
        z = w * 2
        p = L.nn.Parameter(L.ones(2))
    return (made().is_inference(), made_bare().is_inference(), other, z.is_inference(), z.requires_grad,
            p.is_inference(), L.ones(1).is_inference())


@needs_torch
def test_inference_mode_as_a_decorator_and_in_other_threads_as_torch():
    assert _decorated_and_threaded(engine) == _decorated_and_threaded(torch)


def test_inference_mode_ends_with_an_error_inside():
    with pytest.raises(KeyError), engine.inference_mode():
        raise KeyError
    assert not engine.is_inference_mode_enabled() and not engine.ones(1).is_inference()


@needs_torch
@pytest.mark.parametrize("write", ["x.add_(1)", "x[0] = 2", "x[0:2].mul_(3)", "x.zero_()", "x.copy_(x * 2)"])
def test_in_place_update_of_an_inference_tensor_outside_inference_mode_raises_as_torch(write):
    for L in (engine, torch):
        with L.inference_mode():
            x = L.ones(3)
            exec(write, {"x": x})  # inside: allowed
        with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode is not "
                                               "allowed"):
            exec(write, {"x": x})
        y = x.clone()
        exec(write, {"x": y})  # a clone is a normal tensor


# ---- kl_div's warning about reduction='mean' -----------------------------------------------------------------
def _kl_inputs(L):
    rng = np.random.default_rng(0)
    return (L.tensor(rng.standard_normal((3, 4)).astype(np.float32)).log_softmax(-1),
            L.tensor(rng.standard_normal((3, 4)).astype(np.float32)).softmax(-1))


def _warned(call) -> tuple[list[str], np.ndarray]:
    """The UserWarnings `call()` gives, and its value."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = call().detach().numpy()
    return [str(w.message) for w in caught if w.category is UserWarning], value


@needs_torch
@pytest.mark.parametrize("call", [
    lambda L, F, x, t: F.kl_div(x, t), lambda L, F, x, t: F.kl_div(x, t, reduction="mean"),
    lambda L, F, x, t: L.nn.KLDivLoss()(x, t), lambda L, F, x, t: F.kl_div(x, t, reduction="batchmean"),
    lambda L, F, x, t: F.kl_div(x, t, reduction="sum"), lambda L, F, x, t: L.nn.KLDivLoss(reduction="none")(x, t),
    lambda L, F, x, t: L.kl_div(x, t, 1), lambda L, F, x, t: F.kl_div(x, t.log(), log_target=True),
])
def test_kl_div_warns_about_mean_as_torch(call):
    ours, value = _warned(lambda: call(engine, EF, *_kl_inputs(engine)))
    theirs, torch_value = _warned(lambda: call(torch, TF, *_kl_inputs(torch)))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):  # torch's words (torch leaves out the spaces between its sentences)
        assert a.startswith("reduction: 'mean' divides the total loss by both the batch size and the support size.")
        assert a.replace(" ", "") == b.replace(" ", "")
    np.testing.assert_allclose(value, torch_value, rtol=1e-3, atol=1e-6)


def test_kl_div_warns_once_per_call_site_under_the_default_filter():
    x, t = _kl_inputs(engine)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            EF.kl_div(x, t)
        for _ in range(3):
            EF.kl_div(x, t, reduction="mean")
    assert len(caught) == 2 and all(w.filename == __file__ for w in caught)


# ---- lr_scheduler.step() before optimizer.step() ------------------------------------------------------------
def _schedule(L, calls, scaler=None):
    p = L.zeros(2, requires_grad=True)
    opt = L.optim.SGD([p], lr=0.1)
    sched = L.optim.lr_scheduler.StepLR(opt, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for call in calls:
            if call == "sched":
                sched.step()
            elif call == "opt":
                opt.step()
            else:  # a GradScaler step; "skip" gives it an inf gradient, so it skips optimizer.step()
                scale = float("inf") if call == "skip" else 1.0
                scaler.scale((p * scale).sum()).backward()
                scaler.step(opt)
                scaler.update()
                opt.zero_grad()
    return [str(w.message) for w in caught if w.category is UserWarning]


@needs_torch
@pytest.mark.parametrize("calls", [["sched"], ["sched", "sched", "sched", "opt", "sched"], ["opt", "sched"],
                                   ["opt", "sched", "sched"], ["sched", "opt", "sched", "sched"]])
def test_scheduler_step_before_optimizer_step_warns_once_as_torch(calls):
    ours, theirs = _schedule(engine, calls), _schedule(torch, calls)
    assert len(ours) == len(theirs) == (calls[0] == "sched")
    for message, torch_message in zip(ours, theirs):
        first = "Detected call of `lr_scheduler.step()` before `optimizer.step()`."
        assert message.startswith(first) and torch_message.startswith(first)  # what scripts filter by
        assert message != torch_message and "Call `optimizer.step()` first and `lr_scheduler.step()` after" in message


def test_a_step_the_grad_scaler_skipped_counts_as_the_optimizers():
    assert _schedule(engine, ["skip", "sched", "scaled", "sched"], engine.amp.GradScaler("cpu")) == []
    assert _schedule(engine, ["scaled", "sched"], engine.amp.GradScaler("cpu")) == []
    assert len(_schedule(engine, ["sched", "skip", "sched"], engine.amp.GradScaler("cpu"))) == 1


# ---- engine.load's map_location ------------------------------------------------------------------------------
def _checkpoint(devices: dict | None = None) -> io.BytesIO:
    """A checkpoint of two tensors and a number; `devices` names where tensors were saved from (a GPU)."""
    f = io.BytesIO()
    if devices is None:
        engine.save({"w": engine.arange(4.0), "step": 3, "b": [engine.ones(2)]}, f)
    else:
        arrays = {"w": np.arange(4.0, dtype=np.float32), "b": np.ones(2, np.float32)}
        serialization._write_safetensors(f, arrays, None, json.dumps(devices))
    f.seek(0)
    return f


@needs_torch
def test_a_map_location_callable_gets_each_tensor_on_the_cpu_and_where_it_was_saved_as_torch():
    calls = []
    loaded = engine.load(_checkpoint(), map_location=lambda storage, loc: calls.append((storage, loc)) or storage)
    assert loaded["step"] == 3 and loaded["w"].tolist() == [0, 1, 2, 3] and loaded["b"][0].tolist() == [1, 1]
    assert [loc for _, loc in calls] == ["cpu", "cpu"] and all(s.device == "cpu" for s, _ in calls)
    torch_calls = []
    f = io.BytesIO()
    torch.save({"w": torch.arange(4.0)}, f)
    f.seek(0)
    torch.load(f, map_location=lambda storage, loc: torch_calls.append(loc) or storage)
    assert torch_calls == ["cpu"]


def test_the_common_map_location_lambda_loads_to_the_cpu():
    loaded = engine.load(_checkpoint({"w": "cuda:0", "b": "cuda:1"}), map_location=lambda storage, loc: storage)
    assert loaded["w"].device == "cpu" and loaded["b"].device == "cpu" and loaded["w"].tolist() == [0, 1, 2, 3]
    locations = {}
    loaded = engine.load(_checkpoint({"w": "cuda:0"}),
                         map_location=lambda s, loc: locations.update({tuple(s.tolist()): loc}))  # None: the CPU
    assert locations == {(0.0, 1.0, 2.0, 3.0): "cuda:0", (1.0, 1.0): "cpu"} and loaded["w"].device == "cpu"
    moved = engine.load(_checkpoint(), map_location=lambda s, loc: s.to("cpu") * 2)
    assert moved["w"].tolist() == [0, 2, 4, 6]


def test_a_map_location_dict_remaps_by_the_saved_device():
    loaded = engine.load(_checkpoint({"w": "cuda:0", "b": "cuda:0"}), map_location={"cuda:0": "cpu"})
    assert loaded["w"].device == "cpu" and loaded["b"].tolist() == [1, 1]
    loaded = engine.load(_checkpoint(), map_location={"cuda:0": "cuda:1", "cpu": engine.device("cpu")})
    assert loaded["w"].device == "cpu"


def test_npz_checkpoints_keep_where_tensors_were_saved(tmp_path):
    path = str(tmp_path / "x.npz")
    serialization._write_npz(path, {"w": np.arange(3.0)}, None, json.dumps({"w": "cuda:0"}))
    seen = []
    loaded = engine.load(path, map_location=lambda s, loc: seen.append(loc))
    assert seen == ["cuda:0"] and loaded["w"].device == "cpu"


@pytest.mark.parametrize("map_location, message", [
    (["cpu"], "map_location must be None, a device string"),
    ({0: "cpu"}, "a map_location dict maps saved device strings to devices"),
    ({"cuda:0": 1}, "a map_location dict maps saved device strings to devices"),
    (lambda s, loc: s.numpy(), "the map_location callable must return a Tensor"),
])
def test_bad_map_locations_are_one_line_type_errors(map_location, message):
    one_line(lambda: engine.load(_checkpoint(), map_location=map_location), TypeError, message)


def test_damaged_saved_devices_are_a_checkpoint_error():
    for devices in ({"nope": "cuda:0"}, {"w": 3}):
        one_line(lambda d=devices: engine.load(_checkpoint(d)), engine.CheckpointError, "saved devices")


def test_a_cpu_state_dict_is_still_a_plain_safetensors_file():
    f = io.BytesIO()
    engine.save({"w": engine.ones(2)}, f)
    raw = f.getvalue()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert set(header) == {"w"}


def test_map_location_on_cuda():
    cuda_or_skip()
    f = io.BytesIO()
    engine.save({"w": engine.arange(3.0, device="cuda"), "c": engine.ones(1)}, f)
    for where, device in [({"cuda:0": "cpu"}, "cpu"), (lambda s, loc: s, "cpu"), (None, "cpu"),
                          (lambda s, loc: s.cuda() if loc == "cuda:0" else None, "cuda:0"), ("cuda", "cuda:0")]:
        f.seek(0)
        loaded = engine.load(f, map_location=where)
        assert loaded["w"].device == device and loaded["w"].tolist() == [0, 1, 2]
        assert loaded["c"].device == ("cuda:0" if where == "cuda" else "cpu")
