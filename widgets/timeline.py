"""The timeline: every steppable event (forward op, backward node, optimizer step) in order, as bands of
iterations and phases, with markers for breakpoints, alerts and edits and a cursor to scrub with.

Inputs:
- `set_events(seqs, iterations, phases, depths=None)` (replace; a replay) or `append_events(...)` (live),
  arrays of one length: event sequence numbers (increasing), iteration numbers, phases ("forward",
  "backward", "optimizer" or their codes 0, 1, 2) and module depths (for Step Back Over); `add_records(records)`
  takes engine.debug records and keeps the steppable ones.
- `set_origin(seq)`: the seq before the session's first event; the event numbers shown count from it.
- `set_markers(kind, seqs, texts=(), tags=())` / `add_marker(kind, seq, text, tag)` for kind in MARKERS
  (breakpoint, alert, edit); `clear_markers(kind=None)`. A tag (an alert's kind: "dead ReLU") gets a colour
  of its own, the first tag of a kind that kind's colour. Markers that would overlap at the zoom shown are
  drawn as one badge with their count (their colours side by side), its tooltip listing them; a click on a
  marker or a badge moves the cursor to its (first) event: `marker_groups()` says what is drawn.
- `set_gaps(seqs, texts=())`: where a damaged tape lost events (the first seq of each stretch), drawn as a hatched
  break between the events either side, its tooltip the text.
- `set_empty_text(text)`: what the strip says while it has no events ("No events yet.").
- `set_cursor(seq)` (shows a position, emits nothing); `set_follow(on)`; `set_live(live)`; `clear()`.
- `step_back(over=False)`: the cursor to the event before it (`over`: before it in the same module call or
  its caller, over nested calls), as a person's move; `can_step_back()`.
- `go_to_start()`, `go_to_end()`, `go_to_iteration(n)`, `go_to_event(number)`: the cursor there, as a person's
  move; `bounds()`: the iterations and event numbers held. The position reads in event numbers, as the rest of
  the window numbers events ("iteration 3/9 · backward · event 1,204/3,310").
Outputs: `cursorMoved(seq)` when the person drags or clicks the cursor or presses Left/Right (one
event), Home/End, PageUp/PageDown (one iteration), or steps back; `followChanged(on)`; `markerClicked(kind,
seq)` when a marker or a badge (its first marker) is clicked.
Mouse wheel zooms around the pointer; the scroll bar pans; "Fit" shows everything. In follow mode
(live sessions) the cursor stays on the newest event and the view keeps it in sight; moving the
cursor by hand leaves follow mode.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QScrollBar,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from engine.debug.records import OPTIMIZER, PHASES, EventRecord
from widgets.elided_label import ElidedLabel
from widgets.theme import MUTED_TEXT, is_dark, pick, tint

PHASE_CODE = {name: i for i, name in enumerate(PHASES)}
PHASE_COLOURS = ("#74c0fc", "#ffa94d", "#8ce99a")  # forward, backward, optimizer
MARKERS = ("breakpoint", "alert", "edit")
MARKER_COLOURS = {"breakpoint": "#e03131", "alert": "#f08c00", "edit": "#7048e8"}
MARKER_GLYPHS = {"breakpoint": "\u25cf", "alert": "\u25b2", "edit": "\u25c6"}  # as the legend draws them
# the colours of a kind's further tags (an alert kind each), after the kind's own: none the breakpoints' red,
# the edits' violet or a phase's pale colour, and each dark enough under a white count
TAG_COLOURS = ("#0c8599", "#c2255c", "#5c940d", "#1864ab", "#d9480f", "#862e9c", "#495057")
MARKER_HALF = 5  # half a marker glyph's width, in pixels
GROUP_GAP = 2  # pixels at least between two glyphs or badges: closer, they are one badge
TIP_ROWS = 12  # a badge's tooltip lists this many markers, then says how many more
TIP_CHARS = 90  # of a marker's text in a badge's tooltip (the Alerts panel has all of it)
CURSOR = "#212529"
WHERE_TIP = ("Events are numbered from the session's first, as the status bar, the Inspector and the alerts number "
             "them. Every event the engine reported counts, module calls included; the timeline holds the forward "
             "ops, backward nodes and optimizer steps, so a step to the next one may skip numbers.")
RULER, BAND, MARKS = 16, 22, 14  # row heights in pixels
MIN_SPAN = 8.0  # the narrowest view, in events
EMPTY_TEXT = "No events yet."
GAP_PX = 9  # the width of the break that marks where a damaged tape lost events, in pixels


@dataclass
class MarkerGroup:
    """Markers drawn as one (one marker, or a badge of several), left to right: its span in pixels and its
    markers as (kind, seq, text, tag), in event order."""

    left: float
    right: float
    markers: list[tuple[str, int, str, str]] = field(default_factory=list)

    @property
    def first_seq(self) -> int:
        """The seq a click on it goes to."""
        return self.markers[0][1]


class TimelineView(QWidget):
    """The painted strip; the Timeline widget wraps it with controls. Holds the events and the cursor."""

    cursorMoved = Signal(int)
    followChanged = Signal(bool)
    viewChanged = Signal()
    markerClicked = Signal(str, int)  # (kind, seq) of the marker clicked, the first of a badge

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumHeight(RULER + BAND + MARKS + 6)
        self._seq = np.zeros(0, np.int64)
        self._it = np.zeros(0, np.int64)
        self._ph = np.zeros(0, np.int8)
        self._depth = np.zeros(0, np.int32)  # module depth of each event (0 where none was given)
        self._n = 0
        self.origin = 0  # the seq before the session's first event
        self._runs = np.zeros(0, np.int64)  # indexes where (iteration, phase) changes: band starts
        self._iter_starts = np.zeros(0, np.int64)
        self._markers: dict[str, tuple[np.ndarray, list[str], list[str]]] = {  # seqs, texts, tags
            k: (np.zeros(0, np.int64), [], []) for k in MARKERS}
        self._tag_colours: dict[tuple[str, str], QColor] = {}  # (kind, tag) -> colour, in the order tags came
        self._gaps: tuple[np.ndarray, list[str]] = (np.zeros(0, np.int64), [])  # first lost seqs, tooltips
        self._cursor = -1  # an index into the events, -1: none
        self.at_start = False  # the cursor is before the first event (a replay at its start), not absent
        self._x0, self._x1 = 0.0, 1.0
        self._groups: tuple | None = None  # (what they were made for, marker_groups())
        self._fit = True  # the view follows the data's extent until the person zooms
        self.follow = False
        self.empty_text = EMPTY_TEXT  # what the strip says while it has no events

    # ---- data ---------------------------------------------------------------------------------------
    def set_events(self, seqs, iterations, phases, depths=None) -> None:
        """Replace every event."""
        self._n = 0
        self._runs = np.zeros(0, np.int64)
        self._iter_starts = np.zeros(0, np.int64)
        self._cursor = -1
        self.at_start = False
        self._fit = True
        self.append_events(seqs, iterations, phases, depths)

    def append_events(self, seqs, iterations, phases, depths=None) -> None:
        """Add events after those shown (seqs increasing); `depths` None: all at depth 0."""
        seqs = np.asarray(seqs, np.int64)
        its = np.asarray(iterations, np.int64)
        phs = _phase_codes(phases)
        k = len(seqs)
        deps = np.zeros(k, np.int32) if depths is None else np.asarray(depths, np.int32)
        if not (len(its) == len(phs) == len(deps) == k):
            raise ValueError(f"Timeline: {k} seqs, {len(its)} iterations, {len(phs)} phases and {len(deps)} "
                             f"depths; one of each per event")
        if k == 0:
            self.update()
            return
        n = self._n
        if n + k > len(self._seq):  # grow by doubling, as a list does
            cap = max(1024, 2 * (n + k))
            self._seq, self._it, self._ph, self._depth = (np.resize(a, cap) for a in
                                                          (self._seq, self._it, self._ph, self._depth))
        self._seq[n:n + k], self._it[n:n + k], self._ph[n:n + k], self._depth[n:n + k] = seqs, its, phs, deps
        prev_it = self._it[n - 1] if n else None
        prev_ph = self._ph[n - 1] if n else None
        new_it = np.ones(k, bool)
        new_run = np.ones(k, bool)
        new_it[1:] = its[1:] != its[:-1]
        new_run[1:] = new_it[1:] | (phs[1:] != phs[:-1])
        if n:
            new_it[0] = its[0] != prev_it
            new_run[0] = new_it[0] or phs[0] != prev_ph
        self._runs = np.concatenate([self._runs, n + np.flatnonzero(new_run)])
        self._iter_starts = np.concatenate([self._iter_starts, n + np.flatnonzero(new_it)])
        self._n = n + k
        if self.follow:
            self._cursor = self._n - 1
        if self._fit:
            self._x0, self._x1 = 0.0, self._extent()
        elif self.follow:
            self._keep_visible(self._cursor)
        self.viewChanged.emit()
        self.update()

    @property
    def count(self) -> int:
        """How many events are shown."""
        return self._n

    def seqs(self) -> np.ndarray:
        """The event seqs, in order."""
        return self._seq[:self._n]

    def set_markers(self, kind: str, seqs, texts=(), tags=()) -> None:
        """Replace the markers of one kind (texts: tooltips, tags: what colours them, one per seq, optional)."""
        _check_kind(kind)
        seqs = np.asarray(seqs, np.int64)
        order = np.argsort(seqs, kind="stable")
        texts = list(texts) or [""] * len(seqs)
        tags = list(tags) or [""] * len(seqs)
        self._markers[kind] = (seqs[order], [texts[i] for i in order], [tags[i] for i in order])
        for tag in tags:
            self.tag_colour(kind, tag)
        self.update()

    def add_marker(self, kind: str, seq: int, text: str = "", tag: str = "") -> None:
        """Add one marker."""
        _check_kind(kind)
        seqs, texts, tags = self._markers[kind]
        i = int(np.searchsorted(seqs, seq, side="right"))
        self._markers[kind] = (np.insert(seqs, i, seq), [*texts[:i], text, *texts[i:]], [*tags[:i], tag, *tags[i:]])
        self.tag_colour(kind, tag)
        self.update()

    def clear_markers(self, kind: str | None = None) -> None:
        """Remove the markers of one kind, or all."""
        for k in (MARKERS if kind is None else (kind,)):
            _check_kind(k)
            self._markers[k] = (np.zeros(0, np.int64), [], [])
            self._tag_colours = {key: c for key, c in self._tag_colours.items() if key[0] != k}
        self.update()

    def set_tag_colour(self, kind: str, tag: str, colour: str) -> None:
        """Give a kind's markers of one tag a colour of the caller's (a NaN's alerts the red of NaN elsewhere)."""
        _check_kind(kind)
        self._tag_colours[(kind, tag)] = QColor(colour)
        self.update()

    def tag_colour(self, kind: str, tag: str) -> QColor:
        """The colour of a kind's markers of one tag: the kind's own for its first tag, then TAG_COLOURS in turn."""
        key = (kind, tag)
        if key not in self._tag_colours:
            palette = [QColor(c) for c in (MARKER_COLOURS[kind], *TAG_COLOURS)]
            taken = [c for (k, _), c in self._tag_colours.items() if k == kind]
            free = [c for c in palette if c not in taken] or palette  # more tags than colours: they repeat
            self._tag_colours[key] = free[0] if free is not palette else palette[len(taken) % len(palette)]
        return self._tag_colours[key]

    def markers(self, kind: str) -> np.ndarray:
        """The seqs of the markers of one kind."""
        return self._markers[kind][0].copy()

    def set_gaps(self, seqs, texts=()) -> None:
        """Mark where a damaged tape lost events: `seqs`, the first seq of each stretch lost (texts: tooltips), drawn
        as a hatched break between the events either side of it."""
        seqs = np.asarray(seqs, np.int64)
        order = np.argsort(seqs, kind="stable")
        texts = list(texts) or [""] * len(seqs)
        self._gaps = (seqs[order], [texts[i] for i in order])
        self.update()

    def gaps(self) -> np.ndarray:
        """The first seq of each stretch of events lost (set_gaps)."""
        return self._gaps[0].copy()

    def _gap_xs(self) -> np.ndarray:
        """The x pixel of each gap: the boundary between the events before and after it."""
        return self._x_of(np.searchsorted(self._seq[:self._n], self._gaps[0]).astype(float))

    def _gap_text_at(self, pos) -> str:
        if pos.y() >= RULER + BAND or not len(self._gaps[0]):
            return ""
        near = np.flatnonzero(np.abs(self._gap_xs() - pos.x()) <= GAP_PX / 2 + 2)
        return "\n".join(self._gaps[1][i] or "events lost" for i in near.tolist())

    # ---- cursor -------------------------------------------------------------------------------------
    def cursor_seq(self) -> int | None:
        """The seq under the cursor, or None."""
        return int(self._seq[self._cursor]) if 0 <= self._cursor < self._n else None

    def cursor_index(self) -> int:
        """The cursor's position among the events (-1: none)."""
        return self._cursor

    def describe(self, i: int) -> tuple[int, int, str]:
        """(seq, iteration, phase) of event number i."""
        return int(self._seq[i]), int(self._it[i]), PHASES[int(self._ph[i])]

    def event_number(self, seq: int) -> int:
        """Event `seq` as the session counts its events: the first is 1."""
        return int(seq) - self.origin

    def can_step_back(self) -> bool:
        """Whether an event lies before the cursor."""
        return self._cursor > 0

    def step_back(self, over: bool = False) -> bool:
        """Move the cursor to the event before it (`over`: the latest before it at its module depth or
        shallower, over the inside of nested module calls), as the person's move; whether it moved."""
        i = self._cursor
        if i <= 0:
            return False
        j = i - 1
        if over:
            shallower = np.flatnonzero(self._depth[:i] <= self._depth[i])
            j = int(shallower[-1]) if len(shallower) else 0
        self._move_to(j)
        return True

    def set_cursor(self, seq: int | None) -> None:
        """Put the cursor on the last event at or before `seq` (None: no cursor; before the first event:
        at the start, `at_start`); emits nothing."""
        if seq is None or not self._n:
            self._cursor = -1
        else:  # -1 before the first event: a replay there has not reached it, so it is not shown as reached
            self._cursor = int(np.searchsorted(self._seq[:self._n], seq, side="right")) - 1
            self._keep_visible(self._cursor)
        self.at_start = self._cursor < 0 and seq is not None and self._n > 0
        self.update()

    def set_follow(self, on: bool) -> None:
        """Follow the newest event (live sessions)."""
        if on == self.follow:
            return
        self.follow = on
        if on and self._n:
            self._cursor = self._n - 1
            self.at_start = False
            self._keep_visible(self._cursor)
            self.update()
        self.followChanged.emit(on)

    def move_to_seq(self, seq: int) -> bool:
        """Move the cursor to the last event at or before `seq` (the first, before it), as the person's move;
        whether there is an event to move to."""
        if not self._n:
            return False
        self._move_to(max(int(np.searchsorted(self._seq[:self._n], seq, side="right")) - 1, 0))
        return True

    def iteration_start(self, iteration: int) -> int | None:
        """The seq of the first event of `iteration`, or of the first iteration after it that holds one; None
        past the last."""
        starts = self._iter_starts
        j = int(np.searchsorted(self._it[starts], iteration, side="left")) if len(starts) else 0
        return int(self._seq[starts[j]]) if j < len(starts) else None

    def _move_to(self, i: int) -> None:
        """The person moved the cursor to event i."""
        if not self._n:
            return
        i = min(max(i, 0), self._n - 1)
        if self.follow and i != self._n - 1:
            self.set_follow(False)
        self.at_start = False
        if i != self._cursor:
            self._cursor = i
            self._keep_visible(i)
            self.update()
            self.cursorMoved.emit(int(self._seq[i]))

    # ---- view ---------------------------------------------------------------------------------------
    def view_range(self) -> tuple[float, float]:
        """The events shown, as a range of positions [x0, x1)."""
        return self._x0, self._x1

    def set_view(self, x0: float, x1: float) -> None:
        """Show positions x0..x1 (clamped to the data); stops fitting everything."""
        total = self._extent()
        span = min(max(x1 - x0, MIN_SPAN), total)
        x0 = min(max(x0, 0.0), total - span)
        self._x0, self._x1 = x0, x0 + span
        self._fit = span >= total
        self.viewChanged.emit()
        self.update()

    def fit(self) -> None:
        """Show every event."""
        self._fit = True
        self._x0, self._x1 = 0.0, self._extent()
        self.viewChanged.emit()
        self.update()

    def _extent(self) -> float:
        """The width of everything: the events plus a margin, so a cursor on the last one shows."""
        return max(self._n * 1.01 + 1.0, MIN_SPAN)

    def _keep_visible(self, i: int) -> None:
        if i < 0 or self._fit:
            return
        span = self._x1 - self._x0
        if i < self._x0:
            self.set_view(i - span * 0.1, i - span * 0.1 + span)
        elif i + 1 > self._x1:
            self.set_view(i + 1 - span * 0.9, i + 1 + span * 0.1)

    def event_x(self, i: int) -> float:
        """The x pixel of the middle of event number i."""
        return float(self._x_of(i + 0.5))

    def _x_of(self, pos) -> np.ndarray | float:
        return (pos - self._x0) * self.width() / (self._x1 - self._x0)

    def _pos_of(self, x: float) -> int:
        return int(np.floor(self._x0 + x * (self._x1 - self._x0) / max(self.width(), 1)))

    # ---- input --------------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            group = self._group_at(event.position())  # a marker, or the first of a badge: not the event under it
            if group is not None:
                self._move_to(int(self._marker_pos(np.array([group.first_seq]))[0]))
                kind, seq, _text, _tag = group.markers[0]
                self.markerClicked.emit(kind, int(seq))
            else:
                self._move_to(self._pos_of(event.position().x()))

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._move_to(self._pos_of(event.position().x()))
            return
        tip = self._marker_text_at(event.position()) or self._gap_text_at(event.position())
        if tip:
            QToolTip.showText(event.globalPosition().toPoint(), tip, self)
        else:
            QToolTip.hideText()

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120
        if not steps or not self._n:
            return
        anchor = self._x0 + event.position().x() * (self._x1 - self._x0) / max(self.width(), 1)
        factor = 0.8 ** steps
        self.set_view(anchor - (anchor - self._x0) * factor, anchor + (self._x1 - anchor) * factor)

    def keyPressEvent(self, event) -> None:
        key, i = event.key(), self._cursor
        if key == Qt.Key.Key_Right:
            self._move_to(i + 1)
        elif key == Qt.Key.Key_Left:
            self._move_to(i - 1 if i >= 0 else 0)
        elif key == Qt.Key.Key_Home:
            self._move_to(0)
        elif key == Qt.Key.Key_End:
            self._move_to(self._n - 1)
        elif key in (Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
            self._move_to(self._iteration_step(i, key == Qt.Key.Key_PageDown))
        else:
            super().keyPressEvent(event)

    def _iteration_step(self, i: int, forward: bool) -> int:
        """The first event of the next iteration, or of this one (of the previous when already there)."""
        starts = self._iter_starts
        if not len(starts):
            return i
        if forward:
            j = int(np.searchsorted(starts, i, side="right"))
            return int(starts[j]) if j < len(starts) else self._n - 1
        j = int(np.searchsorted(starts, i, side="left")) - 1
        return int(starts[max(j, 0)])

    def marker_groups(self) -> list[MarkerGroup]:
        """The markers in view as drawn, left to right: those whose glyphs would overlap at this zoom are one
        group (a badge with their count), so none is drawn over another. Made again only when the view, the width,
        the events or the markers changed (each change of markers makes new arrays): a live run paints and the
        pointer hovers far more often."""
        n = self._n
        key = (self._x0, self._x1, self.width(), n, int(self._seq[0]) if n else 0, int(self._seq[n - 1]) if n else 0,
               *(id(self._markers[kind][0]) for kind in MARKERS))
        if self._groups is None or self._groups[0] != key:
            self._groups = (key, self._group_markers())
        return self._groups[1]

    def _group_markers(self) -> list[MarkerGroup]:
        found = []  # (x, kind order, seq, kind, text, tag)
        for order, kind in enumerate(MARKERS):
            seqs, texts, tags = self._markers[kind]
            if not len(seqs) or not self._n:
                continue
            xs = self._x_of(self._marker_pos(seqs) + 0.5)
            for j in np.flatnonzero((xs >= -MARKER_HALF) & (xs <= self.width() + MARKER_HALF)).tolist():
                found.append((float(xs[j]), order, int(seqs[j]), kind, texts[j], tags[j]))
        found.sort(key=lambda m: m[:3])
        metrics = QFontMetricsF(self._badge_font())
        groups: list[MarkerGroup] = []
        for x, _order, seq, kind, text, tag in found:
            last = groups[-1] if groups else None
            if last is not None and x - MARKER_HALF < last.right + GROUP_GAP:
                last.markers.append((kind, seq, text, tag))
                count = f"{len(last.markers)}"  # the badge is as wide as its count, and as its markers spread
                last.right = max(x + MARKER_HALF, last.left + metrics.horizontalAdvance(count) + 8)
            else:
                groups.append(MarkerGroup(x - MARKER_HALF, x + MARKER_HALF, [(kind, seq, text, tag)]))
        return groups

    def _group_at(self, pos) -> MarkerGroup | None:
        """The marker or badge under `pos` (in the markers' row), or None."""
        if pos.y() < RULER + BAND:
            return None
        x = pos.x()
        return next((g for g in self.marker_groups() if g.left - GROUP_GAP <= x <= g.right + GROUP_GAP), None)

    def _marker_text_at(self, pos) -> str:
        group = self._group_at(pos)
        if group is None:
            return ""
        if len(group.markers) == 1:
            kind, seq, text, tag = group.markers[0]
            about = f"{tag}: {text}" if tag else text
            return f"{kind} at event {self._marked_event(seq):,}" + (f": {about}" if about else "")
        return self._group_tip(group)

    def _group_tip(self, group: MarkerGroup) -> str:
        """A badge's tooltip: how many markers of which kinds, then one row each (the first TIP_ROWS)."""
        kinds: dict[str, int] = {}
        for kind, *_ in group.markers:
            kinds[kind] = kinds.get(kind, 0) + 1
        head = ", ".join(f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in kinds.items())
        pos = self._marker_pos(np.array([m[1] for m in group.markers]))
        first, last = (f"{int(self._it[i])}" for i in (pos[0], pos[-1]))
        rows = [f"<b>{head}</b>, iteration {first}" + (f"\u2013{last}" if last != first else "")
                + " (a click goes to the first)"]
        for (kind, seq, text, tag), i in zip(group.markers[:TIP_ROWS], pos.tolist()):
            glyph = MARKER_GLYPHS[kind]
            about = text.split("\n", 1)[0]
            about = about if len(about) <= TIP_CHARS else about[:TIP_CHARS - 1] + "\u2026"
            rows.append(f"<span style='color:{self.tag_colour(kind, tag).name()}'>{glyph}</span>&nbsp;"
                        f"{html.escape(tag or kind)} \u00b7 event {self._marked_event(seq):,} \u00b7 iteration "
                        f"{int(self._it[i])}" + (f": {html.escape(about)}" if about else ""))
        if len(group.markers) > TIP_ROWS:
            rows.append(f"\u2026 and {len(group.markers) - TIP_ROWS} more: zoom in to tell them apart")
        return "<br>".join(f"<nobr>{row}</nobr>" for row in rows)  # a row a line: wrapped, they ran together

    def _marked_event(self, seq: int) -> int:
        """The number of the event a marker sits on, which a click on it moves to and the label then names (an
        alert's own seq comes after the op that raised it, one more)."""
        return self.event_number(int(self._seq[int(self._marker_pos(np.array([seq]))[0])])) if self._n else \
            self.event_number(seq)

    def _marker_pos(self, seqs: np.ndarray) -> np.ndarray:
        """Positions of seqs among the events (a marker between two events sits on the earlier one)."""
        return np.maximum(np.searchsorted(self._seq[:self._n], seqs, side="right") - 1, 0)

    # ---- painting -----------------------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(600, RULER + BAND + MARKS + 8)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        w, h = self.width(), self.height()
        pal = self.palette()
        p.fillRect(0, 0, w, h, pal.color(QPalette.ColorRole.Base))
        text = pal.color(QPalette.ColorRole.Text)
        if not self._n:
            p.setPen(QColor(pick(MUTED_TEXT, pal)))
            p.drawText(QRectF(0, 0, w, h), Qt.AlignmentFlag.AlignCenter, self.empty_text)
            return
        band_top = RULER
        self._paint_bands(p, band_top, w)
        self._paint_ruler(p, w, text)
        self._paint_gaps(p, pal)
        self._paint_markers(p, band_top + BAND + 1)
        # the cursor is the darkest mark on a light strip, the lightest on a dark one
        self._paint_cursor(p, h, text if is_dark(pal) else QColor(CURSOR))
        if self.hasFocus():
            p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 1))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(0, 0, w - 1, h - 1)

    def _visible_runs(self, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(left pixel, right pixel, phase) of the bands in view, at most one per pixel column."""
        runs = self._runs
        ends = np.append(runs[1:], self._n)
        keep = (ends > self._x0) & (runs < self._x1)
        runs, ends = runs[keep], ends[keep]
        left = np.floor(self._x_of(runs)).astype(np.int64)
        right = np.ceil(self._x_of(ends)).astype(np.int64)
        if len(left) > w:  # many runs per pixel: keep the last run starting in each pixel column
            last = np.append(left[1:] != left[:-1], True)
            runs, left, right = runs[last], left[last], right[last]
        return np.clip(left, 0, w), np.clip(right, 0, w), self._ph[runs]

    def _paint_bands(self, p: QPainter, top: int, w: int) -> None:
        left, right, phase = self._visible_runs(w)
        p.setPen(Qt.PenStyle.NoPen)
        colours = [QColor(c) for c in PHASE_COLOURS]
        # optimizer steps last, and up to 3 px wide: a one-event step must not vanish under its neighbours,
        # nor, where iterations are a few pixels wide, paint over them and make the strip look all optimizer
        order = np.argsort(phase == PHASE_CODE[OPTIMIZER], kind="stable")
        step_width = int(min(max(self._iteration_pixels() // 4, 1), 3))
        for x0, x1, ph in zip(left[order].tolist(), right[order].tolist(), phase[order].tolist()):
            p.fillRect(x0, top, max(x1 - x0, step_width if ph == 2 else 1), BAND, colours[ph])
        per_event = w / (self._x1 - self._x0)
        if per_event >= 6:  # zoomed in far enough to tell events apart: one tick each
            first = max(int(self._x0), 0)
            xs = self._x_of(np.arange(first, min(int(np.ceil(self._x1)), self._n) + 1))
            p.setPen(QPen(QColor(255, 255, 255, 150), 1))
            for x in xs.tolist():
                p.drawLine(int(x), top + BAND - 6, int(x), top + BAND - 1)

    def _paint_gaps(self, p: QPainter, pal: QPalette) -> None:
        """Each stretch of lost events as a hatched break across the ruler and the bands, GAP_PX wide whatever the
        zoom: the events it held have no place on the strip."""
        xs = self._gap_xs()
        colour = QColor(pick(MUTED_TEXT, pal))  # nothing is known there, good or bad: as the plots hatch it
        for x in xs[(xs >= -GAP_PX) & (xs <= self.width() + GAP_PX)].tolist():
            rect = QRectF(x - GAP_PX / 2, RULER - 6, GAP_PX, BAND + 6)
            p.fillRect(rect, pal.color(QPalette.ColorRole.Base))
            p.fillRect(rect, QBrush(colour, Qt.BrushStyle.BDiagPattern))
            p.setPen(QPen(colour, 1))
            p.drawLine(QPointF(rect.left(), rect.top()), QPointF(rect.left(), rect.bottom()))
            p.drawLine(QPointF(rect.right(), rect.top()), QPointF(rect.right(), rect.bottom()))

    def _iteration_pixels(self) -> float:
        """The mean width of the iterations in view, in pixels."""
        starts = self._iter_starts
        shown = int(np.count_nonzero((starts >= self._x0) & (starts < self._x1))) + 1
        return self.width() * min(self._n, self._x1 - self._x0) / (self._x1 - self._x0) / shown

    def _paint_ruler(self, p: QPainter, w: int, text: QColor) -> None:
        starts = self._iter_starts
        starts = starts[(starts >= np.floor(self._x0) - 1) & (starts < self._x1)]
        xs = self._x_of(starts)
        if len(xs) > w // 4:  # thousands of iterations in view: one line per 4 pixels is all that shows
            _, keep = np.unique((xs // 4).astype(np.int64), return_index=True)
            starts, xs = starts[keep], xs[keep]
        font = self._ruler_font()
        p.setFont(font)
        grid = QColor(text)
        grid.setAlpha(90)
        p.setPen(QPen(grid, 1))
        for x in xs.tolist():
            p.drawLine(int(x), RULER - 4, int(x), RULER + BAND)
        p.setPen(text)
        for x, label in self._ruler_labels(starts, xs, w, QFontMetricsF(font)):
            p.drawText(QPointF(x + 3, RULER - 4), label)

    def _ruler_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF() * 0.8, 7))
        return font

    def _ruler_labels(self, starts, xs, w: int, metrics: QFontMetricsF) -> list[tuple[float, str]]:
        """(x, "it N") of the iteration starts that get a label: 44 px apart at least, each drawn whole."""
        labels, last = [], -1e9
        for i, x in zip(starts.tolist(), xs.tolist()):
            label = f"it {self._it[i]}"
            if x - last >= 44 and x + 3 + metrics.horizontalAdvance(label) <= w:
                labels.append((x, label))
                last = x
        return labels

    def _badge_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF() * 0.75, 6.5))
        font.setBold(True)
        return font

    def _paint_markers(self, p: QPainter, top: int) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setFont(self._badge_font())
        for group in self.marker_groups():
            if len(group.markers) == 1:
                kind, _seq, _text, tag = group.markers[0]
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(self.tag_colour(kind, tag))
                p.drawPath(_glyph(kind, group.left + MARKER_HALF, top + 2))
            else:
                self._paint_badge(p, group, top + 1)

    def _paint_badge(self, p: QPainter, group: MarkerGroup, top: float) -> None:
        """A rounded badge with the group's count, its markers' colours side by side in it (in the order they
        first come), so a badge of alerts of two kinds shows both."""
        colours: list[QColor] = []
        for kind, _seq, _text, tag in group.markers:
            colour = self.tag_colour(kind, tag)
            if colour not in colours:
                colours.append(colour)
        rect = QRectF(group.left, top, group.right - group.left, 12)
        outline = QPainterPath()
        outline.addRoundedRect(rect, 4, 4)
        p.save()
        p.setClipPath(outline)
        p.setPen(Qt.PenStyle.NoPen)
        width = rect.width() / len(colours)
        for k, colour in enumerate(colours):
            p.fillRect(QRectF(rect.left() + k * width, rect.top(), width + 1, rect.height()), colour)
        p.restore()
        p.setPen(QPen(QColor(0, 0, 0, 90), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(outline)
        p.setPen(QColor("#ffffff"))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, f"{len(group.markers)}")

    def _paint_cursor(self, p: QPainter, h: int, colour: QColor) -> None:
        if self.at_start:
            x = float(self._x_of(0.0))  # on the left edge of the first event: not on it yet
        elif 0 <= self._cursor < self._n:
            x = float(self._x_of(self._cursor + 0.5))
        else:
            return
        if not -2 <= x <= self.width() + 2:
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(colour, 2))
        p.drawLine(QPointF(x, RULER - 2), QPointF(x, h))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        handle = (QPointF(x - 5, RULER - 8), QPointF(x + 5, RULER - 8), QPointF(x, RULER - 1))
        p.drawPolygon(QPolygonF(list(handle)))


def _glyph(kind: str, x: float, y: float) -> QPainterPath:
    """A marker's shape: a dot for breakpoints, a triangle for alerts, a diamond for edits."""
    path = QPainterPath()
    if kind == "breakpoint":
        path.addEllipse(QPointF(x, y + 5), 4.5, 4.5)
    elif kind == "alert":
        path.addPolygon(QPolygonF([QPointF(x, y), QPointF(x + 5, y + 10), QPointF(x - 5, y + 10)]))
    else:
        path.addPolygon(QPolygonF([QPointF(x, y), QPointF(x + 5, y + 5), QPointF(x, y + 10),
                                   QPointF(x - 5, y + 5)]))
    path.closeSubpath()
    return path


def _phase_codes(phases) -> np.ndarray:
    phases = list(phases) if not isinstance(phases, np.ndarray) else phases
    if len(phases) and isinstance(phases[0], str):
        try:
            return np.array([PHASE_CODE[ph] for ph in phases], np.int8)
        except KeyError as err:
            raise ValueError(f"Timeline: unknown phase {err.args[0]!r}; "
                             f"expected one of {', '.join(PHASES)}") from None
    return np.asarray(phases, np.int8)


def _check_kind(kind: str) -> None:
    if kind not in MARKERS:
        raise ValueError(f"Timeline: marker kind must be one of {', '.join(MARKERS)}, got {kind!r}")


class Timeline(QWidget):
    """The timeline with its controls; the API is TimelineView's (see the module docstring)."""

    cursorMoved = Signal(int)
    followChanged = Signal(bool)
    markerClicked = Signal(str, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 4, 6, 4)
        box.setSpacing(3)
        bar = QHBoxLayout()
        bar.setSpacing(8)
        self.follow_button = QToolButton()
        self.follow_button.setText("Follow head")
        self.follow_button.setCheckable(True)
        self.follow_button.setToolTip("Keep the cursor on the newest event")
        self.follow_button.setStyleSheet("QToolButton:checked { background: rgba(28, 126, 214, 90); "
                                         "border: 1px solid #1c7ed6; border-radius: 3px; padding: 2px 4px; }")
        self.fit_button = QToolButton()
        self.fit_button.setText("Fit")
        self.fit_button.setToolTip("Show every event")
        self.where = ElidedLabel()  # a long position must not widen the bottom row and squeeze the side docks
        self.legend = _legend(names=len(PHASES) + len(MARKERS))
        # narrower: the phases over the markers, every one named, in the bar's height (beside the Model Builder at
        # a scale factor of 1.5 the one line gave way to bare swatches)
        self.stacked_legend = _legend(names=len(PHASES) + len(MARKERS), stacked=True)
        self.short_legend = _legend(names=0)  # narrower still: swatches, their names in a tooltip
        bar.addWidget(self.follow_button)
        bar.addWidget(self.fit_button)
        bar.addWidget(self.where, 1)
        for legend in (self.legend, self.stacked_legend, self.short_legend):
            bar.addWidget(legend)
        box.addLayout(bar)
        self._bar = bar
        self.view = TimelineView()
        self.scroll = QScrollBar(Qt.Orientation.Horizontal)
        box.addWidget(self.view, 1)
        box.addWidget(self.scroll)
        self.setFocusProxy(self.view)
        self.view.cursorMoved.connect(self.cursorMoved)
        self.view.markerClicked.connect(self.markerClicked)
        self.view.cursorMoved.connect(lambda _seq: self._show_where())
        self.view.followChanged.connect(self._follow_changed)
        self.view.viewChanged.connect(self._sync_scroll)
        self.follow_button.toggled.connect(self.view.set_follow)
        self.fit_button.clicked.connect(self.view.fit)
        self.scroll.valueChanged.connect(self._scrolled)
        self._syncing = False
        self.set_live(False)
        self._show_where()
        self._sync_scroll()

    # ---- the API (see the module docstring) --------------------------------------------------------
    def set_events(self, seqs, iterations, phases, depths=None) -> None:
        """Replace every event."""
        self.view.set_events(seqs, iterations, phases, depths)
        self._show_where()

    def append_events(self, seqs, iterations, phases, depths=None) -> None:
        """Add events after those shown: the position's count and the newest iteration change too."""
        self.view.append_events(seqs, iterations, phases, depths)
        self._show_where()

    def add_records(self, records) -> None:
        """Add engine.debug records (OpRecord, BackwardRecord, EventRecord); module boundaries are skipped."""
        steps = [r for r in records if not (r.__class__ is EventRecord and r.phase != OPTIMIZER)]
        if steps:
            self.append_events([r.seq for r in steps], [r.iteration for r in steps], [r.phase for r in steps],
                               [r.depth for r in steps])

    def set_origin(self, seq: int) -> None:
        """The seq before the session's first event: the event numbers shown count from it (the engine numbers
        the events of the whole process, so a Restart's first event was number 67,224)."""
        self.view.origin = int(seq)
        self._show_where()

    def event_number(self, seq: int) -> int:
        """Event `seq` as the timeline numbers it (the session's first is 1)."""
        return self.view.event_number(seq)

    def can_step_back(self) -> bool:
        """Whether an event lies before the cursor."""
        return self.view.can_step_back()

    def step_back(self, over: bool = False) -> bool:
        """The cursor to the event before it (`over`: over nested module calls), emitting cursorMoved."""
        return self.view.step_back(over)

    def go_to_start(self) -> bool:
        """The cursor to the first event, as the person's move (Home); whether there is one."""
        return self.view.move_to_seq(-1)

    def go_to_end(self) -> bool:
        """The cursor to the newest event, as the person's move (End): a live run's is where it stands, so the
        cursor follows it again from there."""
        moved = self.view.move_to_seq(1 << 62)
        if moved and not self.follow_button.isHidden():
            self.view.set_follow(True)
        return moved

    def go_to_event(self, number: int) -> bool:
        """The cursor to event `number` as the session numbers its events (the status bar, the inspector), or the
        event before it that the timeline holds (a module call is not one); whether there is one."""
        return self.view.move_to_seq(int(number) + self.view.origin)

    def go_to_iteration(self, iteration: int) -> bool:
        """The cursor to the first event of `iteration` (or of the next one held); False past the last."""
        seq = self.view.iteration_start(iteration)
        return seq is not None and self.view.move_to_seq(seq)

    def position(self) -> tuple[int, int] | None:
        """(iteration, event number) of the event under the cursor, or None without a cursor."""
        v = self.view
        i = v.cursor_index()
        if i < 0:
            return None
        seq, it, _ = v.describe(i)
        return it, v.event_number(seq)

    def bounds(self) -> tuple[int, int, int, int] | None:
        """(first iteration, last iteration, first event number, last event number) of the events held, or
        None without any: what Go to Iteration or Event offers."""
        v = self.view
        if not v.count:
            return None
        (first, it0, _), (last, it1, _) = v.describe(0), v.describe(v.count - 1)
        return it0, it1, v.event_number(first), v.event_number(last)

    def set_markers(self, kind: str, seqs, texts=(), tags=()) -> None:
        """Replace the markers of one kind (breakpoint, alert, edit)."""
        self.view.set_markers(kind, seqs, texts, tags)

    def add_marker(self, kind: str, seq: int, text: str = "", tag: str = "") -> None:
        """Add one marker."""
        self.view.add_marker(kind, seq, text, tag)

    def set_tag_colour(self, kind: str, tag: str, colour: str) -> None:
        """Colour a kind's markers of one tag (before they come, or they are coloured in turn)."""
        self.view.set_tag_colour(kind, tag, colour)

    def clear_markers(self, kind: str | None = None) -> None:
        """Remove the markers of one kind, or all."""
        self.view.clear_markers(kind)

    def set_gaps(self, seqs, texts=()) -> None:
        """Mark where a damaged tape lost events: the first seq of each stretch lost, with tooltips."""
        self.view.set_gaps(seqs, texts)

    def set_empty_text(self, text: str) -> None:
        """What the strip says while it has no events ("No events yet.", or why there will be none)."""
        self.view.empty_text = text
        self.view.update()

    def set_cursor(self, seq: int | None) -> None:
        """Show the cursor at `seq` without emitting cursorMoved."""
        self.view.set_cursor(seq)
        self._show_where()

    def cursor_seq(self) -> int | None:
        """The seq under the cursor."""
        return self.view.cursor_seq()

    def set_follow(self, on: bool) -> None:
        """Follow the newest event."""
        self.view.set_follow(on)

    def following(self) -> bool:
        """Whether the cursor follows the newest event."""
        return self.view.follow

    def set_live(self, live: bool) -> None:
        """A live session offers follow mode; a replay does not."""
        self.follow_button.setVisible(live)
        if not live:
            self.view.set_follow(False)
        self._fit_bar()

    def clear(self) -> None:
        """No events, no markers, no cursor."""
        self.view.set_events([], [], [])
        self.view.origin = 0
        self.view.clear_markers()
        self.view.set_gaps([])
        self.set_empty_text(EMPTY_TEXT)
        self.view.fit()
        self._show_where()

    def where_text(self) -> str:
        """The position as the bar says it (whole, however much of it shows)."""
        return self.where.text()

    # ---- keeping the controls in step ---------------------------------------------------------------
    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_bar()

    def _fit_bar(self) -> None:
        """The position whole beside the widest legend that fits: the legend's line folds in two, then drops its
        names, then goes, before the position is cut (a long position had left the legend bare colour squares,
        and a long count read "step 23,903/23,903 \u00b7 ev\u2026")."""
        spacing = self._bar.spacing()
        margins = self.layout().contentsMargins()
        room = self.width() - margins.left() - margins.right()
        room -= sum(b.sizeHint().width() + spacing for b in (self.follow_button, self.fit_button)
                    if not b.isHidden())
        room -= self.where.fontMetrics().horizontalAdvance(self.where.text()) + 4 + spacing
        legends = (self.legend, self.stacked_legend, self.short_legend)  # widest first
        shown = next((legend for legend in legends if legend.sizeHint().width() <= room), None)
        for legend in legends:
            legend.setVisible(legend is shown)

    def _follow_changed(self, on: bool) -> None:
        self.follow_button.blockSignals(True)
        self.follow_button.setChecked(on)
        self.follow_button.blockSignals(False)
        self._show_where()
        self.followChanged.emit(on)

    def _show_where(self) -> None:
        """The cursor's position, and the newest event's: where a live run is now, however far back the
        cursor was moved. Counted in events, numbered as the status bar, the inspector and the alerts number
        them: a count of the timeline's own steps beside them ("step 140,113/172,162" at "event 274,947") read
        as two positions."""
        v = self.view
        i, n = v.cursor_index(), v.count
        dot = " \u00b7 "
        last = v.event_number(v.describe(n - 1)[0]) if n else 0
        if i < 0 and v.at_start:
            text = f"start{dot}before event {v.event_number(v.describe(0)[0]):,}/{last:,}"
        elif i < 0:
            text = f"{last:,} events" if n else ""
        else:  # "of" the newest: where the live run is, or the end of the tape
            seq, it, phase = v.describe(i)
            text = f"iteration {it}/{v.describe(n - 1)[1]}{dot}{phase}{dot}event {v.event_number(seq):,}/{last:,}"
        self.where.setText(text)
        if n:
            self.where.setToolTip(f"{text}\n{WHERE_TIP}\nThe timeline holds {n:,} of them"
                                  + (f", the cursor on number {i + 1:,}." if i >= 0 else "."))
        self._fit_bar()

    def _sync_scroll(self) -> None:
        x0, x1 = self.view.view_range()
        total = max(self.view.count, 1)
        span = max(int(x1 - x0 + 0.5), 1)
        self._syncing = True
        self.scroll.setRange(0, max(total - span, 0))
        self.scroll.setPageStep(span)
        self.scroll.setSingleStep(max(span // 20, 1))
        self.scroll.setValue(int(x0 + 0.5))
        self._syncing = False
        self.scroll.setVisible(span < total)

    def _scrolled(self, value: int) -> None:
        if not self._syncing:
            x0, x1 = self.view.view_range()
            self.view.set_view(value, value + (x1 - x0))


def _legend(names: int, stacked: bool = False) -> QLabel:
    """The phases' colours and the markers' shapes, the first `names` of them named (the rest named in a
    tooltip): the phases' colours are what cannot be guessed; a marker's tooltip on the strip says what it is.
    `stacked`: the markers on a line under the phases."""
    glyphs = [(c, "\u25a0", n) for c, n in zip(PHASE_COLOURS, PHASES)]
    glyphs += [(MARKER_COLOURS[k], MARKER_GLYPHS[k], k) for k in MARKERS]
    parts = [f"<span style='color:{c}'>{g}</span>" + (f"&nbsp;{n}" if i < names else "")
             for i, (c, g, n) in enumerate(glyphs)]
    gaps = ["&nbsp;&nbsp;" if i < names else "&nbsp;" for i in range(len(parts) - 1)]
    if stacked:
        gaps[len(PHASES) - 1] = "<br>"
    text = "".join(part + gap for part, gap in zip(parts, [*gaps, ""], strict=True))
    # two lines about as tall as the bar's buttons (a little closer than rich text sets them; closer, a "p" was cut)
    label = QLabel(f"<div style='line-height:90%'>{text}</div>" if stacked else text)
    tint(label, MUTED_TEXT)
    font = label.font()  # a key to the strip, not news: a size smaller than the position beside it
    font.setPointSizeF(font.pointSizeF() * 0.9)
    label.setFont(font)
    label.setMinimumWidth(1)  # the timeline hides it where it does not fit: it must not hold the dock wide
    if names < len(glyphs):
        label.setToolTip("<br>".join(f"<span style='color:{c}'>{g}</span>&nbsp;{n}" for c, g, n in glyphs))
    return label
