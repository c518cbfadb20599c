"""Running a person's code on an engine thread: a callable or a script, joinable and interruptible.

The thread is where the debugger stops. With python_pause the thread runs under a trace function
that costs one call per Python call and lets a pause land even in a loop that never touches the
engine, and switch_python_pause() turns it on or off while the code runs; interrupt() raises DebuggerKilled in
the thread (PyThreadState_SetAsyncExc) either way, and where() reads the line it runs (sys._current_frames)
without stopping it, to say where a pause that cannot land waits.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.debug.records import Command
from engine.debug.source import USER, SourceFrame, frame_kind, frame_of
from engine.events import hub

if TYPE_CHECKING:
    from engine.debug.debugger import Debugger


class DebuggerKilled(BaseException):
    """Raised in the engine thread by a kill command or EngineRun.interrupt(), to unwind user code."""


def global_trace(frame, event, arg):
    """The thread-wide trace function of a python_pause run: it traces nothing by itself."""
    return None  # installs tracing on the thread; frames are traced only once a pause pokes them


def run_path(path: str, argv: tuple[str, ...]) -> dict:
    """Run a script as `python path *argv` would: as __main__, its folder first on sys.path."""
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    try:
        return runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv, sys.path[:] = old_argv, old_path


class EngineRun:
    """User code running on an engine thread: join it, read its result or exception, interrupt it."""

    def __init__(self, debugger: Debugger, fn: Callable, args: tuple, kwargs: dict, python_pause: bool,
                 detach_after: bool) -> None:
        self.debugger = debugger
        self.python_pause = python_pause
        self.detach_after = detach_after  # run_callable attached the debugger: detach when the code ends
        self.result = None
        self.exception: BaseException | None = None
        self.killed = False
        self.done = threading.Event()
        self.poked: list = []
        self._switching: Callable[[], None] | None = None  # the undo of a switch_python_pause still to land
        self.thread = threading.Thread(target=self._main, args=(fn, args, kwargs), name="engine", daemon=True)

    def _main(self, fn, args, kwargs) -> None:
        if self.python_pause:
            sys.settrace(global_trace)
        try:
            self.result = fn(*args, **kwargs)
        except DebuggerKilled:
            self.killed = True
        except BaseException as err:  # the user's error, kept for whoever shows it
            self.exception = err
        finally:
            sys.settrace(None)
            if self._switching is not None:
                self._switching()
            self.debugger._run_ended(self)

    def start(self) -> None:
        """Start the engine thread."""
        self.thread.start()

    def switch_python_pause(self, on: bool) -> bool:
        """Turn python_pause on or off while the code runs; False once it has ended. A trace function is the
        thread's own (Python 3.11 sets it for the calling thread only), so the engine thread switches it itself, at
        its next engine event, through a hub subscriber that lives for that one event; a run that never touches
        the engine again keeps what it has (the app restarts such a run instead)."""
        if self.done.is_set():
            return False
        if self._switching is not None:
            self._switching()
        self.python_pause = on
        engine_thread = self.thread.ident

        def switch(_event) -> None:
            if threading.get_ident() == engine_thread and self._switching is undo:
                undo()
                sys.settrace(global_trace if on else None)

        def undo() -> None:
            if self._switching is undo:
                self._switching = None
            off()

        self._switching = undo
        off = hub.subscribe(switch)
        return True

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the code to finish; True when it has."""
        return self.done.wait(timeout)

    def where(self) -> SourceFrame | None:
        """The line the engine thread runs now, read without stopping it: its innermost frame of the person's
        code (of any code when none is the person's), or None once the code has ended."""
        if self.done.is_set():
            return None
        frame = sys._current_frames().get(self.thread.ident)
        innermost = frame
        while frame is not None and frame_kind(frame.f_code) != USER:
            frame = frame.f_back
        frame = frame or innermost
        return frame_of(frame) if frame is not None else None

    def interrupt(self) -> None:
        """Stop the code: a stopped thread is killed at its stop, a running one by an asynchronous
        DebuggerKilled (it lands at the next Python bytecode, also in loops that never touch the engine)."""
        if self.done.is_set():
            return
        if self.debugger.state.status == "paused":
            self.debugger.send(Command("kill"))
            return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread.ident),
                                                   ctypes.py_object(DebuggerKilled))
