"""Checkpoints: `engine.save(obj, path)` and `engine.load(path)`, in the safetensors format or .npz.

A flat dict of tensors (a module's state_dict) is written as a plain safetensors file whose keys are
the dict's keys, so files from PyTorch's `safetensors` tools load as they are, and ours load there.
Anything else built from tensors, numbers, strings, None, lists, tuples and dicts (an optimizer's or
a scheduler's state_dict, a training checkpoint) is flattened: its tensors become entries and the
structure a JSON description in the header's `__metadata__`. Reading never runs code (no pickle);
a damaged file raises one CheckpointError naming the file and the problem.

safetensors layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON
{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}},
then the raw little-endian data; offsets count from the end of the header.
"""

from __future__ import annotations

import json
import math
import os
import zipfile

import numpy as np

from engine import backend
from engine.tensor import Tensor

_CODES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "U8": np.uint8, "I8": np.int8, "I16": np.int16,
          "I32": np.int32, "I64": np.int64, "BOOL": np.bool_}
_DTYPES = {np.dtype(t): code for code, t in _CODES.items()}
MAX_HEADER = 100_000_000  # the safetensors reference reader's limit; a larger header means a corrupt file
TREE_KEY = "tapescope.tree"  # metadata entry holding the JSON description of a non-flat object
DEVICES_KEY = "tapescope.devices"  # metadata entry: {entry: "cuda:0"} for each tensor saved from a GPU
_NPZ_TREE = "__tapescope_tree__"
_NPZ_DEVICES = "__tapescope_devices__"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read; the message names the file and what is wrong with it."""


# ---- public API ------------------------------------------------------------------------------
def save(obj, f) -> None:
    """Write `obj` (a state_dict or any nest of tensors, numbers, strings, lists and dicts) to `f`.

    `f` is a path or a binary file object (`io.BytesIO`, an open file), as in torch.save. Paths ending in
    .npz are written as numpy archives; anything else in the safetensors format. A path is replaced
    atomically, so a crash mid-save leaves the previous checkpoint intact.
    """
    tensors, tree = _flatten(obj)
    arrays = {name: _host_array(t) for name, t in tensors.items()}
    # where each tensor was, as torch's location tags, for map_location's dict and callable (CPU ones go unsaid)
    devices = {name: str(t.device) for name, t in tensors.items() if t.array.__class__ is not np.ndarray}
    devices = json.dumps(devices, separators=(",", ":")) if devices else None
    if _is_file(f, "write"):
        _write_safetensors(f, arrays, tree, devices)
        return
    path = os.fspath(f)
    tmp = path + ".partial"
    try:
        if path.endswith(".npz"):
            _write_npz(tmp, arrays, tree, devices)
        else:
            with open(tmp, "wb") as out:
                _write_safetensors(out, arrays, tree, devices)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(f, map_location=None, *, weights_only: bool | None = None):
    """Read a checkpoint written by `save` (or any safetensors file of supported dtypes) from a path or file.

    Tensors go where `map_location` says, as in torch.load: the CPU when None; a device ("cuda:1", a Device);
    a dict from the device a tensor was saved from to where it goes ({"cuda:0": "cpu"}; devices it does not name
    stay); or a callable `fn(tensor, location)` given each tensor on the CPU and the device it was saved from
    ("cpu", "cuda:0"), which returns the tensor to keep or None for the CPU (`lambda storage, loc: storage` keeps
    everything on the CPU). `weights_only` is accepted for torch.load's sake and changes nothing: reading never
    runs code, whatever it says.
    """
    place = _placement(map_location)
    if _is_file(f, "read"):
        path = getattr(f, "name", None) or type(f).__name__
        arrays, tree, devices = _parse_safetensors(f.read(), str(path))
    else:
        path = os.fspath(f)
        if path.endswith(".npz"):
            arrays, tree, devices = _read_npz(path)
        else:
            with open(path, "rb") as fh:
                arrays, tree, devices = _parse_safetensors(fh.read(), path)
    locations = _locations(devices, arrays, str(path))
    tensors = {k: Tensor._of(place(a, locations.get(k, "cpu"))) for k, a in arrays.items()}
    if tree is None:
        return tensors
    try:
        return _decode(json.loads(tree, parse_constant=_no_constants), tensors)
    except (ValueError, TypeError, KeyError, RecursionError) as err:
        raise CheckpointError(f"{path}: the description of the saved object is damaged ({err})") from None


def _placement(map_location):
    """`place(array, saved location) -> array where it goes`, from torch.load's kinds of map_location."""
    if map_location is None or isinstance(map_location, str | backend.Device):
        dev = backend.device(map_location)
        return lambda a, location: backend.to_device(a, dev)
    if isinstance(map_location, dict):
        for key, value in map_location.items():
            if not isinstance(key, str) or not isinstance(value, str | backend.Device):
                raise TypeError(f"load: a map_location dict maps saved device strings to devices, such as "
                                f"{{'cuda:0': 'cpu'}}; got {key!r}: {value!r}")
        targets = {key: backend.device(value) for key, value in map_location.items()}
        return lambda a, location: backend.to_device(a, targets.get(location) or backend.device(location))
    if callable(map_location):
        return lambda a, location: _placed_by(map_location, a, location)
    raise TypeError(f"load: map_location must be None, a device string such as 'cuda:0', a Device, a dict such as "
                    f"{{'cuda:0': 'cpu'}} or a callable (storage, location), got {type(map_location).__name__}")


def _placed_by(fn, a, location: str):
    """The array of what `fn(tensor on the CPU, saved location)` returns; None keeps it on the CPU."""
    out = fn(Tensor._of(a), location)
    if out is None:
        return a
    if not isinstance(out, Tensor):
        raise TypeError(f"load: the map_location callable must return a Tensor (the one it was given, or it moved "
                        f"with .to()/.cuda()) or None, got {type(out).__name__}")
    return out.array


def _locations(devices: str | None, arrays: dict, path: str) -> dict[str, str]:
    """{entry: device it was saved from} for the tensors saved from a GPU (the rest were on the CPU)."""
    if devices is None:
        return {}
    try:
        locations = json.loads(devices, parse_constant=_no_constants)
    except ValueError as err:
        raise CheckpointError(f"{path}: the saved devices are damaged ({err})") from None
    if not isinstance(locations, dict) or not all(
            k in arrays and isinstance(v, str) for k, v in locations.items()):
        raise CheckpointError(f"{path}: the saved devices must map the file's tensors to device strings")
    return locations


def _is_file(f, method: str) -> bool:
    """True for a file object (it has `method`), False for a path; anything else is a TypeError."""
    if isinstance(f, str | bytes | os.PathLike):
        return False
    if callable(getattr(f, method, None)):
        return True
    raise TypeError(f"expected a path (str or os.PathLike) or a binary file object with .{method}(), "
                    f"got {type(f).__name__}")


# ---- flattening an object into tensors + a JSON description ---------------------------------------
def _flatten(obj) -> tuple[dict[str, Tensor], str | None]:
    """(named tensors, JSON description or None when `obj` is itself a flat {str: Tensor} dict)."""
    if isinstance(obj, dict) and "__metadata__" not in obj \
            and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
        return dict(obj), None
    tensors: dict[str, Tensor] = {}
    names: dict[int, str] = {}  # id(tensor) -> entry: a tensor stored twice is written once
    tree = _encode(obj, "", tensors, names)
    return tensors, json.dumps(tree, separators=(",", ":"), allow_nan=False)


def _encode(value, where: str, tensors: dict, names: dict):
    if isinstance(value, Tensor):
        name = names.get(id(value))
        if name is None:
            name = where or "tensor"
            while name in tensors or name == "__metadata__":
                name += "#"
            names[id(value)] = name
            tensors[name] = value
        return {"$tensor": name}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, np.integer | np.floating | np.bool_):
        return _encode(value.item(), where, tensors, names)
    if isinstance(value, list | tuple):
        items = [_encode(v, f"{where}.{i}" if where else str(i), tensors, names) for i, v in enumerate(value)]
        return {"$tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        pairs = [(k, _encode(v, f"{where}.{k}" if where else str(k), tensors, names))
                 for k, v in value.items()]
        if all(isinstance(k, str) and not k.startswith("$") for k, _ in pairs):
            return dict(pairs)
        # keys JSON objects cannot hold (ints, such as an optimizer's parameter indices) keep their type
        return {"$dict": [[_encode(k, where, tensors, names), v] for k, v in pairs]}
    raise TypeError(f"save: cannot store {type(value).__name__} at {where or 'the top level'}; checkpoints "
                    "hold tensors, numbers, strings, None, lists, tuples and dicts (never pickled objects)")


def _decode(node, tensors: dict):
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if not isinstance(node, dict):
        raise TypeError(f"unexpected {type(node).__name__} in the description")
    if len(node) != 1 or not next(iter(node)).startswith("$"):
        return {k: _decode(v, tensors) for k, v in node.items()}
    tag, body = next(iter(node.items()))
    if tag == "$tensor":
        if not isinstance(body, str) or body not in tensors:
            raise KeyError(f"it refers to a tensor {body!r} that the file does not hold")
        return tensors[body]
    if tag == "$tuple" and isinstance(body, list):
        return tuple(_decode(v, tensors) for v in body)
    if tag == "$float" and body in ("inf", "-inf", "nan"):
        return float(body)
    if tag == "$dict" and isinstance(body, list):
        out = {}
        for pair in body:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError("a $dict entry is not a [key, value] pair")
            key = _decode(pair[0], tensors)
            if isinstance(key, list | dict | Tensor):
                raise TypeError(f"a dict key is a {type(key).__name__}")
            out[key] = _decode(pair[1], tensors)
        return out
    raise ValueError(f"unknown or malformed entry {tag!r}")


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _host_array(t: Tensor) -> np.ndarray:
    a = t._host()
    return a if a.flags.c_contiguous else a.copy()  # (np.ascontiguousarray would turn 0-d into 1-d)


# ---- safetensors -------------------------------------------------------------------------------
def _write_safetensors(f, arrays: dict[str, np.ndarray], tree: str | None, devices: str | None = None) -> None:
    header: dict = {}
    metadata = {key: value for key, value in ((TREE_KEY, tree), (DEVICES_KEY, devices)) if value is not None}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for name, a in arrays.items():
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)  # the spec's padding: data starts 8-byte aligned
    f.write(len(text).to_bytes(8, "little"))
    f.write(text)
    for a in arrays.values():
        f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())


def _parse_safetensors(raw: bytes, path: str) -> tuple[dict[str, np.ndarray], str | None, str | None]:
    if not isinstance(raw, bytes | bytearray):
        raise TypeError(f"load: {path} gave {type(raw).__name__} from read(); open the file in binary mode ('rb')")
    def fail(problem: str):
        if raw[:4] == b"PK\x03\x04" or (raw[:1] == b"\x80" and raw[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
            # not safetensors, and it starts as torch.save's zip or a bare pickle does
            problem = ("this is a PyTorch checkpoint (pickled objects, which the engine never loads: unpickling can "
                       "run code); in PyTorch save the tensors with safetensors.torch.save_file(model.state_dict(), "
                       "path) or numpy.savez, and load that")
        raise CheckpointError(f"{path}: {problem}")

    if len(raw) < 8:
        fail(f"file is too short to be a checkpoint ({len(raw)} bytes; a safetensors file starts with an "
             "8-byte header length)")
    n = int.from_bytes(raw[:8], "little")
    if n > MAX_HEADER:
        fail(f"header length {n} is absurd (the limit is {MAX_HEADER} bytes): the file is corrupt or not a "
             "safetensors file")
    if 8 + n > len(raw):
        fail(f"file is truncated: the header needs {n} bytes but only {len(raw) - 8} follow")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=_unique_keys,
                            parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        fail(f"header is not valid JSON ({err})")
    if not isinstance(header, dict):
        fail(f"header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        fail("__metadata__ must map strings to strings")
    data = memoryview(raw)[8 + n:]
    entries = [(name, *_check_entry(name, info, fail)) for name, info in header.items()]
    # Tensors must tile the data exactly: no overlaps, no holes, nothing past the end (as the spec says).
    end = 0
    for name, _, _, begin, stop in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin < end:
            fail(f"tensor '{name}' overlaps the tensor before it (it starts at byte {begin}, before {end})")
        if begin > end:
            fail(f"bytes {end}..{begin} before tensor '{name}' belong to no tensor")
        end = stop
    if end > len(data):
        fail(f"file is truncated: the tensors need {end} bytes of data but only {len(data)} are there")
    if end < len(data):
        fail(f"{len(data) - end} bytes after the last tensor belong to no tensor")
    arrays = {}
    for name, dtype, shape, begin, stop in entries:
        a = np.frombuffer(data[begin:stop], dtype=dtype.newbyteorder("<")).reshape(shape)
        if dtype == np.bool_ and a.size and a.view(np.uint8).max() > 1:
            fail(f"tensor '{name}' is BOOL but holds bytes other than 0 and 1")
        arrays[name] = a.astype(dtype)  # a native-order copy that owns its memory
    return arrays, metadata.get(TREE_KEY), metadata.get(DEVICES_KEY)


def _check_entry(name: str, info, fail) -> tuple[np.dtype, tuple[int, ...], int, int]:
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        fail(f"entry '{name}' must be an object with exactly dtype, shape and data_offsets")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code not in _CODES:
        fail(f"tensor '{name}' has unknown dtype {code!r}; the engine reads {', '.join(_CODES)}")
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        fail(f"tensor '{name}' has an invalid shape {shape!r}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_natural(o) for o in offsets) \
            or offsets[0] > offsets[1]:
        fail(f"tensor '{name}' has invalid data_offsets {offsets!r}")
    dtype = np.dtype(_CODES[code])
    need = math.prod(shape) * dtype.itemsize
    if offsets[1] - offsets[0] != need:
        fail(f"tensor '{name}': data_offsets {offsets} span {offsets[1] - offsets[0]} bytes but {code} "
             f"{shape} needs {need}")
    return dtype, tuple(shape), offsets[0], offsets[1]


def _natural(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _unique_keys(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {dup!r} appears twice")
    return out


# ---- npz ---------------------------------------------------------------------------------------
def _write_npz(path: str, arrays: dict[str, np.ndarray], tree: str | None, devices: str | None = None) -> None:
    # np.savez's own keyword names (file, allow_pickle) could clash with tensor names: write the zip here
    members = dict(arrays)
    if tree is not None:
        members[_NPZ_TREE] = np.array(tree)
    if devices is not None:
        members[_NPZ_DEVICES] = np.array(devices)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, a in members.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, a, allow_pickle=False)


def _read_npz(path: str) -> tuple[dict[str, np.ndarray], str | None, str | None]:
    arrays, texts = {}, {_NPZ_TREE: None, _NPZ_DEVICES: None}
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single .npy array, not an .npz archive")
            for name in npz.files:
                a = npz[name]
                if name in texts:
                    if a.dtype.kind != "U" or a.ndim != 0:
                        raise ValueError(f"{name} must be a string")
                    texts[name] = str(a)
                elif a.dtype.newbyteorder("=") not in _DTYPES:
                    raise ValueError(f"array '{name}' has dtype {a.dtype}; the engine reads "
                                     f"{', '.join(np.dtype(t).name for t in _CODES.values())}")
                else:
                    arrays[name] = a.astype(a.dtype.newbyteorder("="), copy=False)
    except FileNotFoundError:
        raise
    except Exception as err:  # zip and npy parsing raise many types; every one means a bad file
        raise CheckpointError(f"{path}: not a readable .npz checkpoint "
                              f"({type(err).__name__}: {err})") from None
    return arrays, texts[_NPZ_TREE], texts[_NPZ_DEVICES]
