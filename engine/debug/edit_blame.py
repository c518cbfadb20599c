"""Alerts soon after a runtime edit name that edit first, and do not blame a learning rate that never changed.

A person scales '2.weight' by 10 in the Editor; two iterations later the gradients explode and the alert said
"try a smaller learning rate", although that rate had trained fine for 1,800 iterations. An edit changes what
runs after it in the forward and before it in the backward, so any alert about the values, gradients or updates
of the edited model within EDIT_WINDOW iterations counts as its possible consequence:

    blame = EditBlame()
    blame.stepped(optimizer_event.lrs, id(opt))     # at each step: a rate a scheduler changed keeps its advice
    blame.edited(edit_event, root="Sequential")     # an applied EditEvent (engine.debug.edits)
    alert = blame.explain(alert)                    # "After an edit: '2.weight' was scaled by 10 at iteration ..."
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from engine.debug.alert_text import BLOWN_UP, DIVERGED, LR_TOO_HIGH, LR_TOO_LOW, STEP_TOO_HIGH
from engine.debug.alerts import EXPLODING_ADVICE
from engine.events import AlertEvent, EditEvent

EDIT_WINDOW = 5  # iterations after an edit in which an alert about its model names it
_LEAD = re.compile(r"After (?:an edit|\d+ edits): ")  # how explain() starts the message of an alert it blames
# what an edit of values, modules or the optimizer can cause (not the loop's own mistakes: a missing zero_grad)
CONSEQUENCES = frozenset({
    "nonfinite_forward", "nonfinite_backward", "nonfinite_input", "nonfinite_step", "nonfinite_grad",
    "exploding_grad", "vanishing_grad", "dead_relu", "large_update", "tiny_update", "not_updated", "frozen",
    "no_gradient", "lr_gone", "lr_zero", "at_chance", "same_units", "zero_init", "clipped_hard", "weight_decay"})
# alerts about values grown too large, and the edits that cannot cause them: a dropout rate, a mode, a freeze
GROWTH = frozenset({"nonfinite_forward", "nonfinite_backward", "nonfinite_step", "nonfinite_grad", "exploding_grad",
                    "large_update", "clipped_hard"})
HARMLESS_SETTINGS = frozenset({"p", "dropout", "approximate", "inplace", "training"})
LR_DRIFT = 2.0  # a rate moved by less than this factor since an edit (a schedule's per-step drift) did not change
_UNDO = "undo the edit (Edit > Undo Edit)"
# the learning-rate advice of the alert texts, and what it says when an edit, not the rate, changed: the rate
# is what it was while training went fine
_LR_ADVICE = (
    (re.escape(EXPLODING_ADVICE), "the updates will throw the weights far off. The learning rate did not change "
                                  f"since the edit: {_UNDO}, or clip the gradients (engine.nn.utils.clip_grad_norm_)"),
    (rf"the learning rate \(([^)]*)\) {re.escape(LR_TOO_HIGH)}",
     rf"the learning rate (\1) did not change since the edit, which made the updates this large: {_UNDO}"),
    (rf"The learning rate \(([^)]*)\) {re.escape(LR_TOO_LOW)}",
     rf"The learning rate (\1) did not change since the edit, which made the updates this small: {_UNDO}"),
    (re.escape(STEP_TOO_HIGH),
     f"The learning rate did not change since the edit, which made the update this large: {_UNDO}"),
    (re.escape(DIVERGED), f"Values this large right after an edit come from it, not the learning rate: {_UNDO} or "
                          "clip the gradients (engine.nn.utils.clip_grad_norm_)"),
    (re.escape(BLOWN_UP),
     f"the edit blew it up, not the learning rate: {_UNDO}"),
)


@dataclass(frozen=True, slots=True)
class _Edit:
    iteration: int
    text: str  # "'2.weight' was scaled by 10"
    root: str  # the edited model's root name ("" for an optimizer's setting)
    learning_rate: bool  # it set a learning rate
    lrs: tuple  # ((optimizer key, its param groups' learning rates) of each one's last step before it)
    grows: bool  # it can make values grow (scaled, filled or re-initialised weights, an optimizer's setting)


class EditBlame:
    """The applied edits of the last EDIT_WINDOW iterations, and the alerts they explain."""

    def __init__(self, window: int = EDIT_WINDOW) -> None:
        self.window = window
        self._edits: list[_Edit] = []
        self._lrs: dict = {}  # optimizer key -> its param groups' learning rates at its latest step

    def stepped(self, lrs: tuple, optimizer: int = 0) -> None:
        """Note the learning rates of a step of `optimizer` (a key: id of it); a scheduler may change them after an
        edit."""
        if optimizer in self._lrs or len(self._lrs) < 64:
            self._lrs[optimizer] = tuple(lrs)

    def edited(self, event: EditEvent, root: str = "") -> None:
        """Note an applied edit; `root`: the root name of the model it edits, which its target starts with."""
        if not event.applied:
            return
        self._edits = [e for e in self._edits if event.iteration - e.iteration <= self.window]
        args = dict(event.args)
        learning_rate = event.kind == "optimizer" and args.get("name") == "lr"
        grows = event.kind != "freeze" and (event.kind != "set_setting" or args.get("name") not in HARMLESS_SETTINGS)
        self._edits.append(_Edit(event.iteration, edit_text(event, root), root, learning_rate,
                                 tuple(self._lrs.items()), grows))

    def explain(self, alert: AlertEvent) -> AlertEvent:
        """`alert`, its message led by the edits that may have caused it (the latest first), and with no advice to
        lower a learning rate no edit changed; the alert itself where no recent edit touches what it is about."""
        if alert.kind not in CONSEQUENCES:
            return alert
        recent = [e for e in self._edits if 0 <= alert.iteration - e.iteration <= self.window and _about(alert, e)]
        edits = [e for e in recent if e.grows or alert.kind not in GROWTH]
        message = alert.message
        if not edits:  # a dropout rate or a mode changed, and values grew: said, but no cause to undo
            if not recent:
                return alert
            lead = f"An edit came just before ({_named(recent, alert)}), though it cannot make values grow"
            return replace(alert, message=f"{lead}. {message[:1].upper()}{message[1:]}")
        if not any(e.learning_rate or self._lr_moved(e) for e in edits):  # the rate is what trained fine
            for pattern, fix in _LR_ADVICE:
                message = re.sub(pattern, fix, message)
        lead = "After an edit" if len(edits) == 1 else f"After {len(edits)} edits"
        return replace(alert, message=f"{lead}: {_named(edits, alert)}. {message[:1].upper()}{message[1:]}")

    def _lr_moved(self, edit: _Edit) -> bool:
        """Whether a learning rate of a param group moved by LR_DRIFT or more since the edit (a warm restart, a step
        decay), per optimizer; one that had not stepped before it counts as moved."""
        before = dict(edit.lrs)
        for key, now in self._lrs.items():
            was = before.get(key)
            if was is None or len(was) != len(now) or any(
                    not (a == b or 0 < a / LR_DRIFT < b < a * LR_DRIFT) for a, b in zip(was, now)):
                return True
        return False


def after_edit(message: str) -> bool:
    """Whether an alert's message names an edit as its likely cause (EditBlame.explain led it so)."""
    return _LEAD.match(message) is not None


def edit_text(event: EditEvent, root: str = "") -> str:
    """What an applied edit did, in words: "'2.weight' was scaled by 10" (its target without the root's name)."""
    args = dict(event.args)
    target = event.target[len(root) + 1:] if root and event.target.startswith(root + ".") else event.target
    kind = event.kind
    if kind == "param":
        count = len(args.get("indices") or ())
        what = f"{count} element{'s' if count != 1 else ''} of '{target}'" if count else f"'{target}'"
        value = args.get("value")
        value = ", ".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value:g}"
        verb = "scaled by" if args.get("action") == "scale" else "set to"
        return f"{what} {'were' if count > 1 else 'was'} {verb} {value}"
    if kind == "optimizer":
        group = args.get("group", 0)
        where = "every param group" if group == -1 else f"param group {group}"
        return f"the optimizer's {args.get('name')} was set to {args.get('value')} ({where})"
    if kind == "freeze":
        return f"'{target}' was {'frozen' if args.get('frozen', True) else 'unfrozen'}"
    if kind == "reinit":
        return f"'{target}' was re-initialised"
    if kind == "swap":
        return f"'{target}' was swapped for {args.get('cls')}"
    if kind == "set_setting":
        return f"'{target}'.{args.get('name')} was set to {args.get('value')!r}"
    if kind == "restore":
        return f"'{target}' was restored to its values {'after' if args.get('after') else 'before'} an earlier edit"
    return f"'{target}' was edited ({kind})"


def _about(alert: AlertEvent, edit: _Edit) -> bool:
    """Whether the alert may be about the edited model: an optimizer's setting reaches every model it trains,
    and an alert that names no model of its own (parameters by their path in the model: '0.weight') is about
    the edited one; one in a module of another root is not."""
    return not edit.root or not alert.module or alert.module.split(".", 1)[0] == edit.root


def _named(edits: list, alert: AlertEvent) -> str:
    """The edits in words, the latest first."""
    return "; ".join(f"{e.text} at iteration {e.iteration:,}, {_ago(alert.iteration - e.iteration)}"
                     for e in reversed(edits))


def _ago(n: int) -> str:
    return "in the same iteration" if n == 0 else f"{n} iteration{'s' if n != 1 else ''} before"
