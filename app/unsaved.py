"""The question asked before a session that no tape holds is closed: by Quit (Ctrl+Q), by closing the window, or
by opening another script, tape or example over it.

    lost = what_is_lost(window.session)        # None: nothing would be lost (a replay, a recorded run, ...)
    question = DropQuestion(lost, "quit", window); question.open()
    question.finished.connect(lambda _: question.dropped() and go_on())

A live run keeps its graph, history, loss curves and alerts in the window only, unless it records to a tape
(Debug > Record to Tape, or File > Debug Script… with a tape): a run quit by mistake 2,200 iterations in was gone.
A recorded run is saved as it goes (closing it closes its tape), so it is not asked about; nor is a run that ran
nothing yet (the demo paused on entry, as the app starts).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from app.session import LiveSession

# what the person asked for, as the button that goes on and the sentence that warns say it
VERBS = {"quit": ("Quit", "Quitting"), "open": ("Open", "Opening")}


@dataclass(frozen=True)
class Lost:
    """What closing a live session loses: its title, whether it still runs (closing stops it), the iteration."""

    title: str
    alive: bool
    running: bool
    iteration: int


def what_is_lost(session) -> Lost | None:
    """What closing `session` would lose, or None: a replay (its tape holds it), a run recording or recorded to a
    tape, a run that ran nothing."""
    if not isinstance(session, LiveSession) or session.recording or session.last_recording or not session.records:
        return None
    return Lost(session.target.title, session.alive, session.alive and session.status == "running",
                session.iteration)


class DropQuestion(QMessageBox):
    """Window-modal: go on and lose the session, or cancel (the default, and Escape)."""

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
        self.setInformativeText(
            f"{doing} {'stops' if lost.alive else 'closes'} it, and its graph, history, loss curves and alerts are "
            "gone: no tape holds them."
            + " To keep a run, record it: Debug > Record to Tape (Ctrl+R) records from then on; File > Debug "
              "Script\u2026 with a tape records one from its start.")
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
