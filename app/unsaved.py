"""The question asked before a session that no tape holds is closed: by Quit (Ctrl+Q), by closing the window, or
by opening another script, tape or example over it.

    lost = what_is_lost(window.session)        # None: nothing would be lost (a replay, a recorded run, ...)
    question = DropQuestion(lost, "quit", window); question.open()
    question.finished.connect(lambda _: (question.dropped() or question.saving() and save_as_tape(window)) and go_on())

A live run keeps its graph, history, loss curves and alerts in the window only, unless it records to a tape
(Debug > Record to Tape, or File > Debug Script… with a tape): a run quit by mistake 2,200 iterations in was gone.
A recorded run is saved as it goes (closing it closes its tape), so it is not asked about; nor is a run that ran
nothing yet (the demo paused on entry, as the app starts).

The question offers to save the run as a tape from what the window kept of it (LiveSession.save_kept): the whole
run where it kept every record (a run of up to app.session.KEPT op, backward and module records), else its latest
records with every optimizer step, alert, edit and output line; it says which. Both have the parameter snapshots the
window kept as a recording takes them (further apart in a long run), and the parameters' values as the run left them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.session import LiveSession
from engine.tape.cap import human_size
from engine.tape.errors import TapeError
from engine.tape.snapshots import KEPT_BYTES, KeptParameters

# what the person asked for, as the button that goes on and the sentence that warns say it
VERBS = {"quit": ("Quit", "Quitting"), "open": ("Open", "Opening")}


@dataclass(frozen=True)
class Lost:
    """What closing a live session loses: its title, whether it still runs (closing stops it), the iteration."""

    title: str
    alive: bool
    running: bool
    iteration: int
    kept: int = 0  # the op, backward and module records the window kept of it, for a tape saved from it
    records: int = 0  # those the run made
    kept_from: int = 0  # the first iteration of the records kept
    parameters: KeptParameters | None = None  # what the window kept of the parameters (None: nothing)

    @property
    def whole(self) -> bool:
        """Whether a tape saved from the window holds every record of the run."""
        return self.kept >= self.records


def what_is_lost(session) -> Lost | None:
    """What closing `session` would lose, or None: a replay (its tape holds it), a run recording or recorded to a
    tape, a run that ran nothing."""
    if not isinstance(session, LiveSession) or session.recording or session.last_recording or not session.records:
        return None
    return Lost(session.target.title, session.alive, session.alive and session.status == "running",
                session.iteration, *session.kept, parameters=session.kept_parameters)


class DropQuestion(QMessageBox):
    """Window-modal: save the run as a tape from what the window kept, go on and lose it, or cancel (the default,
    and Escape)."""

    def __init__(self, lost: Lost, verb: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if verb not in VERBS:
            raise ValueError(f"DropQuestion: verb must be one of {', '.join(VERBS)}, got {verb!r}")
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("Quit Tapescope" if verb == "quit" else "Open Another Session")
        if lost.alive:
            state = "running" if lost.running else "paused"
            self.setText(f"<b>{lost.title} is {state}, at iteration {lost.iteration:,}, and is not recorded.</b>")
        else:
            self.setText(f"<b>The run of {lost.title} (iteration {lost.iteration:,}) is not recorded.</b>")
        name, doing = VERBS[verb]
        stop = "stops it first, then " if lost.alive else ""
        self.setInformativeText(
            f"{doing} {'stops' if lost.alive else 'closes'} it, and its graph, history, loss curves and alerts are "
            "gone: no tape holds them.\n\n" + saved_text(lost, stop) + "\n\nTo keep the next run whole, record it: "
            "Debug > Record to Tape (Ctrl+R) records from then on; File > Debug Script\u2026 with a tape records one "
            "from its start.")
        self.save_button = self.addButton("Save as .tape\u2026", QMessageBox.ButtonRole.AcceptRole)
        self.save_button.setToolTip(saved_text(lost, stop))
        self.drop_button = self.addButton(("Stop and " if lost.alive else "Discard and ") + name,
                                          QMessageBox.ButtonRole.DestructiveRole)
        cancel = self.addButton(QMessageBox.StandardButton.Cancel)
        cancel.setText("Keep Running" if lost.running else "Cancel")
        self.setDefaultButton(cancel)
        self.setEscapeButton(cancel)
        self.setWindowModality(Qt.WindowModality.WindowModal)

    def dropped(self) -> bool:
        """Whether the person chose to go on and lose the session."""
        return self.clickedButton() is self.drop_button

    def saving(self) -> bool:
        """Whether the person chose to save the session as a tape (then go on)."""
        return self.clickedButton() is self.save_button


def saved_text(lost: Lost, stop: str = "") -> str:
    """What Save as .tape… keeps of the run: all of it, or only what the window kept, said so."""
    if lost.whole:
        return (f"Save as .tape\u2026 {stop}saves the whole run from what the window holds: every op, gradient "
                "summary, optimizer step, alert and line of output, as a recording would have them. "
                + parameters_text(lost.parameters))
    return (f"Save as .tape\u2026 {stop}saves only part of the run: the window kept its last {lost.kept:,} of "
            f"{lost.records:,} events (from iteration {lost.kept_from:,} on), with every optimizer step, alert and "
            "line of output. The graph and the loss curve of the iterations before are not on it. "
            + parameters_text(lost.parameters))


def parameters_text(kept: KeptParameters | None) -> str:
    """What a tape saved from the window holds of the run's parameters, in a sentence."""
    if kept is None or not kept.keeping:
        return "It holds no snapshots of the parameters (a structure capture keeps none)."
    if not kept.end and not kept.snapshots:
        return "It holds no snapshots of the parameters: the run has used no model or optimizer yet."
    if not kept.end:
        return "It holds the parameters as the first forward found them: no optimizer step has run yet."
    values = "" if kept.all_values else f" (those of the first {human_size(KEPT_BYTES)}; the rest as statistics)"
    if not kept.earlier:
        return (f"It holds the parameters as the last optimizer step left them, with their values{values}; they are "
                "too big for the window to keep earlier snapshots.")
    every = f"every {kept.every:,} iterations" if kept.every != 1 else "every iteration"
    return (f"It holds the parameters as the last optimizer step left them, with their values{values}, and snapshots "
            f"of them {every} before.")


def save_as_tape(window) -> bool:
    """Save the window's live run, which no tape holds, as a tape chosen in a dialog, from what the window kept of it
    (LiveSession.save_kept); the run is stopped first. False where the person cancelled or the tape could not be
    written (the window says why): the session then stays."""
    session = window.session
    name = os.path.splitext(os.path.basename(session.target.path))[0] or "session"
    os.makedirs(window.recordings_dir, exist_ok=True)
    suggested = os.path.join(window.recordings_dir, f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.tape")
    path, _ = QFileDialog.getSaveFileName(window, "Save Run as Tape", suggested, "Tapes (*.tape)")
    if not path:
        return False
    if not path.endswith(".tape"):
        path += ".tape"
    session.close()
    while session.queue:  # what it did up to the stop, shown and kept before saving
        window.pump.pump()
    window.pump.pump()  # (its end, once nothing waits)
    try:
        events = session.save_kept(path)
    except (TapeError, OSError, RuntimeError) as err:
        window.show_message(f"The run was not saved: {err}", "error")
        return False
    window._add_recent(os.path.abspath(path))
    window.output.note(f"Saved the run to {path} ({events:,} events; File > Open Recent replays it)")
    return True
