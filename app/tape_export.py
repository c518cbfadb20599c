"""File > Export…: the open tape (a replay's, or a live session's recording) to a Perfetto trace, Graphviz
DOT or JSON, written by engine.tape.export on a worker thread, with progress and Cancel in the status bar.

    exporter = TapeExporter(window)
    exporter.ask()                                  # the file dialog; the export starts once a file is chosen
    exporter.start("out.json", "perfetto")          # or directly

The worker opens the tape with its own connection, so the GUI thread never waits on it. The file is written
whole or not at all: the export goes to a new file beside it, renamed over it at the end, so a cancelled
or failed export leaves what was there before. Errors reach the window as one line (show_message).
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

import engine.tape
from app.replay import ReplaySession
from app.session import LiveSession
from widgets.task_progress import TaskProgress


@dataclass(frozen=True)
class Format:
    """An export format: engine.tape.export's name for it, what a person calls it, its file name ending."""

    name: str
    title: str
    suffix: str
    name_filter: str
    hint: str


FORMATS = (
    Format("perfetto", "Perfetto trace", ".trace.json", "Perfetto / Chrome trace (*.json)",
           "open it at ui.perfetto.dev or chrome://tracing"),
    Format("dot", "Graphviz DOT", ".dot", "Graphviz DOT, the last training step's graph (*.dot *.gv)",
           "draw it with `dot -Tsvg`"),
    Format("json", "JSON", ".json", "JSON, every event and its summaries (*.json)", "every event, one a line"),
)


def format_named(name: str) -> Format:
    """The Format called `name` (perfetto, dot or json)."""
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise ValueError(f"unknown export format {name!r}; expected one of {', '.join(f.name for f in FORMATS)}")


def with_suffix(path: str, fmt: Format) -> str:
    """`path` ending as `fmt`'s files do: its ending (and a ".trace" before it) replaced, or added."""
    folder, base = os.path.split(path)
    stem, ending = os.path.splitext(base)
    if ending and stem.lower().endswith(".trace"):
        stem = stem[:-len(".trace")]
    return os.path.join(folder, (stem or base) + fmt.suffix)


class _Cancelled(Exception):
    """Raised in the worker at its next progress report once Cancel was pressed."""


class ExportJob(QObject):
    """One export on a worker thread; its signals arrive on the GUI thread.

    sized(total): the events (and snapshots) it will report; progressed(done); ended(outcome, message) with
    outcome "done", "failed" (message: one line) or "cancelled"."""

    sized = Signal(int)
    progressed = Signal(int)
    ended = Signal(str, str)

    def __init__(self, tape: str, path: str, fmt: Format, parent=None) -> None:
        super().__init__(parent)
        self.tape, self.path, self.format = tape, path, fmt
        self._cancel = threading.Event()
        self._done = 0
        self.thread = threading.Thread(target=self._run, name="tape export", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        """Stop at the next progress report (every few thousand events); nothing is written."""
        self._cancel.set()

    def _progress(self, n: int) -> None:  # on the worker thread, between chunks of events
        if self._cancel.is_set():
            raise _Cancelled
        self._done += n
        self.progressed.emit(self._done)

    def _run(self) -> None:
        with contextlib.suppress(RuntimeError):  # the window closed while it ran: its signals have no receiver
            self._export()

    def _export(self) -> None:
        from engine.tape.export import export, progress_total, whole_file

        try:
            with engine.tape.open(self.tape) as tape:
                self.sized.emit(progress_total(tape, self.format.name))
                with whole_file(self.path) as out:
                    export(tape, self.format.name, out, progress=self._progress)
                    if self._cancel.is_set():  # pressed after the last report: still nothing written
                        raise _Cancelled
        except _Cancelled:
            self.ended.emit("cancelled", "")
        except engine.tape.TapeError as err:
            self.ended.emit("failed", _line(err))
        except OSError as err:
            self.ended.emit("failed", f"cannot write {self.path}: {err.strerror or _line(err)}")
        except Exception as err:  # a bug in an exporter must not take the window down: say what it was
            self.ended.emit("failed", f"{type(err).__name__}: {_line(err)}")
        else:
            self.ended.emit("done", "")


def _line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class TapeExporter(QObject):
    """File > Export… of a main window: the dialog, the job and its progress in the window's status bar."""

    busyChanged = Signal(bool)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.job: ExportJob | None = None
        self.progress = TaskProgress()
        self.progress.setObjectName("export_progress")
        self.progress.cancelRequested.connect(self.cancel)
        self.progress.setParent(window)  # in the status bar only while an export runs (it never grows the bar)
        self.progress.hide()
        self.dialog: QFileDialog | None = None

    @property
    def busy(self) -> bool:
        """Whether an export is running."""
        return self.job is not None

    def source(self) -> str | None:
        """The tape an export writes out: the replay's, or the live session's recording (the one going
        on, else the last one); None when there is none."""
        session = self.window.session
        if isinstance(session, ReplaySession):
            path = session.path
        elif isinstance(session, LiveSession):
            path = session.recording or session.last_recording
        else:
            return None
        return path if path and os.path.isfile(path) else None

    def can_export(self) -> bool:
        """Whether File > Export… has a tape to export and no export is running."""
        return not self.busy and self.source() is not None

    def ask(self) -> QFileDialog | None:
        """Open the Export dialog (window-modal, no nested event loop); the export starts once a file is
        chosen. Returns the dialog (None when there is nothing to export)."""
        tape = self.source()
        if tape is None or self.busy:
            return None
        stem = os.path.splitext(os.path.basename(tape))[0]
        dialog = QFileDialog(self.window, "Export Tape", os.path.dirname(os.path.abspath(tape)))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        dialog.setNameFilters([fmt.name_filter for fmt in FORMATS])
        dialog.selectNameFilter(FORMATS[0].name_filter)
        dialog.selectFile(stem + FORMATS[0].suffix)
        dialog.filterSelected.connect(lambda text: self._filter_chosen(dialog, text))
        dialog.fileSelected.connect(lambda path: self._chosen(dialog, path))
        self.dialog = dialog
        return self.window._open_dialog(dialog)

    def _filter_chosen(self, dialog: QFileDialog, name_filter: str) -> None:
        chosen = dialog.selectedFiles()
        if chosen:  # the name typed so far, ending as the newly chosen format's files do
            dialog.selectFile(os.path.basename(with_suffix(chosen[0], self._format_of(name_filter))))

    def _chosen(self, dialog: QFileDialog, path: str) -> None:
        fmt = self._format_of(dialog.selectedNameFilter())
        self.start(path if os.path.splitext(path)[1] else path + fmt.suffix, fmt.name)

    @staticmethod
    def _format_of(name_filter: str) -> Format:
        return next((fmt for fmt in FORMATS if fmt.name_filter == name_filter), FORMATS[0])

    def start(self, path: str, fmt: str) -> bool:
        """Export the session's tape to `path` as `fmt` (perfetto, dot or json) on a worker thread; False,
        with the reason shown in the window, when it cannot start."""
        chosen = format_named(fmt)
        tape = self.source()
        problem = self._problem(tape, path)
        if problem:
            self.window.show_message(f"Cannot export: {problem}", "error")
            return False
        self.job = ExportJob(tape, path, chosen, self)
        self.job.sized.connect(self.progress.set_total)
        self.job.progressed.connect(self.progress.set_done)
        self.job.ended.connect(self._ended)
        self.window.statusBar().addPermanentWidget(self.progress)
        self.progress.start(f"Exporting {os.path.basename(tape)} as {chosen.title}\u2026")
        self.busyChanged.emit(True)
        self.job.start()
        return True

    def _problem(self, tape: str | None, path: str) -> str:
        """Why an export of `tape` to `path` cannot start ('' when it can)."""
        if self.busy:
            return "an export is running already (Cancel it first)"
        if tape is None:
            return "no tape is open (open one, or record the session)"
        if not path.strip():
            return "the file name is empty"
        if os.path.isdir(path):
            return f"{path} is a folder; choose a file name"
        if os.path.exists(path) and os.path.samefile(path, tape):
            return f"{path} is the tape being exported; choose another file name"
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            return f"the folder {folder} does not exist"
        return ""

    def cancel(self) -> None:
        """Stop the running export; nothing is written."""
        if self.job is not None:
            self.job.cancel()

    def _ended(self, outcome: str, message: str) -> None:
        job, self.job = self.sender(), None
        self.progress.finish()
        self.window.statusBar().removeWidget(self.progress)
        if outcome == "done":
            fmt = job.format
            self.window.show_message(f"Exported {os.path.basename(job.tape)} to {job.path} ({fmt.title}: "
                                     f"{fmt.hint})", "info")
        elif outcome == "cancelled":
            self.window.status_panel.set_note("Export cancelled: nothing was written", 5)
        else:
            self.window.show_message(f"Export failed: {message}", "error")
        self.busyChanged.emit(False)

    def shutdown(self, msecs: int = 2000) -> None:
        """Cancel a running export and wait for its thread (at the window's close)."""
        job = self.job
        if job is not None:
            job.cancel()
            job.thread.join(msecs / 1000)
