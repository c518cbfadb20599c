"""How values become columns of a tape and back: id lists, shapes, summaries, arrays, edit arguments.

Decoders treat every stored byte as untrusted: they parse plain data (integers, JSON, raw little-endian
numbers, .npy without pickle), check sizes, and raise ValueError on anything else.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zlib
from itertools import chain

import numpy as np

from engine.debug.summary import TensorSummary, finish, sample_std

MAX_VALUE_BYTES = 1 << 30  # a decompressed .npy larger than this is refused (a zip bomb, not a tensor)
MAX_DIMS = 64
MAX_COUNTS_BYTES, MAX_SAMPLES_BYTES = 8192, 1024  # a summary's histogram and samples blobs, at most
MAX_ERROR_CHARS = 2000  # the line naming the error an op raised (meta raised_op), at most
_COUNTS_WIDE, _COUNTS_NARROW = np.dtype("<i8"), np.dtype("<u2")


# ---- tensor id lists: "(3, 17, 0)" ----------------------------------------------------------------
ids_text = repr  # a tuple of ints prints as "(3, 17, 0)", "(4,)" or "()"; repr is the fastest way there


def parse_ids(text) -> tuple[int, ...]:
    """The tuple of ints stored by ids_text, parsed as text (never evaluated)."""
    if type(text) is not str or len(text) > 1 << 20 or text[:1] != "(" or text[-1:] != ")":
        raise ValueError(f"not a list of ids: {str(text)[:80]!r}")
    return tuple(int(part) for part in text[1:-1].split(",") if part.strip())


# ---- events, a chunk at a time ------------------------------------------------------------------
CHUNK_EVENTS = 4096
# The columns of an event chunk, in blob order; then the tensor ids of all events, flat (int64).
CHUNK_COLUMNS = (("seq", "<i8"), ("kind", "u1"), ("iteration", "<i8"), ("phase", "u1"), ("depth", "<i4"),
                 ("t", "<i8"), ("node", "<i8"), ("tensor", "<i8"), ("ref", "<i8"), ("stack", "<i8"),
                 ("ntensors", "<u4"))
_ROW_BYTES = sum(np.dtype(dt).itemsize for _, dt in CHUNK_COLUMNS)


class EventColumns:
    """A batch of event rows (sorted by seq) as column arrays, cut into chunk blobs and summed up."""

    def __init__(self, rows: list[tuple]) -> None:
        cols = list(zip(*rows))
        self.arrays = [np.array(col, dtype=dt) for col, (_, dt) in zip(cols, CHUNK_COLUMNS[:-1])]
        tensors = cols[-1]
        self.lengths = np.fromiter(map(len, tensors), dtype="<u4", count=len(rows))
        self.flat = np.fromiter(chain.from_iterable(tensors), dtype="<i8")
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths, dtype=np.int64)))
        self.count = len(rows)

    def chunks(self, size: int = CHUNK_EVENTS) -> list[tuple]:
        """events table rows: (first_seq, last_seq, count, first_iteration, last_iteration, blob)."""
        seq, iteration = self.arrays[0], self.arrays[2]
        out = []
        for i in range(0, self.count, size):
            j = min(i + size, self.count)
            parts = [a[i:j].tobytes() for a in self.arrays]
            parts.append(self.lengths[i:j].tobytes())
            parts.append(self.flat[self.offsets[i]:self.offsets[j]].tobytes())
            its = iteration[i:j]
            out.append((int(seq[i]), int(seq[j - 1]), j - i, int(its.min()), int(its.max()), b"".join(parts)))
        return out

    def iterations(self) -> list[tuple]:
        """iterations table rows for the runs of equal iteration: (iteration, first_seq, last_seq, events,
        ops, backward, t_first, t_last)."""
        seq, kind, iteration, t = self.arrays[0], self.arrays[1], self.arrays[2], self.arrays[5]
        starts = np.concatenate(([0], np.flatnonzero(np.diff(iteration)) + 1))
        ends = np.concatenate((starts[1:], [self.count]))
        ops = np.add.reduceat((kind == 1).astype(np.int64), starts)
        backward = np.add.reduceat((kind == 2).astype(np.int64), starts)
        columns = (iteration[starts], seq[starts], seq[ends - 1], ends - starts, ops, backward,
                   np.minimum.reduceat(t, starts), np.maximum.reduceat(t, starts))
        return list(zip(*(c.tolist() for c in columns)))


def chunk_blob(rows: list[tuple]) -> bytes:
    """Event rows (the CHUNK_COLUMNS but the last, then a tuple of tensor ids) as one columnar blob."""
    return EventColumns(rows).chunks(len(rows))[0][-1]


def chunk_arrays(blob, count) -> tuple[list[np.ndarray], np.ndarray]:
    """The column arrays of a chunk blob and its flat tensor ids, after checking every size."""
    if type(blob) is not bytes or type(count) is not int or not 0 < count <= 1 << 20:
        raise ValueError("an event chunk has a bad size")
    extra = len(blob) - count * _ROW_BYTES
    if extra < 0 or extra % 8:
        raise ValueError("an event chunk is truncated")
    arrays, offset = [], 0
    for _, dt in CHUNK_COLUMNS:
        arrays.append(np.frombuffer(blob, dtype=dt, count=count, offset=offset))
        offset += arrays[-1].nbytes
    flat = np.frombuffer(blob, dtype="<i8", offset=offset)
    if int(arrays[-1].sum(dtype=np.int64)) != flat.size:
        raise ValueError("an event chunk's tensor lists do not add up")
    return arrays, flat


def parse_chunk(blob, count) -> list[tuple]:
    """The event rows stored by chunk_blob: the CHUNK_COLUMNS but the last, then a tuple of tensor ids."""
    arrays, flat = chunk_arrays(blob, count)
    cols = [a.tolist() for a in arrays[:-1]]
    ids = flat.tolist()
    tensors, pos = [], 0
    for n in arrays[-1].tolist():
        tensors.append(tuple(ids[pos:pos + n]))
        pos += n
    cols.append(tensors)
    return list(zip(*cols))


# ---- shapes and nested tuples (JSON lists) ----------------------------------------------------
_encoder = json.JSONEncoder(separators=(",", ":"), check_circular=False)
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:  # made once: JSONEncoder.encode builds it anew on every call
    _fast = _c_make_encoder(None, _encoder.default, json.encoder.encode_basestring_ascii, None, ":", ",",
                            False, False, True)


def to_json(value) -> str:
    """Plain data (numbers, strings, None, tuples, dicts of those) as compact JSON (NaN as NaN)."""
    if _c_make_encoder is not None and value.__class__ in (tuple, list, dict):
        return "".join(_fast(value, 0))
    return _encoder.encode(value)


def tuples(value):
    """JSON data with every list turned back into a tuple (the engine's events hold tuples)."""
    if isinstance(value, list):
        return tuple(tuples(v) for v in value)
    return value


# ---- an op's arguments: reduction='mean', dim=1, keepdim=True ---------------------------------------
_PLAIN = frozenset({str, bool, int, float, type(None)})
MAX_ARG_ITEMS = 16  # a longer tuple (an index list) is left out: it is data, not a setting
MAX_ARG_CHARS = 200  # a longer string is left out
MAX_ARGS = 32  # pairs in one stored row, at most
MAX_ARGS_TEXT = 1 << 16  # a stored row longer than this is refused unread (a label stays short)
VARIES = "..."  # the one pair of an op node whose settings took too many values to keep (engine.tape.writer)


def _public(spec: str) -> dict[str, str]:
    """"dims>dim keepdim" as {stored name: public name}, the public names included (reading a tape maps again)."""
    out = {}
    for item in spec.split():
        stored, _, public = item.partition(">")
        out[stored] = out[public or stored] = public or stored
    return out


def _table(*rows: tuple[str, str]) -> dict[str, dict[str, str]]:
    return {op: _public(spec) for ops, spec in rows for op in ops.split()}


_POOLS = " ".join(f"{kind}_pool{d}d" for kind in ("max", "avg", "lp") for d in (1, 2, 3))
_ADAPTIVE = " ".join(f"adaptive_{kind}_pool{d}d" for kind in ("max", "avg") for d in (1, 2, 3))
_CONVS = " ".join(f"{name}{d}d" for name in ("conv", "conv_transpose") for d in (1, 2, 3))
# The settings a person can write, per engine op, as torch names them: an option the engine passes itself
# (an op's shape, `channels` of dropout2d, `signed` of logdet) is not in its row and is never shown, and an
# op without a row (a person's own Function too) shows none. Renames: the engine's `dims` is torch's `dim`.
PUBLIC_ARGS: dict[str, dict[str, str]] = _table(
    ("sum mean nansum amax amin max min logsumexp prod all any median nanmedian", "dims>dim keepdim"),
    ("var std", "dims>dim keepdim correction"),
    ("norm", "dims>dim keepdim p"),
    ("argmax argmin", "dim keepdim"),
    ("cumsum cumprod logcumsumexp cummax cummin softmax log_softmax softmin gather index_select scatter "
     "scatter_add stack cat cross sort topk kthvalue mode glu", "dim"),
    ("index_add", "dim alpha"),
    ("scatter_reduce", "dim reduce include_self"),
    ("flip", "dims"), ("roll", "shifts dims"), ("permute", "perm>dims"), ("repeat", "reps>repeats"),
    ("diff", "n dim"), ("repeat_interleave", "repeats dim"),
    ("dropout alpha_dropout feature_alpha_dropout dropout1d dropout2d dropout3d", "p"),
    ("elu celu", "alpha"), ("hardtanh", "min_val max_val"), ("leaky_relu", "negative_slope"),
    ("softplus", "beta threshold"), ("hardshrink softshrink", "lambd"), ("rrelu", "lower upper"),
    ("threshold", "threshold value"),
    ("cross_entropy", "reduction ignore_index label_smoothing"), ("nll_loss", "reduction ignore_index"),
    ("binary_cross_entropy binary_cross_entropy_with_logits l1_loss mse_loss", "reduction"),
    ("huber_loss", "reduction delta"), ("smooth_l1_loss", "reduction beta"), ("kl_div", "reduction log_target"),
    ("ctc_loss", "zero_infinity"),
    ("batch_norm", "training momentum eps"), ("layer_norm", "normalized_shape eps"), ("group_norm", "num_groups eps"),
    ("embedding", "padding_idx"), ("one_hot", "num_classes"),
    ("grid_sample", "mode padding_mode align_corners"),
    ("addmm", "beta alpha"), ("diagonal diag_embed", "offset dim1 dim2"), ("diag", "offset>diagonal"),
    ("tril triu", "diagonal"), ("einsum", "equation"), ("solve_triangular", "upper unitriangular"),
    ("lu_factor", "pivot"), ("cdist", "p"), ("polygamma", "n"),
    ("nan_to_num", "nan posinf neginf"), ("round", "decimals"), ("to", "dtype device"), ("pad", "value"),
    (_POOLS, "kernel>kernel_size stride padding dilation ceil_mode count_include_pad divisor_override norm_type"),
    (_ADAPTIVE, "output_size"),
    (_CONVS, "stride padding dilation groups output_padding"),
)
_NONE: dict[str, str] = {}
_args_cache: dict[tuple, tuple] = {}


def op_args(op: str, options: dict) -> tuple[tuple[str, object], ...]:
    """The settings a person wrote among an op's keyword options, as (torch name, value) pairs: the names in
    the op's PUBLIC_ARGS row whose values are plain numbers, strings, None or short tuples of those."""
    if not options:
        return ()
    try:
        key = (op, *options.items())
        hit = _args_cache.get(key)
    except TypeError:  # an unhashable value (a list inside a tuple): not cached
        key = hit = None
    if hit is None:
        hit = _op_args(PUBLIC_ARGS.get(op, _NONE), options)
        if key is not None:
            if len(_args_cache) >= 4096:  # settings that change call after call (a scheduled dropout p)
                _args_cache.clear()
            _args_cache[key] = hit
    return hit


def _op_args(public: dict[str, str], options: dict) -> tuple[tuple[str, object], ...]:
    out = []
    for name, value in options.items():
        if name == VARIES:
            return ((VARIES, "varies"),)
        shown = public.get(name)
        if shown is None or not _plain(value):
            continue
        if shown == "dim" and value.__class__ is tuple and len(value) == 1:
            value = value[0]  # the engine keeps dim=1 as dims=(1,)
        out.append((shown, value))
    return tuple(out)


def _plain(value) -> bool:
    """A value a setting may have: a number, a short string, None, or a short tuple of those."""
    cls = value.__class__
    if cls in _PLAIN:
        return cls is not str or len(value) <= MAX_ARG_CHARS
    return cls is tuple and len(value) <= MAX_ARG_ITEMS and all(
        v.__class__ in _PLAIN and (v.__class__ is not str or len(v) <= MAX_ARG_CHARS) for v in value)


def args_text(args) -> str:
    """Arguments as a person writes them in a call: "reduction='mean', dim=1" ("..." where they varied)."""
    pairs = args.items() if isinstance(args, dict) else args
    return ", ".join(VARIES if name == VARIES else f"{name}={value!r}" for name, value in pairs)


def parse_args(text) -> tuple[tuple[str, object], ...]:
    """Stored op arguments (JSON [[name, value], ...], or "varies") back as pairs, within the writer's limits;
    ValueError for anything else."""
    if type(text) is not str or len(text) > MAX_ARGS_TEXT:
        raise ValueError("op arguments are not short text")
    if text == '"varies"':
        return ((VARIES, "varies"),)
    pairs = parse_json(text, list)
    if len(pairs) > MAX_ARGS:
        raise ValueError(f"{len(pairs)} op arguments, more than {MAX_ARGS}")
    out = []
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is str):
            raise ValueError("malformed op arguments")
        name, value = pair[0], tuples(pair[1])
        if not (name.isidentifier() and len(name) <= 40):
            raise ValueError(f"op argument name {name[:40]!r} is not a name")
        if not _plain(value):
            raise ValueError(f"op argument {name!r} is not a plain value (or is too long)")
        out.append((name, value))
    return tuple(out)


def float_blob(values) -> bytes:
    """Numbers as little-endian float64s."""
    return struct.pack(f"<{len(values)}d", *values)


def parse_floats(blob, limit: int = 1 << 20) -> tuple[float, ...]:
    """The numbers stored by float_blob."""
    if type(blob) is not bytes or len(blob) % 8 or len(blob) > 8 * limit:
        raise ValueError("a list of numbers has a bad size")
    return struct.unpack(f"<{len(blob) // 8}d", blob)


def parse_shape(text: str) -> tuple[int, ...]:
    """A shape stored as a JSON list of non-negative ints."""
    shape = json.loads(text)
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or \
            not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError(f"not a shape: {text[:80]!r}")
    return tuple(shape)


def parse_shapes(text: str) -> tuple[tuple[int, ...], ...]:
    """A tuple of shapes stored as a JSON list of lists."""
    shapes = json.loads(text)
    if not isinstance(shapes, list):
        raise ValueError(f"not a list of shapes: {text[:80]!r}")
    return tuple(parse_shape(json.dumps(s)) for s in shapes)


def parse_json(text: str, kind: type):
    """JSON text that must decode to `kind` (dict or list)."""
    value = json.loads(text)
    if not isinstance(value, kind):
        raise ValueError(f"expected a JSON {kind.__name__}, got {type(value).__name__}")
    return value


# ---- tensor summaries -------------------------------------------------------------------------
def summary_rows(heads: list[tuple], layouts: list[int], summaries: list[TensorSummary]) -> list[tuple]:
    """Stored rows of many summaries: head columns, layout id, the numbers, histogram and samples as blobs.

    The histograms are converted in one array operation for the whole batch: a blob starts with one
    element holding its own width (2 or 8 bytes), then the little-endian counts.
    """
    if not summaries:
        return []
    finish(summaries)  # what the batch's summaries still defer, in a few array operations for all
    block = np.stack([s.counts for s in summaries])
    width = _COUNTS_NARROW if block.size == 0 or block.max() < 65536 else _COUNTS_WIDE
    framed = np.empty((block.shape[0], block.shape[1] + 1), dtype=width)
    framed[:, 0] = width.itemsize
    framed[:, 1:] = block
    raw, step = framed.tobytes(), framed.shape[1] * width.itemsize
    pack = struct.pack
    return [(a, b, lay, s.numel, s.min, s.max, s.mean, s.std, s.norm, s.nan_count, s.inf_count, s.zero_count,
             raw[i * step:(i + 1) * step], s.lo, s.hi, pack(f"<{len(s.samples)}d", *s.samples), s.stride)
            for i, ((a, b), lay, s) in enumerate(zip(heads, layouts, summaries))]


def parse_real(x) -> float:
    """A number read from a tape (NULL is NaN: SQLite stores NaN as NULL); ValueError for anything else."""
    if x is None:
        return math.nan
    if type(x) is not float and type(x) is not int:
        raise ValueError(f"expected a number, got {type(x).__name__}")
    return float(x)


def _count(x) -> int:
    if type(x) is not int or x < 0:
        raise ValueError(f"expected a count, got {x!r}")
    return x


def parse_summary(layout: tuple, cols: tuple, std_over_n: bool = False) -> TensorSummary:
    """The TensorSummary of a layout (shape, dtype, device) and the columns summary_rows wrote after it.

    std_over_n: the tape's std divides by n (tapes without meta `std_correction`): read as the sample std that
    summaries hold now, from the number of values it was computed over (see sample_std)."""
    numel, mn, mx, mean, std, norm, nan, inf, zeros, counts, lo, hi, samples, stride = cols
    if type(counts) is not bytes or type(samples) is not bytes:
        raise ValueError("summary histogram or samples is not a blob")
    width = _COUNTS_NARROW if counts[:1] == b"\x02" else _COUNTS_WIDE if counts[:1] == b"\x08" else None
    if width is None or len(counts) % width.itemsize or len(counts) > MAX_COUNTS_BYTES or len(samples) % 8 \
            or len(samples) > MAX_SAMPLES_BYTES:
        raise ValueError("summary histogram or samples has a bad size")
    hist = np.frombuffer(counts, dtype=width, offset=width.itemsize).astype(np.int64)
    if hist.size and hist.min() < 0:
        raise ValueError("a summary histogram has negative counts")
    hist.flags.writeable = False
    shape, dtype, device = layout
    real = parse_real
    std, stride = real(std), _count(stride) or 1
    if std_over_n and std > 0:  # over every stride-th finite value, as the summary took them (NaN: none)
        taken = -(-(_count(numel) - _count(nan) - _count(inf)) // stride)
        std = sample_std(std * std, taken)
    return TensorSummary(shape, dtype, device, _count(numel), real(mn), real(mx), real(mean), std, real(norm),
                         _count(nan), _count(inf), _count(zeros), hist, real(lo), real(hi),
                         struct.unpack(f"<{len(samples) // 8}d", samples), stride)


# ---- raw values (.npy, compressed) -------------------------------------------------------------
def npy_bytes(array: np.ndarray) -> bytes:
    """An array as compressed .npy bytes (never pickled: object arrays are refused)."""
    if array.dtype.hasobject:
        raise ValueError("object arrays cannot be stored on a tape")
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return zlib.compress(buf.getbuffer(), 1)


def parse_npy(blob) -> np.ndarray:
    """The array in compressed .npy bytes, read without pickle and with its size bounded."""
    if type(blob) is not bytes:
        raise ValueError("a stored value is not a blob")
    inflater = zlib.decompressobj()
    raw = inflater.decompress(blob, MAX_VALUE_BYTES + 1)
    if len(raw) > MAX_VALUE_BYTES or inflater.unconsumed_tail:
        raise ValueError(f"a stored value inflates past {MAX_VALUE_BYTES} bytes")
    if not inflater.eof:
        raise ValueError("a stored value is truncated")
    _check_npy_header(raw)  # np.load allocates what a header claims before it reads a byte of data
    array = np.load(io.BytesIO(raw), allow_pickle=False)
    if not isinstance(array, np.ndarray):
        raise ValueError("a stored value is not one array")
    return array


def _check_npy_header(raw: bytes) -> None:
    """ValueError unless `raw` is one .npy array of numbers whose header's shape fits the data that follows."""
    fmt = np.lib.format
    buf = io.BytesIO(raw)
    version = fmt.read_magic(buf)
    if version == (1, 0):
        shape, _fortran, dtype = fmt.read_array_header_1_0(buf)
    elif version == (2, 0):
        shape, _fortran, dtype = fmt.read_array_header_2_0(buf)
    else:
        raise ValueError(f"a stored value is in .npy format {version}, not 1.0 or 2.0")
    if dtype.hasobject:
        raise ValueError("a stored value holds Python objects, which would need pickle: it is never loaded")
    if dtype.kind not in "biufc" or len(shape) > MAX_DIMS:
        raise ValueError(f"a stored value is not an array of numbers ({dtype}, {len(shape)} dimensions)")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed != len(raw) - buf.tell():
        raise ValueError(f"a stored value's header claims {claimed} bytes of data for its shape, "
                         f"but {len(raw) - buf.tell()} follow")


def printable(text: str, limit: int = 200) -> str:
    """Text from a tape made safe for one terminal line: control characters escaped, length bounded."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return out + ("..." if len(text) > limit else "")
