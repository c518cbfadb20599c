"""Fetching and summarising tensor values off the GUI thread, for the tensor inspector.

    worker = InspectWorker()
    worker.ready.connect(lambda r: inspector.set_values(r.value, r.grad, r.previous))
    worker.request("MLP.fc1/linear:0", value=lambda: debugger.fetch(output_id),
                   grad=lambda: debugger.fetch(grad_id))

A fetch may copy from a GPU or read a tape, and a summary of a 10-million-element tensor takes tens of
milliseconds: both run on a worker thread; the GUI thread only receives the finished InspectResult.
Only the newest request's result is delivered, so clicking through nodes never shows a stale one.
On shutdown call `cancel()` and `wait()` so no job outlives the window.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from engine.debug.summary import TensorSummary, summarize

Fetch = Callable[[], np.ndarray]


@dataclass(frozen=True)
class InspectResult:
    """Values and exact-as-policy summaries of one node's output, gradient and previous output."""

    request: int
    key: str
    value: np.ndarray | None
    grad: np.ndarray | None
    previous: np.ndarray | None
    value_summary: TensorSummary | None
    grad_summary: TensorSummary | None
    diff_summary: TensorSummary | None  # of value - previous


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(int, str, str)


class _Job(QRunnable):
    def __init__(self, request: int, key: str, fetches: tuple, signals: _Signals) -> None:
        super().__init__()
        self.request, self.key, self.fetches, self.signals = request, key, fetches, signals

    def run(self) -> None:  # on a pool thread
        try:
            value, grad, previous = (f() if f is not None else None for f in self.fetches)
            value, grad, previous = (None if a is None else np.asarray(a) for a in (value, grad, previous))
            diff = None
            if value is not None and previous is not None and previous.shape == value.shape:
                with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, as it should show
                    delta = np.subtract(value, previous, dtype=np.result_type(value, np.float32))
                diff = summarize(delta)
            result = InspectResult(self.request, self.key, value, grad, previous,
                                   summarize(value) if value is not None else None,
                                   summarize(grad) if grad is not None else None, diff)
        except Exception as err:  # a value the cache no longer holds, a tape without values, ...
            self.signals.failed.emit(self.request, self.key, str(err) or type(err).__name__)
            return
        self.signals.done.emit(result)


class InspectWorker(QObject):
    """Runs fetch callables on a worker thread; emits ready(InspectResult) or failed(key, message)."""

    ready = Signal(object)
    failed = Signal(str, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one fetch at a time: a newer request waits, an older is dropped
        self._signals = _Signals(self)  # lives on the GUI thread: emits from the pool arrive queued
        self._signals.done.connect(self._done)
        self._signals.failed.connect(self._failed)
        self._ids = itertools.count(1)
        self.latest = 0

    def request(self, key: str, value: Fetch | None = None, grad: Fetch | None = None,
                previous: Fetch | None = None) -> int:
        """Fetch and summarise off the GUI thread; returns the request id (older ids are dropped)."""
        self.latest = next(self._ids)
        self.pool.clear()  # requests not yet started are stale now
        self.pool.start(_Job(self.latest, key, (value, grad, previous), self._signals))
        return self.latest

    def cancel(self) -> None:
        """Deliver nothing for the requests made so far."""
        self.latest = next(self._ids)
        self.pool.clear()

    def wait(self, msecs: int = -1) -> bool:
        """Wait for running jobs to finish (at shutdown); True when none is left."""
        return self.pool.waitForDone(msecs)

    def _done(self, result: InspectResult) -> None:
        if result.request == self.latest:
            self.ready.emit(result)

    def _failed(self, request: int, key: str, message: str) -> None:
        if request == self.latest:
            self.failed.emit(key, message)
