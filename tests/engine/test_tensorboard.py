"""engine.utils.tensorboard.SummaryWriter: the event files it writes, read back by a reader written here from the
formats' specifications (TFRecord framing with masked CRC32C, protobuf wire format, TensorBoard's field numbers)."""

import gc
import os
import re
import socket
import struct
import time
import warnings

import numpy as np
import pytest

import engine
from engine import tensorboard
from engine.tensorboard import SummaryWriter

from .oracle import cuda_or_skip


# ---- an independent reader -----------------------------------------------------------------------
def crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    crc = crc32c_bitwise(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32


def read_records(path) -> list[bytes]:
    """The records of a TFRecord file, every length and data CRC checked."""
    with open(path, "rb") as f:
        data, out, i = f.read(), [], 0
    while i < len(data):
        (n,), (len_crc,) = struct.unpack("<Q", data[i:i + 8]), struct.unpack("<I", data[i + 8:i + 12])
        assert len_crc == masked(data[i:i + 8])
        body = data[i + 12:i + 12 + n]
        assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == masked(body)
        out.append(body)
        i += 16 + n
    assert i == len(data)
    return out


def varint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        n, shift, i = n | (b & 0x7F) << shift, shift + 7, i + 1
        if b < 0x80:
            return n, i


def fields(buf: bytes) -> dict[int, list]:
    """field number -> values: ints (varint), bytes (length-delimited), raw 8 or 4 bytes (fixed)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = buf[i:i + n], i + n
        else:
            size = {1: 8, 5: 4}[wire]
            value, i = buf[i:i + size], i + size
        out.setdefault(key >> 3, []).append(value)
    return out


def f64(raw: bytes) -> float:
    return struct.unpack("<d", raw)[0]


def int64(n: int) -> int:
    return n - 2**64 if n >= 2**63 else n


def parse_event(buf: bytes) -> dict:
    f = fields(buf)
    event = {"wall_time": f64(f[1][0]), "step": int64(f.get(2, [0])[0])}
    if 3 in f:
        event["file_version"] = f[3][0].decode()
    if 7 in f:
        event["session_log"] = fields(f[7][0])[1][0]
    event["values"] = [parse_value(v) for v in fields(f[5][0]).get(1, [])] if 5 in f else []
    return event


def parse_value(buf: bytes) -> dict:
    f = fields(buf)
    value = {"tag": f[1][0].decode()}
    if 2 in f:
        value["simple_value"] = struct.unpack("<f", f[2][0])[0]
    if 5 in f:
        h = fields(f[5][0])
        value["histo"] = {name: f64(h[k][0]) if k in h else 0.0
                          for k, name in enumerate(("min", "max", "num", "sum", "sum_squares"), 1)}
        value["histo"]["bucket_limit"] = np.frombuffer(h[6][0], "<f8")
        value["histo"]["bucket"] = np.frombuffer(h[7][0], "<f8")
    if 8 in f:
        t = fields(f[8][0])
        value["tensor"] = {"dtype": t[1][0], "shape": [fields(d)[1][0] for d in fields(t[2][0]).get(2, [])]
                           if 2 in t else [], "string_val": t.get(8, []), "float_val": t.get(5, []),
                           "double_val": t.get(6, [])}
    if 9 in f:
        plugin = fields(fields(f[9][0])[1][0])
        value["plugin"], value["content"] = plugin[1][0].decode(), plugin.get(2, [b""])[0]
    return value


def event_files(log_dir) -> list[str]:
    return sorted(os.path.join(log_dir, n) for n in os.listdir(log_dir) if n.startswith("events.out.tfevents."))


def events(log_dir) -> list[dict]:
    """Every event of every file in log_dir (the file_version header of each included)."""
    return [parse_event(r) for path in event_files(log_dir) for r in read_records(path)]


def values(log_dir) -> list[tuple[dict, dict]]:
    return [(e, v) for e in events(log_dir) for v in e["values"]]


# ---- framing, file name, header ------------------------------------------------------------------
def test_torchs_import_path():
    from engine.utils.tensorboard import SummaryWriter as imported

    assert imported is SummaryWriter is engine.utils.tensorboard.SummaryWriter


def test_crc32c_check_value_and_reader_agree():
    assert tensorboard.crc32c(b"123456789") == 0xE3069283 == crc32c_bitwise(b"123456789")
    data = np.random.default_rng(0).integers(0, 256, 300).astype(np.uint8).tobytes()
    assert tensorboard.crc32c(data) == crc32c_bitwise(data)


def test_file_name_and_header(tmp_path):
    before = time.time()
    w = SummaryWriter(tmp_path / "run", filename_suffix=".v1")
    [path] = event_files(tmp_path / "run")
    name = os.path.basename(path)
    m = re.fullmatch(rf"events\.out\.tfevents\.(\d{{10}})\.{re.escape(socket.gethostname())}\.{os.getpid()}\.\d+\.v1",
                     name)
    assert m and abs(int(m.group(1)) - before) < 5
    [header] = events(tmp_path / "run")  # written at once, before any add
    assert header["file_version"] == "brain.Event:2" and before - 1 < header["wall_time"] < time.time() + 1
    assert w.get_logdir() == tmp_path / "run"
    w.close()


def test_default_log_dir_has_torchs_pattern(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_lr0.1")
    host = re.escape(socket.gethostname())
    assert re.fullmatch(rf"runs{re.escape(os.sep)}[A-Z][a-z]{{2}}\d\d_\d\d-\d\d-\d\d_{host}_lr0\.1", w.get_logdir())
    w.close()
    assert len(event_files(w.get_logdir())) == 1


def test_purge_step_writes_a_session_start(tmp_path):
    with SummaryWriter(tmp_path, purge_step=40):
        pass
    _, version, start = events(tmp_path)
    assert (version["step"], version["file_version"]) == (40, "brain.Event:2")
    assert (start["step"], start["session_log"]) == (40, 1)


# ---- scalars ---------------------------------------------------------------------------------------
def test_scalars_values_steps_and_wall_times(tmp_path):
    x = engine.randn(5, requires_grad=True)
    loss = (x * x).sum()
    given = [(1.5, 0), (0.0, 1), (-7, 2), (np.float32(2.25), np.int64(3)), (np.array([[4.5]]), 4),
             (loss, engine.tensor(5)), (engine.tensor([3], dtype=engine.int64), -6), (True, 2**40)]
    with SummaryWriter(tmp_path) as w:
        for value, step in given:
            w.add_scalar("train/loss", value, step, walltime=1000.0 + int(step))
        start = time.time()
        w.add_scalar("no_step", 1.0)
    got = values(tmp_path)
    expected = [1.5, 0.0, -7.0, 2.25, 4.5, np.float32(loss.item()), 3.0, 1.0]
    for (event, value), want, (_, step) in zip(got, expected, given, strict=False):
        assert value["tag"] == "train/loss" and value["simple_value"] == pytest.approx(want, rel=1e-6)
        assert event["step"] == int(step) and event["wall_time"] == 1000.0 + int(step)
    last_event, last = got[-1]
    assert last["tag"] == "no_step" and last_event["step"] == 0 and start - 1 < last_event["wall_time"] < start + 5


def test_new_style_scalars_are_tensors_for_the_scalars_plugin(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("f", 0.1, 1, new_style=True)
        w.add_scalar("d", 0.1, 1, new_style=True, double_precision=True)
    (_, f), (_, d) = values(tmp_path)
    assert f["plugin"] == d["plugin"] == "scalars" and (f["tensor"]["dtype"], d["tensor"]["dtype"]) == (1, 2)
    assert np.frombuffer(f["tensor"]["float_val"][0], "<f4")[0] == np.float32(0.1)
    assert np.frombuffer(d["tensor"]["double_val"][0], "<f8")[0] == 0.1


def test_add_scalars_writes_each_tag_to_its_own_directory(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalars("loss/run", {"train": 1.0, "val": engine.tensor(2.0)}, 3)
        w.add_scalars("loss/run", {"train": 0.5}, 4)
    assert sorted(os.listdir(tmp_path))[-2:] == ["loss_run_train", "loss_run_val"]
    train, val = values(tmp_path / "loss_run_train"), values(tmp_path / "loss_run_val")
    assert [(e["step"], v["tag"], v["simple_value"]) for e, v in train] == [(3, "loss/run", 1.0), (4, "loss/run", 0.5)]
    assert [(e["step"], v["simple_value"]) for e, v in val] == [(3, 2.0)]
    assert train[0][0]["wall_time"] == val[0][0]["wall_time"]  # one time for the whole call, as torch
    assert values(tmp_path) == []


# ---- histograms ------------------------------------------------------------------------------------
def torch_default_bins():
    v, edges = 1e-12, []
    while v < 1e20:
        edges.append(v)
        v *= 1.1
    return [-e for e in edges[::-1]] + [0.0] + edges


def trimmed(counts, edges):
    """TensorBoard's buckets: right edges of the occupied range, with one empty bucket before it."""
    nz = np.flatnonzero(counts)
    lo, hi = nz[0], nz[-1]
    if lo == 0:
        return edges[: hi + 2], np.concatenate([[0], counts[: hi + 1]])
    return edges[lo: hi + 2], counts[lo - 1: hi + 1]


@pytest.mark.parametrize("bins", [10, 37, "auto", "fd"])
def test_histogram_matches_numpy(tmp_path, bins):
    data = np.random.default_rng(1).standard_normal((40, 25)).astype(np.float32)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("w", engine.tensor(data, requires_grad=True) * 1, 7, bins=bins, walltime=5.0)
    [(event, value)] = values(tmp_path)
    h, flat = value["histo"], data.astype(np.float64).ravel()
    counts, edges = np.histogram(flat, bins=bins)
    want_limits, want_counts = trimmed(counts, edges)
    np.testing.assert_array_equal(h["bucket_limit"], want_limits)
    np.testing.assert_array_equal(h["bucket"], want_counts)
    assert (event["step"], event["wall_time"], value["tag"]) == (7, 5.0, "w")
    assert (h["min"], h["max"], h["num"]) == (flat.min(), flat.max(), 1000)
    assert h["sum"] == pytest.approx(flat.sum()) and h["sum_squares"] == pytest.approx((flat**2).sum())


def test_histogram_tensorflow_buckets(tmp_path):
    data = np.concatenate([np.random.default_rng(2).exponential(3.0, 500), [-0.5, 0.0]])
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("acts", data, 0)
        assert w.default_bins == torch_default_bins()
    [(_, value)] = values(tmp_path)
    edges = np.array(torch_default_bins())
    n = len(edges) // 2  # -1e-12 * 1.1**k ... 0 ... 1e-12 * 1.1**k, up to 1e20
    assert len(edges) == 1549 and edges[n] == 0 and edges[n + 1] == 1e-12 == -edges[n - 1] and edges[-1] < 1e20
    counts, _ = np.histogram(data, bins=edges)
    want_limits, want_counts = trimmed(counts, edges)
    np.testing.assert_array_equal(value["histo"]["bucket_limit"], want_limits)
    np.testing.assert_array_equal(value["histo"]["bucket"], want_counts)
    assert value["histo"]["bucket"].sum() == 502


def test_histogram_max_bins_and_raw(tmp_path):
    data = np.linspace(0, 1, 200)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("m", data, bins=20, max_bins=6)
        w.add_histogram_raw("r", 0, 3, 4, 6, 14, [1.0, 2.0, 3.0], [1, 2, 1], 2)
    (_, m), (_, r) = values(tmp_path)
    counts, edges = np.histogram(data, bins=20)
    merged = np.pad(counts, (0, 1)).reshape(-1, 3).sum(axis=1)  # 20 buckets, 3 at a time: 7 buckets
    np.testing.assert_array_equal(m["histo"]["bucket"], np.concatenate([[0], merged]))
    np.testing.assert_array_equal(m["histo"]["bucket_limit"], np.append(edges[:-1:3], edges[-1]))
    assert r["histo"]["max"] == 3 and list(r["histo"]["bucket"]) == [1, 2, 1] and r["histo"]["sum_squares"] == 14


# ---- text and hparams ------------------------------------------------------------------------------
def test_text_is_a_string_tensor_for_the_text_plugin(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_text("notes", "lr **0.1**, naïve", 3, walltime=9.0)
    [(event, value)] = values(tmp_path)
    assert (event["step"], event["wall_time"], value["tag"], value["plugin"]) == (3, 9.0, "notes/text_summary", "text")
    assert value["tensor"]["dtype"] == 7 and value["tensor"]["shape"] == [1]
    assert value["tensor"]["string_val"] == ["lr **0.1**, naïve".encode()]


def test_hparams_write_the_plugin_records_and_metrics(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_hparams({"lr": 0.01, "opt": "adam", "skip": None}, {"hp/acc": 0.75}, {"opt": ["adam", "sgd"]},
                      run_name="trial1", global_step=2)
    run = values(tmp_path / "trial1")
    assert [v["tag"] for _, v in run] == ["_hparams_/experiment", "_hparams_/session_start_info",
                                          "_hparams_/session_end_info", "hp/acc"]
    assert all(v["plugin"] == "hparams" for _, v in run[:3]) and run[3][1]["simple_value"] == 0.75
    exp, start, end = (fields(v["content"]) for _, v in run[:3])
    infos = [fields(i) for i in fields(exp[2][0])[4]]
    assert [(i[1][0], i[4][0]) for i in infos] == [(b"lr", 3), (b"opt", 1)]  # FLOAT64, STRING
    assert [fields(v)[3][0] for v in fields(infos[1][5][0])[1]] == [b"adam", b"sgd"]
    assert fields(fields(fields(exp[2][0])[5][0])[1][0])[2] == [b"hp/acc"]
    hp = {fields(e)[1][0]: fields(fields(e)[2][0]) for e in fields(start[3][0])[1]}
    assert f64(hp[b"lr"][2][0]) == 0.01 and hp[b"opt"][3] == [b"adam"]
    assert fields(end[4][0])[1] == [1]  # STATUS_SUCCESS


# ---- buffering, flushing, reopening ----------------------------------------------------------------
def test_events_wait_for_flush_close_or_max_queue(tmp_path):
    w = SummaryWriter(tmp_path / "a", max_queue=100, flush_secs=1000)
    w.add_scalar("x", 1.0, 0)
    assert len(events(tmp_path / "a")) == 1  # the header only
    w.flush()
    assert len(events(tmp_path / "a")) == 2
    w.add_scalar("x", 2.0, 1)
    w.close()
    assert [v["simple_value"] for _, v in values(tmp_path / "a")] == [1.0, 2.0]

    q = SummaryWriter(tmp_path / "b", max_queue=3, flush_secs=1000)
    q.add_scalar("x", 1.0, 0)
    q.add_scalar("x", 2.0, 1)
    assert len(events(tmp_path / "b")) == 1
    q.add_scalar("x", 3.0, 2)  # the third waiting event writes all three
    assert [v["simple_value"] for _, v in values(tmp_path / "b")] == [1.0, 2.0, 3.0]
    q.close()


def test_flush_secs_writes_without_another_call(tmp_path):
    w = SummaryWriter(tmp_path, flush_secs=0.05)
    w.add_scalar("x", 1.0, 0)
    deadline = time.time() + 10
    while len(events(tmp_path)) < 2 and time.time() < deadline:
        time.sleep(0.01)
    assert len(events(tmp_path)) == 2
    w.close()


def test_writer_never_closed_still_writes_at_collection(tmp_path):
    w = SummaryWriter(tmp_path)
    w.add_scalar("x", 4.0, 0)
    del w
    gc.collect()
    assert [v["simple_value"] for _, v in values(tmp_path)] == [4.0]


def test_a_closed_writer_reopens_on_the_next_add(tmp_path):
    w = SummaryWriter(tmp_path)
    w.add_scalar("x", 1.0, 0)
    w.close()
    w.close()  # twice is fine, as torch
    w.flush()
    w.add_scalar("x", 2.0, 1)
    w.close()
    files = event_files(tmp_path)
    assert len(files) == 2
    assert [[parse_event(r).get("file_version") for r in read_records(f)] for f in files] == \
        [["brain.Event:2", None]] * 2
    assert [v["simple_value"] for _, v in values(tmp_path)] == [1.0, 2.0]


# ---- kinds not logged, bad input -------------------------------------------------------------------
def test_kinds_not_logged_warn_once_and_write_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(tensorboard, "_WARNED", set())
    with SummaryWriter(tmp_path) as w:
        with pytest.warns(UserWarning, match=r"add_image: the engine's writer does not log") as record:
            w.add_image("img", np.zeros((3, 4, 4)), 0)
        assert record[0].filename == __file__
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            w.add_image("img", np.zeros((3, 4, 4)), 1)
        for name in ("add_graph", "add_images", "add_figure", "add_embedding", "add_audio", "add_video",
                     "add_pr_curve", "add_mesh"):
            with pytest.warns(UserWarning, match=name):
                getattr(w, name)("x", None)
    assert events(tmp_path)[1:] == []


def test_bad_input_raises_torchs_errors(tmp_path):
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(AssertionError, match=r"one element \(0 dimensions\). Was given size: 3 and 1 dim"):
            w.add_scalar("x", engine.ones(3))
        with pytest.raises(AssertionError, match="size: 4 and 2 dimensions"):
            w.add_scalar("x", np.ones((2, 2)))
        with pytest.raises(TypeError, match="tag must be a str, got int"):
            w.add_scalar(3, 1.0)
        with pytest.raises(TypeError, match="tag must be a str, got NoneType"):
            w.add_histogram(None, np.ones(3))
        with pytest.raises(TypeError, match="tag must be a str"):
            w.add_text(1, "t")
        with pytest.raises(TypeError, match="main_tag must be a str"):
            w.add_scalars(1, {"a": 1.0})
        with pytest.raises(NotImplementedError, match="Got <class 'list'>"):
            w.add_scalar("x", [1.0])
        with pytest.raises(ValueError, match="could not convert string to float"):
            w.add_scalar("x", "abc")
        with pytest.raises(ValueError, match="The input has no element"):
            w.add_histogram("h", np.array([]))
        with pytest.raises(ValueError, match="len\\(bucket_limits\\) != len\\(bucket_counts\\)"):
            w.add_histogram_raw("h", 0, 1, 1, 1, 1, [1.0], [1, 0])
        with pytest.raises(TypeError, match="should be dictionary"):
            w.add_hparams([("lr", 0.1)], {})
        with pytest.raises(ValueError, match="value should be one of int, float, str, bool"):
            w.add_hparams({"lr": [0.1]}, {})
    assert events(tmp_path)[1:] == []


def test_cuda_tensor_values(tmp_path):
    cuda_or_skip()
    x = engine.randn(100, device="cuda", requires_grad=True)
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("loss", (x * x).mean(), 0)
        w.add_histogram("x", x, 0, bins=5)
    (_, s), (_, h) = values(tmp_path)
    host = x.detach().cpu().numpy().astype(np.float64)
    assert s["simple_value"] == pytest.approx((host**2).mean(), rel=1e-5)
    np.testing.assert_array_equal(h["histo"]["bucket"], np.concatenate([[0], np.histogram(host, bins=5)[0]]))
