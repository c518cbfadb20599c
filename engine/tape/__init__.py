"""engine.tape: record a session to one crash-safe SQLite file (.tape), read it back, replay it, export it.

    with engine.record("run.tape", capture="summary"):   # structure | summary | values
        train()

    with engine.tape.open("run.tape") as tape:
        for event in tape.events(iteration=3): ...

The format is described in docs/tape-format.md. Submodules load on first use, so `import engine`
pays nothing for them.
"""

from __future__ import annotations

import importlib
import os

_LAZY = {
    "Recorder": "writer", "Tape": "reader", "IterationInfo": "reader", "EventRow": "reader", "Drop": "reader",
    "IterationGraph": "reader", "TapeError": "errors", "FORMAT_VERSION": "schema", "OutputRow": "output",
    "tee_output": "output",
}
__all__ = ["open", "record", *_LAZY]


def record(path: str | os.PathLike, capture: str = "summary", **options):
    """Record engine events to a .tape file until the returned Recorder is closed (use it in `with`).

    capture: "structure", "summary" or "values"; options: debugger, model, optimizer, max_bytes,
    flush_interval, batch_events, queue_events, value_bytes, command_line, max_lag, parameter_every,
    max_output_bytes (see Recorder). `recorder.output(stream, text)` keeps what the code printed, and
    `engine.tape.tee_output(recorder)` does it for sys.stdout and sys.stderr.
    Unless max_bytes says otherwise (None or 0: no cap) the tape is capped at the smaller of 10 GiB and
    half the free space of its disk (engine.tape.cap.default_cap).
    """
    from engine.tape.writer import Recorder

    return Recorder(path, capture, **options)


def open(path: str | os.PathLike):
    """Open a tape for reading (read-only, lazily); raises TapeError when it is not a readable tape."""
    from engine.tape.reader import open_tape

    return open_tape(path)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"engine.tape.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'engine.tape' has no attribute {name!r}")
