"""The CPU generator's draws, made as PyTorch's CPU generator makes them, so that a seeded script gives torch's numbers.

torch's CPU generator is a 32-bit Mersenne Twister (mt19937) seeded with the low 32 bits of the seed; numpy's
MT19937 bit generator runs the same recurrence, so a CPUStream keeps one, in the state torch's seeding leaves, and
turns its raw 32-bit words into numbers the way torch's CPU kernels do (serially, in element order):

- uniform floats: float32 from the low 24 bits of one word, float64 from the low 53 bits of two words (the first
  one high); U(a, b) is x * (b - a) + a with one rounding (the kernels' fused multiply-add);
- integers in [low, high): one word modulo the range (two words when the range needs 64 bits); randperm is a
  Fisher-Yates shuffle with one word a position;
- normal samples: tensors of at least 16 elements fill uniforms first and turn each 16 into normals with the
  Box-Muller transform (the first 8 as radii, the next 8 as angles; a size not a multiple of 16 redraws its last
  16). float32 does it as torch's AVX2 kernel does, with the Cephes-style polynomial log and sincos in float32
  arithmetic (each multiply-add fused, as that kernel is compiled) -- torch's numbers on an x86 CPU with AVX2,
  where torch takes that path; float64 with the C library's log, sin and cos. Fewer elements draw one pair of
  uniforms for two samples, keeping the second (r sin) for the next draw, as torch's normal_distribution does;
- a Bernoulli(p) mask with p a number (dropout): one float64 uniform an element, kept when below p; with a tensor
  of probabilities: one uniform of its dtype an element.

Everything else (gamma, Poisson, choice...) draws from numpy's Generator over the same bit generator: seeded and
reproducible, but not torch's numbers. Engine code: numpy only.
"""

from __future__ import annotations

import math

import numpy as np

_SQUEEZE = float(np.float32(0.0331))  # the gamma sampler's squeeze constant, a float literal in torch's kernel
_MASK24 = np.uint64((1 << 24) - 1)
_MASK53 = np.uint64((1 << 53) - 1)
_SHIFT = np.uint64(32)
_F32 = np.float32
_TWO_PI32 = _F32(2.0 * math.pi)


def _key(seed: int) -> np.ndarray:
    """mt19937's 624-word state after seeding with the low 32 bits of `seed` (the reference initialisation)."""
    key = [seed & 0xFFFFFFFF]
    for i in range(1, 624):
        prev = key[-1]
        key.append((1812433253 * (prev ^ (prev >> 30)) + i) & 0xFFFFFFFF)
    return np.array(key, dtype=np.uint32)


class CPUStream:
    """torch's CPU random numbers from one seed; numpy Generator methods it does not define draw from numpy's own
    Generator over the same bit generator (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self.bit_generator = np.random.MT19937()
        self.bit_generator.state = {"bit_generator": "MT19937", "state": {"key": _key(seed), "pos": 624}}
        self._numpy = np.random.Generator(self.bit_generator)
        self.next_normal: float | None = None  # the r sin(theta) half of the last scalar Box-Muller pair

    def __getattr__(self, name: str):
        if name.startswith("_"):  # not made yet (a copy being built): no numpy Generator to ask
            raise AttributeError(name)
        return getattr(self._numpy, name)  # gamma, poisson, choice...: numpy's algorithms on this stream

    # ---- state ------------------------------------------------------------------------------------
    @property
    def state(self) -> tuple:
        """The whole state, for a snapshot (plain values that compare with ==): the twister's words, its position
        and the kept normal sample."""
        st = self.bit_generator.state["state"]
        return st["key"].tobytes(), int(st["pos"]), self.next_normal

    @state.setter
    def state(self, value: tuple) -> None:
        key, pos, self.next_normal = value
        self.bit_generator.state = {"bit_generator": "MT19937",
                                    "state": {"key": np.frombuffer(key, dtype=np.uint32).copy(), "pos": pos}}

    # ---- raw words ----------------------------------------------------------------------------------
    def words(self, n: int) -> np.ndarray:
        """The next n 32-bit words (as uint64)."""
        return self.bit_generator.random_raw(n)

    def words64(self, n: int) -> np.ndarray:
        """The next n 64-bit numbers, each two words, the first the high half."""
        w = self.bit_generator.random_raw(2 * n)
        return (w[0::2] << _SHIFT) | w[1::2]

    # ---- numpy Generator's names, torch's numbers ----------------------------------------------------
    def random(self, size=None, dtype=np.float64):
        """Uniform samples in [0, 1) (as torch.rand): float64 of 53 bits, float32 of 24, float16 of 11."""
        shape, n = _size(size)
        dt = np.dtype(dtype)
        if dt == np.float16:
            out = ((self.words(n) & np.uint64((1 << 11) - 1)).astype(_F32) * _F32(2.0 ** -11)).astype(dt)
        else:
            out = self._units(n, single=dt != np.float64)
        return out.reshape(shape) if size is not None else float(out[0])

    def seed63(self) -> int:
        """A number in [0, 2**63) (as torch's int64 random_(): a DataLoader's and a sampler's seeds)."""
        return int(self.words64(1)[0]) & ((1 << 63) - 1)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        """U(low, high) samples as Tensor.uniform_ makes them: low and high in the dtype, one rounding."""
        shape, n = _size(size)
        if np.dtype(dtype) == np.float32:
            lo, hi = _F32(low), _F32(high)
            x = self._units(n, single=True).astype(np.float64)
            out = (x * float(hi - lo) + float(lo)).astype(_F32)  # exact product: one rounding to float32
        else:
            out = fma64(self._units(n, single=False), float(high) - float(low), float(low))
        return out.reshape(shape) if size is not None else out.dtype.type(out[0])

    def standard_normal(self, size=None, dtype=np.float64):
        """N(0, 1) samples (as torch.randn)."""
        return self.normal(0.0, 1.0, size, dtype)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=np.float64, serial: bool = False):
        """N(loc, scale**2) samples as Tensor.normal_ makes them (see the module docstring); `serial`: one pair
        at a time whatever the size, as torch fills a tensor that is not C-contiguous."""
        shape, n = _size(size)
        dt = np.dtype(dtype)
        if n >= 16 and not serial:
            out = self._filled(n, dt if dt == np.float64 else np.dtype(_F32), loc, scale).astype(dt, copy=False)
        else:
            out = np.array([self._scalar_normal() * scale + loc for _ in range(n)]).astype(dt)
        return out.reshape(shape) if size is not None else out.dtype.type(out[0])

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint: bool = False):
        """Integers in [low, high) (as torch.randint: one word modulo the range, two past 2**32)."""
        if high is None:
            low, high = 0, low
        if endpoint:
            high += 1
        shape, n = _size(size)
        span = int(high) - int(low)
        if span <= 0:
            raise ValueError(f"integers: high ({high}) must be greater than low ({low})")
        raw = self.words(n) if span < 2 ** 32 else self.words64(n)
        out = (raw % np.uint64(span)).astype(np.int64) + int(low) if span < 2 ** 63 else \
            np.array([int(v) % span + int(low) for v in raw.tolist()], dtype=np.int64)
        out = out.astype(dtype, copy=False)
        return out.reshape(shape) if size is not None else out.dtype.type(out[0])

    def permutation(self, n):
        """0..n-1 shuffled as torch.randperm does: position i swaps with i + (word % (n - i))."""
        if not isinstance(n, int | np.integer):
            raise TypeError("permutation: this stream shuffles 0..n-1 only; pass the length")
        n = int(n)
        if n <= 1:
            return np.arange(n, dtype=np.int64)
        picks = (self.words(n - 1) % np.arange(n, 1, -1, dtype=np.uint64)).tolist()
        order = list(range(n))
        for i, z in enumerate(picks):
            j = i + z
            order[i], order[j] = order[j], order[i]
        return np.array(order, dtype=np.int64)

    def uniform64(self, size) -> np.ndarray:
        """float64 uniforms in [0, 1) (torch's double draw: exponential_, cauchy_, geometric_ and dropout)."""
        shape, n = _size(size)
        return self._units(n, single=False).reshape(shape)

    def _units(self, n: int, single: bool) -> np.ndarray:
        """n uniforms in [0, 1) as torch's kernels draw them: float32 from the low 24 bits of a word, float64
        from the low 53 bits of two."""
        if single:
            return (self.words(n) & _MASK24).astype(_F32) * _F32(2.0 ** -24)
        return (self.words64(n) & _MASK53).astype(np.float64) * 2.0 ** -53

    def scalar_normals(self, size) -> np.ndarray:
        """float64 N(0, 1) samples one by one, as an elementwise kernel draws them (log_normal_)."""
        shape, n = _size(size)
        return np.array([self._scalar_normal() for _ in range(n)], dtype=np.float64).reshape(shape)

    def gammas(self, alpha: np.ndarray, single: bool) -> np.ndarray:
        """Gamma(alpha, 1) samples, one element at a time in C order, by torch's Marsaglia-Tsang sampler (float64
        uniforms and normal pairs; `single`: alpha's own steps in float32, as for a float32 tensor)."""
        f = _F32 if single else float
        return _each(alpha, lambda a: self._gamma(f(a), f))

    def _gamma(self, alpha, f) -> float:
        scale = 1.0
        if alpha < 1.0:
            if alpha == 0:
                return 0.0
            scale *= (1.0 - self._uniform()) ** float(f(1.0) / alpha)
            alpha = alpha + f(1.0)
        d = float(alpha - f(_F32(1.0) / _F32(3.0)))  # a float constant, as the kernel writes it
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            while True:
                x = self._scalar_normal()
                y = 1.0 + c * x
                if y > 0:
                    break
            v = y * y * y
            u = 1.0 - self._uniform()
            xx = x * x
            if u < 1.0 - _SQUEEZE * xx * xx or math.log(u) < 0.5 * xx + d * (1.0 - v + math.log(v)):
                return scale * d * v

    def poissons(self, lam: np.ndarray) -> np.ndarray:
        """Poisson(lam) counts, one element at a time in C order, as torch samples them: multiplied uniforms
        below 10, Hoermann's transformed rejection from 10 on."""
        return _each(lam, self._poisson)

    def _poisson(self, lam: float) -> int:
        if lam >= 10:
            slam, loglam = math.sqrt(lam), math.log(lam)
            b = 0.931 + 2.53 * slam
            a = -0.059 + 0.02483 * b
            invalpha = 1.1239 + 1.1328 / (b - 3.4)
            vr = 0.9277 - 3.6224 / (b - 2)
            while True:
                u = self._uniform() - 0.5
                v = self._uniform()
                us = 0.5 - abs(u)
                k = math.floor((2 * a / us + b) * u + lam + 0.43)
                if us >= 0.07 and v <= vr:
                    return k
                if k < 0 or (us < 0.013 and v > us):
                    continue
                if (math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b)
                        <= -lam + k * loglam - math.lgamma(k + 1.0)):
                    return k
        if lam == 0:
            return 0
        count, product, limit = 0, 1.0, math.exp(-lam)
        while True:
            product *= self._uniform()
            if product > limit:
                count += 1
            else:
                return count

    def _uniform(self) -> float:
        return float(self._units(1, single=False)[0])

    def below(self, p: float, size) -> np.ndarray:
        """A Bernoulli(p) mask (p a number): one float64 uniform an element, True when below p."""
        return self.uniform64(size) < p

    # ---- normal samples ---------------------------------------------------------------------------------
    def _scalar_normal(self) -> float:
        """One N(0, 1) sample of torch's normal_distribution<double> (a Box-Muller pair, its second kept)."""
        kept = self.next_normal
        if kept is not None:
            self.next_normal = None
            return kept
        u1, u2 = self._units(2, single=False).tolist()
        r = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        self.next_normal = r * math.sin(theta)
        return r * math.cos(theta)

    def _filled(self, n: int, dt: np.dtype, loc: float, scale: float) -> np.ndarray:
        """n >= 16 normal samples: uniforms first, then Box-Muller on each 16 (the last 16 redrawn)."""
        single = dt == np.float32
        whole = n - n % 16
        blocks = [self._units(n, single)[:whole]]
        if n % 16:
            blocks.append(self._units(16, single))
        done = [(_box_muller32 if single else _box_muller64)(b.reshape(-1, 16), loc, scale).reshape(-1)
                for b in blocks]
        if n % 16:  # the last 16 were made anew: they replace the tail of the whole blocks' samples
            return np.concatenate([done[0][:n - 16], done[1]])
        return done[0]


def libm(xp, name: str, x):
    """math.`name` of each element on the CPU (the C library's, which torch's CPU kernels call: numpy's own
    log1p, exp and tan differ from it in the last bit now and then), xp.`name` on a GPU."""
    if xp is not np:
        return getattr(xp, name)(x)
    x = np.asarray(x, dtype=np.float64)
    return np.fromiter(map(getattr(math, name), x.ravel().tolist()), np.float64, x.size).reshape(x.shape)


def _each(values, sample) -> np.ndarray:
    """`sample(v)` of each element of `values` in C order, as float64 (torch's serial kernels, one at a time)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1).tolist()
    return np.fromiter(map(sample, flat), np.float64, len(flat)).reshape(np.shape(values))


def _size(size) -> tuple[tuple, int]:
    """(shape, element count) of numpy's size argument (None: one sample)."""
    if size is None:
        return (), 1
    shape = (int(size),) if isinstance(size, int | np.integer) else tuple(int(s) for s in size)
    return shape, math.prod(shape)


def fma64(a: np.ndarray, b: float, c: float) -> np.ndarray:
    """a * b + c with one rounding, elementwise in float64 (an error-free product and sum)."""
    p = a * b
    split = 134217729.0  # 2**27 + 1: halves of 26 bits whose products are exact
    ah = a * split
    ah = ah - (ah - a)
    al = a - ah
    bh = b * split
    bh = bh - (bh - b)
    bl = b - bh
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    s = p + c
    v = s - p
    return s + (((p - (s - v)) + (c - v)) + err)


def _fma32(a, b, c):
    """a * b + c with one rounding to float32 (float32 values, some given as float64 already: their product is
    exact in float64)."""
    product = np.multiply(a, b, dtype=np.float64)
    product += c
    return product.astype(_F32)


# float32 Cephes-style coefficients (the polynomials of torch's AVX2 log and sincos)
_LOG_P = tuple(map(_F32, (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
                          -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1)))
_COS_P = tuple(map(_F32, (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)))
_SIN_P = tuple(map(_F32, (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)))
_DP = tuple(map(_F32, (-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8)))  # -pi/4 in three parts
_SIGN = np.uint32(0x80000000)


def _log32(x: np.ndarray) -> np.ndarray:
    """Natural log of positive float32 values: exponent and a mantissa in [sqrt(1/2), sqrt(2)) - 1, whose log
    a degree-9 polynomial gives (float32 steps, multiply-adds fused)."""
    bits = x.view(np.uint32)
    e = ((bits >> 23).astype(np.int32) - 126).astype(_F32)
    m = ((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(_F32)  # the mantissa in [0.5, 1)
    small = m < _F32(0.707106781186547524)
    e = e - small.astype(_F32)
    m = (m - _F32(1)) + np.where(small, m, _F32(0))
    m64 = m.astype(np.float64)  # the operand of every step: converted once
    z = m * m
    y = np.full_like(m, _LOG_P[0])
    for p in _LOG_P[1:]:
        y = _fma32(y, m64, p)
    y = y * m
    y = _fma32(y, z, e * _F32(-2.12194440e-4))
    y = _fma32(z, _F32(-0.5), y)
    return _fma32(e, _F32(0.693359375), m + y)


def _sincos32(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sin, cos) of float32 angles in [0, 2 pi): the octant, the angle less its multiple of pi/4 in three
    parts, and the sine and cosine polynomials swapped and signed by octant (float32 steps, fused)."""
    j = (x * _F32(1.27323954473516)).astype(np.int32)  # 4 / pi
    j = (j + 1) & ~1
    y = j.astype(_F32)
    sin_sign = ((j & 4).astype(np.uint32) << 29)
    cos_sign = ((~(j - 2)) & 4).astype(np.uint32) << 29
    swap = (j & 2) != 0
    y64 = y.astype(np.float64)
    for dp in _DP:
        x = _fma32(y64, dp, x)
    z = x * x
    z64 = z.astype(np.float64)  # the operand of most steps: converted once
    c = np.full_like(x, _COS_P[0])
    for p in _COS_P[1:]:
        c = _fma32(c, z64, p)
    c = _fma32(c * z, z64, -(z * _F32(0.5))) + _F32(1)
    s = np.full_like(x, _SIN_P[0])
    for p in _SIN_P[1:]:
        s = _fma32(s, z64, p)
    s = _fma32(s * z, x, x)
    sin = np.where(swap, c, s).view(np.uint32) ^ sin_sign
    cos = np.where(swap, s, c).view(np.uint32) ^ cos_sign
    return sin.view(_F32), cos.view(_F32)


def _box_muller32(u: np.ndarray, loc: float, scale: float) -> np.ndarray:
    """(m, 16) float32 uniforms to normals as torch's AVX2 kernel: radii from the first 8, angles the next 8."""
    radius = np.sqrt(_F32(-2) * _log32(_F32(1) - u[:, :8]))
    sin, cos = _sincos32(_TWO_PI32 * u[:, 8:])
    out = np.concatenate([radius * cos, radius * sin], axis=1)
    return out if (loc, scale) == (0.0, 1.0) else _fma32(out, _F32(scale), _F32(loc))


def _box_muller64(u: np.ndarray, loc: float, scale: float) -> np.ndarray:
    """(m, 16) float64 uniforms to normals with the C library's log, sin and cos (torch's scalar kernel)."""
    radius = np.sqrt(-2.0 * np.fromiter(map(math.log, (1.0 - u[:, :8]).ravel().tolist()), np.float64,
                                        u.shape[0] * 8).reshape(-1, 8))
    theta = 2.0 * math.pi * u[:, 8:]
    out = np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    return out if (loc, scale) == (0.0, 1.0) else out * scale + loc
