"""Random number generators: `Generator` objects as torch's, one global per device, all seeded by `manual_seed`.

    g = engine.Generator().manual_seed(0)
    x = engine.randn(3, generator=g)           # draws from g; the global generator does not move

A CPU generator draws torch's CPU numbers from the same seed (a Mersenne Twister, engine.random_cpu), a CUDA one
CuPy's XORWOW on its GPU (not torch's numbers). Functions that take `generator=` also take a numpy Generator for
CPU draws, as the engine always has.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import numpy as np

from engine import backend
from engine.random_cpu import CPUStream

DEFAULT_SEED = 67280421310721  # what torch.Generator() starts from
_CPU_KIND, _CUDA_KIND = 0, 1  # the first byte of a state: whose state it is
_MT_WORDS = 624
# kind, seed, the Mersenne Twister's words and position, whether a normal sample is kept, and that sample
_CPU_STATE_BYTES = 1 + 8 + 4 * _MT_WORDS + 2 + 1 + 8


def _checked_seed(seed, op: str) -> int:
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise TypeError(f"{op} expects an integer, got {type(seed).__name__}")
    return int(seed) % 2 ** 64  # as torch: a negative seed wraps around to 64 bits


class Generator:
    """A random number generator of its own, as torch.Generator: pass it as `generator=` to draw from it."""

    def __init__(self, device="cpu") -> None:
        dev = backend.device(device)
        if dev.type == "cuda":
            backend.require_cuda(dev)
        self._device = dev
        self._seed = DEFAULT_SEED
        self._rng = None  # made at the first draw: a GPU generator's state costs a kernel and ~1.5 MB

    @property
    def device(self) -> backend.Device:
        """The device this generator draws on."""
        return self._device

    def __repr__(self) -> str:
        return f"<engine.Generator device={self._device} initial_seed={self._seed}>"

    def manual_seed(self, seed: int) -> Generator:
        """Restart the generator from `seed`; returns the generator, so `Generator().manual_seed(0)` reads."""
        self._seed = _checked_seed(seed, "manual_seed")
        self._rng = None
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy; returns the seed chosen."""
        self.manual_seed(secrets.randbits(64))
        return self._seed

    def initial_seed(self) -> int:
        """The seed this generator last started from."""
        return self._seed

    def get_state(self):
        """A uint8 CPU Tensor of the generator's state, for `set_state` (plain bytes: safe to save)."""
        from engine.tensor import Tensor

        seed = np.frombuffer(self._seed.to_bytes(8, "little"), dtype=np.uint8)
        rng = self.rng()
        if self._device.type == "cpu":
            key, pos, kept = rng.state
            words = (np.frombuffer(key, np.uint32).astype("<u4").tobytes() + pos.to_bytes(2, "little")
                     + bytes([kept is not None]) + np.float64(kept or 0.0).astype("<f8").tobytes())
            body = np.frombuffer(words, dtype=np.uint8)
            kind = _CPU_KIND
        else:
            with backend.require_cuda(self._device).cuda.Device(self._device.index):
                body = rng.bit_generator._state.view(np.uint8).get()
            kind = _CUDA_KIND
        return Tensor._of(np.concatenate([np.array([kind], dtype=np.uint8), seed, body]))

    def set_state(self, new_state) -> Generator:
        """Restore the state `get_state()` returned (of a generator of the same device type)."""
        from engine.tensor import Tensor

        if not isinstance(new_state, Tensor) or new_state.array.dtype != np.uint8 or new_state.ndim != 1:
            raise TypeError("set_state expects the uint8 Tensor that get_state() returned, got "
                            + (f"a {new_state.dtype.name} Tensor of shape {tuple(new_state.shape)}"
                               if isinstance(new_state, Tensor) else type(new_state).__name__))
        raw = backend.to_host(new_state.array)
        kind = _CPU_KIND if self._device.type == "cpu" else _CUDA_KIND
        rng = self.rng()
        size = _CPU_STATE_BYTES if kind == _CPU_KIND else 9 + rng.bit_generator._state.nbytes
        if raw.size != size or raw[0] != kind:
            raise RuntimeError(f"set_state: expected the state of a '{self._device.type}' generator "
                               f"({size} bytes from get_state()), got {raw.size} bytes"
                               + ("" if raw.size == 0 or raw[0] == kind else " of another device type"))
        seed = int.from_bytes(raw[1:9].tobytes(), "little")
        if kind == _CPU_KIND:
            b = raw[9:].tobytes()
            end = 4 * _MT_WORDS
            pos = int.from_bytes(b[end:end + 2], "little")
            if pos > _MT_WORDS:
                raise RuntimeError(f"set_state: not a CPU generator's state (position {pos} > {_MT_WORDS})")
            kept = float(np.frombuffer(b[end + 3:end + 11], dtype="<f8")[0]) if b[end + 2] else None
            rng.state = np.frombuffer(b[:end], dtype="<u4").astype(np.uint32).tobytes(), pos, kept
        else:
            cp = backend.require_cuda(self._device)
            with cp.cuda.Device(self._device.index):
                rng.bit_generator._state[...] = cp.asarray(raw[9:]).view(np.int8)
        self._seed = seed
        return self

    def rng(self):
        """The numpy or CuPy generator that draws the numbers (made on first use)."""
        if self._rng is None:
            dev = self._device
            if dev.type == "cpu":
                self._rng = CPUStream(self._seed)
            else:
                cp = backend.require_cuda(dev)
                with cp.cuda.Device(dev.index):
                    # each GPU a stream of its own, all fixed by the one seed
                    self._rng = cp.random.default_rng(self._seed + 1000003 * (dev.index + 1))
        return self._rng

    def _snapshot(self) -> tuple:
        """(seed, state or None when nothing was drawn yet), for fork_rng; a GPU's state stays on the GPU."""
        if self._rng is None:
            return self._seed, None
        if self._device.type == "cpu":
            return self._seed, self._rng.state
        with backend.require_cuda(self._device).cuda.Device(self._device.index):
            return self._seed, self._rng.bit_generator._state.copy()

    def _restore(self, snapshot: tuple) -> None:
        seed, state = snapshot
        if state is None:
            self.manual_seed(seed)
            return
        self._seed = seed
        if self._device.type == "cpu":
            self.rng().state = state
        else:
            with backend.require_cuda(self._device).cuda.Device(self._device.index):
                self.rng().bit_generator._state[...] = state


def _global(dev: backend.Device) -> Generator:
    g = _generators.get(dev)
    if g is None:
        g = Generator(dev)
        g.manual_seed(secrets.randbits(64) if _seed is None else _seed)
        _generators[dev] = g
    return g


_seed: int | None = None  # what manual_seed last set; None: the global generators start from entropy
_generators: dict[backend.Device, Generator] = {}
default_generator = _global(backend.CPU)


def manual_seed(seed: int) -> Generator:
    """Seed every device's global generator; the same seed gives the same numbers on the same device."""
    global _seed
    _seed = _checked_seed(seed, "manual_seed")
    for g in _generators.values():
        g.manual_seed(_seed)
    return default_generator


def seed() -> int:
    """Seed every device's global generator from the operating system's entropy; returns that seed."""
    s = secrets.randbits(64)
    manual_seed(s)
    return s


def initial_seed() -> int:
    """The seed the global CPU generator started from (`manual_seed`'s, or one drawn from entropy)."""
    return default_generator.initial_seed()


def generator(device) -> object:
    """The numpy or CuPy generator behind a device's global Generator."""
    return _global(backend.device(device)).rng()


def draw_dtype(dtype) -> np.dtype:
    """The dtype to draw floats of `dtype` in: numpy's and CuPy's generators draw only float32 and float64, so
    a narrower float (float16) is drawn in float32, and the caller casts what it made of the draw."""
    dtype = np.dtype(dtype)
    return dtype if dtype.itemsize >= 4 else np.dtype(np.float32)


def memory_order(array) -> list[int] | None:
    """The axes of `array` from outermost to innermost in memory, when it is a dense permutation of a C-ordered
    array but not C-ordered itself (a transposed view); None otherwise. torch's kernels fill such a tensor
    (and the empty_like of one) in memory order, so the same draws land on other elements than in C order."""
    if array.ndim < 2 or array.flags.c_contiguous or min(array.strides) < 0:
        return None
    order = sorted(range(array.ndim), key=lambda d: (-array.strides[d], d))
    step = array.itemsize
    for d in reversed(order):
        if array.shape[d] != 1:
            if array.strides[d] != step:
                return None  # gaps or overlaps: torch makes such a tensor's empty_like C-ordered
            step *= array.shape[d]
    return order


def in_memory_order(array, draw):
    """`draw(shape)` laid onto `array`'s elements in the order torch fills them (see memory_order)."""
    order = memory_order(array)
    if order is None:
        return draw(array.shape)
    inverse = [0] * len(order)
    for i, d in enumerate(order):
        inverse[d] = i
    return draw(tuple(array.shape[d] for d in order)).transpose(inverse)


# ---- draws with torch's arithmetic on the CPU stream, numpy's or CuPy's on other generators ----------------------
def permutation(rng, n: int):
    """0..n-1 shuffled: torch's randperm on the CPU stream (numpy's permutation for a numpy Generator), the order
    of n uniforms on a GPU (CuPy's generator has no permutation)."""
    return rng.permutation(n) if hasattr(rng, "permutation") else rng.random(n).argsort()


def uniform(rng, low: float, high: float, shape, dtype):
    """U(low, high) samples of a float dtype, as Tensor.uniform_ makes them."""
    if isinstance(rng, CPUStream):
        return rng.uniform(low, high, shape, dtype)
    return (rng.random(shape, dtype=draw_dtype(dtype)) * (high - low) + low).astype(dtype, copy=False)


def normal(rng, mean: float, std: float, shape, dtype, serial: bool = False):
    """N(mean, std**2) samples of a float dtype, as Tensor.normal_ makes them (`serial`: for a tensor that is not
    C-contiguous, which torch fills one Box-Muller pair at a time whatever its size)."""
    if isinstance(rng, CPUStream):
        return rng.normal(mean, std, shape, dtype, serial)
    return (rng.standard_normal(shape, dtype=draw_dtype(dtype)) * std + mean).astype(dtype, copy=False)


def below(rng, p: float, shape):
    """A boolean Bernoulli(p) mask, p a number: dropout's kept elements (drawn as Tensor.bernoulli_(p))."""
    return uniform64(rng, shape) < p


def uniform64(rng, shape):
    """float64 uniforms in [0, 1), torch's draw for exponential_, cauchy_, geometric_ and Bernoulli masks."""
    return rng.uniform64(shape) if isinstance(rng, CPUStream) else rng.random(shape)


def scalar_normals(rng, shape):
    """float64 N(0, 1) samples drawn one element at a time as torch's elementwise kernels do (log_normal_)."""
    return rng.scalar_normals(shape) if isinstance(rng, CPUStream) else rng.standard_normal(shape)


def standard_gamma(rng, alpha, dtype):
    """Gamma(alpha, 1) samples (float64) for a tensor of `dtype`: torch's sampler on the CPU stream."""
    if isinstance(rng, CPUStream):
        return rng.gammas(alpha, single=np.dtype(dtype) == np.float32)
    return rng.standard_gamma(alpha)


def poisson(rng, rates):
    """Poisson counts (float64) of `rates`: torch's sampler on the CPU stream."""
    return rng.poissons(rates) if isinstance(rng, CPUStream) else rng.poisson(rates, size=rates.shape)


def seed63(rng) -> int:
    """A seed in [0, 2**63), as torch draws a DataLoader's and a sampler's."""
    if isinstance(rng, CPUStream):
        return rng.seed63()
    return int(rng.integers(0, 2 ** 63 - 1))


def resolve(gen, device, op: str = "") -> object:
    """The numpy or CuPy generator to draw on `device` with: `gen`'s (an engine or numpy Generator) or the
    device's global one; a generator of another device is refused, in torch's words."""
    dev = backend.device(device)
    if gen is None:
        return generator(dev)
    if isinstance(gen, Generator):
        if gen.device.type != dev.type:
            raise RuntimeError(f"{op + ': ' if op else ''}Expected a '{dev.type}' device type for generator "
                               f"but found '{gen.device.type}'")
        if gen.device != dev:
            raise RuntimeError(f"{op + ': ' if op else ''}the generator is on {gen.device} but the draw is on "
                               f"{dev}; make the generator with Generator(device='{dev}')")
        return gen.rng()
    if isinstance(gen, np.random.Generator):
        if dev.type != "cpu":
            raise RuntimeError(f"{op + ': ' if op else ''}Expected a '{dev.type}' device type for generator "
                               "but found 'cpu' (a numpy Generator draws on the CPU)")
        return gen
    raise TypeError(f"{op + ': ' if op else ''}generator must be an engine.Generator (or a "
                    f"numpy.random.Generator), got {type(gen).__name__}")


def get_rng_state():
    """The global CPU generator's state as a uint8 Tensor, for `set_rng_state`."""
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    """Restore the global CPU generator from `get_rng_state()`."""
    default_generator.set_state(new_state)


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True) -> Iterator[None]:
    """Draws inside the block leave the global generators (CPU, and `devices` or every GPU) as they were."""
    if not enabled:
        yield
        return
    global _seed
    kept = [backend.device(d if not isinstance(d, int) or isinstance(d, bool) else f"cuda:{d}")
            for d in devices] if devices is not None else None
    before = {dev: g._snapshot() for dev, g in _generators.items()
              if dev.type == "cpu" or kept is None or dev in kept}
    seed_before = _seed
    try:
        yield
    finally:
        _seed = seed_before
        for dev in list(_generators):
            if dev in before:
                _generators[dev]._restore(before[dev])
            elif kept is None or dev in kept:
                del _generators[dev]  # made inside the block: made afresh, from the same seed, when next needed
