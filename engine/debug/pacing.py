"""Which optimizer steps end an iteration when several optimizers train (a GAN, SAC, DARTS).

A training loop's body steps its optimizers in a fixed pattern: a GAN's discriminator one, two or five times and
then its generator; SAC's critic, actor and temperature. An iteration should hold one pass of that body.

- Until the pattern shows, an iteration holds a step of every optimizer the iteration uses: a step does not end it
  while another live optimizer, sharing none of its parameters, has parameters that require grad, that the
  iteration's ops took, and has not stepped yet (a GAN's generator, called to make the fakes its discriminator
  steps on). A peer that lets the stepping optimizer step WAIT_STEPS times without stepping once is not part of
  the loop (an optimizer made for a later stage) and is no longer waited for.
- Once the loop shows which optimizer steps last in its body (the one seen twice in a row stepping just before the
  optimizer that stepped first), that one's steps end iterations (the pacer). Another optimizer's steps do not, as
  long as no more of them come in a row than were seen between two of the pacer's. An optimizer stepping alone (a
  second model trained after the first) ends its own.

Engine code: no Qt.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from engine.optim.optimizer import live_optimizers

WAIT_STEPS = 16  # a WGAN's critic steps five times per generator step; some recipes ten
_RECENT = 64  # steps remembered to count the other optimizers' steps between two of the pacer's


class Pacing:
    """Decides, step by step, whether an optimizer step ends the iteration (see the module docstring)."""

    def __init__(self) -> None:
        self.pacer = None  # the optimizer whose steps end iterations, once the loop shows it (else the main one)
        self._opener = None  # the optimizer that stepped first: a loop's body starts with it
        self._last = None  # the optimizer that stepped last
        self._closer = (None, 0)  # the optimizer seen stepping just before the opener, and how many times in a row
        # other optimizers' steps since the pacer last stepped, and the most seen between two of its
        self._foreign_run = self._foreign_most = 0
        self._recent: deque = deque(maxlen=_RECENT)
        self._stepped: dict[int, list] = {}  # id(optimizer) -> [it, its steps] since the iteration began
        self._idle: set[int] = set()  # ids of optimizers no longer waited for

    def ends(self, opt, main, used: Callable[[], set[int]]) -> bool:
        """Whether this step of `opt` ends the iteration; `main` is the debugger's optimizer, `used()` the ids of
        the tensors the iteration's forward ops took."""
        pacer = self.pacer or main
        last, self._last = self._last, opt
        self._recent.append(opt)
        if self._opener is None:
            self._opener = opt
        elif opt is self._opener and last is not opt:
            closer, seen = self._closer
            self._closer = (last, seen + 1 if last is closer else 1)
            if last is not pacer and self._closer[1] >= 2:
                self.pacer = pacer = last
                self._foreign_most = _most_between(self._recent, pacer)
                self._foreign_run = 0
        if opt is pacer:
            self._foreign_most = max(self._foreign_most, self._foreign_run)
            self._foreign_run = 0
            ends = True
        else:
            self._foreign_run += 1
            ends = self._foreign_run > self._foreign_most
        if self._closer[1] < 2:  # the pattern has not shown yet
            ends = self._each_stepped(opt, used)
        if ends:
            self._stepped.clear()
        return ends

    def _each_stepped(self, opt, used: Callable[[], set[int]]) -> bool:
        """Whether every optimizer this iteration uses has stepped, now that `opt` has."""
        entry = self._stepped.setdefault(id(opt), [opt, 0])
        entry[1] += 1
        waiting = self._waiting(opt, used)
        if waiting and entry[1] >= WAIT_STEPS:  # they did not step in all this time: not part of this loop
            self._idle.update(map(id, waiting))
            return True
        return not waiting

    def _waiting(self, opt, used: Callable[[], set[int]]) -> list:
        """The live optimizers, other than `opt` and sharing none of its parameters (not a wrapper of it), that
        have not stepped in this iteration although its ops took some of their parameters that require grad (a
        frozen backbone's optimizer, kept for a later stage, is not waited for)."""
        others = [o for o in live_optimizers()
                  if o is not opt and id(o) not in self._stepped and id(o) not in self._idle]
        if not others:
            return []
        mine = {id(p) for group in opt.param_groups for p in group["params"]}
        ids = used()
        return [o for o in others
                if not any(id(p) in mine for group in o.param_groups for p in group["params"])
                and any(p.requires_grad and p._id in ids for group in o.param_groups for p in group["params"])]


def _most_between(recent: deque, pacer) -> int:
    """How many other optimizers' steps came between the pacer's last two steps in `recent` (0 if not seen)."""
    at = [i for i, o in enumerate(recent) if o is pacer]
    return at[-1] - at[-2] - 1 if len(at) >= 2 else 0
