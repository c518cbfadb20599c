""".tape I/O: writer throughput per capture tier, bytes per event, open and seek at 1M events, and the
cost of recording an MLP training step.

    python benchmarks/tape_io.py [--quick] [--events N]

Throughput feeds real records (from recorded MLP steps, renumbered) straight into the writer's batch
commit, the work its thread does (the synthetic records are hidden from the garbage collector
meanwhile). Recording overhead times blocks of steps in alternation: untraced,
the debugger alone at "summary", and recording at "summary", whose block ends by waiting until the
writer has committed it, so the writer's work is charged to recording even on an idle second core.
A last line, with no bar, does the same for whole short runs of the char-LSTM example (many small
elementwise ops, each summarised: the hard case for the summary tier), a run ending when its tape is closed.
Bars: >= 300k events/s at structure, open < 1 s and seek < 50 ms at 1M events, recording at summary
<= 1.4x untraced.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "resources" / "examples"))
from _timing import interleaved, report  # first: it sets one BLAS thread before numpy loads

# isort: split
import char_lstm
import numpy as np
from engine_cpu import BATCH, D_IN, D_OUT, HIDDEN, make_data
from tracing_overhead import MLP, training_step

import engine
import engine.tape
from engine.debug import Debugger
from engine.debug.records import BackwardRecord, OpRecord

CHUNK = 20_000


def sample_records(capture: str, steps: int = 20) -> list:
    """The records of `steps` MLP training steps at one capture tier."""
    x, y, params = make_data()
    model = MLP(params)
    step, opt = training_step(model, engine.tensor(x), engine.tensor(y))
    recs: list = []
    with Debugger(capture, model=model, optimizer=opt, interactive=False, cache_bytes=0,
                  on_record=recs.append):
        for _ in range(steps):
            step()
    return recs


def renumbered(recs: list, copy: int, span: int, iterations: int) -> list:
    """Copy number `copy` of `recs` with fresh sequence numbers, tensor ids and iterations."""
    off, it_off = copy * span, copy * iterations
    out = []
    for rec in recs:
        ev = rec.event
        if rec.__class__ is OpRecord:
            ev = dataclasses.replace(ev, seq=ev.seq + off, output=ev.output + off)
        elif rec.__class__ is BackwardRecord:
            ev = dataclasses.replace(ev, seq=ev.seq + off, forward_seq=ev.forward_seq + off,
                                     grad_output=ev.grad_output + off,
                                     grad_inputs=tuple(g + off if g else 0 for g in ev.grad_inputs))
        else:
            ev = dataclasses.replace(ev, seq=ev.seq + off)
        out.append(rec._replace(event=ev, iteration=rec.iteration + it_off))
    return out


def write_tape(path: str, capture: str, total: int) -> tuple[float, int]:
    """Write `total` events through the writer's batch commit; (events per second, bytes per event)."""
    recs = sample_records(capture)
    span = max(r.event.seq for r in recs) + 1 + 4 * len(recs)  # room for gradient ids above the seqs
    iterations = max(r.iteration for r in recs) + 1
    idle = Debugger(capture, interactive=False, cache_bytes=0)  # never attached: the benchmark feeds it
    recorder = engine.tape.Recorder(path, capture, debugger=idle)
    written, elapsed, copy = 0, 0.0, 0
    while written < total:
        items = []
        while len(items) < CHUNK and written + len(items) < total:
            items += [(time.perf_counter_ns(), r) for r in renumbered(recs, copy, span, iterations)]
            copy += 1
        gc.freeze()  # the synthetic records are the benchmark's, not the writer's: keep them out of GC passes
        t0 = time.perf_counter()
        recorder.write_batch(items)
        elapsed += time.perf_counter() - t0
        gc.unfreeze()
        written += len(items)
    t0 = time.perf_counter()
    recorder.close()  # the checkpoint is part of writing
    elapsed += time.perf_counter() - t0
    return written / elapsed, os.path.getsize(path) // max(1, written)


def open_and_seek(path: str) -> tuple[float, float]:
    """(seconds to open the tape and read its counts, median seconds to seek to an iteration and read it)."""
    t0 = time.perf_counter()
    with engine.tape.open(path) as tape:
        counts = tape.counts()
        opened = time.perf_counter() - t0
    seeks = []
    rng = np.random.default_rng(0)
    for target in rng.integers(counts["first_iteration"], counts["last_iteration"] + 1, 20):
        t0 = time.perf_counter()
        with engine.tape.open(path) as tape:
            events = list(tape.events(iteration=int(target)))
        seeks.append(time.perf_counter() - t0)
        assert events, "an iteration came back empty"
    return opened, statistics.median(seeks)


def recording_overhead(path: str, rounds: int, repeat: int) -> dict[str, float]:
    """Median seconds per MLP step: untraced, debugger at summary, recording at summary."""
    x, y, params = make_data()
    model = MLP(params)
    step, opt = training_step(model, engine.tensor(x), engine.tensor(y))
    debugger = Debugger("summary", model=model, optimizer=opt, interactive=False, cache_bytes=0)
    recording = Debugger("summary", model=model, optimizer=opt, interactive=False, cache_bytes=0)
    recorder = engine.tape.Recorder(path, "summary", debugger=recording)

    def untraced():
        for _ in range(repeat):
            step()

    def debugged():
        with debugger:
            for _ in range(repeat):
                step()

    def recorded():
        with recording:
            for _ in range(repeat):
                step()
        recorder.flush()  # the block is not done until the writer has committed it

    blocks = {"untraced": untraced, "debugger summary": debugged, "record summary": recorded}
    times = interleaved(blocks, rounds, repeat=1, warmup=1)  # each block times `repeat` steps itself
    recorder.close()
    return {name: t / repeat for name, t in times.items()}


def lstm_recording(path: str, rounds: int) -> dict[str, float]:
    """Median seconds per short char-LSTM run (2 batches of 32 windows of 48 characters, no sampling):
    untraced, debugger at "summary", recorded at "summary" (until its tape is closed)."""
    def run():
        char_lstm.main(epochs=1, batches_per_epoch=2, sample_length=0, verbose=False)

    def debugged():
        with Debugger("summary", interactive=False, cache_bytes=0, discover=True):
            run()

    def recorded():
        with engine.record(path, capture="summary"):
            run()

    return interleaved({"untraced": run, "debugger summary": debugged, "record summary": recorded},
                       rounds, repeat=1, warmup=1)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller tapes and fewer rounds (a smoke run)")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the open/seek tape")
    args = parser.parse_args(argv)
    big = 50_000 if args.quick else args.events
    tier_events = 20_000 if args.quick else 200_000
    rounds, repeat = (3, 20) if args.quick else (7, 100)
    print(f"tape_io: numpy {np.__version__}, one thread, SQLite {sqlite3.sqlite_version}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for capture in ("structure", "summary", "values"):
            n = big if capture == "structure" else tier_events
            path = os.path.join(tmp, f"{capture}.tape")
            rate, per_event = write_tape(path, capture, n)
            line = f"write {capture}: {rate / 1000:.0f}k events/s, {per_event} bytes/event ({n:,} events)"
            if capture == "structure":
                line += f"  | bar >= 300k events/s: {verdict(rate >= 300_000)}"
                opened, seek = open_and_seek(path)
            print(line, flush=True)
        print(f"open {big:,}-event tape: {opened * 1000:.1f} ms  | bar < 1000 ms: {verdict(opened < 1)}",
              flush=True)
        print(f"seek to an iteration and read it ({big:,} events): {seek * 1000:.2f} ms  | bar < 50 ms: "
              f"{verdict(seek < 0.05)}", flush=True)
        times = recording_overhead(os.path.join(tmp, "mlp.tape"), rounds, repeat)
        report(f"MLP {D_IN}-{HIDDEN}-{D_OUT} training step, batch {BATCH}", times, "untraced",
               bar=("record summary", 1.4))
        times = lstm_recording(os.path.join(tmp, "lstm.tape"), 2 if args.quick else 5)
        report("char-LSTM run, 2 batches of 32x48 characters (no bar)", times, "untraced", unit=1e3,
               unit_name="ms")


if __name__ == "__main__":
    main()
