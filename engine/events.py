"""Events the engine emits, and the hub they go through.

Ops check one attribute (`hub.active`) and only build an event when somebody listens.
Events are plain, slotted data (ids, keys, shapes, dtype names), never engine objects, so they can be
queued, recorded to a tape or sent across a process boundary.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

# Both counters are called on every event: their bound __next__ is a C call, where a function
# wrapping next() would add a Python frame each time. Thread-safe under the GIL.
next_tensor_id = itertools.count(1).__next__  # a fresh, process-unique tensor id (never reused, unlike id())
next_seq = itertools.count(1).__next__  # the next global event sequence number


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 4x more, on every op
class OpEvent:
    """A forward op ran: `output = op(*inputs)`."""

    seq: int
    op: str
    key: str
    module: str
    inputs: tuple[int, ...]
    output: int
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    dtype: str
    device: str
    requires_grad: bool
    # the op's keyword settings (reduction, dim, keepdim...): its options of plain types, not the arrays some
    # ops pass themselves; the tape keeps the short plain ones (engine.tape.codec.op_args)
    args: dict = field(default_factory=dict, compare=False)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 4x more, on every op
class BackwardEvent:
    """A backward node ran: it turned the gradient of `forward_seq`'s output into input gradients."""

    seq: int
    op: str
    key: str
    forward_seq: int
    grad_output: int
    grad_inputs: tuple[int, ...]
    # run by autograd.grad(), which hands its gradients to the caller: its root is no loss (engine.debug.losses)
    grad_call: bool = False
    # the first node a backward pass emits (its root, unless the root emitted nothing): where the pass starts
    pass_start: bool = False


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 4x more, on every op
class ModuleEvent:
    """A module call started (`enter=True`) or finished."""

    seq: int
    path: str
    cls: str
    enter: bool
    tensors: tuple[int, ...]
    params: tuple = ()  # on enter: (tensor id, dotted name such as "fc1.weight") of its own parameters


@dataclass(slots=True, frozen=True)
class OptimizerEvent:
    """An optimizer step: learning rates and, per parameter name, update, weight and gradient norms."""

    seq: int
    optimizer: str
    lrs: tuple[float, ...]
    update_norms: dict
    weight_norms: dict
    grad_norms: dict = field(default_factory=dict)  # of the gradient the step used (before any weight decay)


def renamed(event: OptimizerEvent, names: dict[str, str]) -> OptimizerEvent:
    """`event` with its parameters renamed by `names` (old name -> new; names not in it stay as they are)."""
    return OptimizerEvent(event.seq, event.optimizer, event.lrs,
                          *({names.get(k, k): v for k, v in norms.items()}
                            for norms in (event.update_norms, event.weight_norms, event.grad_norms)))


@dataclass(slots=True, frozen=True)
class EditEvent:
    """A runtime edit (engine.debug) applied, or refused with `message`; `args`: (name, value) pairs."""

    seq: int
    kind: str
    target: str
    args: tuple
    applied: bool
    message: str
    iteration: int


@dataclass(slots=True, frozen=True)
class AlertEvent:
    """Something went numerically wrong (engine.debug): where it started, and the inputs' summaries."""

    seq: int
    # one of engine.debug.alert_text.KINDS: found by engine.debug.alerts (and .nonfinite) as the run goes, but
    # inplace and graph_freed, the error that ended a run, explained (Debugger.explain_failure)
    kind: str
    message: str
    op: str
    key: str
    module: str
    forward_seq: int
    iteration: int
    file: str
    line: int
    code: str
    value: float
    inputs: tuple = ()  # engine.debug TensorSummary of each input, when known


Event = OpEvent | BackwardEvent | ModuleEvent | OptimizerEvent | EditEvent | AlertEvent
TensorListener = Callable[[Event, tuple, object], None]
Subscriber = Callable[[Event], None]


class _Scope(threading.local):
    """The module path the current thread is in, and op counters per module call (for stable keys)."""

    def __init__(self) -> None:
        self.paths: list[str] = [""]
        self.counters: list[dict[str, int]] = [{}]


class Hub:
    """Fan-out of engine events to subscribers; `active` is False while nobody listens."""

    def __init__(self) -> None:
        self.active = False
        self._subscribers: tuple[Subscriber, ...] = ()  # given every event
        self._quiet: tuple[Subscriber, ...] = ()  # given every event but ops and backward nodes
        self._everyone: tuple[Subscriber, ...] = ()
        # opt-in second channel for the debugger: also given the engine objects behind op/backward events
        self.tensor_listeners: tuple[TensorListener, ...] = ()
        # called with no arguments on the thread that ran it when a backward() pass (not a grad() call) is over
        self.pass_listeners: tuple[Callable[[], None], ...] = ()
        # optimizer update/weight norms cost a copy and reductions per parameter: only on request
        self.optimizer_norms = False
        self._norm_requests = 0
        self._lock = threading.Lock()
        self._scope = _Scope()

    def request_optimizer_norms(self) -> Callable[[], None]:
        """Ask optimizers to put update and weight norms in their events; returns the release."""
        with self._lock:
            self._norm_requests += 1
            self.optimizer_norms = True
        released = []

        def release() -> None:
            with self._lock:
                if not released:
                    released.append(True)
                    self._norm_requests -= 1
                    self.optimizer_norms = self._norm_requests > 0

        return release

    def subscribe(self, fn: Subscriber, ops: bool = True) -> Callable[[], None]:
        """Call `fn(event)` for every event from now on; returns a function that unsubscribes.

        ops=False: not for OpEvent and BackwardEvent (the most frequent), for a subscriber that gets
        those with their tensors (listen_tensors) or does not want them: a call saved per op."""
        with self._lock:
            if ops:
                self._subscribers = (*self._subscribers, fn)
            else:
                self._quiet = (*self._quiet, fn)
            self._everyone = (*self._subscribers, *self._quiet)
            self.active = True
        return lambda: self.unsubscribe(fn)

    def listen_tensors(self, fn: TensorListener) -> Callable[[], None]:
        """Also call `fn(event, inputs, output)` after each op and backward node; returns the undo.

        For an OpEvent: the input Tensors and the output Tensor. For a BackwardEvent: a 1-tuple with the
        incoming gradient array, and the tuple of input gradients (None where none), already summed to
        each input's shape: arrays, except a slice's, which is a RegionGrad (engine.autograd.function:
        its `values`, zero elsewhere, `dense()` makes it whole; engine.debug.regions summarises it
        without that). Engine objects: for in-process tools only, never for the tape.
        """
        with self._lock:
            self.tensor_listeners = (*self.tensor_listeners, fn)
            self.active = True
        return lambda: self.unsubscribe(fn)

    def listen_passes(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Also call `fn()` when a backward() pass is over (in-process tools); returns the undo."""
        with self._lock:
            self.pass_listeners = (*self.pass_listeners, fn)
        return lambda: self.unsubscribe(fn)

    def unsubscribe(self, fn: Subscriber) -> None:
        """Stop calling `fn`; unknown subscribers are ignored."""
        with self._lock:
            # == rather than `is`: each `obj.method` access makes a new (equal) bound method
            self._subscribers = tuple(s for s in self._subscribers if s != fn)
            self._quiet = tuple(s for s in self._quiet if s != fn)
            self._everyone = (*self._subscribers, *self._quiet)
            self.tensor_listeners = tuple(s for s in self.tensor_listeners if s != fn)
            self.pass_listeners = tuple(s for s in self.pass_listeners if s != fn)
            self.active = self.listened()

    def listened(self) -> bool:
        """Whether anybody subscribes or listens (what `active` says, unless somebody silenced the hub)."""
        return bool(self._everyone or self.tensor_listeners)

    @contextlib.contextmanager
    def silenced(self):
        """No events from any thread inside: work the engine does for itself, not part of the person's run (a
        custom Function's inside, a parametrization checked as it is registered)."""
        was = self.active
        self.active = False
        try:
            yield
        finally:
            if was:
                self.active = self.listened()

    def emit(self, event: Event) -> None:
        """Deliver one event (not an op's or a backward node's: emit_op) to every subscriber."""
        for fn in self._everyone:  # a tuple: a concurrent (un)subscribe swaps it, never mutates it
            fn(event)

    def emit_op(self, event: OpEvent | BackwardEvent) -> None:
        """Deliver an OpEvent or BackwardEvent to the subscribers that take them."""
        for fn in self._subscribers:
            fn(event)

    def emit_tensors(self, event: Event, inputs: tuple, output) -> None:
        """Give `event` with its engine objects to every tensor listener (see `listen_tensors`)."""
        for fn in self.tensor_listeners:
            fn(event, inputs, output)

    # ---- module scope, for stable node keys -------------------------------------------------
    @property
    def module_path(self) -> str:
        """Dotted path of the innermost module call on this thread ('' at top level)."""
        return self._scope.paths[-1]

    def enter_module(self, path: str) -> None:
        """Mark that ops from now on run inside module `path`."""
        self._scope.paths.append(path)
        self._scope.counters.append({})

    def exit_module(self) -> None:
        """Leave the innermost module call."""
        scope = self._scope
        if len(scope.paths) > 1:
            scope.paths.pop()
            scope.counters.pop()

    def node_key(self, op: str) -> tuple[str, str]:
        """(module path, stable key) for the next `op`: path + op name + its index within the call."""
        scope = self._scope
        counters = scope.counters[-1]
        n = counters.get(op, 0)
        counters[op] = n + 1
        path = scope.paths[-1]
        return path, f"{path}/{op}:{n}" if path else f"{op}:{n}"

    def reset_top_level(self) -> None:
        """Restart the top-level op counters (called at iteration boundaries)."""
        self._scope.counters[0] = {}


hub = Hub()
