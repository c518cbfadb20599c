"""The graph's overview titles: where nodes are too small on screen for their labels (a 300-node network fitted to
the window), the module boxes and collapsed modules that have room get their names, in chips placed so that none
covers another or a node. Plain numpy on screen rectangles; the canvas turns the chips into its pooled labels."""

from __future__ import annotations

import numpy as np

TITLE_PX = 11  # the chips' font: the size module titles have when zoomed in
ROW = TITLE_PX + 6.0  # a chip's height in pixels
SLOTS = 3  # rows a box's chip may move down its side, past the chips of the boxes around it
GAP = 4.0  # pixels between a box or a node and the chip beside it
CELL = 4  # pixels per cell of the grid that says where nodes are drawn


class ChipPlacer:
    """Chips (screen rectangles) placed first come, first served: each takes the first of its places that covers no
    chip placed before it, no node blocked, and does not leave the screen."""

    def __init__(self, width: float, height: float, most: int) -> None:
        self.width, self.height = width, height
        self._taken = np.zeros((most, 4))  # x0, y0, x1, y1 of each chip placed
        self._n = 0
        # cells a node covers, summed (an integral image): whether a chip covers one is four lookups
        self._nodes = np.zeros((int(np.ceil(height / CELL)) + 1, int(np.ceil(width / CELL)) + 1), np.int64)

    def take(self, x: float, y: float, w: float, h: float) -> None:
        """Keep (x, y, w, h) free of chips (the legend's corner)."""
        if self._n < len(self._taken):
            self._taken[self._n] = (x, y, x + w, y + h)
            self._n += 1

    def block(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Keep the boxes with corners lo, hi ((n, 2) pixels) free of chips: the nodes drawn (once, before placing)."""
        rows, cols = self._nodes.shape[0] - 1, self._nodes.shape[1] - 1
        x0 = np.clip(np.floor(lo[:, 0] / CELL), 0, cols).astype(np.int64)
        y0 = np.clip(np.floor(lo[:, 1] / CELL), 0, rows).astype(np.int64)
        x1 = np.clip(np.maximum(np.ceil(hi[:, 0] / CELL), x0 + 1), 0, cols).astype(np.int64)
        y1 = np.clip(np.maximum(np.ceil(hi[:, 1] / CELL), y0 + 1), 0, rows).astype(np.int64)
        # each box as +1 at two corners and -1 at the other two: summed along both axes, the boxes over each cell
        ends = np.zeros((rows + 1, cols + 1), np.int64)
        for ys, xs, sign in ((y0, x0, 1), (y0, x1, -1), (y1, x0, -1), (y1, x1, 1)):
            np.add.at(ends, (ys, xs), sign)
        covered = ends.cumsum(axis=0).cumsum(axis=1)[:rows, :cols] > 0
        self._nodes[1:, 1:] = covered.cumsum(axis=0).cumsum(axis=1)

    def place(self, xs: np.ndarray, ys: np.ndarray, w: float, h: float,
              over_nodes: bool = False) -> tuple[float, float] | None:
        """The first free one of the places (xs[i], ys[i]) for a chip w x h, each moved in from the screen's sides
        (those above or below it skipped); None where each covers a chip or (unless `over_nodes`) a node, or the
        placer is full."""
        if self._n >= len(self._taken):
            return None
        xs, ys = np.broadcast_arrays(np.asarray(xs, float), np.asarray(ys, float))
        on = (ys >= 0) & (ys + h <= self.height)
        xs, ys = np.clip(xs[on], 0.0, max(self.width - w, 0.0)), ys[on]
        t = self._taken[:self._n]
        free = ~((t[None, :, 0] < xs[:, None] + w) & (t[None, :, 2] > xs[:, None])
                 & (t[None, :, 1] < ys[:, None] + h) & (t[None, :, 3] > ys[:, None])).any(axis=1)
        if not over_nodes:
            s = self._nodes
            c0, r0 = (xs // CELL).astype(np.int64), (ys // CELL).astype(np.int64)
            c1 = np.minimum(np.ceil((xs + w) / CELL).astype(np.int64), s.shape[1] - 1)
            r1 = np.minimum(np.ceil((ys + h) / CELL).astype(np.int64), s.shape[0] - 1)
            free &= s[r1, c1] - s[r0, c1] - s[r1, c0] + s[r0, c0] == 0
        if not free.any():
            return None
        k = int(np.argmax(free))
        self.take(float(xs[k]), float(ys[k]), w, h)
        return float(xs[k]), float(ys[k])


def side_slots(top: float, height: float) -> np.ndarray:
    """The heights a box's title chip may take beside it (pixels): from its top (or the screen's, where the box begins
    above it: the title stays in sight), a row apart, as far down as the box goes, at most SLOTS."""
    first = max(top, 0.0)
    rows = min(SLOTS, int(np.ceil((top + height - first) / ROW))) if top + height > first else 0
    return first + ROW * np.arange(rows)


def box_places(x: float, y: float, w: float, h: float, wide: float, left: bool,
               model: bool) -> tuple[list[float], list[float]]:
    """The places (xs, ys) a box's title chip `wide` pixels wide may take, best first: beside it (on its `left` where it
    holds titled boxes), down its side, or level with it where it is shorter than the chip (a part of a model stacked
    a hundred high is a few pixels tall); above a `model`'s box (above one inside another it read as that one's title);
    in its corner."""
    ys = list(side_slots(y, h)) if h >= ROW else [y + h / 2 - ROW / 2]
    xs = [x - GAP - wide if left else x + w + GAP] * len(ys)
    if model:
        xs.append(x)
        ys.append(y - ROW)
    return [*xs, x + 1], [*ys, y + 1]


def overview_order(depth: np.ndarray, top: np.ndarray) -> np.ndarray:
    """The order candidates are placed in: outer boxes first (the model, then its parts), each depth top to bottom."""
    return np.lexsort((top, depth))
