"""engine.save / engine.load: safetensors and npz round trips, interop with PyTorch's files, and
damaged files that must give one clear CheckpointError (never another exception, never code run)."""

import json
import math
import struct

import numpy as np
import pytest

import engine
from engine import optim
from engine.serialization import CheckpointError
from tests.engine.oracle import needs_torch, torch


def all_dtypes() -> dict:
    return {
        "f32": engine.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) / 7),
        "f64": engine.tensor(np.array([math.pi, -0.0, 1e300])),
        "i64": engine.tensor(np.array([[2**62, -(2**62)], [0, -1]], dtype=np.int64)),
        "i32": engine.tensor(np.array([7, -8, 2**31 - 1], dtype=np.int32)),
        "bool": engine.tensor([True, False, True]),
        "scalar": engine.tensor(2.5),
        "empty": engine.zeros(0, 3),
        "layer.0.weight": engine.randn(4, 5),
    }


def assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())


@pytest.mark.parametrize("name", ["ckpt.safetensors", "ckpt.npz", "checkpoint"])
def test_flat_dict_round_trip_keeps_dtypes_shapes_values_and_order(tmp_path, name):
    tensors = all_dtypes()
    engine.save(tensors, tmp_path / name)
    loaded = engine.load(tmp_path / name)
    assert_same(tensors, loaded)
    assert all(type(t) is engine.Tensor and t.array.flags.writeable for t in loaded.values())
    assert not (tmp_path / (name + ".partial")).exists()


def read_safetensors_by_hand(path) -> tuple[dict, dict, bytes]:
    """An independent minimal reader, straight from the format's description."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    return header, header.pop("__metadata__", {}), raw[8 + n:]


def test_file_layout_follows_the_safetensors_spec(tmp_path):
    tensors = {"w": engine.tensor([[1.0, 2.0]]), "n": engine.tensor([3], dtype=engine.int64)}
    engine.save(tensors, tmp_path / "m.safetensors")
    header, metadata, data = read_safetensors_by_hand(tmp_path / "m.safetensors")
    assert metadata == {}
    assert header == {"w": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]},
                      "n": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]}}
    assert data == np.array([1, 2], "<f4").tobytes() + np.array([3], "<i8").tobytes()
    assert (tmp_path / "m.safetensors").stat().st_size % 8 == 0  # header padded: data is 8-byte aligned


TORCH_CODES = {"torch.float32": "F32", "torch.float64": "F64", "torch.int64": "I64", "torch.int32": "I32",
               "torch.bool": "BOOL"}


def write_safetensors_from_torch(path, tensors: dict) -> None:
    """What safetensors.torch.save_file writes: built here from torch tensors' bytes per the spec."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        chunk = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": TORCH_CODES[str(t.dtype)], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(chunk)]}
        chunks.append(chunk)
        offset += len(chunk)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


@needs_torch
def test_loads_a_file_written_from_a_torch_state_dict(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("fc1", torch.nn.Linear(3, 4))
    model.add_module("fc2", torch.nn.Linear(4, 2))
    state = dict(model.state_dict()) | {"steps": torch.tensor(7), "mask": torch.tensor([True, False])}
    write_safetensors_from_torch(tmp_path / "torch.safetensors", state)
    loaded = engine.load(tmp_path / "torch.safetensors")
    assert list(loaded) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "steps", "mask"]
    for name, t in state.items():
        assert loaded[name].dtype.name == str(t.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(loaded[name].numpy(), t.numpy())


@needs_torch
def test_torch_reads_what_the_engine_writes(tmp_path):
    tensors = all_dtypes()
    engine.save(tensors, tmp_path / "ours.safetensors")
    header, _, data = read_safetensors_by_hand(tmp_path / "ours.safetensors")
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
              "BOOL": torch.bool}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtypes[info["dtype"]]) if end > begin \
            else torch.empty(0, dtype=dtypes[info["dtype"]])
        np.testing.assert_array_equal(t.reshape(info["shape"]).numpy(), tensors[name].numpy())


def test_safetensors_package_reads_our_files_when_installed(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    engine.save(all_dtypes(), tmp_path / "x.safetensors")
    loaded = st.load_file(str(tmp_path / "x.safetensors"))
    for name, t in all_dtypes().items():
        np.testing.assert_array_equal(loaded[name], t.numpy())


# ---- nested objects: optimizer and scheduler state, training checkpoints -------------------------
def trained_adam():
    w = engine.randn(3, 2, requires_grad=True)
    opt = optim.Adam([("w", w)], lr=0.01, amsgrad=True)
    for _ in range(2):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    return opt


@pytest.mark.parametrize("name", ["opt.safetensors", "opt.npz"])
def test_nested_state_round_trips_with_int_keys_tuples_and_special_floats(tmp_path, name):
    opt = trained_adam()
    shared = engine.ones(2)
    obj = {"optimizer": opt.state_dict(), "epoch": 3, "best": math.inf, "worst": -math.inf,
           "note": "resumed", "flags": [True, None, 1.5], "pair": (1, "a"), "$odd": {"$tensor": "no"},
           "a": shared, "again": shared}
    engine.save(obj, tmp_path / name)
    back = engine.load(tmp_path / name)
    sd = back["optimizer"]
    assert set(sd["state"]) == {0} and sd["state"][0]["step"] == 2
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999) and sd["param_groups"][0]["params"] == [0]
    assert sd["param_groups"][0]["param_names"] == ["w"]
    np.testing.assert_array_equal(sd["state"][0]["max_exp_avg_sq"].numpy(),
                                  opt.state_dict()["state"][0]["max_exp_avg_sq"].numpy())
    assert back["best"] == math.inf and back["worst"] == -math.inf
    assert back["flags"] == [True, None, 1.5] and back["pair"] == (1, "a") and back["epoch"] == 3
    assert back["$odd"] == {"$tensor": "no"}
    assert back["a"] is back["again"]  # one tensor saved twice is stored once


def test_save_refuses_objects_that_would_need_pickle(tmp_path):
    (tmp_path / "keep.safetensors").write_bytes(b"old")
    with pytest.raises(TypeError, match=r"cannot store function at lr_lambdas\.0"):
        engine.save({"lr_lambdas": [lambda e: e]}, tmp_path / "keep.safetensors")
    assert (tmp_path / "keep.safetensors").read_bytes() == b"old"  # the old checkpoint survives
    assert [p.name for p in tmp_path.iterdir()] == ["keep.safetensors"]


def test_map_location(tmp_path):
    engine.save({"x": engine.ones(2)}, tmp_path / "x.safetensors")
    assert engine.load(tmp_path / "x.safetensors", map_location="cpu")["x"].device == "cpu"
    with pytest.raises(TypeError, match="map_location"):
        engine.load(tmp_path / "x.safetensors", map_location=["cpu"])


# ---- damaged files -----------------------------------------------------------------------------
@pytest.fixture
def checkpoint_bytes(tmp_path) -> bytes:
    opt = trained_adam()
    engine.save({"model": all_dtypes(), "optimizer": opt.state_dict(), "step": 2},
                tmp_path / "real.safetensors")
    return (tmp_path / "real.safetensors").read_bytes()


def load_bytes(tmp_path, data: bytes, name="bad.safetensors"):
    (tmp_path / name).write_bytes(data)
    return engine.load(tmp_path / name)


def test_every_truncation_is_a_checkpoint_error(tmp_path, checkpoint_bytes):
    for cut in range(0, len(checkpoint_bytes), 7):
        with pytest.raises(CheckpointError, match=r"bad\.safetensors"):
            load_bytes(tmp_path, checkpoint_bytes[:cut])


def test_random_byte_flips_load_or_raise_checkpoint_error(tmp_path, checkpoint_bytes):
    rng = np.random.default_rng(0)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(300):
        data = bytearray(checkpoint_bytes)
        for pos in rng.integers(0, len(data), size=rng.integers(1, 4)):
            data[pos] = int(rng.integers(0, 256))
        try:
            load_bytes(tmp_path, bytes(data))
            outcomes["loaded"] += 1
        except CheckpointError:
            outcomes["refused"] += 1
    assert outcomes["loaded"] and outcomes["refused"]  # both kinds of damage happened


def safetensors_bytes(header, data=b"", raw_header=None) -> bytes:
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def one(dtype="F32", shape=(2,), offsets=(0, 8), data=b"\0" * 8) -> bytes:
    """A file holding one tensor 'x' described by these (possibly wrong) fields."""
    entry = {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}
    return safetensors_bytes({"x": entry}, data)


def tree(description: str) -> bytes:
    return safetensors_bytes({"__metadata__": {"tapescope.tree": description}})


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(("data", "message"), [
    (b"\x01\x02", "too short"),
    (struct.pack("<Q", 2**40) + b"{}", "header length 1099511627776 is absurd"),
    (struct.pack("<Q", 500) + b"{}", "truncated"),
    (safetensors_bytes(None, raw_header=b"{not json"), "not valid JSON"),
    (safetensors_bytes(None, raw_header=b"\xff\xfe"), "not valid JSON"),
    (safetensors_bytes(None, raw_header=b"[1, 2]"), "must be a JSON object"),
    (safetensors_bytes(None, raw_header=b'{"a": 1, "a": 2}'), "appears twice"),
    (one(dtype="C64", offsets=(0, 16), data=bytes(16)), "unknown dtype 'C64'"),
    (one(offsets=(0, 16), data=bytes(16)), "needs 8"),
    (safetensors_bytes({"x": F32_2, "y": F32_2}, bytes(8)), "overlaps"),
    (one(offsets=(8, 16), data=bytes(16)), "belong to no"),
    (one(data=bytes(4)), "truncated"),
    (one(data=bytes(12)), "4 bytes after the last tensor"),
    (one(shape=(-2,)), "invalid shape"),
    (one(offsets=(8, 0)), "data_offsets"),
    (safetensors_bytes({"x": {"dtype": "F32", "shape": [2]}}, bytes(8)), "exactly dtype, shape and data"),
    (one(dtype="BOOL", offsets=(0, 2), data=b"\x01\x07"), "0 and 1"),
    (safetensors_bytes({"__metadata__": {"k": 1}}), "__metadata__ must map strings to strings"),
    (tree('{"$tensor": "missing"}'), "damaged"),
    (tree('{"$pickle": "os.system"}'), "damaged"),
    (tree("[" * 100000), "damaged"),
])
def test_specific_damage_is_named(tmp_path, data, message):
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: .*" + message.replace("'", ".")
                       .replace("(", r"\(")):
        load_bytes(tmp_path, data)


def test_npz_round_trip_and_pickled_npz_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.ones((2, 2), np.float32), n=np.arange(3))
    loaded = engine.load(tmp_path / "plain.npz")
    assert loaded["w"].shape == (2, 2) and loaded["n"].dtype == engine.int64
    np.savez(tmp_path / "pickled.npz", evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match=r"pickled\.npz"):
        engine.load(tmp_path / "pickled.npz")
    np.savez(tmp_path / "half.npz", h=np.ones(2, np.float16), c=np.ones(2, np.complex64))
    with pytest.raises(CheckpointError, match="'c' has dtype complex64; the engine reads float16, float32"):
        engine.load(tmp_path / "half.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match=r"junk\.npz"):
        engine.load(tmp_path / "junk.npz")


def test_npz_keys_that_clash_with_savez_arguments(tmp_path):
    tensors = {"file": engine.ones(1), "allow_pickle": engine.zeros(1)}
    engine.save(tensors, tmp_path / "k.npz")
    assert_same(tensors, engine.load(tmp_path / "k.npz"))


def test_truncated_npz_is_a_checkpoint_error(tmp_path):
    engine.save(all_dtypes(), tmp_path / "ok.npz")
    data = (tmp_path / "ok.npz").read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 40)):
        (tmp_path / "cut.npz").write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=r"cut\.npz"):
            engine.load(tmp_path / "cut.npz")
