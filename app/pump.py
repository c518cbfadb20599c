"""The event pump: once per frame, drain the session's queue in a bounded batch and tell the window.

The engine thread never emits Qt signals (one queued signal per event costs ~35x a deque append);
it appends plain data, and this timer on the GUI thread applies it (Session.drain) and emits one
`changed` signal per frame with everything that changed.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

FRAME_MS = 16


class EventPump(QObject):
    """Drains `session` every `interval_ms`; at most `max_items` per frame and about `budget_ms` of work."""

    changed = Signal(object)  # app.session.SessionChange

    def __init__(self, parent=None, interval_ms: int = FRAME_MS, max_items: int = 20000,
                 budget_ms: float = 8.0) -> None:
        super().__init__(parent)
        self.session = None
        self.max_items = max_items
        self.budget = budget_ms / 1000.0
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.pump)

    def set_session(self, session) -> None:
        """Drain this session from now on (None: stop)."""
        self.session = session
        if session is None:
            self.timer.stop()
        else:
            self.timer.start()

    def pump(self) -> None:
        """Apply one batch now and emit `changed` if anything did."""
        session = self.session
        if session is None:
            return
        change = session.drain(self.max_items, self.budget)
        if change is not None:
            self.changed.emit(change)
