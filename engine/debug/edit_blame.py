"""Alerts soon after a runtime edit name that edit first, and do not blame a learning rate that never changed.

A person scales '2.weight' by 10 in the Editor; two iterations later the gradients explode and the alert said
"try a smaller learning rate", although that rate had trained fine for 1,800 iterations. An edit changes what
runs after it in the forward and before it in the backward, so any alert about the values, gradients or updates
of the edited model within EDIT_WINDOW iterations counts as its possible consequence:

    blame = EditBlame()
    blame.stepped(optimizer_event.lrs)              # at each step: a rate a scheduler changed keeps its advice
    blame.edited(edit_event, root="Sequential")     # an applied EditEvent (engine.debug.edits)
    alert = blame.explain(alert)                    # "After an edit: '2.weight' was scaled by 10 at iteration ..."
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from engine.debug.alert_text import DIVERGED
from engine.debug.alerts import EXPLODING_ADVICE
from engine.events import AlertEvent, EditEvent

EDIT_WINDOW = 5  # iterations after an edit in which an alert about its model names it
# what an edit of values, modules or the optimizer can cause (not the loop's own mistakes: a missing zero_grad)
CONSEQUENCES = frozenset({
    "nonfinite_forward", "nonfinite_backward", "nonfinite_input", "nonfinite_step", "nonfinite_grad",
    "exploding_grad", "vanishing_grad", "dead_relu", "large_update", "tiny_update", "not_updated", "frozen",
    "no_gradient", "lr_gone", "lr_zero", "at_chance", "same_units", "zero_init", "clipped_hard"})
_UNDO = "undo the edit (Edit > Undo Edit)"
# the learning-rate advice of the alert texts, and what it says when an edit, not the rate, changed: the rate
# is what it was while training went fine
_LR_ADVICE = (
    (re.escape(EXPLODING_ADVICE), "the updates will throw the weights far off. The learning rate did not change "
                                  f"since the edit: {_UNDO}, or clip the gradients (engine.nn.utils.clip_grad_norm_)"),
    (r"the learning rate \(([^)]*)\) is far too high; try one 10 to 100 times smaller",
     rf"the learning rate (\1) did not change since the edit, which made the updates this large: {_UNDO}"),
    (r"The learning rate \(([^)]*)\) is far too low; try one 100 to 10,000 times larger",
     rf"The learning rate (\1) did not change since the edit, which made the updates this small: {_UNDO}"),
    (r"The learning rate is far too high \(or the gradient huge\); try one 10 to 100 times smaller",
     f"The learning rate did not change since the edit, which made the update this large: {_UNDO}"),
    (re.escape(DIVERGED), f"Values this large right after an edit come from it, not the learning rate: {_UNDO} or "
                          "clip the gradients (engine.nn.utils.clip_grad_norm_)"),
    (r"steps with a learning rate far too high blow weights up like this \(or check its init\)",
     f"the edit blew it up, not the learning rate: {_UNDO}"),
)


@dataclass(frozen=True, slots=True)
class _Edit:
    iteration: int
    text: str  # "'2.weight' was scaled by 10"
    root: str  # the edited model's root name ("" for an optimizer's setting)
    learning_rate: bool  # it set a learning rate
    lrs: tuple  # the learning rates of the last step before it


class EditBlame:
    """The applied edits of the last EDIT_WINDOW iterations, and the alerts they explain."""

    def __init__(self, window: int = EDIT_WINDOW) -> None:
        self.window = window
        self._edits: list[_Edit] = []
        self._lrs: tuple = ()  # of the latest optimizer step

    def stepped(self, lrs: tuple) -> None:
        """Note the learning rates of an optimizer step (a scheduler may change them after an edit)."""
        self._lrs = tuple(lrs)

    def edited(self, event: EditEvent, root: str = "") -> None:
        """Note an applied edit; `root`: the root name of the model it edits, which its target starts with."""
        if not event.applied:
            return
        self._edits = [e for e in self._edits if event.iteration - e.iteration <= self.window]
        args = dict(event.args)
        learning_rate = event.kind == "optimizer" and args.get("name") == "lr"
        self._edits.append(_Edit(event.iteration, edit_text(event, root), root, learning_rate, self._lrs))

    def explain(self, alert: AlertEvent) -> AlertEvent:
        """`alert`, its message led by the edits that may have caused it (the latest first), and with no advice to
        lower a learning rate no edit changed; the alert itself where no recent edit touches what it is about."""
        if alert.kind not in CONSEQUENCES:
            return alert
        edits = [e for e in self._edits if 0 <= alert.iteration - e.iteration <= self.window and _about(alert, e)]
        if not edits:
            return alert
        named = "; ".join(f"{e.text} at iteration {e.iteration:,}, {_ago(alert.iteration - e.iteration)}"
                          for e in reversed(edits))
        message = alert.message
        if not any(e.learning_rate or e.lrs != self._lrs for e in edits):  # the rate is what trained fine
            for pattern, fix in _LR_ADVICE:
                message = re.sub(pattern, fix, message)
        lead = "After an edit" if len(edits) == 1 else f"After {len(edits)} edits"
        return replace(alert, message=f"{lead}: {named}. {message[:1].upper()}{message[1:]}")


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


def _ago(n: int) -> str:
    return "in the same iteration" if n == 0 else f"{n} iteration{'s' if n != 1 else ''} before"
