"""Small built-in datasets, generated in code: 2-D classification toys, a sine regression, glyph images
and a character corpus. Each generator takes `n`, `noise` and `seed` and returns engine tensors
(features float32, labels int64) with the samples in random order.

    x, y = two_spirals(400, noise=0.05)            # x: (400, 2) float32, y: (400,) int64
    images, labels = glyphs(1000)                  # images: (1000, 1, 16, 16), 10 classes
    text, vocab, encode, decode = char_corpus()
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from engine.tensor import Tensor

CORPUS_PATH = Path(__file__).resolve().parents[2] / "resources" / "text" / "corpus.txt"


def _check(name: str, n, noise) -> None:
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"{name}: n must be a positive integer, got {n!r}")
    if not isinstance(noise, numbers.Real) or not noise >= 0:
        raise ValueError(f"{name}: noise must be a number >= 0, got {noise!r}")


def _class_sizes(n: int, classes: int) -> list[int]:
    """`n` split as evenly as possible over the classes."""
    return [n // classes + (c < n % classes) for c in range(classes)]


def _finish(points: list[np.ndarray], rng: np.random.Generator, noise: float) -> tuple[Tensor, Tensor]:
    """Stack per-class point sets, add Gaussian noise, shuffle, and make (float32, int64) tensors."""
    x = np.concatenate(points)
    y = np.concatenate([np.full(len(p), c, dtype=np.int64) for c, p in enumerate(points)])
    x = x + noise * rng.standard_normal(x.shape)
    order = rng.permutation(len(x))
    return Tensor._of(x[order].astype(np.float32)), Tensor._of(y[order])


def two_spirals(n: int = 400, noise: float = 0.05, seed: int = 0,
                turns: float = 1.5) -> tuple[Tensor, Tensor]:
    """Two interleaved spirals in [-1, 1]^2, labels 0 and 1."""
    _check("two_spirals", n, noise)
    rng = np.random.default_rng(seed)
    points = []
    for c, size in enumerate(_class_sizes(n, 2)):
        r = np.sqrt(rng.uniform(0.0, 1.0, size))  # sqrt: even density along the arm, not piled at the center
        angle = r * turns * 2 * math.pi + c * math.pi
        points.append(np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1))
    return _finish(points, rng, noise)


def moons(n: int = 400, noise: float = 0.1, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two interleaving half circles, labels 0 (upper) and 1 (lower)."""
    _check("moons", n, noise)
    rng = np.random.default_rng(seed)
    upper, lower = _class_sizes(n, 2)
    t0, t1 = rng.uniform(0, math.pi, upper), rng.uniform(0, math.pi, lower)
    points = [np.stack([np.cos(t0), np.sin(t0)], axis=1),
              np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)]
    return _finish(points, rng, noise)


def circles(n: int = 400, noise: float = 0.05, seed: int = 0, factor: float = 0.5) -> tuple[Tensor, Tensor]:
    """A unit circle (label 0) around a smaller one of radius `factor` (label 1)."""
    _check("circles", n, noise)
    if not 0 < factor < 1:
        raise ValueError(f"circles: factor must be between 0 and 1, got {factor!r}")
    rng = np.random.default_rng(seed)
    points = []
    for radius, size in zip((1.0, factor), _class_sizes(n, 2)):
        t = rng.uniform(0, 2 * math.pi, size)
        points.append(radius * np.stack([np.cos(t), np.sin(t)], axis=1))
    return _finish(points, rng, noise)


def xor(n: int = 400, noise: float = 0.05, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Points in [-1, 1]^2 labelled 1 where the coordinates' signs differ (not linearly separable)."""
    _check("xor", n, noise)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    label = (x[:, 0] > 0) != (x[:, 1] > 0)
    return _finish([x[~label], x[label]], rng, noise)


def sine(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Regression: x uniform in [-pi, pi] and y = sin(x) + noise, both float32 of shape (n, 1)."""
    _check("sine", n, noise)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-math.pi, math.pi, (n, 1))
    y = np.sin(x) + noise * rng.standard_normal((n, 1))
    return Tensor._of(x.astype(np.float32)), Tensor._of(y.astype(np.float32))


# ---- glyphs: small procedurally drawn images --------------------------------------------------
def _ring(r: float, k: int = 20) -> list[tuple[float, float]]:
    return [(r * math.cos(2 * math.pi * i / k), r * math.sin(2 * math.pi * i / k)) for i in range(k + 1)]


# Each glyph is a list of polylines in [-1, 1]^2 (y up). The strokes differ in kind (ring, bars,
# diagonals, corners), so a small network can tell them apart under jitter and noise.
GLYPHS: dict[str, list[list[tuple[float, float]]]] = {
    "ring": [_ring(0.6)],
    "bar": [[(0.0, -0.7), (0.0, 0.7)]],
    "dash": [[(-0.7, 0.0), (0.7, 0.0)]],
    "plus": [[(0.0, -0.7), (0.0, 0.7)], [(-0.7, 0.0), (0.7, 0.0)]],
    "cross": [[(-0.6, -0.6), (0.6, 0.6)], [(-0.6, 0.6), (0.6, -0.6)]],
    "square": [[(-0.55, -0.55), (0.55, -0.55), (0.55, 0.55), (-0.55, 0.55), (-0.55, -0.55)]],
    "triangle": [[(-0.65, -0.5), (0.65, -0.5), (0.0, 0.65), (-0.65, -0.5)]],
    "slash": [[(-0.55, -0.7), (0.55, 0.7)]],
    "equals": [[(-0.65, 0.3), (0.65, 0.3)], [(-0.65, -0.3), (0.65, -0.3)]],
    "corner": [[(-0.5, 0.7), (-0.5, -0.6), (0.6, -0.6)]],
}
GLYPH_NAMES = tuple(GLYPHS)


def _segments(polylines: list) -> np.ndarray:
    """(S, 2, 2): each polyline's consecutive points as segments."""
    return np.array([(a, b) for line in polylines for a, b in itertools.pairwise(line)], dtype=np.float64)


def _render(segments: np.ndarray, rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """`count` jittered drawings of one glyph: random scale, rotation, shift and stroke width."""
    scale = rng.uniform(0.8, 1.1, count)
    angle = rng.uniform(-0.25, 0.25, count)  # about +-15 degrees
    shift = rng.uniform(-0.15, 0.15, (count, 2))
    width = rng.uniform(0.09, 0.15, count)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (count, 2, 2)
    ends = np.einsum("cij,skj->cski", rot, segments) + shift[:, None, None, :]  # (count, S, 2, 2)
    centers = (np.arange(size) + 0.5) * 2 / size - 1
    py, px = np.meshgrid(-centers, centers, indexing="ij")  # row 0 at the top: y = +1
    pixels = np.stack([px.ravel(), py.ravel()], -1)  # (P, 2)
    a = ends[:, :, None, 0, :]  # (count, S, 1, 2)
    ab = ends[:, :, None, 1, :] - a
    ap = pixels[None, None] - a
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    dist = np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(axis=1)  # (count, P)
    pixel = 2 / size
    ink = np.clip((width[:, None] - dist) / pixel + 0.5, 0, 1)  # one pixel of antialiasing at the edge
    return ink.reshape(count, size, size)


def glyphs(n: int = 1000, noise: float = 0.1, seed: int = 0, size: int = 16) -> tuple[Tensor, Tensor]:
    """10 classes of drawn glyphs (see GLYPH_NAMES): images (n, 1, size, size) in [0, 1], labels int64."""
    _check("glyphs", n, noise)
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"glyphs: size must be an integer >= 8, got {size!r}")
    rng = np.random.default_rng(seed)
    images = []
    for name, count in zip(GLYPH_NAMES, _class_sizes(n, len(GLYPHS))):
        segments = _segments(GLYPHS[name])
        # in chunks, to bound the (count, segments, pixels) intermediate for large n
        images.append(np.concatenate([_render(segments, rng, min(512, count - i), size)
                                      for i in range(0, count, 512)] or [np.zeros((0, size, size))]))
    x, y = _finish(images, rng, noise)
    return Tensor._of(np.clip(x.array, 0, 1)[:, None]), y


# ---- text -------------------------------------------------------------------------------------
def char_corpus(path: str | Path | None = None) -> tuple[str, list[str], Callable[[str], Tensor],
                                                         Callable[[Iterable[int]], str]]:
    """(text, vocabulary, encode, decode) for character-level language modelling.

    The vocabulary is the sorted list of the text's characters; `encode(s)` gives an int64 tensor of
    their indices and `decode(ids)` (a tensor or a list of ints) turns them back into a string.
    """
    text = Path(path or CORPUS_PATH).read_text(encoding="utf-8")
    vocab = sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocab)}

    def encode(s: str) -> Tensor:
        try:
            return Tensor._of(np.array([index[ch] for ch in s], dtype=np.int64))
        except KeyError as err:
            raise ValueError(f"encode: character {err.args[0]!r} is not in the corpus vocabulary") from None

    def decode(ids) -> str:
        values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        for i in values:
            if not isinstance(i, numbers.Integral) or not 0 <= i < len(vocab):
                raise ValueError(f"decode: {i!r} is not an index into the {len(vocab)}-character vocabulary")
        return "".join(vocab[i] for i in values)

    return text, vocab, encode, decode
