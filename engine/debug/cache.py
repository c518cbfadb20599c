"""A bounded value cache: recent op outputs and gradients by tensor id, fetchable in full while paused.

It holds references, never copies: the most recently recorded arrays are kept alive, up to
`max_bytes` (LRU) and for `keep_iterations` iterations (the current and the previous one by default:
keeping every tensor for hundreds of steps would make each new array land in cold, freshly faulted
memory, which costs more than the whole tracer). Older ones are only weakly referenced, so they stay
fetchable for as long as the program itself keeps them. An output changed in place after it was
recorded is refused (its version moved on) rather than shown with values it did not have. Gradients
carry no version: a gradient later summed into in place (zero_grad(set_to_none=False), accumulation)
shows its current values. A slice's gradient is kept as its region (a RegionGrad, counted by the bytes
of its values, forgotten when retired: nothing else holds it) and made whole only when fetched.

A put runs on the engine thread inside every op, so it only extends the current iteration's queue
by the entry's five items (no tuple per entry, which the garbage collector would have to visit):
finding an id (a fetch, while paused) searches the queues newest first, and an iteration boundary
retires a whole queue in one loop.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import weakref
from collections import deque
from itertools import islice

import numpy as np

from engine.debug.regions import held, whole

DEFAULT_BYTES = 256 << 20
_MAX_WEAK = 1 << 16
_WEAK_PURGE = 1024  # dead weak entries (their arrays freed) are swept out past this many entries


class ValueUnavailable(KeyError):
    """The value of a tensor id is not (or no longer) available."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "value unavailable"


class ValueCache:
    """Tensor id -> array, LRU-bounded by bytes; thread-safe (the engine puts, any thread fetches)."""

    def __init__(self, max_bytes: int = DEFAULT_BYTES, keep_iterations: int = 2) -> None:
        self.max_bytes = int(max_bytes)
        self.keep_iterations = keep_iterations
        self.nbytes = 0
        self.generation = 0  # the iteration being recorded
        self._cur: deque = deque()  # id, array, version counter, version, nbytes, id, ...: oldest first
        self._gens: dict[int, deque] = {0: self._cur}  # generation -> its entries, oldest generation first
        self._weak: dict[int, tuple] = {}  # id -> (weakref to array, counter, version), oldest first
        self._weak_purge_at = _WEAK_PURGE
        self._lock = threading.Lock()  # fetches, boundaries and evictions; a put is one atomic extend

    def put(self, tensor_id: int, array, vc: list | None = None) -> None:
        """Remember `array` as the value of `tensor_id` (`vc`: the tensor's version counter, if any)."""
        size = array.nbytes
        if size > self.max_bytes or not tensor_id:
            return
        # an in-place op records its tensor again: the newer entry shadows the older until it retires
        self._cur.extend((tensor_id, array, vc, vc[0] if vc is not None else 0, size))
        self.nbytes += size
        if self.nbytes > self.max_bytes:
            self._shed()

    def put_many(self, first_id: int, first, ids: tuple, arrays: tuple) -> None:
        """put() for a backward node's gradients (None entries skipped); gradients carry no version."""
        limit = self.max_bytes
        add = self._cur.extend
        total = self.nbytes
        if first is not None and first_id and (size := first.nbytes) <= limit:
            add((first_id, first, None, 0, size))
            total += size
        for tid, a in zip(ids, arrays):
            if a is not None and tid:
                size = held(a).nbytes  # a slice's RegionGrad is kept as it is, made whole when fetched
                if size <= limit:
                    add((tid, a, None, 0, size))
                    total += size
        self.nbytes = total
        if total > limit:
            self._shed()

    def new_iteration(self, iteration: int) -> None:
        """Start recording `iteration`; arrays older than `keep_iterations` become weak references."""
        with self._lock:
            self.generation = iteration
            gens = self._gens
            cur = gens.get(iteration)
            if cur is None:
                cur = gens[iteration] = deque()
            self._cur = cur
            oldest = iteration - self.keep_iterations
            for gen in [g for g in gens if g <= oldest and gens[g] is not cur]:
                self._retire(gens.pop(gen))

    def _retire(self, entries: deque) -> None:
        """Weakly keep what others still hold of retired entries; the rest dies with them."""
        items = list(entries)  # one copy and a slice, not five pops per entry: an iteration boundary retires them all
        entries.clear()
        getrefcount = sys.getrefcount
        keep = self._keep_weakly
        for i in range(1, len(items), 5):
            a = items[i]
            items[i] = None
            # `a` and the call's argument; more means something else holds it (or, for a gradient
            # handed to two nodes, a later entry still does: that one decides)
            if getrefcount(a) > 2:
                keep(items[i - 1], a, items[i + 1], items[i + 2])
        self.nbytes -= sum(items[4::5])
        self._trim_weak()

    def _keep_weakly(self, tid: int, a, vc, v) -> None:
        with contextlib.suppress(TypeError):  # an array type without weak references: simply forgotten
            self._weak[tid] = (weakref.ref(a), vc, v)

    def _trim_weak(self) -> None:
        """Forget dead weak entries once they have doubled in number, and the oldest beyond the bound."""
        weak = self._weak
        if len(weak) > self._weak_purge_at:  # amortised: each purge at least halves what is left to scan
            dead = [tid for tid, (ref, _, _) in weak.items() if ref() is None]
            for tid in dead:
                del weak[tid]
            self._weak_purge_at = max(_WEAK_PURGE, 2 * len(weak))
        if len(weak) > _MAX_WEAK:
            for tid in list(islice(weak, len(weak) - _MAX_WEAK)):
                del weak[tid]

    def _shed(self) -> None:
        """Demote least recently recorded entries, oldest generation first, until the bytes fit again."""
        with self._lock:
            weak = self._weak
            for entries in list(self._gens.values()):
                pop = entries.popleft
                while entries and self.nbytes > self.max_bytes:
                    tid, a, vc, v, size = pop(), pop(), pop(), pop(), pop()
                    self.nbytes -= size
                    weak.pop(tid, None)  # re-inserted last: the weak entries stay oldest first
                    if sys.getrefcount(a) > 2:  # `a` here and the call's argument: anyone else holds it
                        self._keep_weakly(tid, a, vc, v)
                if self.nbytes <= self.max_bytes:
                    break
            self._trim_weak()

    def get(self, tensor_id: int):
        """The array (on its device) recorded for `tensor_id`; ValueUnavailable when gone or changed."""
        return whole(self._kept(tensor_id))

    def _kept(self, tensor_id: int):
        """What was kept for `tensor_id`: an array, or a slice gradient's RegionGrad."""
        with self._lock:
            for entries in reversed(self._gens.values()):  # newest first: a re-put shadows older entries
                items = list(entries)
                i = next((i for i in range(len(items) - 5, -1, -5) if items[i] == tensor_id), -1)
                if i >= 0:
                    entry = items[i:i + 5]
                    if entries is not self._cur:  # recently used: it joins the newest generation
                        entries.clear()
                        entries.extend(items[:i] + items[i + 5:])
                        self._cur.extend(entry)
                    _, array, vc, v, _ = entry
                    break
            else:
                ref = self._weak.get(tensor_id)
                array = ref[0]() if ref is not None else None
                if array is None:
                    raise ValueUnavailable(
                        f"tensor {tensor_id}: no value kept (never recorded, or evicted from the "
                        f"{self.max_bytes >> 20} MB value cache and freed since)")
                _, vc, v = ref
        if vc is not None and vc[0] != v:
            raise ValueUnavailable(f"tensor {tensor_id} was changed in place after it was recorded "
                                   f"(version {vc[0]}, recorded at {v})")
        return array

    def fetch(self, tensor_id: int) -> np.ndarray:
        """A host (numpy) copy of the value of `tensor_id`; copies from the GPU only now."""
        kept = self._kept(tensor_id)
        array = whole(kept)  # a region made whole is a new array already: no second copy
        if isinstance(array, np.ndarray):
            return array if array is not kept else array.copy()
        return array.get()

    def __contains__(self, tensor_id: int) -> bool:
        try:
            self.get(tensor_id)
        except ValueUnavailable:
            return False
        return True

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            for entries in self._gens.values():
                entries.clear()
            self._gens = {self.generation: self._cur}
            self._weak.clear()
            self.nbytes = 0
