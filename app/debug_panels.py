"""The window's debugging panels wired to the session: tensor inspector, timeline, breakpoints, module
editor with undo/redo, training plots and the gradient-flow chart.

    panels = DebugPanels(window)     # after the window built its docks and actions
    panels.start(session); panels.on_change(change); panels.show_node(info); panels.shutdown()

Every panel takes plain data from the session (summaries, records, events); values and module
descriptions are produced off the GUI thread (app.inspect_worker; the engine thread for the model).
Scrubbing a live run's timeline back does not stop it: the panels show the records the session still
keeps (app.session.HISTORY of them) for the node at the cursor, while the graph keeps the latest values.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

from PySide6.QtCore import QObject, QTimer

import engine.tape
from app.edit_history import EditHistory, describe_edit
from app.graph_model import OP, breakpoint_marks, engine_key, shape_text
from app.inspect_worker import InspectWorker
from app.moments import backward_after, consumer_of, kept_from_start, moment_of
from app.replay import ReplaySession
from app.session import LiveSession, NodeInfo, alert_name, another_op
from engine.debug import BackwardRecord, Breakpoint, OpRecord
from engine.debug.breakpoints import CONDITIONS, tripped
from engine.debug.node_names import script_named
from engine.debug.records import source_of
from engine.debug.source import SourceFrame
from widgets.breakpoints_panel import describe
from widgets.module_tree import module_path
from widgets.theme import ERROR_TEXT

NONFINITE_MARK = ERROR_TEXT[0]  # a NaN's alert on the timeline
MASK_NOTE = "its \u2212Inf are a mask, not a fault: the softmax it feeds turns them into zeros (an attention mask)"
# what the timeline and the loss plot say of a damaged tape none of whose events can be read
NO_EVENTS_TIMELINE = "No event of this tape can be read: it is damaged (the banner says what survived)."
NO_EVENTS_LOSS = "no loss: the events it comes from cannot be read (a damaged tape)"


class DebugPanels(QObject):
    """Connects the window's debugging widgets to its session (see the module docstring)."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.w = window
        self.worker = InspectWorker(self)
        self.history = EditHistory()
        self._sent: deque = deque()  # edits sent, in order: their EditEvents come back in the same order
        self._plotted = -1  # the newest iteration the training plots hold
        self._shown: NodeInfo | None = None
        # the op and backward records the inspector shows instead of the node's latest (an alert's iteration, a
        # live run's timeline scrubbed back), or None
        self._recorded: tuple[OpRecord | None, BackwardRecord | None] | None = None
        self._note = ""  # why the inspector shows the node's latest output, not the moment asked for
        self._moment: tuple | None = None  # (engine key, seq, the session's last record) of the alert clicked last
        self._at = 0  # the seq of the moment the recorded records are shown for: the timeline's cursor, or an alert's
        self._later: BackwardRecord | None = None  # the backward of the op shown that ran after that moment
        # a paused live run's timeline scrubbed back: the event whose moment a node picked is shown as of (None: now)
        self._view_at: int | None = None
        self._grad_now = True  # whether a live parameter's gradient now is the one the inspector shows
        self._backwards: dict[int, BackwardRecord | None] = {}  # a replay's op seq -> its backward read ahead on tape
        self._session = None  # the session the panels show
        self._stop_note = ""  # the status note naming the breakpoint of the current stop
        self._stop_selected: int | None = None  # the breakpoint selected because it stopped the run
        self._unshown: list = []  # live records the timeline has yet to take (each take repaints it)
        self._chance_curves = 0  # how many training curves the chance levels were found for
        # what F9 acts on: ("node", key) or ("module", call), whichever the person picked last (None: nothing)
        self._picked: tuple[str, str] | None = None
        self._selected_node = ""  # the graph's selection, to tell a new pick from a selection put back
        w = window
        w.inspector.fetchRequested.connect(lambda: self._fetch(self._shown))
        self.worker.ready.connect(self._values_ready)
        self.worker.failed.connect(self._values_failed)
        w.timeline.cursorMoved.connect(self._cursor_moved)
        # an alert's marker clicked: its row in the Alerts panel, as a click on the row moves the timeline
        w.timeline.markerClicked.connect(lambda kind, seq: kind == "alert" and w.alerts_panel.show_at(seq))
        bp = w.breakpoints
        bp.addRequested.connect(lambda spec: self._breakpoints(lambda d: d.add_breakpoint(spec), spec))
        bp.replaceRequested.connect(lambda bid, spec: self._breakpoints(
            lambda d: (d.remove_breakpoint(bid), d.add_breakpoint(spec)), spec))
        bp.removeRequested.connect(lambda bid: self._breakpoints(lambda d: d.remove_breakpoint(bid)))
        bp.enableRequested.connect(lambda bid, on: self._breakpoints(lambda d: d.enable_breakpoint(bid, on)))
        bp.namesWanted.connect(self._offer_names)
        w.canvas.selectionChanged.connect(self._node_selected)
        w.canvas.nodeClicked.connect(lambda key: self._pick(("node", key)))
        w.module_tree.moduleSelected.connect(lambda call: self._pick(("module", call)))
        w.module_editor.editRequested.connect(self.request_edit)
        w.actions["undo"].triggered.connect(self.undo)
        w.actions["redo"].triggered.connect(self.redo)
        w.actions["toggle_breakpoint"].triggered.connect(self.toggle_breakpoint)
        w.training_plots.iterationClicked.connect(self._iteration_clicked)
        self._update_edit_actions()

    # ---- sessions ---------------------------------------------------------------------------------
    def start(self, session) -> None:
        """Empty every panel for a new session; a replay's timeline, alerts and edits come from its tape.

        A live run of the same target as the one before (Restart, or the same script opened again) gets
        that run's breakpoints, enabled or not, with no hits yet."""
        w = self.w
        live = isinstance(session, LiveSession)
        before, self._session = self._session, session
        if live and isinstance(before, LiveSession) and before.target == session.target:
            for info in before.debugger.list_breakpoints():
                bid = session.debugger.add_breakpoint(info.spec)
                if not info.enabled:
                    session.debugger.enable_breakpoint(bid, False)
        w.status_panel.set_note("")  # a note on the run before ("Edit queued: ...") is not about this one
        self.worker.cancel()
        self._shown, self._recorded, self._moment, self._view_at = None, None, None, None
        self._backwards.clear()
        self._sent.clear()
        self._plotted = -1
        self._stop_selected = None
        self._unshown = []
        self._chance_curves = 0
        self.history.clear()
        w.inspector.clear()
        replay = isinstance(session, ReplaySession)
        no_values, no_summaries = (session.no_values, session.no_summaries) if replay else ("", "")
        w.inspector.set_unavailable(no_values, no_summaries)
        w.loss_plot.set_no_loss_text(f"no loss: {no_summaries[0].lower()}{no_summaries[1:]}" if no_summaries
                                     else NO_EVENTS_LOSS if replay and session.no_events else "no loss yet")
        w.timeline.clear()
        w.timeline.set_origin(session.origin)
        w.timeline.set_live(live)
        w.timeline.set_follow(live)
        self._picked, self._selected_node = None, ""
        w.training_plots.clear()
        w.loss_plot.set_edits([])
        w.loss_plot.set_gaps([])
        self._show_chances(None)
        w.gradient_flow.set_step(None)
        w.gradient_flow.set_parameters({})
        w.module_editor.set_model([], None)
        self._list_breakpoints(session.debugger.list_breakpoints() if live else ())
        w.breakpoints.setEnabled(live)
        w.module_editor.setEnabled(live)
        if not live:
            self._index_tape(session)
        self._update_edit_actions()

    def _index_tape(self, session: ReplaySession) -> None:
        w = self.w
        w.timeline.set_events(*session.steppable)
        self.mark_alerts()
        edits = session.recorded_edits
        w.timeline.set_markers("edit", [e.seq for e in edits], [_edit_text(e) for e in edits])
        if session.no_events:  # a damaged tape: the banner says what survived
            w.timeline.set_empty_text(NO_EVENTS_TIMELINE)
        elif session.gaps:  # what a damaged tape lost: a hole in the timeline and the charts
            why = session.tape.events_error
            tips = [f"Lost: {gap.text(session.origin)}. The tape is damaged there ({why}): those events cannot be "
                    f"read." for gap in session.gaps]
            w.timeline.set_gaps([gap.first_seq for gap in session.gaps], tips)
            spans = [(gap.first_iteration, gap.last_iteration, tip) for gap, tip in zip(session.gaps, tips)]
            w.loss_plot.set_gaps(spans)
            w.training_plots.set_gaps(spans)
        steps = session.recorded_steps  # the whole run's, read from the tape: a replay adds none later
        w.training_plots.add_steps(steps)
        self._plotted = steps[-1][0] if steps else -1
        marks = [edit_mark(e, _lrs_before(steps, e.seq)) for e in edits if e.applied]  # a refused edit changed nothing
        w.loss_plot.set_edits(marks)
        w.training_plots.set_edits(marks)
        w.training_plots.set_losses(session.loss_curves(), session.eval_loss_curves())
        self._show_chances(session)

    def mark_alerts(self) -> None:
        """Mark on the timeline the session's alerts that are not muted, and the op that raised the script's
        exception: again after a mute or an unmute in the Alerts panel."""
        w, session = self.w, self.w.session
        if session is None:
            return
        live = isinstance(session, LiveSession)
        mutes = w.alerts_panel.mutes
        alerts = [a for a in (session.alerts if live else session.recorded_alerts) if not mutes.hides(a.kind, a.key)]
        for alert in alerts:
            _colour_alert_kind(w.timeline, alert)
        seqs, texts, tags = [a.forward_seq or a.seq for a in alerts], [a.message for a in alerts], \
            [alert_name(a) for a in alerts]
        error = session.ended.error if live and session.ended is not None else None
        failure = (error.op.seq, error.message) if error is not None and error.op is not None else \
            (session.failure.event.seq, session.failure.message) if not live and session.failure is not None else None
        if failure is not None:  # the op that raised, marked as a live run marks it
            seqs.append(failure[0])
            texts.append(failure[1])
            tags.append("")
        w.timeline.set_markers("alert", seqs, texts, tags)

    def close_session(self) -> None:
        """The session is going: deliver no more values for it."""
        self.worker.cancel()

    def shutdown(self) -> None:
        """At window close: wait for fetches in flight."""
        self.worker.cancel()
        self.worker.wait()

    # ---- what the pump applied -----------------------------------------------------------------------
    def on_change(self, change) -> None:
        """Feed the timeline, markers, plots, editor and edit history from one drained batch."""
        w, session = self.w, self.w.session
        live = isinstance(session, LiveSession)
        if live:
            # the window gives the timeline these at its repaint pace (show_records); markers go on records
            # the timeline holds, so a batch with a stop, an alert or an edit is shown at once
            self._unshown += change.applied
            if change.applied:
                self._view_at = None  # the run went on: a node picked now is shown as it is now
            if change.stop is not None or change.alerts or change.edits:
                self.show_records()
            mutes = w.alerts_panel.mutes
            for alert in change.alerts:
                if not mutes.hides(alert.kind, alert.key):  # a muted kind leaves no mark (unmuted: mark_alerts)
                    _colour_alert_kind(w.timeline, alert)
                    w.timeline.add_marker("alert", alert.forward_seq or alert.seq, alert.message, alert_name(alert))
            stop = change.stop
            if stop is not None and stop.reason == "breakpoint" and stop.record is not None:
                w.timeline.add_marker("breakpoint", stop.record.seq, "stopped at a breakpoint")
            error = change.ended.error if change.ended is not None else None
            if error is not None and error.op is not None:  # the op that raised: the run's last event, marked
                self.show_records()
                w.timeline.add_marker("alert", error.op.seq, error.message)
            if stop is not None or change.ended is not None:
                self._show_hits(stop)
            elif change.status and session.status == "running":
                self._name_stop("")  # it was about the stop the run has left
            for event in change.edits:
                self._edit_arrived(event)
        if change.described is not None:
            w.module_editor.set_model(*change.described)
            w.gradient_flow.set_parameters(_trainable(change.described[0]))
        if change.steps:
            new = [(it, ev) for it, ev in change.steps if it > self._plotted]
            if new:
                w.training_plots.add_steps(new)
                self._plotted = new[-1][0]
            it, ev = change.steps[-1]
            w.gradient_flow.set_step(it, ev.grad_norms or None, ev.update_norms, ev.weight_norms)
        if change.losses or change.reset:
            w.training_plots.set_losses(session.loss_curves(), session.eval_loss_curves())
        if change.losses and len(session.loss_ops()) != self._chance_curves:  # a curve came: its level
            self._show_chances(session)

    def _show_chances(self, session) -> None:
        """The chance level of each training curve whose root op allows one, on both loss plots (none for no
        session)."""
        ops = session.loss_ops() if session is not None else {}
        self._chance_curves = len(ops)
        curves = session.loss_curves() if ops else {}
        levels = {}
        for label, op in ops.items():
            first = curves.get(label, ((), ()))[1][:1]  # the curve's first loss: a sum over rows starts far above
            found = chance_level(op, first[0] if first else None) if op is not None else None
            if found is not None:
                levels[label] = found
        self.w.loss_plot.set_chances(levels)
        self.w.training_plots.set_chances(levels)

    def show_records(self) -> None:
        """Give the timeline the live records applied since it last took some."""
        records, self._unshown = self._unshown, []
        if records:
            self.w.timeline.add_records(records)

    # ---- inspector -------------------------------------------------------------------------------------
    def show_node(self, info: NodeInfo | None) -> None:
        """Show a node's summaries at once (the engine's own statistics) and fetch its values off-thread; the
        node of an alert just clicked as it was in the alert's iteration (see `alert_activated`)."""
        session = self.w.session
        moment = self._moment_of(info)
        if moment is not None:
            self._show_moment(info, *moment, self._moment[1])
            return
        if isinstance(session, LiveSession):
            self._moment = None  # (a replay's holds while its cursor is at the alert: its seek selects on landing)
            if self._view_at is not None and info is not None:
                self._show_at(info, self._view_at)
                return
        self._shown, self._recorded, self._note, self._grad_now = info, None, "", True
        if info is None:
            self.worker.cancel()
            self.w.inspector.clear()
            return
        if isinstance(session, ReplaySession):  # a parameter's snapshot may hold the value other tensors lack
            self.w.inspector.set_unavailable(session.values_of(info), session.no_summaries)
        self._show_summaries(info)
        self.w.inspector.set_values()  # values shown before belong to an older output
        if isinstance(session, ReplaySession) or session.status != "running":
            self._fetch(info)

    def refresh_running(self) -> None:
        """While a live run goes on: the node shown, with the latest summaries the session received (the caller
        paces this), said to be live; values loaded at the stop before are dropped, as they are its moment's."""
        session = self.w.session
        if self._shown is None or self._recorded is not None or not isinstance(session, LiveSession):
            return
        info = session.node_info(self._shown.key)
        if info is None:
            return
        self._shown = info
        self._note = (f"\u25b6 live, iteration {session.iteration} ({session.phase}): updates as the run goes; "
                      "F6 pauses, values load at a stop")
        self._show_summaries(info)
        if self.w.inspector.arrays():
            self.w.inspector.set_values()

    def _show_summaries(self, info: NodeInfo, values=None) -> None:
        """The node's summaries; where the engine had none, those of fetched `values` stand in."""
        session = self.w.session
        now = session.iteration if session is not None else -1
        value, grad, diff = info.summary, info.grad, None
        if values is not None:
            value, grad, diff = value or values.value_summary, grad or values.grad_summary, values.diff_summary
        notes = [self._note] if self._note else []
        back = session.backward_of.get(info.key) if session is not None and info.kind == "op" else None
        if grad is None and back is not None and back.iteration < info.iteration:
            # the output of an evaluation pass: the gradient the session holds belongs to an earlier output (of
            # another op where another line ran then: the training loss's, for a diagnostic after the last step)
            fwd = back.forward
            other = fwd is not None and another_op(fwd.event.module, fwd.source, info.source)
            notes.append("no gradient for this output" +
                         ("" if other else f" (the last flowed in iteration {back.iteration})"))
        behind = _grad_behind(info)
        stale = grad is None or behind or (info.kind != "op" and info.grad_iteration < now)
        later = self._backward_to_come(info) if stale else ""
        if behind:
            notes.append(f"No gradient yet in iteration {info.iteration}{later} (shown greyed: iteration "
                         f"{info.grad_iteration}'s)")
        elif later:
            notes.append(f"no gradient yet in iteration {now}{later}")
        elif grad is None and info.kind == "op" and not self._needs_grad(info):
            notes.append("no gradient: it ran with gradients off")  # (an expand copied into a weight under no_grad)
        made = self._made_at(info, back if grad is not None else None)
        shown = _script_named(info, self.models())
        subtitle = "\n".join([_subtitle(shown, now), *([made] if made else []), *notes])
        self.w.inspector.show_summaries(_title(shown), value, grad, diff, subtitle=subtitle,
                                        grad_label=_grad_label(info, now), value_label=_value_label(info, now),
                                        stale={"gradient": f"no gradient yet in iteration {info.iteration} "
                                               f"(shown: iteration {info.grad_iteration}'s)"} if behind else {},
                                        intended=self._mask_note(info))

    def _made_at(self, info: NodeInfo, back: BackwardRecord | None) -> str:
        """Which events an op's value and gradient shown are from ("value: event 7 · gradient: event 33")."""
        session = self.w.session
        seq = session.op_seq.get(info.key) if info.kind == "op" and info.summary is not None else None
        parts = [f"value: event {self._number(seq)}"] if seq is not None else []
        if back is not None:
            parts.append(f"gradient: event {self._number(back.seq)}")
        return " \u00b7 ".join(parts)

    def _backward_to_come(self, info: NodeInfo) -> str:
        """" (computed at event 33)" where op `info` (a parameter's or input's: the op it feeds) ran in the iteration
        shown and a replay's tape holds the backward still to come; a live run has not run it yet: "" then."""
        session = self.w.session
        fed = consumer_of(info.key) if info.kind in ("param", "input") else None
        seq = session.op_seq.get(fed[0] if fed else info.key)
        op = session.by_seq.get(seq) if seq is not None and isinstance(session, ReplaySession) else None
        if op is None or op.iteration != session.iteration:
            return ""
        if op.seq not in self._backwards:  # read ahead once: a replay steps past the same ops again and again
            self._backwards[op.seq] = backward_after(session, op)
        back = self._backwards[op.seq]
        if back is None or (fed and not (fed[1] < len(back.event.grad_inputs) and back.event.grad_inputs[fed[1]])):
            return ""  # none to come, or none for this argument (an input that needs no gradient)
        return f" (computed at event {self._number(back.seq)})"

    def _needs_grad(self, info: NodeInfo) -> bool:
        """Whether op `info`'s latest output was made with gradients on (True where its record is not kept)."""
        session = self.w.session
        rec = session.by_seq.get(session.op_seq.get(info.key, -1))
        return rec is None or rec.event.requires_grad

    def _mask_note(self, info: NodeInfo | None) -> str:
        session = self.w.session
        return MASK_NOTE if info is not None and session is not None and session.model.is_mask(info.key) else ""

    def _number(self, seq: int) -> str:
        return f"{self.w.timeline.event_number(seq):,}"

    def show_recorded(self, seq: int) -> bool:
        """Show the op recorded at `seq` (or its backward's) as it was then: its output, and the gradient its own
        backward got if that ran by `seq`. False when the live session keeps no record at or before `seq`."""
        session = self.w.session
        rec = session.record_at(seq) if session is not None else None
        if rec is None:
            return False
        op, back = _op_and_backward(session, rec)
        later = back if back is not None and back.seq > seq else None  # not computed yet at `seq`
        self._show_moment(session.node_info((op or back).event.key), op, None if later else back, seq, later)
        return True

    def _show_at(self, info: NodeInfo, at: int) -> None:
        """Node `info` as it was at event `at` of a live run (its timeline scrubbed back): the output and gradient
        recorded by then, never a gradient its backward computed after `at`."""
        session = self.w.session
        fed = consumer_of(info.key) if info.kind in ("param", "input") else None
        moment = moment_of(session, engine_key(fed[0] if fed else info.key), at)
        if fed is not None:
            self._show_source_at(info, fed, moment)
        elif moment.op is not None:
            self._show_moment(info, moment.op, moment.back, at, moment.later)
        else:
            self.worker.cancel()
            self._shown, self._recorded, self._note = info, None, ""
            why = (f"not run yet at event {self._number(at)}" if kept_from_start(session) else
                   f"no record of it at or before event {self._number(at)} is still kept (a live run keeps its "
                   "latest records; a recording keeps all)")
            self.w.inspector.show_summaries(_title(info), subtitle=f"{_subtitle(info, -1)}\n{why}")
            self.w.inspector.set_values()

    def _show_source_at(self, info: NodeInfo, fed: tuple[str, int], moment) -> None:
        """A parameter or input as of event `moment.at`: the gradient its consumer's backward gave it by then, and
        whether its value now is still the one it had then."""
        session, at = self.w.session, moment.at
        consumer, arg = fed
        back = moment.back
        grads = back.grad_inputs if back is not None else ()
        grad = grads[arg] if arg < len(grads) else None
        lines = [info.note.partition("\n")[0]] if info.note else []
        if info.kind == "param" and info.op != "buffer":
            stepped = next((ev for _, ev in session.steps if ev.seq > at), None)
            lines = [f"value: now, after the optimizer step at event {self._number(stepped.seq)}: its value at event "
                     f"{self._number(at)} is not kept" if stepped is not None else
                     f"value: as at event {self._number(at)} (no optimizer step since)"]
        if grad is not None:
            lines.append(f"gradient: as it reached it in the backward at event {self._number(back.seq)} (iteration "
                         f"{back.iteration})")
        elif moment.later is not None:
            lines.append(f"gradient: none yet at event {self._number(at)} (computed at event "
                         f"{self._number(moment.later.seq)})")
        elif back is not None:
            lines.append(f"gradient: none reached it in the backward at event {self._number(back.seq)}")
        latest = session.backward_of.get(consumer)
        self._grad_now = grad is not None and latest is not None and latest.seq == back.seq
        tensor = back.event.grad_inputs[arg] if grad is not None and arg < len(back.event.grad_inputs) else 0
        shown = replace(info, grad=grad, grad_iteration=back.iteration if grad is not None else -1,
                        grad_tensor=tensor, note="\n".join(lines))
        self.worker.cancel()
        self._shown, self._recorded, self._note = shown, None, ""
        self._show_summaries(shown)
        self.w.inspector.set_values()
        if session.status != "running":
            self._fetch(shown)

    def _moment_of(self, info: NodeInfo | None) -> tuple | None:
        """The op and backward records of the alert clicked last, while `info` is its node and the session is
        where the click left it (a live run applied nothing since; a replay's cursor is at the alert); else None."""
        session, moment = self.w.session, self._moment
        if moment is None or info is None or engine_key(info.key) != moment[0]:
            return None
        _key, seq, last = moment
        if (session.last is not last) if isinstance(session, LiveSession) else (session.cursor != seq):
            return None
        return _recorded_at(session, seq)

    def _show_moment(self, info: NodeInfo | None, op: OpRecord | None, back: BackwardRecord | None, seq: int,
                     later: BackwardRecord | None = None) -> None:
        self.worker.cancel()  # a fetch of the node's latest values would land over these
        self._shown, self._recorded, self._note, self._at, self._later = info, (op, back), "", seq, later
        self._show_record((op or back).event.key, info)
        self.w.inspector.set_values()
        if self.w.session.status != "running" and info is not None:
            self._fetch(info)

    def _show_record(self, key: str, info: NodeInfo | None, values=None) -> None:
        op, back = self._recorded
        it = (op or back).iteration
        value = op.summary if op is not None else None
        grad = back.grad_output if back is not None else None
        if values is not None:
            value, grad = value or values.value_summary, grad or values.grad_summary
        # the moment's number, as the timeline and the status note name it: the record shown may be an earlier one
        # (an optimizer step shows the backward before it; a backward node its op's value, recorded events before)
        notes, later = [f"as recorded at event {self._number(self._at)}, iteration {it}"], ""
        if op is not None:
            notes.append(f"value: event {self._number(op.seq)}")
        if back is not None:
            notes.append(f"gradient: event {self._number(back.seq)}")
        elif self._later is not None:  # scrubbed back to before its backward: that gradient did not exist yet
            later = f"no gradient yet (computed at event {self._number(self._later.seq)})"
        elif op is not None:
            notes.append("no gradient: it ran with gradients off" if not op.event.requires_grad
                         else f"no gradient reached it in iteration {it}")
        if info is not None and op is not None:  # the graph's shapes are the latest call's (a bigger eval batch)
            ev = op.event
            info = replace(info, in_shapes=", ".join(map(shape_text, ev.input_shapes)),
                           out_shape=shape_text(ev.output_shape), dtype=ev.dtype)
        shown = _script_named(info, self.models()) if info is not None else None
        subtitle = _subtitle(shown, -1) + "\n" if shown is not None else ""
        title = _title(shown) if shown is not None else script_named(key, self.models())
        self.w.inspector.show_summaries(title, value, grad,
                                        subtitle=subtitle + " \u00b7 ".join(notes) + (f"\n{later}" if later else ""),
                                        value_label=f"value (iteration {it})",
                                        grad_label=f"gradient (iteration {back.iteration})" if back else "",
                                        intended=self._mask_note(info))

    def _fetch(self, info: NodeInfo | None) -> None:
        session = self.w.session
        if info is None or session is None or (isinstance(session, ReplaySession) and session.values_of(info)):
            return  # a tape without values: Load values is disabled and says why, once, in its tooltip
        if self._recorded is not None:
            op, back = self._recorded
            read = _fetcher(session)
            value = read(op.event.output) if op is not None and op.event.output else None
            grad = read(back.event.grad_output) if back is not None and back.event.grad_output else None
            if value is not None or grad is not None:
                self.worker.request(_record_key(self._recorded), value=value, grad=grad)
            return
        if info.kind == "param" and isinstance(session, LiveSession) and session.status == "running":
            # the optimizer changes parameters in place: a copy taken meanwhile may mix two steps
            self.w.status_panel.set_note("Pause the run to load a parameter's values", 4)
            return
        value, grad = _fetches(session, info)
        if not self._grad_now:  # the parameter's gradient now came after the moment shown
            grad = None
        if value is None and grad is None:
            return
        self.worker.request(info.key, value=value, grad=grad)

    def _values_ready(self, result) -> None:
        info = self._shown
        if self._recorded is not None:
            if result.key != _record_key(self._recorded):
                return
            op, back = self._recorded
            self._show_record((op or back).event.key, info, result)
        elif info is None or result.key != info.key:
            return
        else:
            self._show_summaries(info, result)  # the engine's summaries stay; the worker's fill in gaps
        self.w.inspector.set_values(result.value, result.grad, result.previous)

    def _values_failed(self, key: str, message: str) -> None:
        if self._recorded is None or key != _record_key(self._recorded):
            self.w.status_panel.set_note(f"Values: {message}", 4)
        elif isinstance(self.w.session, LiveSession):
            rec = self._recorded[0] or self._recorded[1]
            # the value cache keeps the latest iterations' tensors: older ones only while the script holds them
            self.w.inspector.show_note(f"Values of iteration {rec.iteration} are no longer kept",
                                       "The value cache keeps the latest iterations' tensors; the statistics above "
                                       "are those recorded then")
        else:
            self.w.inspector.show_note(f"No values: {message}")

    # ---- timeline ----------------------------------------------------------------------------------------
    def _cursor_moved(self, seq: int) -> None:
        w, session = self.w, self.w.session
        head = w.timeline.view.count and seq == int(w.timeline.view.seqs()[-1])  # the timeline's last event
        if isinstance(session, ReplaySession):
            # the last event takes what follows it along (an iteration mark, module exits): the tape's end
            session.seek(session.last_seq if head else seq)
            w.pump.pump()
            return
        if session is None:
            return
        rec = session.record_at(seq)  # a live run goes on: show what was recorded at the cursor
        self._view_at = None if head else seq  # a node picked next is shown as of the cursor
        if rec is None:
            w.status_panel.set_note("That part of the run is no longer kept; replay a recording to see it", 4)
            return
        key = rec.event.key
        if key in w.canvas.view.node_of:
            # the graph marks and shows the node the inspector is about, as a replay's cursor moves it: it had kept
            # marking the op paused at, the node selected out of sight (layer_norm in block 34 inspected, linear
            # in block 9 marked)
            if session.status != "running":
                w.canvas.set_current(key)
            w.canvas.select(key)
            w.canvas.follow(key, zoom=not w.graph.moved_by_hand)
        self.show_recorded(seq)
        if session.status == "paused" and not head:  # stepped back: the run itself has not moved
            number = w.timeline.event_number(seq)  # the cursor's, as the timeline says: not the record's before it
            w.status_panel.set_note(f"Showing event {number:,} as recorded; F10 and F11 go on from the stop", 8)
        frame = source_of(rec)
        if frame is not None:  # the line that ran it, as a replay's cursor shows it
            w._show_frame(frame)

    def _iteration_clicked(self, iteration: int) -> None:
        session = self.w.session
        if isinstance(session, ReplaySession):
            it = session.iteration_info(iteration)
            if it is not None:
                self._cursor_moved(it.last_seq)

    # ---- alerts ------------------------------------------------------------------------------------------
    def alert_activated(self, key: str, seq: int) -> None:
        """Select the alert's origin node, move the timeline there and show its source line."""
        w, session = self.w, self.w.session
        if session is None:
            return
        if isinstance(session, ReplaySession) and seq:
            session.seek(seq)
            w.pump.pump()
        if seq:
            w.timeline.set_cursor(seq)
        # (a replay's, from its tape: one a damaged tape kept though it lost the events around it too)
        known = session.recorded_alerts if isinstance(session, ReplaySession) else session.alerts
        alert = next((a for a in reversed(known) if a.key == key and (a.forward_seq or a.seq) == seq), None)
        if alert is not None and not alert.op:
            # an alert of an optimizer step names a parameter or layer, no node: the gradient flow shows it, and the
            # graph its parameter's node where it has one (else nothing: not the op picked before)
            w.docks["gradients"].raise_()
            node = w.graph.param_node(alert.key)
            w.canvas.select(node)
            w._show_node(node)
            if alert.file:  # and the line it names: a scheduler's lambda, a .detach(), a clip_grad_norm_ call
                w._show_frame(SourceFrame(alert.file, alert.line, "", alert.code))
            return
        # the node's latest output is not what the alert is about (after training: an evaluation pass's, of
        # another batch size): the selection shows its output and gradient of the alert's iteration
        self._moment = (engine_key(key), seq, session.last) if key and seq else None
        if key:
            w.canvas.select(key)
            w.canvas.center_on(key)
        shown = self._shown
        if (alert is not None and isinstance(session, LiveSession) and session.record_at(seq) is None
                and shown is not None and shown.key == key):
            self._note = (f"iteration {alert.iteration} is no longer kept (a live run keeps its latest records; "
                          f"a recording keeps all): showing iteration {shown.iteration}")
            self._show_summaries(shown)
        if alert is not None and alert.file:
            w._show_frame(SourceFrame(alert.file, alert.line, "", alert.code))

    # ---- breakpoints -------------------------------------------------------------------------------------
    def _breakpoints(self, change, added: Breakpoint | None = None) -> None:
        session = self.w.session
        if not isinstance(session, LiveSession):
            return
        change(session.debugger)
        self._list_breakpoints(session.debugger.list_breakpoints())
        if added is not None and added.kind in ("op", "module"):
            self._note_unmatched(added)

    def _note_unmatched(self, spec: Breakpoint) -> None:
        """Say so when an op or module breakpoint names nothing in the graph so far (a typo stops nowhere)."""
        view = self.w.canvas.view
        if view is None or not len(view):
            return  # nothing ran yet: any name may still come
        nodes, groups = breakpoint_marks(view, (spec,))
        if not len(nodes) and not len(groups):
            what = "op" if spec.kind == "op" else "module call"
            pattern = script_named(spec.pattern, self.models())
            self.w.status_panel.set_note(f"No {what} so far matches '{pattern}': it stops once one runs", 8)

    def models(self) -> dict[str, str]:
        """The script's names of its models, as the graph titles them (engine path -> name: "Sequential_2" -> "D"),
        where it has two or more: there the engine's paths ("Sequential", "Sequential_2") do not say which is which.
        One model keeps its class's path ("SpiralNet.fc1"), as the status bar and the alerts name it."""
        names = getattr(self.w.canvas.view, "root_names", None) or {}
        return names if len(names) > 1 else {}

    def _list_breakpoints(self, infos) -> None:
        """List the breakpoints in their panel (their models named as the graph names them), and mark on the graph
        the places the enabled ones name."""
        self.w.breakpoints.set_model_names(self.models())
        self.w.breakpoints.set_breakpoints(infos)
        self.w.graph.set_breakpoints(i.spec for i in infos if i.enabled)

    def _show_hits(self, stop) -> None:
        """At a stop or the end of the run: the hit counts as they are now, and the breakpoint that
        stopped the run selected and named."""
        w, session = self.w, self.w.session
        infos = session.debugger.list_breakpoints()
        self._list_breakpoints(infos)
        if stop is not None and session.stop_alert is not None:
            w.docks["alerts"].raise_()  # the alert's row, whose click finds its origin, in front of the list
        info = next((i for i in infos if i.id == stop.breakpoint), None) \
            if stop is not None and stop.reason == "breakpoint" else None
        if info is None:
            if self._stop_selected is not None and w.breakpoints.current_id() == self._stop_selected:
                w.breakpoints.select(None)  # it stopped the run before; this stop is not its doing
            self._stop_selected = None
            self._name_stop("")
            return
        w.breakpoints.select(info.id)
        self._stop_selected = info.id
        found = _tripped(info.spec, stop.record)
        self._name_stop(f"Breakpoint: {' '.join(describe(info.spec, self.models()).split())} \u00b7 hit {info.hits:,}"
                        + (f" \u00b7 {found}" if found else ""))

    def _name_stop(self, text: str) -> None:
        """Name the breakpoint of the current stop beside the status ('': take back the name shown)."""
        note = self.w.status_panel
        if text:
            note.set_note(text)
        elif note.note.text() == self._stop_note:  # another note replaced it: leave that one
            note.set_note("")
        self._stop_note = text

    def _node_selected(self, key: str) -> None:
        """The graph's selection changed: a pick, unless it is the selection a rebuilt graph put back."""
        if key != self._selected_node:
            self._selected_node = key
            self._pick(("node", key) if key else None)

    def _pick(self, what: tuple[str, str] | None) -> None:
        """The person picked a node or a module (or nothing): F9 acts on it. A node picked in the graph takes the
        Modules tree's row back, once Qt is done (a collapsed module picked in the tree selects its node first)."""
        self._picked = what
        if what is None or what[0] == "node":
            QTimer.singleShot(0, self._unpick_module)

    def _unpick_module(self) -> None:
        if self._picked is None or self._picked[0] == "node":
            self.w.module_tree.clear_pick()

    def toggle_breakpoint(self) -> None:
        """F9: a breakpoint on what the person picked last, a node of the graph (a module group: on its calls)
        or a module of the Modules tree; with neither, on the op the run is paused at, as in an IDE; again removes
        it."""
        w, session = self.w, self.w.session
        if not isinstance(session, LiveSession):
            w.status_panel.set_note("Select a node of a live run to break at it", 4)
            return
        picked = self._picked
        if picked is not None and picked[0] == "module":
            module, named = True, picked[1]
        else:
            key = (picked[1] if picked is not None else None) or w.graph.selected or session.model.current
            if not key:
                w.status_panel.set_note("Select a node of a live run to break at it", 4)
                return
            info = session.node_info(key)
            module = info is not None and info.kind == "module"
            named = (info.module or key) if module else key
        # the engine names a repeated call's ops and modules without the graph's "#n": every call stops
        spec = (Breakpoint.module if module else Breakpoint.op)(engine_key(named))
        models = self.models()
        where = ("module " if module else "") + (script_named(named, models) if spec.pattern == named else
                                                 f"{script_named(spec.pattern, models)} (every call)")
        existing = [b.id for b in session.debugger.list_breakpoints() if b.spec == spec]
        if existing:
            self._breakpoints(lambda d: [d.remove_breakpoint(bid) for bid in existing])
            w.status_panel.set_note(f"Breakpoint removed: {where}", 3)
        else:
            self._breakpoints(lambda d: d.add_breakpoint(spec))
            w.status_panel.set_note(f"Breakpoint set: {where}", 3)
            w.docks["breakpoints"].raise_()

    def _offer_names(self) -> None:
        """The model's modules and ops as a breakpoint's pattern names them, for the form's examples."""
        w = self.w
        modules = list(dict.fromkeys(engine_key(module_path(call)) for call in w.module_tree.paths() if call))
        view = w.canvas.view
        ops = []
        if view is not None:
            kinds = view.kind.tolist()
            ops = list(dict.fromkeys(engine_key(key) for key, i in view.node_of.items() if kinds[i] == OP))
        w.breakpoints.set_model_names(self.models())
        w.breakpoints.set_names(modules, ops)

    # ---- runtime edits -----------------------------------------------------------------------------------
    def request_edit(self, edit, inverse, text: str) -> None:
        """An edit from the module editor: kept for undo, then sent to the engine's next safe point."""
        session = self.w.session
        if not isinstance(session, LiveSession) or not session.alive:
            # said under the field the person typed in, which shows the module's value again: a bar above
            # the graph stayed on while they went on to build another model
            reason = "Not applied: the run has ended (edits apply to a live run; Restart runs it again)"
            if not self.w.module_editor.edit_refused(edit, reason):
                self.w.show_message("Edits apply to a live run; this one has ended", "warning")
            self.w.status_panel.set_note("Edit not applied: the run has ended", 4)
            return
        self.history.push(edit, inverse, text)
        self._send(edit)

    def undo(self) -> None:
        """Edit > Undo: send the edits that put back what the newest edit changed."""
        self._send_all(self.history.undo, "undo")

    def redo(self) -> None:
        """Edit > Redo."""
        self._send_all(self.history.redo, "redo")

    def _send_all(self, take, what: str) -> None:
        session = self.w.session
        if not isinstance(session, LiveSession) or not session.alive:
            return
        try:
            edits = take()
        except (IndexError, ValueError) as err:
            self.w.status_panel.set_note(f"Cannot {what}: {err}", 4)
            return
        for edit in edits:
            self._send(edit)

    def _send(self, edit) -> None:
        self._sent.append(edit)
        self.w.session.edit(edit)
        self._update_edit_actions()
        self.w.status_panel.set_note(f"Edit queued: {describe_edit(edit)} (applies at the next safe point)", 4)

    def _edit_arrived(self, event) -> None:
        edit = self._sent.popleft() if self._sent else None
        self.w.timeline.add_marker("edit", event.seq, _edit_text(event))
        if event.applied:
            mark = edit_mark(event, _lrs_before(self.w.session.steps, event.seq))
            self.w.loss_plot.add_edit(*mark)
            self.w.training_plots.add_edit(*mark)
            self.w.output.note(f"\u270e {_edit_text(event)}")
            self.w.status_panel.set_note(f"Edit applied: {_edit_text(event)}", 4)
        else:
            if edit is not None:
                self.history.discard(edit)
                self.w.module_editor.edit_refused(edit, f"Refused: {event.message}")
            self.w.show_message(f"Edit refused: {event.message}", "warning")
        self._update_edit_actions()

    def _update_edit_actions(self) -> None:
        a, h = self.w.actions, self.history
        a["undo"].setEnabled(h.can_undo)
        a["redo"].setEnabled(h.can_redo)
        a["undo"].setText(h.undo_text or "&Undo Edit")
        a["redo"].setText(h.redo_text or "&Redo Edit")


CLASS_LOSSES = frozenset({"cross_entropy", "nll_loss"})  # input (N, C, ...) or (C,): scores of C classes
BINARY_LOSSES = frozenset({"binary_cross_entropy", "binary_cross_entropy_with_logits"})  # 2 classes an element


def chance_level(loss_op, first_loss: float | None = None) -> tuple[float, int] | None:
    """(ln C, C): the loss of a guess at chance (every class equally likely) when `loss_op`, the OpEvent that
    backward() started from, is a cross entropy over C classes averaged over its rows; else None (a sum of two
    losses, or a loss times a weight, starts backward() from an add or a mul: no chance level to draw).

    Class weights, ignored rows and label smoothing leave a cross entropy at ln C; a binary one's weight or
    pos_weight do not (ln 2 times their mean over the targets: an imbalanced set's pos_weight put the line at
    0.69 where chance was 0.99), so those get no line; a sum over N rows does not either (N ln C). The event
    does not carry the reduction, so a loss that starts nearer N ln C than ln C (`first_loss`, the run's first)
    counts as a sum and gets no line rather than a wrong one."""
    shapes = loss_op.input_shapes
    if loss_op.output_shape != () or not shapes:
        return None  # reduction='none' and a .mean() after: the loss op is that mean, which says no classes
    shape = shapes[0]
    if loss_op.op in CLASS_LOSSES and shape:
        classes = shape[1] if len(shape) >= 2 else shape[0]
    elif loss_op.op in BINARY_LOSSES and len(shapes) == 2:  # a third input: weight or pos_weight
        classes = 2
    else:
        return None
    if classes < 2:
        return None
    level = math.log(classes)
    rows = math.prod(shape) // (classes if loss_op.op in CLASS_LOSSES else 1)
    if first_loss is not None and math.isfinite(first_loss) and rows > 1 and first_loss > level * math.sqrt(rows):
        return None
    return level, classes


def _trainable(modules: list[dict]) -> dict[str, bool]:
    """The model's parameters as optimizer steps name them ("fc1.weight") -> requires_grad, from the module
    editor's description (paths there start with the root's class name: "MLP.fc1")."""
    out = {}
    for m in modules:
        _root, _, path = m["path"].partition(".")
        for name, _shape, requires_grad in m["params"]:
            out[f"{path}.{name}" if path else name] = requires_grad
    return out


def _script_named(info: NodeInfo, models: dict[str, str]) -> NodeInfo:
    """`info` as the Inspector names it: its key, module and label with the model named as the graph names it ("D.0"
    for the engine's "Sequential_2.0"); for showing only, as breakpoints and fetches go by the engine's key."""
    if not models:
        return info
    return replace(info, key=script_named(info.key, models), module=script_named(info.module, models),
                   label=script_named(info.label, models))


def _title(info: NodeInfo) -> str:
    """"q  \u00b7  split  \u00b7  Net.attn/split:0": the name the script gave the op's output, the op, its key."""
    name = f"{info.name}  \u00b7  " if info.name else ""
    return f"{name}{info.label}  \u00b7  {info.key}" if info.label != info.key else info.key


def _kind_name(info: NodeInfo) -> str:
    """What a person calls the node: a module's tensor that no optimizer steps (running_mean) is a buffer."""
    return "buffer" if info.kind == "param" and info.op == "buffer" else info.kind


def _subtitle(info: NodeInfo, current: int) -> str:
    where = f" in {info.module}" if info.module else ""
    if info.kind in ("param", "input") and (info.note or info.summary is None):
        consumer = info.key.rsplit("/", 1)[0]  # "Sequential.0/conv2d:0/in1" feeds "Sequential.0/conv2d:0"
        note = info.note or (f"No values are recorded for a {_kind_name(info)}: select {consumer}, the op it "
                             "feeds, for that op's output and gradient")
        return f"{_kind_name(info)}{where}: {info.out_shape} {info.dtype}\n{note}"
    text = f"{info.op}{where}: {info.in_shapes} \u2192 {info.out_shape} {info.dtype}".strip()
    if 0 <= info.iteration < current:
        text += f" \u00b7 from iteration {info.iteration} (not run yet in iteration {current})"
    return text


def _value_label(info: NodeInfo, current: int) -> str:
    """The value column's name when the output is older than the current iteration: a node that has not
    run yet in it shows what it made in the iteration before."""
    return f"value (iteration {info.iteration})" if 0 <= info.iteration < current else ""


def _grad_behind(info: NodeInfo) -> bool:
    """Whether the gradient shown is older than the output beside it: the node ran in this iteration and its
    backward has not yet (a forward's stop shows the iteration before's gradient until then)."""
    return info.grad is not None and 0 <= info.grad_iteration < info.iteration


def _grad_label(info: NodeInfo, current: int) -> str:
    """The gradient column's name when that gradient is older than the output shown or the current
    iteration (during a forward, the last gradient flowed in the iteration before)."""
    if info.grad is not None and 0 <= info.grad_iteration < max(info.iteration, current):
        return f"gradient (iteration {info.grad_iteration})"
    return ""


def _tripped(spec: Breakpoint, record) -> str:
    """What made a value breakpoint stop, in words ("max |x| 52.7 in the output"); '' for other kinds."""
    found = tripped(spec, record) if spec.kind in CONDITIONS else None
    if found is None:
        return ""
    side, s = found
    if spec.kind == "nonfinite":
        return f"{s.nan_count:,} NaN, {s.inf_count:,} Inf in the {side}"
    if spec.kind == "max_abs":
        return f"max |x| {s.abs_max:.4g} in the {side}"
    return f"L2 norm {s.norm:.4g} in the {side}"


def _edit_text(event, limit: int = 160) -> str:
    """An edit's line for the timeline and the log: what it did (its message), or what was asked and why it
    was refused; its arguments only when it has no message (a slice edit's are thousands of coordinates)."""
    if event.message:
        return event.message if event.applied else f"refused {event.kind} {event.target}: {event.message}"
    args = ", ".join(f"{k}={v!r}" for k, v in event.args[1:])
    text = f"{event.kind} {event.target}" + (f": {args}" if args else "")
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def edit_mark(event, lrs: tuple | None = None) -> tuple[int, str, str]:
    """(iteration, short label, tooltip) of an applied edit for the loss plots: "lr 10 → 0.1", "fc1 frozen";
    `lrs`: the learning rates of the optimizer step before it, for the value an lr edit replaced."""
    args = dict(event.args)
    kind, target = event.kind, _short_path(event.target)
    if kind == "optimizer":
        name, value, group = args.get("name", target), args.get("value"), int(args.get("group", 0))
        before = lrs if name == "lr" and lrs else ()
        old = {before[group]} if 0 <= group < len(before) else set(before) if group == -1 else set()
        was = f"{_value(old.pop())} " if len(old) == 1 else ""
        label = f"{name}{f'[{group}]' if group > 0 else ''} {was}\u2192 {_value(value)}"
    elif kind == "freeze":
        label = f"{target} {'frozen' if args.get('frozen', True) else 'unfrozen'}"
    elif kind == "set_setting":
        label = f"{target}.{args.get('name', '')} \u2192 {_value(args.get('value'))}"
    elif kind == "swap":
        label = f"{target} \u2192 {args.get('cls', '')}"
    elif kind == "param":
        label = f"{target} {'scaled' if args.get('action') == 'scale' else 'filled'}"
    else:
        label = f"{target} {'re-initialised' if kind == 'reinit' else 'put back' if kind == 'restore' else kind}"
    return event.iteration, label, f"{_edit_text(event)}\n(applied in iteration {event.iteration})"


def _short_path(path: str) -> str:
    """A module or parameter path without the model's name ("MLP.fc1" -> "fc1"): the plot is narrow."""
    root, dot, rest = str(path).partition(".")
    return rest if dot and rest else root


def _value(value) -> str:
    """A setting's value as a person writes it: 0.1, 10, True."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _lrs_before(steps, seq: int) -> tuple | None:
    """The learning rates of the last of `steps` ((iteration, OptimizerEvent) in order) before event `seq`: what
    an lr edit at `seq` replaced; None before the first step."""
    return next((ev.lrs for _, ev in reversed(steps) if ev.seq < seq), None)


def _op_and_backward(session, rec) -> tuple[OpRecord | None, BackwardRecord | None]:
    """The op record and the backward record of one op in one iteration, from either of them (None: not kept,
    or no backward ran for it: an output made with gradients off, or one the loss did not depend on)."""
    if rec.__class__ is BackwardRecord:
        return rec.forward or session.by_seq.get(rec.event.forward_seq), rec
    seq, kept = rec.seq, session.by_seq
    last = next(reversed(kept), seq)
    while seq < last:  # its backward runs later in the same iteration: records are kept by consecutive seqs
        seq += 1
        later = kept.get(seq)
        if later is None:
            continue
        if later.iteration != rec.iteration:
            break
        if later.__class__ is BackwardRecord and later.event.forward_seq == rec.seq:
            return rec, later
    return rec, None


def _colour_alert_kind(timeline, alert) -> None:
    """A NaN or Inf's alerts in the red that marks non-finite values in the graph and the Alerts panel; the other
    kinds get the timeline's colours in turn."""
    if alert.kind.startswith("nonfinite"):
        timeline.set_tag_colour("alert", alert_name(alert), NONFINITE_MARK)


def _recorded_at(session, seq: int) -> tuple[OpRecord, BackwardRecord | None] | None:
    """The op record at `seq` and its backward record of that iteration, from what a live session keeps or from
    a replay's tape; None when they are not kept."""
    if isinstance(session, LiveSession):
        rec = session.by_seq.get(seq)
        return _op_and_backward(session, rec) if rec.__class__ is OpRecord else None
    op = None
    try:
        for rec in session.tape.records(seq):  # the op, then the rest of its iteration up to its backward
            if op is None:
                if rec.__class__ is not OpRecord or rec.seq != seq:
                    return None
                op = rec
            elif rec.iteration != op.iteration:
                break
            elif rec.__class__ is BackwardRecord and rec.event.forward_seq == seq:
                return op, rec
    except engine.tape.TapeError:  # damaged: the node as the cursor has it
        return None
    return (op, None) if op is not None else None


def _record_key(recorded: tuple) -> str:
    """The worker's key for the values of recorded op and backward records."""
    op, back = recorded
    return f"{(op or back).event.key}@{(op or back).seq}"


def _fetches(session, info: NodeInfo) -> tuple:
    """The functions that read a node's full value and gradient on the worker thread (None: none kept).

    A live parameter is read from the model as it is now; a replayed one from its latest snapshot at the
    cursor (a "values" tape keeps those of small parameters); a tape holds no values of inputs."""
    if info.kind in ("param", "input"):
        if info.kind == "param" and isinstance(session, LiveSession) and info.tensor:
            dbg, tid = session.debugger, info.tensor
            return (lambda: dbg.parameter(tid)), (lambda: dbg.parameter(tid, grad=True))
        out, grad = (info.tensor if isinstance(session, LiveSession) else 0), info.grad_tensor
        if info.kind == "param" and isinstance(session, ReplaySession):
            read = _fetcher(session)
            # (a tape of no values holds a snapshot's value, never a gradient's: reading one would fail them both)
            return (_snapshot_reader(session.path, info.label, session.cursor),
                    read(grad) if grad and not session.no_values else None)
    else:
        back = session.backward_of.get(info.key)
        out, grad = session.outputs.get(info.key), back.event.grad_output if back is not None else 0
        # the gradient of the output shown, not of one before it: after training, an evaluation pass's output has
        # none, and the last backward's gradient beside it was another batch's
        if back is not None and not (back.iteration == info.grad_iteration if info.grad is not None
                                     else back.iteration >= info.iteration):
            grad = 0
    read = _fetcher(session)
    return (read(out) if out else None), (read(grad) if grad else None)


def _snapshot_reader(path: str, name: str, seq: int):
    """A function reading parameter `name`'s value as the tape's latest snapshot at event `seq` holds it."""
    def read():
        with engine.tape.open(path) as tape:  # its own connection: SQLite's are per thread
            try:
                snap = tape.parameter(name, seq=seq)
            except ValueError as err:  # a name it keeps no snapshots of
                raise LookupError(str(err)) from None
        if snap is None or snap.value is None:
            raise LookupError(_no_values(tape.capture))
        return snap.value
    return read


def _no_values(capture: str) -> str:
    """Why a tape recorded at `capture` holds no value for a tensor."""
    if capture == "values":
        return "too big for the tape: a 'values' tape keeps the values of small tensors only"
    return "the tape holds no values for it (record with capture='values')"


def _fetcher(session):
    """tensor id -> a function that reads its value (run on the worker thread)."""
    if isinstance(session, ReplaySession):
        path = session.path

        def from_tape(tid: int):
            def read():
                with engine.tape.open(path) as tape:  # its own connection: SQLite's are per thread
                    value = tape.value(tid)
                if value is None:
                    raise LookupError(_no_values(tape.capture))
                return value
            return read
        return from_tape
    debugger = session.debugger
    return lambda tid: (lambda: debugger.fetch(tid))
