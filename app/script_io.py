"""Running a person's script on the engine thread: its output, and its failure as its own traceback.

`capture_output(thread_id, sink)` routes what that thread, and every thread it starts, writes to
sys.stdout / sys.stderr to `sink(stream, text)` (other threads keep writing where they did), shows each of
their warnings once per run and line, and gives them no stdin; `script_error(err, path)` keeps the
script's own frames of a traceback and finds the op that raised, as plain data.
"""

from __future__ import annotations

import io
import os
import re
import runpy
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import engine
from engine.debug.raised import error_line, raised_op
from engine.debug.source import USER, frame_kind
from engine.events import OpEvent

_APP_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_ENGINE_DIR = os.path.dirname(os.path.abspath(engine.__file__)) + os.sep
_DEMO = os.path.join(_APP_DIR, "demo.py")


@dataclass(frozen=True, slots=True)
class OutputChunk:
    """Text the script wrote to "stdout" or "stderr"."""

    stream: str
    text: str


@dataclass(frozen=True, slots=True)
class ScriptError:
    """The script's exception: its one-line message, its traceback (the script's own frames), and
    the op that raised it (an OpEvent made after the fact, with output 0), when an op did."""

    message: str
    traceback: str
    op: OpEvent | None
    file: str = ""  # where the script's own code raised (its innermost frame)
    line: int = 0
    depth: int = 0  # how many module calls enclosed the op that raised


# ---- output ----------------------------------------------------------------------------------------
_sinks: dict[int, object] = {}
_lock = threading.Lock()
_start_thread = threading.Thread.start
NO_STDIN = "a script run by Tapescope has no console to read: pass values as arguments (sys.argv), not input()"


def _sink():
    """The sink of the calling thread: its own, or that of the captured thread that started it."""
    sink = _sinks.get(threading.get_ident())
    if sink is None:
        sink = getattr(threading.current_thread(), "_tapescope_sink", None)
        if sink is not None and sink not in _sinks.values():  # that run has ended
            return None
    return sink


def _start_captured(thread: threading.Thread) -> None:
    """Thread.start while output is captured: a thread that a captured thread starts is captured too,
    so what a script's worker threads print shows in its output, not on the app's console."""
    thread._tapescope_sink = _sink()
    _start_thread(thread)


class _ThreadStream:
    """Stands in for sys.stdout or sys.stderr: writes from captured threads go to their sink."""

    def __init__(self, name: str, original) -> None:
        self._name = name
        self.original = original

    def write(self, text: str) -> int:
        sink = _sink()
        if sink is None:
            return self.original.write(text)
        sink(self._name, str(text))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _sink() is None:
            self.original.flush()

    def isatty(self) -> bool:
        return False if _sink() is not None else self.original.isatty()

    def __getattr__(self, name: str):
        return getattr(self.original, name)


class _ThreadStdin:
    """Stands in for sys.stdin: captured threads read nothing (EOFError, as Python raises when stdin is
    closed), rather than block on the app's console, where no one types and Stop cannot reach them."""

    def __init__(self, original) -> None:
        self.original = original

    def _refuse(self) -> None:
        if _sink() is not None:
            raise EOFError(NO_STDIN)

    def read(self, *args):
        self._refuse()
        return self.original.read(*args)

    def readline(self, *args):
        self._refuse()
        return self.original.readline(*args)

    def readlines(self, *args):
        self._refuse()
        return self.original.readlines(*args)

    def __iter__(self):
        return self

    def __next__(self):
        self._refuse()
        return next(self.original)

    def fileno(self) -> int:
        # input() reads the console itself when stdin has a file descriptor that is a terminal
        if _sink() is not None or self.original is None:
            raise io.UnsupportedOperation("fileno")
        return self.original.fileno()

    def isatty(self) -> bool:
        return False if _sink() is not None or self.original is None else self.original.isatty()

    def __getattr__(self, name: str):
        return getattr(self.original, name)


# Python's default filter shows a warning once per line, remembered in a registry that any change of the filters
# clears, and the app's plots change them many times a second (pyqtgraph's catch_warnings, on the GUI thread): a
# script's warning came back in its Output every iteration, where `python script.py` prints it once
_warned: dict = {}  # sink -> (text, category, file, line) of each warning its run has shown
_show_warning = [warnings.showwarning]  # what shows the warnings of threads no run captures


def _show_once(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning while output is captured: a captured run's warning shows once per run and line (a
    filter "always" of its text and category shows every one, as Python does)."""
    sink = _sink()
    if sink is not None and file is None:
        key = (str(message), category, filename, lineno)
        shown = _warned.setdefault(sink, set())
        if key in shown and not _every_time(str(message), category):
            return
        if len(shown) < 4096:
            shown.add(key)
    _show_warning[0](message, category, filename, lineno, file, line)


def _every_time(text: str, category) -> bool:
    """Whether the filters show every occurrence of a warning: the first of them that matches its text and
    category (the module that warned is not known here) says "always"."""
    for action, message, kind, _module, _line in warnings.filters:
        if (message is None or message.match(text)) and issubclass(category, kind):
            return action == "always"
    return warnings.defaultaction == "always"


def capture_output(thread_id: int, sink) -> None:
    """Send what thread `thread_id` and the threads it starts print (stdout and stderr) to
    `sink(stream, text)`, each of their warnings once per run and line; reading stdin raises EOFError in them."""
    with _lock:
        _sinks[thread_id] = sink
        if warnings.showwarning is not _show_once:
            _show_warning[0], warnings.showwarning = warnings.showwarning, _show_once
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if not isinstance(stream, _ThreadStream):
                setattr(sys, name, _ThreadStream(name, stream))
        if not isinstance(sys.stdin, _ThreadStdin):
            sys.stdin = _ThreadStdin(sys.stdin)
        threading.Thread.start = _start_captured


def release_output(thread_id: int) -> None:
    """Stop capturing `thread_id`; the last release puts the original streams back."""
    with _lock:
        sink = _sinks.pop(thread_id, None)
        if sink not in _sinks.values():  # its run has ended: a new run shows its warnings again
            _warned.pop(sink, None)
        if _sinks:
            return
        if warnings.showwarning is _show_once:
            warnings.showwarning = _show_warning[0]
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, _ThreadStream):
                setattr(sys, name, stream.original)
        if isinstance(sys.stdin, _ThreadStdin):
            sys.stdin = sys.stdin.original
        threading.Thread.start = _start_thread


# ---- running ------------------------------------------------------------------------------------
def run_path(path: str, argv: tuple[str, ...] = ()) -> None:
    """Run a script as `python path *argv` would: its own sys.argv, its folder first on sys.path."""
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv, sys.path[:] = old_argv, old_path


def compile_error(path: str) -> ScriptError | None:
    """The script's syntax error, found by compiling it (never running it), or None when it compiles."""
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError:
        return None  # running it says what is wrong with the file
    try:
        compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as err:  # ValueError: null bytes in the source (Python 3.11)
        return script_error(err, path)
    return None


# ---- failures -----------------------------------------------------------------------------------
def _own(code, script: str) -> bool:
    """A frame of the person's code: not the engine's, a library's or the app's (the demo excepted)."""
    if frame_kind(code) != USER:
        return False
    path = os.path.abspath(code.co_filename)
    return path == script or not path.startswith(_APP_DIR)


def own_file(path: str) -> bool:
    """Whether a file a tape names may be the person's code: not the engine's nor the app's (the demo excepted)."""
    path = os.path.abspath(path)
    return path == _DEMO or not path.startswith((_APP_DIR, _ENGINE_DIR))


def script_error(err: BaseException, script: str) -> ScriptError:
    """The traceback of `err` with only the script's own frames, and the op that raised it."""
    script = os.path.abspath(script) if script else ""
    kept = [(frame, line) for frame, line in traceback.walk_tb(err.__traceback__) if _own(frame.f_code, script)]
    lines = traceback.format_exception_only(type(err), err)
    text = "".join(["Traceback (most recent call last):\n",
                    *traceback.StackSummary.extract(kept).format(), *lines]) if kept else "".join(lines)
    raised = raised_op(err)
    file, line = (kept[-1][0].f_code.co_filename, kept[-1][1]) if kept else ("", 0)
    if isinstance(err, SyntaxError) and err.filename and os.path.isfile(err.filename):
        file, line = err.filename, err.lineno or 0  # the line that does not parse, not the import of it
    if raised is None:
        return ScriptError(error_line(err), text, None, file, line)
    return ScriptError(error_line(err), text, raised.event, file, line, raised.depth)


# a frame of a traceback Python printed: its "File" line; the lines under it (its source, the carets, "[Previous line
# repeated 4 more times]") are indented further
_FRAME = re.compile(r'  File "(?P<file>[^"]*)", line \d+')
_TRACEBACK = "Traceback (most recent call last):"


def own_frames(text: str, own: Callable[[str], bool]) -> tuple[str, int]:
    """`text` (output holding tracebacks as Python prints them) with only the frames of files `own(file)` accepts,
    as script_error gives a live run's error (without the carets under a line); and how many frames it left out. A
    traceback none of whose frames are the script's keeps its last line (the error), as a live run shows it."""
    out: list[str] = []
    hidden = 0
    block: list[str] | None = None  # the traceback being read: its header, then the frames kept
    keep = True  # whether the frame being read is kept
    for line in text.splitlines(keepends=True):
        if line.rstrip("\r\n") == _TRACEBACK:
            block, keep = [line], True
            continue
        if block is not None:
            frame = _FRAME.match(line)
            if frame is not None:
                keep = own(frame["file"])
                hidden += not keep
                if keep:
                    block.append(line)
                continue
            if line.startswith("    "):  # the frame's own lines (its carets left out, as a live run's have none)
                if keep and line.strip(" ^~\r\n"):
                    block.append(line)
                continue
            out += block if len(block) > 1 else []  # the error's lines follow the frames
            block = None
        out.append(line)
    if block is not None:  # cut off inside its frames
        out += block
    return "".join(out), hidden
