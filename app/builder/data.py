"""The builder's data: the built-in datasets with size, noise and batch settings, and a person's own
.npz or CSV file (features + labels), as numpy arrays with the facts a build needs.

    loaded = load(Data(name="moons", n=300, noise=0.2))      # LoadedData: x, y, task, classes, kind
    loaded = load(Data(name="csv", path="iris.csv", label_column="species"))
    x_train, y_train, x_test, y_test = split(loaded.x, as_targets(loaded.y, "index"), 0.2)

`read_npz`, `read_csv`, `char_windows`, `as_targets` and `split` are copied verbatim into exported
scripts (app.builder.export), so they use only numpy, csv, pathlib and engine, and raise ValueError
with a one-line message naming the file.
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import engine
from engine import data as builtin


@dataclass(frozen=True)
class Source:
    """A dataset the builder offers: how to make it and what kind of samples it gives."""

    name: str
    label: str
    kind: str  # "points" (2-D classification), "curve" (1-D regression), "images", "text", "file"
    make: Callable | None  # engine.data generator (n, noise=, seed=) -> (x, y); None for text and files
    n: int  # starting size
    noise: float
    doc: str
    function: str = ""  # the engine.data function an exported script calls


def _source(name, label, kind, make, n, noise) -> Source:
    doc = (make.__doc__ or "").splitlines()[0] if make is not None else ""
    return Source(name, label, kind, make, n, noise, doc, make.__name__ if make is not None else "")


DATASETS: dict[str, Source] = {s.name: s for s in (
    _source("spirals", "Two spirals", "points", builtin.two_spirals, 400, 0.05),
    _source("moons", "Moons", "points", builtin.moons, 400, 0.1),
    _source("circles", "Circles", "points", builtin.circles, 400, 0.05),
    _source("xor", "XOR", "points", builtin.xor, 400, 0.05),
    _source("sine", "Sine regression", "curve", builtin.sine, 200, 0.1),
    _source("glyphs", "Glyph images (16x16, 10 classes)", "images", builtin.glyphs, 1000, 0.1),
    Source("text", "Text (characters of the fables corpus)", "text", None, 1000, 0.0,
           "Windows of character ids; the targets are the next characters."),
    Source("npz", "My .npz file (x, y)", "file", None, 0, 0.0,
           "Arrays named x and y, or features and labels."),
    Source("csv", "My CSV file (features + label column)", "file", None, 0, 0.0,
           "One sample per row; one column holds the labels."),
)}
LIMITS = {"n": (10, 200_000), "noise": (0.0, 5.0), "batch_size": (1, 100_000), "seed": (0, 2**31 - 1),
          "test_fraction": (0.05, 0.5), "seq_len": (2, 1000)}
TASKS = ("auto", "classification", "regression")


class DataError(ValueError):
    """Data that cannot be loaded or used, with a one-line message naming the file or dataset."""


@dataclass(frozen=True)
class LoadedData:
    """Samples as numpy arrays, with what the builder needs to know about them."""

    name: str
    x: np.ndarray
    y: np.ndarray  # raw labels: class indices (int64) or values (float32)
    task: str  # "classification" | "regression"
    kind: str  # "points", "curve", "images", "text" or "features": which preview fits
    classes: int = 0
    class_names: tuple[str, ...] = ()
    vocab: tuple[str, ...] = ()

    @property
    def facts(self) -> dict:
        """What layers may be sized from: vocab size, classes, one sample's shape."""
        return {"vocab": len(self.vocab) or None, "classes": self.classes or None,
                "sample": tuple(self.x.shape[1:])}

    def summary(self) -> str:
        """One line: '400 samples of shape (2,), 2 classes'."""
        what = f"{self.classes} classes" if self.task == "classification" else "regression"
        if self.vocab:
            what = f"{len(self.vocab)}-character vocabulary"
        return f"{len(self.x)} samples of shape {tuple(self.x.shape[1:])}, {what}"


def data_problems(data) -> list[tuple[str, str]]:
    """(setting, message) for each data setting out of range, without loading anything."""
    out = []
    if data.name not in DATASETS:
        out.append(("name", f"unknown dataset {data.name!r}; choose one of {', '.join(DATASETS)}"))
        return out
    for key, (lo, hi) in LIMITS.items():
        value = getattr(data, key)
        if isinstance(value, bool) or not lo <= value <= hi:
            out.append((key, f"data: {key} must be in [{lo:g}, {hi:g}], got {value!r}"))
    if DATASETS[data.name].kind == "file" and not data.path:
        out.append(("path", f"data: choose a .{data.name} file"))
    if data.task not in TASKS:
        out.append(("task", f"data: task must be one of {', '.join(TASKS)}, got {data.task!r}"))
    return out


def load(data) -> LoadedData:
    """The samples a Data section describes (cached: live shape checks ask often); DataError if bad."""
    problems = data_problems(data)
    if problems:
        raise DataError(problems[0][1])
    stamp = None
    if DATASETS[data.name].kind == "file":
        try:
            stamp = os.stat(data.path).st_mtime_ns  # a changed file is read again
        except OSError:
            raise DataError(f"{Path(data.path).name or data.path}: no such file") from None
    key = (data.name, data.n, data.noise, data.seed, data.seq_len, data.path, data.label_column, data.task)
    return _load(key, stamp)


@functools.lru_cache(maxsize=8)
def _load(key: tuple, stamp) -> LoadedData:
    name, n, noise, seed, seq_len, path, label_column, task = key
    source = DATASETS[name]
    if source.make is not None:
        x, y = source.make(n, noise=noise, seed=seed)
        x, y = x.numpy(), y.numpy()
        if source.kind == "curve":
            return LoadedData(name, x, y, "regression", "curve")
        classes = int(y.max()) + 1
        names = builtin.GLYPH_NAMES if name == "glyphs" else tuple(str(c) for c in range(classes))
        return LoadedData(name, x, y, "classification", source.kind, classes, names)
    if name == "text":
        text, vocab, encode, _ = builtin.char_corpus()
        x, y = char_windows(encode(text).numpy(), n, seq_len, seed)
        return LoadedData(name, x, y, "classification", "text", len(vocab), tuple(vocab), tuple(vocab))
    try:
        if name == "npz":
            x, y = read_npz(path)
            names: tuple[str, ...] = ()
        else:
            x, y, names = read_csv(path, label_column)
            names = tuple(names)
    except ValueError as err:
        raise DataError(str(err)) from None
    return _labelled(Path(path).name, x, y, names, task)


def _labelled(name: str, x: np.ndarray, y: np.ndarray, names: tuple[str, ...], task: str) -> LoadedData:
    """A file's samples with the task decided: integer labels classify, other numbers regress."""
    integral = y.dtype.kind in "iub" or bool(np.all(np.mod(y, 1) == 0))
    if task == "auto":
        task = "classification" if integral else "regression"
    if task == "regression":
        kind = "curve" if x.shape[1:] == (1,) else "features"
        return LoadedData(name, x, y.astype(np.float32), "regression", kind)
    if not integral or y.ndim != 1:
        raise DataError(f"{name}: classification needs one whole-number label per sample; the labels are "
                        f"{y.dtype} of shape {y.shape}")
    if y.min() < 0:
        raise DataError(f"{name}: class labels must be 0, 1, 2, ...; found {int(y.min())}")
    classes = int(y.max()) + 1
    kind = "points" if x.shape[1:] == (2,) else "images" if x.ndim == 4 else "features"
    return LoadedData(name, x, y.astype(np.int64), "classification", kind, classes,
                      names or tuple(str(c) for c in range(classes)))


# ---- copied into exported scripts: keep these self-contained -------------------------------------
def read_npz(path):
    """(features float32, labels) from a .npz file with arrays named x and y (or features and labels)."""
    name = Path(path).name
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{name}: no such file") from None
    except (OSError, ValueError, EOFError):
        raise ValueError(f"{name}: not a .npz file (write one with np.savez(path, x=features, y=labels))") \
            from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{name}: holds a single array; save named arrays with np.savez(path, x=..., y=...)")
    with archive:
        keys = set(archive.files)
        pair = next((p for p in (("x", "y"), ("features", "labels")) if set(p) <= keys), None)
        if pair is None:
            found = ", ".join(sorted(keys)) or "no arrays"
            raise ValueError(f"{name}: needs arrays named x and y (or features and labels); found {found}")
        try:
            x, y = archive[pair[0]], archive[pair[1]]
        except ValueError:
            raise ValueError(f"{name}: an array holds Python objects; save numeric arrays (pickle is off)") \
                from None
    for key, a in zip(pair, (x, y)):
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{name}: array {key!r} must hold numbers, not {a.dtype}")
        if a.ndim == 0 or len(a) == 0:
            raise ValueError(f"{name}: array {key!r} has no samples (shape {a.shape})")
    if len(x) != len(y):
        raise ValueError(f"{name}: {pair[0]} has {len(x)} samples but {pair[1]} has {len(y)}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: {pair[0]} holds NaN or infinite values")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    x = x.astype(np.float32)
    return (x[:, None] if x.ndim == 1 else x), y


def read_csv(path, label_column=-1):
    """(features float32 (N, F), labels, class names) from a CSV file with one sample per row.

    A first row with words where the next row has numbers is a header. `label_column` is a column name or
    index. Labels that are not all numbers become class indices, in sorted order of their names.
    """
    name = Path(path).name
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(i, row) for i, row in enumerate(csv.reader(f), 1) if any(c.strip() for c in row)]
    except FileNotFoundError:
        raise ValueError(f"{name}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{name}: cannot be read as CSV text ({type(err).__name__})") from None

    def number(cell):
        try:
            return float(cell)
        except ValueError:
            return None

    if not rows:
        raise ValueError(f"{name}: is empty")
    first = rows[0][1]
    second = rows[1][1] if len(rows) > 1 else [""] * len(first)
    header = None
    if any(number(a) is None and (number(b) is not None or len(rows) == 1) for a, b in zip(first, second)):
        header = [c.strip() for c in first]
        rows = rows[1:]
    width = len(first)
    if width < 2:
        raise ValueError(f"{name}: needs at least two columns (features and a label), found {width}")
    if not rows:
        raise ValueError(f"{name}: has a header but no samples")
    for line, row in rows:
        if len(row) != width:
            raise ValueError(f"{name}: line {line} has {len(row)} fields, expected {width}")
    if isinstance(label_column, str) and not label_column.lstrip("-").isdigit():
        if header is None or label_column not in header:
            found = ", ".join(header) if header else "the file has no header row"
            raise ValueError(f"{name}: no column named {label_column!r} ({found})")
        label = header.index(label_column)
    else:
        label = int(label_column)
        if not -width <= label < width:
            raise ValueError(f"{name}: label column {label} is out of range for {width} columns")
        label %= width
    columns = header or [str(c) for c in range(width)]
    features = np.empty((len(rows), width - 1), dtype=np.float32)
    for r, (line, row) in enumerate(rows):
        for c, cell in enumerate(cell for k, cell in enumerate(row) if k != label):
            value = number(cell)
            if value is None or value != value or abs(value) == float("inf"):
                column = columns[c + (c >= label)]
                raise ValueError(f"{name}: line {line}, column {column!r}: {cell.strip()!r} is not a number")
            features[r, c] = value
    raw = [row[label].strip() for _, row in rows]
    values = [number(v) for v in raw]
    if all(v is not None for v in values):
        return features, np.array(values, dtype=np.float64), []
    names = sorted(set(raw))
    index = {v: i for i, v in enumerate(names)}
    return features, np.array([index[v] for v in raw], dtype=np.int64), names


def char_windows(ids, n, seq_len, seed):
    """`n` random windows of `seq_len` character ids, and as targets the ids one position later."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(ids) - seq_len - 1, n)
    positions = starts[:, None] + np.arange(seq_len)
    return ids[positions], ids[positions + 1]


def as_targets(y, kind):
    """Labels as a loss wants them: class indices (int64), or float32 columns (0/1 targets, values)."""
    if kind == "index":
        return y.astype(np.int64)
    return y.astype(np.float32).reshape(len(y), -1)


def split(x, y, test_fraction):
    """(x_train, y_train, x_test, y_test) as tensors: the last `test_fraction` of the samples is held out."""
    cut = len(x) - max(1, round(len(x) * test_fraction))
    return engine.tensor(x[:cut]), engine.tensor(y[:cut]), engine.tensor(x[cut:]), engine.tensor(y[cut:])
