"""Backward through many slices under the debugger: listeners get each slice's region, never T whole arrays,
and every record, summary, fetched value, alert, breakpoint and tape row means what it meant before."""

import math

import numpy as np
import pytest

import engine
from engine.autograd.function import RegionGrad
from engine.debug import BackwardRecord, Breakpoint, Debugger, NonFiniteError, summarize, watch
from engine.debug.regions import summarize_region
from engine.debug.summary import SUMMARY_LIMIT
from engine.events import BackwardEvent
from tests.engine.debug.helpers import TIMEOUT

FIELDS = ("shape", "dtype", "device", "numel", "min", "max", "mean", "std", "norm", "nan_count", "inf_count",
          "zero_count", "lo", "hi", "samples", "stride")


def data(*shape, seed: int = 0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def slice_sum(x, T: int):
    """sum(x[t] * (t + 1)) for t < T: an RNN's way of reading its input."""
    total = x[0]
    for t in range(1, T):
        total = total + x[t] * float(t + 1)
    return total.sum()


def assert_same_summary(got, ref) -> None:
    for name in FIELDS:
        a, b = getattr(got, name), getattr(ref, name)
        if isinstance(a, float) and isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), name
        else:
            assert a == b, name
    np.testing.assert_array_equal(got.counts, ref.counts)


def slice_records(dbg, op: str = "getitem") -> list[BackwardRecord]:
    return [r for r in dbg.history if isinstance(r, BackwardRecord) and r.event.op == op]


def test_a_tensor_listener_gets_no_whole_array_per_slice():
    T = 48
    x = engine.tensor(data(T, 8, 16), requires_grad=True)
    whole, regions = [], []

    def listen(event, inputs, grads):
        if isinstance(event, BackwardEvent):
            for g in grads:
                if isinstance(g, np.ndarray) and g.size == x.numel():
                    whole.append(g)
                elif isinstance(g, RegionGrad):
                    regions.append(g)

    off = engine.hub.listen_tensors(listen)
    try:
        slice_sum(x, T).backward()
    finally:
        off()
    assert whole == [] and len(regions) == T
    total = np.zeros_like(x.array)
    for g in regions:
        total += g.dense()
    np.testing.assert_array_equal(total, x.grad.numpy())


def test_the_value_cache_keeps_regions_and_fetch_gives_the_whole_gradient():
    T = 64
    x = engine.tensor(data(T, 8, 16), requires_grad=True)
    with Debugger("summary") as dbg:
        slice_sum(x, T).backward()
    recs = slice_records(dbg)
    assert len(recs) == T
    # every value recorded (forward outputs, incoming gradients, regions) is one slice's size, about ten
    # per step: T whole gradients would add T times x's bytes
    assert dbg.cache.nbytes < 16 * x.array.nbytes
    total = np.zeros_like(x.array)
    for rec in recs:
        g = dbg.fetch(rec.event.grad_inputs[0])
        assert g.shape == x.shape and isinstance(g, np.ndarray)
        total += g
    np.testing.assert_allclose(total, x.grad.numpy(), rtol=1e-6)
    for t in (0, T - 1):  # the node of x[t] gave t + 1 at row t and zeros elsewhere
        g = dbg.fetch(recs[T - 1 - t].event.grad_inputs[0])
        assert np.all(g[t] == t + 1) and np.count_nonzero(g) == g[t].size


def _views():
    """(name, shape, f(x) -> a sum over views of x): every kind of view a slice's gradient comes from. Each x
    has more elements than the summary limit: such gradients are summarised from their regions."""
    return [
        ("rows", (24, 30, 25), lambda x: sum(x[t].sum() * (t + 1) for t in range(0, 24, 5))),
        ("rows of a small tensor", (24, 6, 5), lambda x: sum(x[t].sum() * (t + 1) for t in range(0, 24, 5))),
        ("columns", (6, 120, 25), lambda x: sum((x[:, t] ** 2).sum() for t in range(3, 100, 17))),
        ("steps", (20, 30, 35), lambda x: sum((x[t, ::2, 1::3] * 3).sum() for t in range(0, 20, 3))),
        ("ellipsis and new axis", (5, 45, 80), lambda x: (x[..., 1:9:3] * x[None, 2, :, 4:7].sum()).sum()),
        ("one element", (160, 120), lambda x: x[3, 4] * 5.0 + x[-1, -1]),
        ("unbind", (12, 40, 40), lambda x: sum((u * i).sum() for i, u in enumerate(x.unbind(0)))),
        ("chunk", (6, 3000), lambda x: sum((c * i).sum() for i, c in enumerate(x.chunk(5, dim=1)))),
        ("narrow and select", (10, 80, 30), lambda x: x.narrow(1, 2, 3).sum() * 2 + x.select(0, 7).sum()),
        ("transposed", (60, 300), lambda x: sum((x.T[t] * t).sum() for t in range(0, 300, 70))),
        ("integer arrays", (200, 100), lambda x: (x[[1, 4, 4, 9]] * 2).sum()),
        ("mask", (200, 100), lambda x: (x[x.detach() > 0.5] ** 2).sum()),
        ("written in a column-major result", (300, 60), _written_columns),
    ]


def _written_columns(x):
    y = x.T * 1  # laid out as the transpose: the region of its view lies in column-major memory
    v = y[:, 5:40]
    v.mul_(2)
    return (v * v).sum()


@pytest.mark.parametrize("name, shape, f", _views(), ids=[v[0] for v in _views()])
@pytest.mark.parametrize("capture", ["summary", "values"])
def test_each_gradient_summary_and_value_is_that_of_the_whole_gradient(name, shape, f, capture):
    x = engine.tensor(data(*shape), requires_grad=True)
    with Debugger(capture) as dbg:
        f(x).backward()
    recs = [r for r in dbg.history if isinstance(r, BackwardRecord)]
    checked = exact = 0
    for rec in recs:
        ids = (rec.event.grad_output, *rec.event.grad_inputs)
        for i, (tid, s) in enumerate(zip(ids, (rec.grad_output, *rec.grad_inputs))):
            if not tid or s is None:
                continue
            whole = dbg.fetch(tid)
            # sampled as summarize() samples a big array, or exact (as a region's always is)
            limit = SUMMARY_LIMIT if s.stride > 1 else max(SUMMARY_LIMIT, whole.size)
            assert_same_summary(s, summarize(whole, limit=limit))
            if capture == "values":
                if whole.size <= 4096:
                    np.testing.assert_array_equal(rec.values[i], whole)
                else:
                    assert rec.values[i] is None
            checked += 1
            exact += s.exact and s.numel > SUMMARY_LIMIT
    assert checked >= len(recs)
    # a big tensor's slice gradients are summarised from their regions: exact, where summarize() samples
    assert exact or name in ("integer arrays", "mask", "rows of a small tensor")


@pytest.mark.parametrize("index", [(slice(None, None, -2),), (3, slice(None, None, -1)), (None, 2, Ellipsis, None),
                                   (slice(1, 9, 3), Ellipsis, slice(4, 0, -2)), (Ellipsis, 0), (7, 5, 3)])
def test_a_region_of_any_basic_index_is_summarised_as_the_whole_gradient(index):
    shape = (12, 10, 8)
    values = data(*np.zeros(shape)[index].shape, seed=3)
    values[values > 1] = 0  # zeros inside the region count too
    region = RegionGrad(shape, index, values)
    # the limit: whole gradients of more elements than it get summarised from their region
    assert_same_summary(summarize_region(region, limit=64), summarize(region.dense(), limit=960))


def test_a_big_tensors_slice_gradient_has_exact_statistics():
    T = 96  # x has 96 * 16 * 24 = 36864 elements, more than the summary limit
    x = engine.tensor(data(T, 16, 24), requires_grad=True)
    with Debugger("summary") as dbg:
        (x[5] * engine.tensor(data(16, 24, seed=1))).sum().backward()
    (rec,) = slice_records(dbg)
    s, whole = rec.grad_inputs[0], dbg.fetch(rec.event.grad_inputs[0]).astype(np.float64)
    assert s.numel == whole.size > SUMMARY_LIMIT and s.exact
    assert s.zero_count == whole.size - np.count_nonzero(whole)
    assert (s.min, s.max) == (whole.min(), whole.max())
    for got, want in ((s.mean, whole.mean()), (s.std, whole.std(ddof=1)), (s.norm, np.linalg.norm(whole.ravel()))):
        assert got == pytest.approx(want, rel=1e-9)
    assert s.counts.sum() == len(range(0, whole.size, -(-whole.size // 1024)))


def test_a_non_finite_slice_gradient_is_counted_and_its_origin_named():
    x = engine.tensor(np.abs(data(16, 4, 5)) + 1, requires_grad=True)
    with Debugger("summary") as dbg, np.errstate(divide="ignore", invalid="ignore"):
        (x[3] * 0).sqrt().sum().backward()  # sqrt's backward at 0 is infinite (the origin), then inf * 0
    (rec,) = slice_records(dbg)
    assert rec.grad_inputs[0].nan_count == 20 and rec.grad_inputs[0].zero_count == 16 * 20 - 20
    assert [a.kind for a in dbg.alerts] == ["nonfinite_backward"] and dbg.alerts[0].op == "sqrt"
    # the structure tier (watch's) checks the region's values themselves
    x.grad = None
    with pytest.raises(NonFiniteError) as err, watch(), np.errstate(divide="ignore", invalid="ignore"):
        (x[3] * 0).sqrt().sum().backward()
    assert err.value.alert.op == "sqrt"


def test_a_gradient_breakpoint_stops_at_the_slice_whose_gradient_passes_the_threshold():
    T = 20
    x = engine.tensor(data(T, 4, 5), requires_grad=True)
    loss = sum((x[t] * (50.0 if t == 7 else 1.0)).sum() for t in range(T))
    dbg = Debugger("structure")
    dbg.add_breakpoint(Breakpoint.norm(10, on="grad", pattern="getitem"))
    run = dbg.run_callable(loss.backward)
    stop = dbg.wait_for_stop(TIMEOUT)
    assert stop is not None and stop.reason == "breakpoint"
    # x[t]'s gradient is 1 at its 20 places (norm sqrt(20)), x[7]'s is 50 there: it stops there alone
    s = stop.record.grad_inputs[0]
    assert s.norm == pytest.approx(50 * math.sqrt(20)) and s.max == 50.0 and s.zero_count == (T - 1) * 20
    assert np.all(dbg.fetch(stop.record.event.grad_inputs[0])[7] == 50)
    dbg.resume()
    assert run.join(TIMEOUT) and run.exception is None and dbg.wait_for_stop(0.1) is None
    dbg.detach()


def test_the_tape_holds_the_whole_gradients_summaries(tmp_path):
    T = 16
    x = engine.tensor(data(T, 6, 5), requires_grad=True)
    with engine.record(tmp_path / "slices.tape", capture="summary"):
        slice_sum(x, T).backward()
    with engine.tape.open(tmp_path / "slices.tape") as tape:
        nodes = [r for r in tape.records() if isinstance(r, BackwardRecord) and r.event.op == "getitem"]
        assert len(nodes) == T
        for node in nodes:
            s = tape.summary(node.event.grad_inputs[0])
            t = int(s.max) - 1  # x[t]'s gradient is t + 1 at row t, zero elsewhere
            whole = np.zeros(x.shape, np.float32)
            whole[t] = t + 1
            assert_same_summary(s, summarize(whole))
