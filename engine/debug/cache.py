"""A bounded value cache: recent op outputs and gradients by tensor id, fetchable in full while paused.

It holds references, never copies: the most recently recorded arrays are kept alive, up to
`max_bytes` (LRU) and for `keep_iterations` iterations (the current and the previous one by default:
keeping every tensor for hundreds of steps would make each new array land in cold, freshly faulted
memory, which costs more than the whole tracer). Older ones are only weakly referenced, so they stay
fetchable for as long as the program itself keeps them. An output changed in place after it was
recorded is refused (its version moved on) rather than shown with values it did not have. Gradients
carry no version: a gradient later summed into in place (zero_grad(set_to_none=False), accumulation)
shows its current values.

Entries live in one insertion-ordered bucket per iteration, so a put is one dictionary store and an
iteration boundary retires a whole bucket in one loop; a fetched entry moves to the newest bucket.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import weakref
from collections import OrderedDict
from itertools import islice

import numpy as np

DEFAULT_BYTES = 256 << 20
_MAX_WEAK = 1 << 16
# getrefcount(a) while retiring an entry: the entry tuple, the loop variable and the call's argument
_ONLY_US = 3


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
        self._cur: OrderedDict[int, tuple] = OrderedDict()  # id -> (array, counter, version, nbytes)
        self._gens: dict[int, OrderedDict] = {0: self._cur}  # generation -> its bucket, oldest first
        self._weak: dict[int, tuple] = {}  # id -> (weakref to array, counter, version), oldest first
        self._lock = threading.Lock()

    def put(self, tensor_id: int, array, vc: list | None = None) -> None:
        """Remember `array` as the value of `tensor_id` (`vc`: the tensor's version counter, if any)."""
        size = array.nbytes
        if size > self.max_bytes or not tensor_id:
            return
        entry = (array, vc, vc[0] if vc is not None else 0, size)
        with self._lock:
            cur = self._cur
            old = cur.get(tensor_id)  # an in-place op records its tensor again (an older bucket's copy
            if old is not None:  # of it is shadowed by this one until that bucket retires)
                self.nbytes -= old[3]
                del cur[tensor_id]
            cur[tensor_id] = entry
            self.nbytes += size
            if self.nbytes > self.max_bytes:
                self._shed()

    def put_many(self, first_id: int, first, ids: tuple, arrays: tuple) -> None:
        """put() for a backward node's gradients (None entries skipped), under one lock."""
        limit = self.max_bytes
        with self._lock:
            cur = self._cur
            total = self.nbytes
            if first is not None and first_id and first.nbytes <= limit:
                size = first.nbytes
                cur[first_id] = (first, None, 0, size)  # gradient ids are fresh, never put twice
                total += size
            for tid, a in zip(ids, arrays):
                if a is not None and tid and a.nbytes <= limit:
                    size = a.nbytes
                    cur[tid] = (a, None, 0, size)
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
                cur = gens[iteration] = OrderedDict()
            self._cur = cur
            oldest = iteration - self.keep_iterations
            for gen in [g for g in gens if g <= oldest and gens[g] is not cur]:
                self._retire(gens.pop(gen))

    def _retire(self, bucket: OrderedDict) -> None:
        """Weakly keep what others still hold of a retired bucket; the rest dies with it."""
        freed = 0
        weak = self._weak
        getrefcount = sys.getrefcount
        for tid, (a, vc, v, size) in bucket.items():
            freed += size
            if getrefcount(a) > _ONLY_US:
                self._keep_weakly(tid, a, vc, v)
        self.nbytes -= freed
        bucket.clear()
        if len(weak) > _MAX_WEAK:
            for tid in list(islice(weak, len(weak) - _MAX_WEAK)):
                del weak[tid]

    def _keep_weakly(self, tid: int, a, vc, v) -> None:
        with contextlib.suppress(TypeError):  # an array type without weak references: simply forgotten
            self._weak[tid] = (weakref.ref(a), vc, v)

    def _shed(self) -> None:
        """Demote least recently used entries, oldest bucket first, until the bytes fit again."""
        weak = self._weak
        for bucket in list(self._gens.values()):
            while bucket and self.nbytes > self.max_bytes:
                tid, (a, vc, v, size) = bucket.popitem(last=False)
                self.nbytes -= size
                weak.pop(tid, None)  # re-inserted last: the weak entries stay oldest first
                if sys.getrefcount(a) > 2:  # `a` here and the call's argument: anyone else holds it
                    self._keep_weakly(tid, a, vc, v)
            if self.nbytes <= self.max_bytes:
                break
        if len(weak) > _MAX_WEAK:
            for tid in list(islice(weak, len(weak) - _MAX_WEAK)):
                del weak[tid]

    def get(self, tensor_id: int):
        """The array (on its device) recorded for `tensor_id`; ValueUnavailable when gone or changed."""
        with self._lock:
            for bucket in reversed(self._gens.values()):  # newest first: a re-put shadows older copies
                entry = bucket.get(tensor_id)
                if entry is not None:
                    del bucket[tensor_id]  # recently used: it moves to the newest bucket's end
                    self._cur[tensor_id] = entry
                    array, vc, v, _ = entry
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
        array = self.get(tensor_id)
        return array.copy() if isinstance(array, np.ndarray) else array.get()

    def __contains__(self, tensor_id: int) -> bool:
        try:
            self.get(tensor_id)
        except ValueUnavailable:
            return False
        return True

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            for bucket in self._gens.values():
                bucket.clear()
            self._gens = {self.generation: self._cur}
            self._weak.clear()
            self.nbytes = 0
