"""A bounded value cache: recent op outputs and gradients by tensor id, fetchable in full while paused.

It holds references, never copies: the most recently recorded arrays are kept alive, up to
`max_bytes` (LRU) and for `keep_iterations` iterations (the current and the previous one by default:
keeping every tensor for hundreds of steps would make each new array land in cold, freshly faulted
memory, which costs more than the whole tracer). Older ones are only weakly referenced, so they stay
fetchable for as long as the program itself keeps them. An output changed in place after it was
recorded is refused (its version moved on) rather than shown with values it did not have. Gradients
carry no version: a gradient later summed into in place (zero_grad(set_to_none=False), accumulation)
shows its current values.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections import OrderedDict

import numpy as np

DEFAULT_BYTES = 256 << 20
_MAX_WEAK = 1 << 16


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
        self._strong: OrderedDict[int, tuple] = OrderedDict()  # id -> (array, counter, version, generation)
        self._weak: OrderedDict[int, tuple] = OrderedDict()  # id -> (weakref to array, counter, version)
        self._lock = threading.Lock()

    def put(self, tensor_id: int, array, vc: list | None = None) -> None:
        """Remember `array` as the value of `tensor_id` (`vc`: the tensor's version counter, if any)."""
        size = array.nbytes
        if size > self.max_bytes or not tensor_id:
            return
        entry = (array, vc, vc[0] if vc is not None else 0, self.generation)
        with self._lock:
            old = self._strong.pop(tensor_id, None)
            if old is not None:
                self.nbytes -= old[0].nbytes
            self._strong[tensor_id] = entry
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                self._demote()

    def put_many(self, first_id: int, first, ids: tuple, arrays: tuple) -> None:
        """put() for a backward node's gradients (None entries skipped), under one lock."""
        gen = self.generation
        with self._lock:
            strong = self._strong
            for tid, a in ((first_id, first), *zip(ids, arrays)):
                if a is None or not tid or a.nbytes > self.max_bytes:
                    continue
                strong[tid] = (a, None, 0, gen)  # ids here are fresh, never re-put
                self.nbytes += a.nbytes
            while self.nbytes > self.max_bytes:
                self._demote()

    def new_iteration(self, iteration: int) -> None:
        """Start recording `iteration`; arrays older than `keep_iterations` become weak references."""
        with self._lock:
            self.generation = iteration
            oldest = iteration - self.keep_iterations
            strong = self._strong
            while strong and strong[next(iter(strong))][3] <= oldest:
                self._demote()

    def _demote(self) -> None:
        """Turn the least recently used strong entry into a weak one (or drop it if nothing else holds it)."""
        old_id, (old, ovc, ov, _) = self._strong.popitem(last=False)
        self.nbytes -= old.nbytes
        if sys.getrefcount(old) <= 2:  # only `old` itself refers to it now: it dies with this frame
            return
        try:
            self._weak[old_id] = (weakref.ref(old), ovc, ov)
        except TypeError:  # an array type without weak references: simply forgotten
            return
        if len(self._weak) > _MAX_WEAK:
            self._weak.popitem(last=False)

    def get(self, tensor_id: int):
        """The array (on its device) recorded for `tensor_id`; ValueUnavailable when gone or changed."""
        with self._lock:
            entry = self._strong.get(tensor_id)
            if entry is not None:
                self._strong.move_to_end(tensor_id)
                array, vc, v, _ = entry
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
            self._strong.clear()
            self._weak.clear()
            self.nbytes = 0
