"""Which alerts are one alert raised again, and which a person muted (plain data for the Alerts panel and the
sessions that stop at alerts).

A condition that clears and comes back (a gradient norm hovering at its limit) raises its alert each time it
comes back: in a long run the same vanishing-gradient alert on the same parameter came eight times, thirty
iterations apart, and with every alert stopping the run it stopped it eight times. A repeat is folded into the
first (the panel counts it: "x8", the last iteration) and a run stops at the first only. A person can mute a kind
everywhere, a kind about one thing (the vanishing gradient of '1.weight', not of '0.weight'), or every alert about
one thing, for the rest of the session: muted alerts are still listed (greyed) and recorded, but stop nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.debug.edit_blame import after_edit


def fold_key(alert) -> tuple[str, str, bool]:
    """What makes two alerts one: their kind, what they are about (a parameter, a layer, an op's node key), and
    whether an edit made it (after an edit the same finding has another cause)."""
    return alert.kind, alert.key, after_edit(alert.message)


@dataclass(frozen=True, slots=True)
class Mutes:
    """The alert kinds, the things (alert keys), and the kinds about one thing ((kind, key) pairs) a person muted."""

    kinds: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    pairs: frozenset[tuple[str, str]] = frozenset()

    def hides(self, kind: str, key: str) -> bool:
        """Whether alerts of `kind` about `key` are muted: their kind, what they are about, or that kind about it."""
        return kind in self.kinds or (bool(key) and (key in self.keys or (kind, key) in self.pairs))

    def __bool__(self) -> bool:
        return bool(self.kinds or self.keys or self.pairs)
