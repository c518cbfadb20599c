"""torch.utils.tensorboard's SummaryWriter (`from torch.utils.tensorboard import SummaryWriter`): scalars,
histograms, text and hparams written as TensorBoard event files, with no dependency on the tensorboard package.

An event file is a TFRecord stream (length, masked CRC32C of the length, data, masked CRC32C of the data) of
serialized `Event` protocol buffers. The few messages the writer needs are encoded here by hand, with the field
numbers of tensorboard's event.proto, summary.proto, tensor.proto and the hparams plugin's protos, leaving out
zero-valued fields as protobuf does: the records are those torch's writer makes, byte for byte (but for the
file header's writer name and the order of an hparams map). Graphs, images, audio, video, embeddings, meshes,
PR curves and raw tensors are not logged: those calls warn once and return, so scripts run on.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import threading
import time
import weakref
from datetime import datetime

import numpy as np

from engine.backend import to_host
from engine.tensor import Tensor
from engine.user_warning import warn

__all__ = ["SummaryWriter"]


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        for _ in range(8):
            n = (n >> 1) ^ 0x82F63B78 if n & 1 else n >> 1
        table.append(n)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`, the checksum TFRecord framing uses."""
    crc, table = 0xFFFFFFFF, _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> bytes:
    crc = crc32c(data)  # masked because a CRC of data that holds CRCs is weak, TensorFlow's record_io says
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + _masked_crc(header) + data + _masked_crc(data)


# Protocol buffers, wire format: a key (field number << 3 | wire type), then a varint (0), 8 bytes (1),
# a varint length and that many bytes (2: strings, messages, packed arrays) or 4 bytes (5).
def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # a negative int64 as two's complement, ten bytes long
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _int(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n) if n else b""


def _f64(field: int, x: float, keep: bool = False) -> bytes:
    raw = struct.pack("<d", x)
    return _varint(field << 3 | 1) + raw if keep or raw != bytes(8) else b""


def _msg(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _str(field: int, s: str | bytes) -> bytes:
    return _msg(field, s.encode() if isinstance(s, str) else s)


def _packed(field: int, values, dtype: str = "<f8") -> bytes:
    return _msg(field, np.asarray(values, dtype).tobytes()) if len(values) else b""


def _plugin(name: str, content: bytes = b"") -> bytes:
    """Summary.Value.metadata naming the TensorBoard plugin that reads the value."""
    return _msg(9, _msg(1, _str(1, name) + (_msg(2, content) if content else b"")))


def _tag(tag, what: str = "tag") -> bytes:
    if isinstance(tag, str | bytes):
        return _str(1, tag)
    raise TypeError(f"{what} must be a str, got {type(tag).__name__}")


def _as_numpy(value) -> np.ndarray:
    """A host numpy array of an engine Tensor (one copy from its device), a numpy array or a Python number."""
    if isinstance(value, Tensor):
        return to_host(value.array)
    if isinstance(value, np.ndarray):
        return value
    if np.isscalar(value):
        return np.array([value])
    raise NotImplementedError(f"Got {type(value)}, but an engine Tensor, numpy array or number is expected.")


def _tensorflow_bins() -> list[float]:
    """torch's default histogram edges (TensorFlow's): +-1e-12 growing by 1.1 up to 1e20, and zero."""
    v, buckets = 1e-12, []
    while v < 1e20:
        buckets.append(v)
        v *= 1.1
    return [-b for b in reversed(buckets)] + [0] + buckets


_TF_BINS = _tensorflow_bins()


def _histogram(values: np.ndarray, bins, max_bins: int | None) -> bytes:
    """A HistogramProto as torch's make_histogram builds it: numpy's counts, trimmed to the occupied range."""
    if values.size == 0:
        raise ValueError("The input has no element.")
    values = values.astype(float).reshape(-1)
    counts, limits = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        sub = len(counts) // max_bins
        counts = np.pad(counts, (0, -len(counts) % sub)).reshape(-1, sub).sum(axis=-1)
        limits = np.append(limits[:-1:sub], limits[-1])
    cum = np.cumsum(counts > 0)
    start, end = (int(i) for i in np.searchsorted(cum, [0, cum[-1] - 1], side="right"))
    # TensorBoard stores right edges only: keep one empty bucket on the left for the leftmost edge
    counts = counts[start - 1:end + 1] if start > 0 else np.concatenate([[0], counts[:end + 1]])
    limits = limits[start:end + 2]
    return _raw_histogram(values.min(), values.max(), len(values), values.sum(), values.dot(values), limits, counts)


def _raw_histogram(lo, hi, num, total, sum_squares, limits, counts) -> bytes:
    return (_f64(1, lo) + _f64(2, hi) + _f64(3, num) + _f64(4, total) + _f64(5, sum_squares)
            + _packed(6, limits) + _packed(7, counts))


def _struct_value(v) -> tuple[int, bytes]:
    """(hparams DataType, google.protobuf.Value) of an hparam, as torch's hparams() files it: bools as numbers."""
    if isinstance(v, int | float):
        return 3, _f64(2, float(v), keep=True)  # a oneof: zero is written too
    if isinstance(v, str):
        return 1, _str(3, v)
    raise ValueError("value should be one of int, float, str, bool, or torch.Tensor")


def _hparams(hparam_dict: dict, metric_dict: dict, domain: dict | None) -> list[bytes]:
    """The hparams plugin's experiment, session-start and session-end Summary.Values, as torch writes them."""
    domain = domain or {}
    if not isinstance(domain, dict):
        raise TypeError("parameter: hparam_domain_discrete should be a dictionary, nothing logged.")
    for k, v in domain.items():
        if k not in hparam_dict or not isinstance(v, list) or not all(isinstance(d, type(hparam_dict[k])) for d in v):
            raise TypeError(f"parameter: hparam_domain_discrete[{k}] should be a list of same type as "
                            f"hparam_dict[{k}].")
    infos, start = [], []
    for k, v in hparam_dict.items():
        if v is None:
            continue
        if isinstance(v, Tensor):
            v, values = float(_as_numpy(v).reshape(-1)[0]), None
        else:
            values = domain.get(k)
        kind, value = _struct_value(v)
        start.append(_msg(1, _str(1, k) + _msg(2, value)))  # map<string, Value> entry
        listed = b"" if values is None else _msg(5, b"".join(_msg(1, _struct_value(d)[1]) for d in values))
        infos.append(_msg(4, _str(1, k) + _int(4, kind) + listed))
    metrics = b"".join(_msg(5, _msg(1, _str(2, k))) for k in metric_dict)
    return [_str(1, "_hparams_/experiment") + _plugin("hparams", _msg(2, b"".join(infos) + metrics)),
            _str(1, "_hparams_/session_start_info") + _plugin("hparams", _msg(3, b"".join(start))),
            _str(1, "_hparams_/session_end_info") + _plugin("hparams", _msg(4, _int(1, 1)))]  # STATUS_SUCCESS


def _write_out(file, pending: list[bytes]) -> None:
    if pending and not file.closed:
        file.write(b"".join(pending))
        file.flush()
    pending.clear()


def _flush_later(ref: weakref.ref) -> None:
    f = ref()  # a weak reference, so that a pending flush does not keep an unused writer alive
    if f is not None:
        f.flush()


def _close(file, pending: list[bytes]) -> None:
    _write_out(file, pending)
    file.close()


class _EventFile:
    """One event file. Records wait in memory until max_queue of them do, flush_secs pass, flush() or close()."""

    _uid = itertools.count()

    def __init__(self, log_dir: str, max_queue: int, flush_secs: float, filename_suffix: str) -> None:
        os.makedirs(log_dir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(self._uid)}"
        self.log_dir, self.path = log_dir, os.path.join(log_dir, name) + filename_suffix
        self.max_queue, self.flush_secs = max_queue, flush_secs
        self._file = open(self.path, "wb")  # noqa: SIM115  (held open until close())
        self._pending: list[bytes] = []
        self._lock = threading.Lock()  # the flush timer writes from its own thread
        self._timer: threading.Timer | None = None
        # what waits is written even when the writer is never closed: at garbage collection or interpreter exit
        self._closer = weakref.finalize(self, _close, self._file, self._pending)
        self.add(_f64(1, time.time()) + _str(3, "brain.Event:2") + _msg(10, _str(1, "engine.tensorboard")))
        self.flush()

    def add(self, event: bytes) -> None:
        with self._lock:
            self._pending.append(_record(event))
            if len(self._pending) >= self.max_queue > 0:
                self._write()
            elif self._timer is None:
                self._timer = threading.Timer(self.flush_secs, _flush_later, (weakref.ref(self),))
                self._timer.daemon = True
                self._timer.start()

    def _write(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        _write_out(self._file, self._pending)

    def flush(self) -> None:
        with self._lock:
            self._write()

    def close(self) -> None:
        with self._lock:
            self._write()
            self._closer()


class SummaryWriter:
    """Writes scalars, histograms, text and hparams to TensorBoard event files in `log_dir`, as
    torch.utils.tensorboard.SummaryWriter (see the module docstring for the kinds it does not log)."""

    def __init__(self, log_dir=None, comment: str = "", purge_step: int | None = None, max_queue: int = 10,
                 flush_secs: float = 120, filename_suffix: str = "") -> None:
        """Events go to `log_dir` (default `runs/<Mon DD_HH-MM-SS>_<hostname><comment>`); they are written to
        disk when `max_queue` of them wait, every `flush_secs`, and at flush() and close()."""
        if not log_dir:
            log_dir = os.path.join("runs", datetime.now().strftime("%b%d_%H-%M-%S") + "_" + socket.gethostname()
                                   + comment)
        self.log_dir, self.purge_step = log_dir, purge_step
        self.max_queue, self.flush_secs, self.filename_suffix = max_queue, flush_secs, filename_suffix
        self.default_bins = list(_TF_BINS)
        self._files: dict[str, _EventFile] | None = None
        self._file()

    def _file(self, sub_dir: str | None = None) -> _EventFile:
        """The event file of log_dir (or of a directory of add_scalars), opened again after close()."""
        if self._files is None:
            main = _EventFile(str(self.log_dir), self.max_queue, self.flush_secs, self.filename_suffix)
            self._files = {"": main}
            if self.purge_step is not None:  # TensorBoard hides the events of a crashed run from this step on
                step = int(self.purge_step)
                main.add(_f64(1, time.time()) + _int(2, step) + _str(3, "brain.Event:2"))
                main.add(_f64(1, time.time()) + _int(2, step) + _msg(7, _int(1, 1)))  # SessionLog START
                self.purge_step = None
        if sub_dir is not None and sub_dir not in self._files:
            self._files[sub_dir] = _EventFile(sub_dir, self.max_queue, self.flush_secs, self.filename_suffix)
        return self._files["" if sub_dir is None else sub_dir]

    def _add(self, value: bytes, global_step=None, walltime=None, sub_dir: str | None = None) -> None:
        """One Event holding a Summary with one value."""
        wall_time = time.time() if walltime is None else float(walltime)
        step = b"" if global_step is None else _int(2, int(global_step))
        self._file(sub_dir).add(_f64(1, wall_time) + step + _msg(5, _msg(1, value)))

    def get_logdir(self):
        """The directory the event files are written to."""
        return self.log_dir

    def add_scalar(self, tag: str, scalar_value, global_step: int | None = None, walltime: float | None = None,
                   new_style: bool = False, double_precision: bool = False) -> None:
        """Log one number (a Python number, a one-element numpy array or Tensor) under `tag` at `global_step`."""
        self._add(_scalar(tag, scalar_value, new_style, double_precision), global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step: int | None = None,
                    walltime: float | None = None) -> None:
        """Log several numbers in one chart: each goes, tagged `main_tag`, to its own `log_dir/<main_tag>_<tag>`."""
        _tag(main_tag, "main_tag")
        walltime = time.time() if walltime is None else walltime
        for tag, value in tag_scalar_dict.items():
            sub_dir = str(self.log_dir) + "/" + main_tag.replace("/", "_") + "_" + tag
            self._add(_scalar(main_tag, value), global_step, walltime, sub_dir)

    def add_histogram(self, tag: str, values, global_step: int | None = None, bins="tensorflow",
                      walltime: float | None = None, max_bins: int | None = None) -> None:
        """Log the histogram of `values`; `bins` as numpy.histogram's, or 'tensorflow' for TensorBoard's edges."""
        if isinstance(bins, str) and bins == "tensorflow":
            bins = _TF_BINS
        name = _tag(tag)
        self._add(name + _msg(5, _histogram(_as_numpy(values), bins, max_bins)), global_step, walltime)

    def add_histogram_raw(self, tag: str, min, max, num, sum, sum_squares, bucket_limits, bucket_counts,
                          global_step: int | None = None, walltime: float | None = None) -> None:
        """Log a histogram already counted: `bucket_limits` are the right edges of `bucket_counts`."""
        if len(bucket_limits) != len(bucket_counts):
            raise ValueError("len(bucket_limits) != len(bucket_counts), see the document.")
        histo = _raw_histogram(min, max, num, sum, sum_squares, bucket_limits, bucket_counts)
        self._add(_tag(tag) + _msg(5, histo), global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step: int | None = None,
                 walltime: float | None = None) -> None:
        """Log a (markdown) string, shown by TensorBoard's text tab under `<tag>/text_summary`."""
        if not isinstance(tag, str):
            raise TypeError(f"tag must be a str, got {type(tag).__name__}")
        if not isinstance(text_string, str):
            raise TypeError(f"text_string must be a str, got {type(text_string).__name__}")
        # a DT_STRING TensorProto (dtype 7) of shape [1]
        tensor = _int(1, 7) + _msg(2, _msg(2, _int(1, 1))) + _str(8, text_string)
        self._add(_str(1, tag + "/text_summary") + _msg(8, tensor) + _plugin("text"), global_step, walltime)

    def add_hparams(self, hparam_dict: dict, metric_dict: dict, hparam_domain_discrete: dict | None = None,
                    run_name: str | None = None, global_step: int | None = None) -> None:
        """Log a run's hyperparameters and metrics for TensorBoard's HPARAMS tab, in `log_dir/<run_name>`
        (default: the time), with the hparams plugin's records and each metric as a scalar."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise TypeError("hparam_dict and metric_dict should be dictionary.")
        values = _hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        with SummaryWriter(log_dir=os.path.join(str(self.log_dir), run_name or str(time.time()))) as run:
            for value in values:
                run._add(value, global_step)
            for k, v in metric_dict.items():
                run.add_scalar(k, v, global_step)

    def flush(self) -> None:
        """Write every waiting event to disk."""
        for f in (self._files or {}).values():
            f.flush()

    def close(self) -> None:
        """Write every waiting event and close the files; a later add_* opens new ones in the same directories."""
        for f in (self._files or {}).values():
            f.close()
        self._files = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        self.close()


def _scalar(tag, scalar_value, new_style: bool = False, double_precision: bool = False) -> bytes:
    """The Summary.Value of a scalar: simple_value, or (new_style) a one-number TensorProto for the scalars plugin."""
    name = _tag(tag)
    value = _as_numpy(scalar_value).squeeze()
    if value.ndim != 0:  # torch's assertion, type and words
        raise AssertionError(f"Tensor should contain one element (0 dimensions). Was given size: {value.size} "
                             f"and {value.ndim} dimensions.")
    x = float(value)
    if not new_style:
        return name + _varint(2 << 3 | 5) + struct.pack("<f", x)  # a oneof: zero is written too
    tensor = _int(1, 2) + _packed(6, [x]) if double_precision else _int(1, 1) + _packed(5, [x], "<f4")
    return name + _msg(8, tensor) + _plugin("scalars")


_NOT_LOGGED = ("add_graph", "add_onnx_graph", "add_image", "add_images", "add_image_with_boxes", "add_figure",
               "add_video", "add_audio", "add_embedding", "add_pr_curve", "add_pr_curve_raw", "add_mesh",
               "add_tensor", "add_custom_scalars", "add_custom_scalars_multilinechart",
               "add_custom_scalars_marginchart")
_WARNED: set[str] = set()


def _not_logged(name: str):
    def method(self, *args, **kwargs) -> None:
        if name not in _WARNED:
            _WARNED.add(name)
            warn(f"SummaryWriter.{name}: the engine's writer does not log this kind of data (it writes scalars, "
                 "histograms, text and hparams); the call is ignored")

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Accepted as torch's SummaryWriter.{name} is, and ignored with a warning (once)."
    return method


for _name in _NOT_LOGGED:
    setattr(SummaryWriter, _name, _not_logged(_name))
