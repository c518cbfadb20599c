"""A user's and an attacker's pass over tapes: two models in one run, values whose headers lie, hostile
meta, negative counts, a log file left beside a closed tape, and the Perfetto trace's structure."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
import sqlite3
import tracemalloc
import zlib
from collections import defaultdict

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
import engine.tape
from app.cli import main
from engine.debug import Debugger
from engine.events import OptimizerEvent, renamed
from engine.tape import TapeError, codec
from engine.tape.export import export
from tests.engine.tape.helpers import copy_of, record_run, same_record


def _edit(path, *statements) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for sql, *params in statements:
            conn.execute(sql, *params)
    conn.close()


def _cli(*argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the tapescope command run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def values_tape(tmp_path_factory):
    path = tmp_path_factory.mktemp("qa3") / "values.tape"
    record_run(path, "values", steps=3, nan_at=2)
    return path


# ---- two models in one run ------------------------------------------------------------------------
def _two_models(steps: int):
    """Two Sequentials (same class, so the same module paths) trained in turn, then the first one rebuilt."""
    rng = np.random.default_rng(0)
    x = engine.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    y = engine.tensor(rng.integers(0, 3, 8))
    a = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    b = nn.Sequential(nn.Linear(4, 3))
    opt_a, opt_b = engine.optim.Adam(a.parameters(), lr=0.01), engine.optim.SGD(b.parameters(), lr=0.1)
    for _ in range(steps):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    rebuilt = nn.Sequential(nn.Linear(4, 3))  # a new model at a path seen before
    rebuilt(x)
    return a, b, rebuilt


def test_two_models_of_one_class_replay_with_their_own_parameters(tmp_path):
    """Each module call replays with the parameters it reported live, not those of the first model that
    had its path and class; the graph of the second model's iteration names its own weights."""
    path = tmp_path / "two.tape"
    live = []
    dbg = Debugger("summary", interactive=False, cache_bytes=0, on_record=live.append, discover=True)
    with dbg, engine.record(path, debugger=dbg):
        a, b, rebuilt = _two_models(3)
    with engine.tape.open(path) as tape:
        replayed = list(tape.records())
        graph = tape.graph(1)  # b's first step
    assert len(replayed) == len(live)
    # b's optimizer is not the debugger's: live its parameters are "group0.0", ..., the tape names them apart,
    # by position: "Sequential.0.weight" is a's path too
    tape_names = {"group0.0": "SGD:group0.0", "group0.1": "SGD:group0.1"}
    live = [_renamed(rec, tape_names) for rec in live]
    wrong = [(r.event, l.event) for r, l in zip(replayed, live) if not same_record(r, l)]
    assert not wrong, f"{len(wrong)} records replay differently, first: {wrong[0]}"
    b_weight = dict(b.named_parameters())["0.weight"]
    assert graph.names.get(b_weight.id) == "0.weight"
    assert dict(a.named_parameters())["0.weight"].id not in graph.names
    enters = [r.event for r in replayed if type(r.event).__name__ == "ModuleEvent" and r.event.enter]
    assert enters[-1].params == ((rebuilt[0].weight.id, "0.weight"), (rebuilt[0].bias.id, "0.bias"))


def _renamed(rec, names: dict):
    """`rec` with the parameters of an SGD step renamed by `names`."""
    ev = rec.event
    if not isinstance(ev, OptimizerEvent) or ev.optimizer != "SGD":
        return rec
    return rec._replace(event=renamed(ev, names))


def test_each_optimizers_last_step_is_snapshot_when_recording_ends(tmp_path):
    """At the summary tier the steps between snapshots leave nothing; when recording ends each optimizer's
    last step is snapshot, so the replay's end holds both trained models."""
    path = tmp_path / "two.tape"
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    with engine.record(path, "summary", model=model):
        rng = np.random.default_rng(1)
        x = engine.tensor(rng.standard_normal((8, 4)).astype(np.float32))
        y = engine.tensor(rng.integers(0, 3, 8))
        other = nn.Sequential(nn.Linear(4, 3))
        opt_a = engine.optim.Adam(model.parameters(), lr=0.01)
        opt_b = engine.optim.SGD(other.parameters(), lr=0.1)
        # the two step in turn: once the loop shows that other's step closes its body, other's steps end the
        # iterations and each holds both steps
        for _ in range(7):
            for m, opt in ((model, opt_a), (other, opt_b)):
                opt.zero_grad()
                F.cross_entropy(m(x), y).backward()
                opt.step()
    with engine.tape.open(path) as tape:
        end = tape.parameters()
    # other, the second Sequential called, is "Sequential_2": its parameters are named by its path
    trained = {**dict(model.named_parameters()),
               **{f"SGD:Sequential_2.{n}": p for n, p in other.named_parameters()}}
    assert set(end) == set(trained)
    for name, p in trained.items():
        assert end[name].tensor == p.id
        assert end[name].summary.mean == pytest.approx(float(p.array.astype(np.float64).mean()), rel=1e-6), name
    assert end["0.weight"].iteration == end["SGD:Sequential_2.0.weight"].iteration == 8


# ---- values whose header lies -------------------------------------------------------------------------
def _npy(shape, descr="<f8", data=b"\0" * 64) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return zlib.compress(buf.getvalue() + data)


@pytest.mark.parametrize("shape, descr, message", [
    ((10**6, 10**6), "<f8", "claims 8000000000000 bytes"),  # 7 TiB: np.load would try to allocate it
    ((2**31,), "<f4", "claims 8589934592 bytes"),
    ((10**20,), "<f8", "claims"),
    ((8,), "|S8", "not an array of numbers"),
])
def test_a_value_claiming_more_than_it_holds_is_refused_before_it_is_allocated(values_tape, tmp_path, shape,
                                                                                  descr, message):
    path = copy_of(values_tape, tmp_path)
    _edit(path, ("UPDATE tensor_values SET npy = ?", (_npy(shape, descr),)),
          ("UPDATE parameters SET npy = ? WHERE npy IS NOT NULL", (_npy(shape, descr),)))
    tracemalloc.start()
    try:
        with engine.tape.open(path) as tape:
            tid = tape._conn.execute("SELECT tensor FROM tensor_values LIMIT 1").fetchone()[0]
            with pytest.raises(TapeError, match=message):
                tape.value(tid)
            assert len(list(tape.records())) == tape.counts()["events"]  # a damaged value costs that value only
            assert any(message in note for note in tape.notes)
            with pytest.raises(TapeError, match=message):
                tape.parameters()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_honest_values_of_every_numeric_kind_still_load():
    from engine.tape.codec import npy_bytes, parse_npy

    for array in (np.arange(5.0), np.zeros((3, 0, 2), np.float16), np.array(7, np.int64), np.ones((2, 3), bool),
                  np.asfortranarray(np.ones((3, 4), np.complex64)), np.array([1, 2], ">i4"), np.uint8([255])):
        back = parse_npy(npy_bytes(array))
        assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)


# ---- hostile tapes through the command line --------------------------------------------------------------
HOSTILE = "x'); DROP TABLE events; --\x1b[31m\u202e\nsecond line"


@pytest.mark.parametrize("name, statements", [
    ("deeply nested command line", [("UPDATE meta SET value = ? WHERE key IN ('command_line', 'devices')",
                                     ("[" * 100_000 + "]" * 100_000,))]),
    ("a size cap of 5000 digits", [("UPDATE meta SET value = ? WHERE key = 'max_bytes'", ("9" * 5000,))]),
    ("hostile strings in meta", [("UPDATE meta SET value = ? WHERE key IN ('status', 'command_line', 'devices', "
                                  "'capture', 'created', 'platform', 'python')", (HOSTILE,))]),
    ("hostile strings in alerts", [("UPDATE alerts SET message = ?, op = ?, file = ?, code = ?",
                                    (HOSTILE,) * 4)]),
])
def test_hostile_meta_and_alerts_leave_info_and_export_working(values_tape, tmp_path, name, statements):
    path = copy_of(values_tape, tmp_path)
    _edit(path, *statements)
    code, out, err = _cli("info", "--json", str(path))
    assert code == 0, err
    info = json.loads(out)
    assert isinstance(info["command_line"], list) and isinstance(info["devices"], list)
    assert info["max_bytes"] is None or info["max_bytes"] > 0
    code, out, err = _cli("info", str(path))
    assert code == 0 and "\x1b" not in out and "\u202e" not in out, err
    for fmt in ("json", "dot", "perfetto"):
        code, _out, err = _cli("export", str(path), "--format", fmt, "-o", str(tmp_path / f"out.{fmt}"))
        assert code == 0, err
    assert not list(tmp_path.glob("PWNED*"))


@pytest.mark.parametrize("statements, message", [
    ([("UPDATE meta SET value = '\u0663' WHERE key = 'format_version'",)], "no format version"),  # an Arabic 3
    ([("UPDATE summaries SET counts = ?", (np.array([8] + [-5] * 64, "<i8").tobytes(),))], "negative counts"),
    ([("INSERT INTO drops VALUES (NULL, 0, 1, 'values', -5)",)], "expected a count"),
])
def test_impossible_numbers_are_one_line_and_exit_2(values_tape, tmp_path, statements, message):
    path = copy_of(values_tape, tmp_path)
    _edit(path, *statements)
    code, _out, err = _cli("export", str(path), "--format", "json", "-o", str(tmp_path / "out.json"))
    assert code == 2 and message in err and err.count("\n") == 1, err


# ---- a log file left beside a closed tape -------------------------------------------------------------------
def _stale_log(tape, tmp_path):
    """The -wal file of another recording of the same path (its events deleted), never checkpointed."""
    other = copy_of(tape, tmp_path, "other.tape")
    conn = sqlite3.connect(other, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("DELETE FROM events")
    conn.execute("DELETE FROM iterations")
    shutil.copyfile(f"{other}-wal", tmp_path / "log")
    conn.close()
    return tmp_path / "log"


def test_a_log_file_left_beside_a_closed_tape_is_not_read(values_tape, tmp_path):
    """A tape copied over a killed recording's: SQLite would lay the old -wal's pages over it, and the tape
    would look empty, mixed up or damaged. A closed tape is read alone, and is not changed."""
    path = copy_of(values_tape, tmp_path, "run.tape")
    log = _stale_log(values_tape, tmp_path)
    with engine.tape.open(values_tape) as tape:
        want = tape.counts()
    shutil.copyfile(log, f"{path}-wal")
    before = path.read_bytes()
    with engine.tape.open(path) as tape:
        assert tape.counts() == want
        assert len(list(tape.events())) == want["events"]
    code, out, err = _cli("info", "--json", str(path))
    assert code == 0, err
    assert json.loads(out)["size_bytes"] == len(before)  # the stale log is not counted as the tape's
    assert path.read_bytes() == before


def test_a_journal_file_left_beside_a_closed_tape_is_not_read(values_tape, tmp_path):
    path = copy_of(values_tape, tmp_path, "run.tape")
    (tmp_path / "run.tape-journal").write_bytes(b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7" + bytes(range(256)) * 12)
    before = path.read_bytes()
    with engine.tape.open(path) as tape:
        assert tape.counts()["events"] > 0
    assert path.read_bytes() == before


# ---- the Perfetto trace as the Chrome trace-event format defines it ----------------------------------
def _ns(us: float) -> int:
    """A trace time in ns as Perfetto reads it (static_cast<int64_t>(value.asDouble() * 1000.0))."""
    return int(us * 1000.0)


def _check_trace(trace: dict) -> dict:
    """What a trace viewer requires, with times read back to ns as Perfetto does: complete slices nest on
    each thread; every flow starts ("s") and finishes ("f") once, each end inside a slice of its thread."""
    slices = defaultdict(list)
    for e in trace["traceEvents"]:
        assert e["ph"] in "XMsfi", e
        if e["ph"] == "X":
            assert _ns(e["dur"]) > 0 and e["ts"] >= 0, e
            slices[(e["pid"], e["tid"])].append((_ns(e["ts"]), _ns(e["ts"]) + _ns(e["dur"]), e["name"]))
    for track, items in slices.items():
        items.sort(key=lambda s: (s[0], -s[1]))
        open_ = []
        for start, end, name in items:
            while open_ and open_[-1][1] <= start:
                open_.pop()
            assert not open_ or end <= open_[-1][1], f"{name} overlaps {open_[-1][2]} on {track}"
            open_.append((start, end, name))
    flows, started = {"s": 0, "f": 0}, {}
    for e in trace["traceEvents"]:
        if e["ph"] not in "sf":
            continue
        flows[e["ph"]] += 1
        key = (e["cat"], e["name"], e["id"])
        if e["ph"] == "s":
            assert key not in started, f"flow {key} starts twice before it finishes"
            started[key] = e
        else:
            assert started.pop(key, None) is not None, f"flow {key} finishes without a start"
            assert e["bp"] == "e"
        assert any(a <= _ns(e["ts"]) <= b for a, b, _ in slices[(e["pid"], e["tid"])]), f"flow end outside a slice: {e}"
    assert not started
    return flows


def test_perfetto_trace_of_a_real_run_is_well_formed(tmp_path):
    """Module calls around ops, backward run twice on one graph (retain_graph) and a double backward:
    slices nest, and every backward node is linked to its forward op by exactly one flow."""
    path = tmp_path / "run.tape"
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with engine.record(path, "summary"):
        x = engine.randn(5, 3, requires_grad=True)
        for _ in range(3):
            loss = model(x).pow(2).sum()
            loss.backward(retain_graph=True)
            loss.backward()
            (g,) = engine.autograd.grad(model(x).sum(), (x,), create_graph=True)
            (g * g).sum().backward()
    with engine.tape.open(path) as tape:
        backward = tape.kind_counts()["backward"]
        out = io.StringIO()
        export(tape, "perfetto", out)
    flows = _check_trace(json.loads(out.getvalue()))
    assert flows["s"] == flows["f"] == backward > 0



def _exact_then_short():
    """Increasing clock times (ns), alternately one that reads back exactly and one that reads back short."""
    t = 1_000_000
    while True:
        while _ns(t / 1000) != t:
            t += 1
        yield t
        t += 1
        while _ns(t / 1000) == t:
            t += 1
        yield t
        t += 1


def test_perfetto_slices_still_nest_when_read_back_to_whole_ns(tmp_path):
    """Perfetto reads a time as int(µs * 1000): 8284.194 comes back as 8284193 ns. With every other event at
    such a time, a slice that began where the last one ended began a ns before it, and the two overlapped."""
    path = tmp_path / "run.tape"
    record_run(path, "summary", steps=3)
    times = _exact_then_short()
    conn = sqlite3.connect(path)
    with conn:
        for first, count, blob in conn.execute("SELECT first_seq, count, columns FROM events").fetchall():
            rows = [(*row[:5], next(times), *row[6:]) for row in codec.parse_chunk(blob, count)]
            conn.execute("UPDATE events SET columns = ? WHERE first_seq = ?", (codec.chunk_blob(rows), first))
    conn.close()
    with engine.tape.open(path) as tape:
        out = io.StringIO()
        export(tape, "perfetto", out)
    trace = json.loads(out.getvalue())
    _check_trace(trace)
    ops = sorted(_ns(e["ts"]) for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "forward")
    assert ops[0] >= 1_000_000  # the times themselves are kept to the ns


def test_every_field_of_info_json_is_documented(values_tape):
    """docs/tape-format.md names each key `tapescope info --json` prints, and no key it does not print."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "tape-format.md").read_text(encoding="utf-8")
    section = doc.split("## `tapescope info --json`", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for line in section.splitlines():
        if line.startswith("- `"):
            documented |= set(re.findall(r"`(\w+)`", line.split(": ", 1)[0]))
    code, out, err = _cli("info", "--json", str(values_tape))
    assert code == 0, err
    assert set(json.loads(out)) == documented


def test_info_quotes_the_recorded_command_so_it_can_be_run_again(values_tape, tmp_path):
    path = copy_of(values_tape, tmp_path)
    argv = ["tapescope", "record", "my runs/train it.py", "-o", "a b.tape", "--lr", "it's"]
    _edit(path, ("UPDATE meta SET value = ? WHERE key = 'command_line'", (json.dumps(argv),)))
    code, out, err = _cli("info", str(path))
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.strip().startswith("command:"))
    assert shlex.split(line.split(":", 1)[1]) == argv


@pytest.mark.parametrize("column", ["counts", "samples"])
def test_a_huge_histogram_or_samples_blob_is_refused_without_reading_it(values_tape, tmp_path, column):
    path = copy_of(values_tape, tmp_path)
    _edit(path, (f"UPDATE summaries SET {column} = zeroblob(64 << 20) WHERE tensor = (SELECT min(tensor) "
                 f"FROM summaries)",))
    with engine.tape.open(path) as tape:
        tid = tape._conn.execute("SELECT min(tensor) FROM summaries").fetchone()[0]
        tracemalloc.start()
        try:
            with pytest.raises(TapeError, match="bad size"):
                tape.summary(tid)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 8 << 20


def test_a_module_call_is_one_node_from_enter_to_exit(tmp_path):
    # keyed by its parameters, an enter (which names them) and its exit (which does not) made two rows
    import sqlite3

    import engine
    import engine.nn as nn

    path = tmp_path / "modules.tape"
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = engine.optim.SGD(model.parameters(), lr=0.1)
    with engine.record(str(path), capture="structure"):
        for _ in range(2):
            opt.zero_grad()
            model(engine.randn(2, 3)).sum().backward()
            opt.step()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT key FROM nodes WHERE kind = 'module'").fetchall()
    assert sorted(key for (key,) in rows) == ["Sequential", "Sequential.0", "Sequential.1", "Sequential.2"]
