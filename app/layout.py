"""Layered (Sugiyama-style) layout of the graph view: layers, crossing reduction, coordinates, edge routes.

Edges point down: each node sits in a layer below everything it consumes. Per module group (the graph
view's expanded modules), the group's children (its ops, its parameters, its expanded sub-modules as
boxes) are laid out on their own, then placed as one box in the parent; an edge that crosses a group's
border goes through a port on the box's top (inputs) or bottom (outputs) edge, so it is routed around
the nodes inside. Edges spanning several layers get virtual points, so they run between nodes.

networkx does the graph algorithms (layering by topological generations); the heavy part is numpy
(barycentre sweeps with one argsort per layer, coordinates by vectorised smoothing and projection).
Results are cached per group in a `LayoutCache`: layouts are reused across iterations, groups with the
same inside (every Linear) are laid out once, and expanding a module lays out only its inside
(its ancestors keep their node order; only their coordinates move to make room).

For big graphs run `LayoutJob` in a worker thread: it reports progress and can be cancelled.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

OP, PARAM, INPUT, MODULE = 0, 1, 2, 3  # node kinds, as in app.graph_model
_NODE, _BOX, _IN, _OUT = 0, 1, 2, 3  # what a group's child is


@dataclass(frozen=True)
class LayoutStyle:
    """Sizes and gaps in scene units (one unit is one pixel at zoom 1)."""

    kind_sizes: tuple[tuple[float, float], ...] = ((124.0, 38.0), (96.0, 30.0), (96.0, 30.0), (150.0, 46.0))
    layer_gap: float = 38.0
    node_gap: float = 22.0
    edge_gap: float = 10.0  # around the virtual points of long edges
    group_pad: float = 14.0
    group_title: float = 24.0
    sweeps: int = 2  # down+up barycentre sweep pairs (more rarely removes more crossings here)
    smoothing: int = 24  # coordinate relaxation rounds
    port_spacing: float = 14.0


DEFAULT_STYLE = LayoutStyle()


class LayoutCancelled(Exception):
    """The layout was cancelled (LayoutJob.cancel or the `cancelled` callback)."""


@dataclass(eq=False)
class Layout:
    """Where everything goes, as arrays: node centres and sizes, group boxes, edge polylines.

    Edge polylines are ready for pyqtgraph's arrayToQPath: `edge_points` (P, 2) with `edge_connect`
    (False at the last point of each segment). Segment s spans points seg_ptr[s]:seg_ptr[s+1]; the view's
    edge e is drawn by segments edge_seg[edge_seg_ptr[e]:edge_seg_ptr[e+1]] (one per group it crosses;
    segments are shared where edges run together). `group_rect[g]` is (x, y, w, h) of the view's group g
    (0, the top level, spans everything). `layer[i]` is node i's layer within its group. `ports` are the
    points where edges meet nodes.
    """

    signature: int
    pos: np.ndarray
    size: np.ndarray
    layer: np.ndarray
    group_rect: np.ndarray
    edge_points: np.ndarray
    edge_connect: np.ndarray
    seg_ptr: np.ndarray
    edge_seg_ptr: np.ndarray
    edge_seg: np.ndarray
    bounds: tuple[float, float, float, float]
    ports: np.ndarray  # (q, 2) points where edges meet nodes

    def edge_polyline(self, e: int) -> np.ndarray:
        """The points of view edge e, from its source to its target, as one (k, 2) array."""
        parts = [self.edge_points[self.seg_ptr[s]:self.seg_ptr[s + 1]]
                 for s in self.edge_seg[self.edge_seg_ptr[e]:self.edge_seg_ptr[e + 1]]]
        return np.concatenate(parts) if parts else np.zeros((0, 2))


@dataclass(eq=False)
class _Order:
    """A group's layering and node order: what does not depend on node sizes."""

    layer: np.ndarray  # per real node
    all_layer: np.ndarray  # per node, real then virtual
    perm: np.ndarray  # all nodes sorted by (layer, position in layer)
    usrc: np.ndarray  # unit edges (between adjacent layers), over real and virtual nodes
    udst: np.ndarray
    chain_ptr: np.ndarray  # edge e's virtual nodes are k + chain_ptr[e] ... k + chain_ptr[e+1] - 1
    flipped: np.ndarray  # edge e was reversed to break a cycle


@dataclass(eq=False)
class _Local:
    """A group's layout in its own frame: nodes' centres, layer bands, virtual points of long edges."""

    order: _Order
    pos: np.ndarray  # (k, 2) centres of the real nodes
    vx: np.ndarray  # x of each virtual node
    band: np.ndarray  # (layers, 2) top and bottom of each layer band
    width: float
    height: float


class LayoutCache:
    """Per-group orders and layouts, keyed by structure (not by names), bounded, thread-safe."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._orders: OrderedDict = OrderedDict()
        self._locals: OrderedDict = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, table: str, key):
        """A cached value or None."""
        d = self._orders if table == "order" else self._locals
        with self._lock:
            value = d.get(key)
            if value is not None:
                d.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return value

    def put(self, table: str, key, value) -> None:
        """Remember a value, forgetting the least recently used beyond the bound."""
        d = self._orders if table == "order" else self._locals
        with self._lock:
            d[key] = value
            while len(d) > self._max:
                d.popitem(last=False)


class _Progress:
    """Progress reports and cancellation checks, spread over the work by node count."""

    def __init__(self, total: int, progress: Callable[[float], None] | None,
                 cancelled: Callable[[], bool] | None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.progress = progress
        self.cancelled = cancelled

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(1.0)

    def tick(self, amount: float = 0.0) -> None:
        self.done += amount
        if self.cancelled is not None and self.cancelled():
            raise LayoutCancelled("layout cancelled")
        if self.progress is not None:
            self.progress(min(self.done / self.total, 1.0))


# ---- one flat group ------------------------------------------------------------------------------
def _order_nodes(k: int, edges: np.ndarray, rank: np.ndarray, top: np.ndarray, bottom: np.ndarray,
                 sweeps: int, tick: Callable[[float], None], box: np.ndarray | None = None) -> _Order:
    """Layers (longest path; module boxes and sources pulled down to their consumers) and barycentre ordering.
    box: which children are module boxes."""
    src, dst = edges[:, 0], edges[:, 1]
    graph = nx.DiGraph()
    graph.add_nodes_from(range(k))
    graph.add_edges_from(zip(src.tolist(), dst.tolist(), strict=True))
    # a cycle made by collapsing: reverse its edges that run against execution order. Only edges on a
    # cycle: an input made late for a box that began early (a module's position ids) still feeds it from above
    component = np.zeros(k, np.int64)
    if not nx.is_directed_acyclic_graph(graph):
        for c, members in enumerate(nx.strongly_connected_components(graph)):
            component[list(members)] = c
        flipped = (rank[src] > rank[dst]) & (component[src] == component[dst])
    else:
        flipped = np.zeros(len(src), bool)
    if flipped.any():
        s, d = np.where(flipped, dst, src), np.where(flipped, src, dst)
        graph = nx.DiGraph()
        graph.add_nodes_from(range(k))
        graph.add_edges_from(zip(s.tolist(), d.tolist(), strict=True))
    else:
        s, d = src, dst
    layer = np.zeros(k, np.int64)
    for depth, generation in enumerate(nx.topological_generations(graph)):
        layer[generation] = depth
    tick(0.1 * k)
    indeg, outdeg = np.bincount(d, minlength=k), np.bincount(s, minlength=k)
    if box is not None and box.any():
        _boxes_down(layer, s, d, box & (outdeg > 0), top | bottom)
    # a parameter or input sits right above its first consumer, not at the very top
    first_use = np.full(k, np.iinfo(np.int64).max)
    np.minimum.at(first_use, s, layer[d])
    pull = (indeg == 0) & (outdeg > 0) & ~top
    layer[pull] = first_use[pull] - 1
    _after_what_ran_before(layer, (indeg == 0) & (outdeg == 0) & ~top & ~bottom)
    if top.any():  # input ports on top, alone in layer 0
        inner = ~top
        if inner.any():
            layer[inner] += 1 - layer[inner].min()
        layer[top] = 0
    if bottom.any():
        layer[bottom] = layer[~bottom].max(initial=-1) + 1
    # long edges become chains of virtual nodes, one per layer crossed
    span = layer[d] - layer[s]
    n_virtual = np.maximum(span - 1, 0)
    chain_ptr = np.concatenate(([0], np.cumsum(n_virtual)))
    total_v = int(chain_ptr[-1])
    v_edge = np.repeat(np.arange(len(s)), n_virtual)
    v_step = np.arange(total_v) - chain_ptr[:-1][v_edge]
    vid = k + np.arange(total_v)
    all_layer = np.concatenate((layer, layer[s][v_edge] + 1 + v_step))
    last = v_step == n_virtual[v_edge] - 1
    usrc = np.concatenate((s, vid))
    first_hop = np.where(n_virtual > 0, k + chain_ptr[:-1], d)
    udst = np.concatenate((first_hop, np.where(last, d[v_edge], vid + 1)))
    # initial order: execution order; a long edge's virtual nodes start among the nodes run between its
    # ends (so a module's input runs down between the module's weights, not around them)
    key = np.concatenate((rank.astype(float), (rank[s][v_edge] + rank[d][v_edge]) / 2 + 0.25))
    perm = _sweep(all_layer, key, usrc, udst, sweeps, tick, k)
    return _Order(layer, all_layer, perm, usrc, udst, chain_ptr, flipped)


def _boxes_down(layer: np.ndarray, s: np.ndarray, d: np.ndarray, movable: np.ndarray, ports: np.ndarray) -> None:
    """Move each `movable` box down to the layer right above its first consumer, the lowest first, in place.

    A GAN's generator G (fed by its noise alone) stood in the layer after the noise, and the discriminator's call on
    real data two layers lower (after the two ops that make the real batch): each box made its layer band as tall as
    itself, so the graph stacked G above D above D's other calls, three boxes high where two fit, and fitted to the
    view it was small. Beside each other they share one band. A box whose output leaves its module (an output port)
    stays: the port's layer is set later."""
    order = np.argsort(s, kind="stable")
    ptr = np.searchsorted(s[order], np.arange(len(layer) + 1))
    consumers = d[order]
    for b in sorted(np.flatnonzero(movable).tolist(), key=lambda i: -layer[i]):
        used = consumers[ptr[b]:ptr[b + 1]]
        if len(used) and not ports[used].any():
            layer[b] = max(layer[b], int(layer[used].min()) - 1)


def _after_what_ran_before(layer: np.ndarray, alone: np.ndarray) -> None:
    """Give the children linked to nothing (a module called but not run yet, a dropout in eval mode: a box
    with nothing in it) a layer of their own below what ran before them (nodes are in execution order), in
    place. In layer 0 they sat at the top of their module, above its first layer, as if they ran first."""
    if not alone.any() or alone.all():
        return
    base = np.maximum.accumulate(np.where(alone, -1, layer))[alone] + 1  # below everything run before
    layer[~alone] += np.searchsorted(base, layer[~alone], side="right")  # (base rises with execution order)
    layer[alone] = base + np.arange(len(base))  # one after another where several ran in a row


WIDE = 32  # layers this wide are reordered with numpy; narrower ones in plain Python, where numpy's
# per-call cost dominates (a deep network has thousands of layers of 2-5 nodes each)


def _sweep(layer: np.ndarray, key: np.ndarray, usrc: np.ndarray, udst: np.ndarray, sweeps: int,
           tick: Callable[[float], None], k: int) -> np.ndarray:
    """Barycentre crossing reduction, layer by layer down then up; returns nodes sorted by (layer, pos)."""
    n = len(layer)
    perm = np.lexsort((key, layer))
    n_layers = int(layer.max(initial=-1)) + 1
    starts = np.searchsorted(layer[perm], np.arange(n_layers + 1))
    size = np.diff(starts)
    slot = np.empty(n, np.int64)
    slot[perm] = np.arange(n) - starts[layer[perm]]
    pos = (slot + 0.5) / size[layer]  # relative position in the layer, so layers of any size compare
    sides = []  # per side (predecessors, successors): neighbours of each node as CSR (ptr, neighbours)
    for this, other in ((udst, usrc), (usrc, udst)):
        o = np.argsort(this, kind="stable")
        ptr = np.searchsorted(this[o], np.arange(n + 1))
        sides.append((ptr, other[o], ptr.tolist(), other[o].tolist()))
    perm_list, bounds = perm.tolist(), starts.tolist()
    busy = [i for i in range(n_layers) if size[i] > 1]
    for _ in range(sweeps):
        changed = False
        for layers, side in ((busy, sides[0]), (busy[::-1], sides[1])):
            for i in layers:
                a, b = bounds[i], bounds[i + 1]
                if b - a >= WIDE:
                    changed |= _reorder_wide(pos, perm[a:b], side[0], side[1])
                else:
                    changed |= _reorder_narrow(pos, perm_list[a:b], side[2], side[3])
            tick(0.3 * k / sweeps)
        if not changed:  # a whole down and up pass changed nothing: further passes would not either
            break
    return np.lexsort((pos, layer))


def _reorder_wide(pos: np.ndarray, nodes: np.ndarray, ptr: np.ndarray, nbr: np.ndarray) -> bool:
    """Sort one layer by the barycentre of its neighbours (numpy); True if the order changed."""
    lo, hi = ptr[nodes], ptr[nodes + 1]
    count = hi - lo
    total = int(count.sum())
    if not total:
        return False
    which = np.repeat(np.arange(len(nodes)), count)
    gather = nbr[np.arange(total) - np.repeat(np.cumsum(count) - count, count) + np.repeat(lo, count)]
    sums = np.bincount(which, weights=pos[gather], minlength=len(nodes))
    cur = pos[nodes]
    bary = np.where(count > 0, sums / np.maximum(count, 1), cur)
    placed = np.empty(len(nodes))
    placed[np.lexsort((cur, bary))] = (np.arange(len(nodes)) + 0.5) / len(nodes)
    if (placed == cur).all():
        return False
    pos[nodes] = placed
    return True


def _reorder_narrow(pos: np.ndarray, nodes: list[int], ptr: list[int], nbr: list[int]) -> bool:
    """Sort one small layer by the barycentre of its neighbours (plain Python); True if it changed."""
    item = pos.item
    cur = [item(v) for v in nodes]
    bary = []
    linked = False
    for v, c in zip(nodes, cur, strict=True):
        lo, hi = ptr[v], ptr[v + 1]
        if lo == hi:
            bary.append(c)
        else:
            linked = True
            bary.append(sum(map(item, nbr[lo:hi])) / (hi - lo))
    if not linked:
        return False
    m = len(nodes)
    changed = False
    for r, j in enumerate(sorted(range(m), key=lambda j: (bary[j], cur[j]))):
        p = (r + 0.5) / m
        if p != cur[j]:
            pos[nodes[j]] = p
            changed = True
    return changed


def _rising(y: np.ndarray) -> np.ndarray:
    """y pushed up to be non-decreasing (each value raised to the largest one before it)."""
    return np.maximum.accumulate(y)


def _falling(y: np.ndarray) -> np.ndarray:
    """y pulled down to be non-decreasing (each value lowered to the smallest one after it)."""
    return np.minimum.accumulate(y[::-1])[::-1]


def _unit_offsets(order: _Order, anchor: np.ndarray, units: int) -> tuple[np.ndarray, np.ndarray]:
    """Per unit edge, the anchor offsets at its source and target end (only real ends have any)."""
    flipped = order.flipped
    m = len(flipped)
    src_off = np.where(flipped, 0.0, anchor[:, 0]) if m else np.zeros(0)
    dst_off = np.where(flipped, 0.0, anchor[:, 1]) if m else np.zeros(0)
    count = np.diff(order.chain_ptr)
    off_src, off_dst = np.zeros(units), np.zeros(units)
    off_src[:m] = src_off  # the first hop of edge e is unit edge e; its virtual hops follow all those
    off_dst[:m] = np.where(count == 0, dst_off, 0.0)
    chained = count > 0
    off_dst[m + order.chain_ptr[:-1][chained] + count[chained] - 1] = dst_off[chained]
    return off_src, off_dst


def _coordinates(order: _Order, k: int, w: np.ndarray, h: np.ndarray, port: np.ndarray, anchor: np.ndarray,
                 style: LayoutStyle) -> _Local:
    """x by smoothing towards neighbours under no-overlap constraints; y from layer bands.

    anchor[e] = (x offset where edge e leaves its source, x offset where it enters its target), from the
    node centres: a box's ports are not at its middle, and an edge runs straight when they line up.
    """
    layer, perm, all_layer = order.layer, order.perm, order.all_layer
    n = len(perm)
    wn = np.concatenate((w, np.zeros(n - k)))
    solid = np.concatenate((~port, np.zeros(n - k, bool)))
    lp = all_layer[perm]
    same = np.concatenate((lp[1:] == lp[:-1], [False]))
    both_solid = solid[perm][1:] & solid[perm][:-1]
    sep = (wn[perm][1:] + wn[perm][:-1]) / 2 + np.where(both_solid, style.node_gap, style.edge_gap)
    sep = np.where(same[:-1], sep, 0.0)
    cum = np.concatenate(([0.0], np.cumsum(sep)))
    n_layers = int(lp.max(initial=-1)) + 1
    starts = np.searchsorted(lp, np.arange(n_layers + 1))
    first = starts[lp]
    offset = cum - cum[first]  # minimum distance from the layer's first node
    ends = np.maximum(starts[1:] - 1, 0)
    width_of_layer = offset[ends] if n else np.zeros(0)
    x = np.empty(n)
    x[perm] = offset - width_of_layer[lp] / 2
    usrc, udst = order.usrc, order.udst
    virtual = np.arange(n) >= k
    # long edges pull hardest (so they run straight); a parameter or input follows its consumer but
    # barely pulls it, so a chain of ops stays straight however many weights hang on it
    weight = 1.0 + 3.0 * (virtual[usrc] & virtual[udst]) + 1.0 * (virtual[usrc] ^ virtual[udst])
    leaf = np.bincount(udst, minlength=n)[usrc] == 0
    weight_in = np.where(leaf, 0.05, weight)  # how much the source pulls the destination
    wsum = np.bincount(udst, weight_in, n) + np.bincount(usrc, weight, n)
    linked = wsum > 0
    off_src, off_dst = _unit_offsets(order, anchor, len(usrc))
    shift = off_src - off_dst  # an edge is straight when x[dst] == x[src] + shift
    big = 4.0 * (float(cum[-1]) + 1.0) if n else 1.0
    lift = lp * big  # segmented cumulative max/min: later layers sit strictly above earlier ones
    follows = np.bincount(usrc[leaf], minlength=n) > 0  # sources: parameters, inputs, input ports
    yields = follows[perm]

    def project(target: np.ndarray) -> np.ndarray:
        # the nearest (roughly) placement to `target` that keeps each layer's order and gaps: the other
        # nodes first, then sources in the room left between them, so a weight never shoves the data path
        y = target[perm] - offset + lift
        placed = (_rising(np.where(yields, -np.inf, y)) + _falling(np.where(yields, np.inf, y))) / 2
        # each source is kept between the placed nodes around it (there is room: offsets count it)
        y = np.where(yields, np.clip(y, _rising(np.where(yields, -np.inf, placed)),
                                     _falling(np.where(yields, np.inf, placed))), placed)
        out = np.empty(n)
        out[perm] = (_rising(y) + _falling(y)) / 2 - lift + offset
        return out

    for _ in range(style.smoothing):
        pull = np.bincount(udst, weight_in * (x[usrc] + shift), n) \
            + np.bincount(usrc, weight * (x[udst] - shift), n)
        x = project(np.where(linked, pull / np.where(linked, wsum, 1.0), x))
    # last, sources move above their consumers (smoothing lets them lag a step behind)
    if follows.any():
        total = np.maximum(np.bincount(usrc[leaf], weight[leaf], n), 1e-12)
        above = np.bincount(usrc[leaf], weight[leaf] * (x[udst[leaf]] - shift[leaf]), n) / total
        x = project(np.where(follows, above, x))
    left = float((x - wn / 2).min()) if n else 0.0
    right = float((x + wn / 2).max()) if n else 0.0
    x -= left
    # y: each layer is a band as tall as its tallest node; nodes hang from the band's top
    hn = np.concatenate((h, np.zeros(n - k)))
    band_h = np.zeros(n_layers)
    np.maximum.at(band_h, all_layer, hn)
    has_solid = np.zeros(n_layers, bool)
    has_solid[all_layer[solid]] = True
    only_ports = np.zeros(n_layers, bool)
    only_ports[all_layer[:k][port]] = True
    only_ports &= ~has_solid
    only_ports[np.unique(all_layer[k:])] = False
    band_h = np.where(only_ports, 0.0, np.maximum(band_h, 12.0))
    gaps = np.full(n_layers, style.layer_gap)
    tops = np.concatenate(([0.0], np.cumsum(band_h + gaps)))[:-1]
    band = np.stack((tops, tops + band_h), axis=1)
    # sources (parameters, inputs) sit at the band's bottom, next to their consumer; others hang from the top
    source = np.bincount(order.udst, minlength=n)[:k] == 0
    y = np.where(source & ~port, tops[layer] + band_h[layer] - h / 2, tops[layer] + h / 2)
    pos = np.stack((x[:k], y), axis=1) if k else np.zeros((0, 2))
    height = float(band[-1, 1]) if n_layers else 0.0
    return _Local(order, pos, x[k:], band, right - left, height)


# ---- module groups -------------------------------------------------------------------------------
@dataclass(eq=False)
class _Group:
    """One group's children (in execution order) and its local edges, before and after layout."""

    refs: list = field(default_factory=list)  # (what, id): (_NODE, node) (_BOX, group) (_IN, u) (_OUT, u)
    index: dict = field(default_factory=dict)
    order: list = field(default_factory=list)
    pairs: dict = field(default_factory=dict)  # (a, b) local -> unique edge index
    segs: list = field(default_factory=list)  # (a, b, u, pair) per drawn segment
    what: np.ndarray | None = None  # per child: _NODE, _BOX, _IN or _OUT
    ident: np.ndarray | None = None  # per child: node, group or source node id
    seg_index: dict = field(default_factory=dict)
    local: _Local | None = None
    rank: np.ndarray | None = None  # child -> index in the canonical (execution) order
    size: tuple[float, float] = (0.0, 0.0)
    shift: tuple[float, float] = (0.0, 0.0)  # local layout frame -> box frame
    origin: tuple[float, float] = (0.0, 0.0)  # box top-left, absolute

    def child(self, ref: tuple, order: float) -> int:
        i = self.index.get(ref)
        if i is None:
            i = self.index[ref] = len(self.refs)
            self.refs.append(ref)
            self.order.append(order)
        return i


def layout_view(view, style: LayoutStyle = DEFAULT_STYLE, cache: LayoutCache | None = None,
                progress: Callable[[float], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> Layout:
    """Lay out a GraphView (app.graph_model) group by group; see the module docstring."""
    n = len(view.keys)
    kind = np.asarray(view.kind, np.int64)
    sizes = np.array(style.kind_sizes, float)[kind] if n else np.zeros((0, 2))
    node_group = np.asarray(view.group, np.int64)
    parent = [int(p) for p in view.group_parent]
    n_groups = len(parent)
    depth = [0] * n_groups
    for g in range(1, n_groups):
        depth[g] = depth[parent[g]] + 1
    order = np.asarray(view.order, float)
    # the box of a group runs when its call began (a call that ran nothing yet has no node to tell), or when
    # its first node runs
    called = getattr(view, "group_order", None)
    box_order = [np.inf] * n_groups if called is None else np.asarray(called, float).tolist()
    for i in np.argsort(order)[::-1]:
        g = int(node_group[i])
        while g > 0 and box_order[g] > order[i]:
            box_order[g] = order[i]
            g = parent[g]
    groups = [_Group() for _ in range(n_groups)]
    for g in range(1, n_groups):  # every expanded group is a box in its parent, even an empty one
        groups[parent[g]].child((_BOX, g), box_order[g])
    placed = zip(node_group.tolist(), order.tolist(), strict=True)
    node_local = [groups[g].child((_NODE, i), o) for i, (g, o) in enumerate(placed)]  # node -> child index
    edges = np.asarray(view.edges, np.int64).reshape(-1, 2)
    edge_segs = _route_edges(edges, node_group, node_local, parent, depth, groups)
    work = _Progress(n + sum(len(gr.refs) for gr in groups[1:]), progress, cancelled)
    work.tick()
    for g in sorted(range(n_groups), key=lambda g: -depth[g]):
        _layout_group(groups, g, sizes, style, cache, work)
    _place(groups, parent, depth)
    layout = _assemble(view, groups, sizes, edge_segs, style)
    work.finish()
    return layout


def _route_edges(edges: np.ndarray, node_group: np.ndarray, node_local: list[int], parent: list[int],
                 depth: list[int], groups: list[_Group]) -> list:
    """Split every edge into one local edge per group it passes; returns (group, segment) per edge."""
    out = []
    group_of = node_group.tolist()
    for u, v in edges.tolist():
        gu, gv = group_of[u], group_of[v]
        if gu == gv:  # the common case; view edges are unique, so this pair and segment are new
            gr = groups[gu]
            a, b = node_local[u], node_local[v]
            pair = gr.pairs[(a, b)] = len(gr.pairs)
            gr.segs.append((a, b, -1, pair))
            out.append(((gu, len(gr.segs) - 1),))
            continue
        a, b = gu, gv
        while depth[a] > depth[b]:
            a = parent[a]
        while depth[b] > depth[a]:
            b = parent[b]
        while a != b:
            a, b = parent[a], parent[b]
        lca = a
        route = []
        ref, g = (_NODE, u), gu
        while g != lca:  # up from u: out through the bottom port of each enclosing group
            gr = groups[g]
            route.append((g, _segment(gr, gr.index[ref], gr.child((_OUT, u), np.inf), u)))
            ref, g = (_BOX, g), parent[g]
        down = []
        ref_v, g = (_NODE, v), gv
        while g != lca:
            down.append((g, ref_v))
            ref_v, g = (_BOX, g), parent[g]
        gr = groups[lca]
        route.append((lca, _segment(gr, gr.index[ref], gr.index[ref_v], u)))
        for g, target in reversed(down):  # into v's groups through their top ports
            gr = groups[g]
            route.append((g, _segment(gr, gr.child((_IN, u), -np.inf), gr.index[target], u)))
        out.append(route)
    return out


def _segment(gr: _Group, a: int, b: int, u: int) -> int:
    """The drawn segment a -> b in group gr (for a box end, through the port of source node u)."""
    boxy = gr.refs[a][0] == _BOX or gr.refs[b][0] == _BOX
    key = (a, b, u if boxy else -1)
    s = gr.seg_index.get(key)
    if s is None:
        s = gr.seg_index[key] = len(gr.segs)
        pair = gr.pairs.get((a, b))
        if pair is None:
            pair = gr.pairs[(a, b)] = len(gr.pairs)
        gr.segs.append((*key, pair))
    return s


def _layout_group(groups: list[_Group], g: int, sizes: np.ndarray, style: LayoutStyle,
                  cache: LayoutCache | None, work: _Progress) -> None:
    """Lay out group g's children (its sub-groups are done: their box sizes are known)."""
    gr = groups[g]
    k = len(gr.refs)
    refs = np.array(gr.refs, np.int64).reshape(-1, 2)
    what = gr.what = refs[:, 0]
    gr.ident = refs[:, 1]
    # canonical order: execution order, ports first/last; the cache keys use it, not names
    canon = np.lexsort((np.arange(k), np.array(gr.order, float))) if k else np.zeros(0, np.int64)
    rank = np.empty(k, np.int64)
    rank[canon] = np.arange(k)
    gr.rank = rank
    wh = np.zeros((k, 2))
    wh[what == _NODE] = sizes[gr.ident[what == _NODE]]
    for i in np.flatnonzero(what == _BOX).tolist():
        wh[i] = groups[gr.ident[i]].size
    pair_list = list(gr.pairs)
    local_edges = np.array([(rank[a], rank[b]) for a, b in pair_list], np.int64).reshape(-1, 2)
    c_what = what[canon]
    c_wh = wh[canon]
    anchor = _anchors(groups, gr, what, len(pair_list))
    shape_key = (c_what.tobytes(), local_edges.tobytes())
    size_key = (shape_key, np.round(c_wh, 2).tobytes(), np.round(anchor, 1).tobytes())
    local = cache.get("local", size_key) if cache is not None else None
    if local is None:
        order = cache.get("order", shape_key) if cache is not None else None
        top, bottom = c_what == _IN, c_what == _OUT
        if order is None:
            order = _order_nodes(k, local_edges, np.arange(k), top, bottom, style.sweeps, work.tick, c_what == _BOX)
            if cache is not None:
                cache.put("order", shape_key, order)
        local = _coordinates(order, k, c_wh[:, 0], c_wh[:, 1], top | bottom, anchor, style)
        if cache is not None:
            cache.put("local", size_key, local)
    work.tick(0.1 * k)
    gr.local = local
    if g == 0:
        gr.shift = (0.0, 0.0)
        gr.size = (local.width, local.height)
        return
    ports_in = c_what == _IN
    ports_out = c_what == _OUT
    inner = ~(ports_in | ports_out)
    inner_layers = local.order.layer[inner]
    if len(inner_layers):
        content_top = float(local.band[inner_layers.min(), 0])
        content_bottom = float(local.band[inner_layers.max(), 1])
    else:
        content_top = content_bottom = 0.0
    pad = style.group_pad
    top = style.group_title + pad / 2  # edges coming in show for a moment below the title bar
    width = max(local.width + 2 * pad, 120.0)
    gr.shift = ((width - local.width) / 2, top - content_top)
    gr.size = (width, top + content_bottom - content_top + pad)


def _anchors(groups: list[_Group], gr: _Group, what: np.ndarray, n_pairs: int) -> np.ndarray:
    """Per local edge pair: where it leaves and enters, relative to the middle of a box child (its port)."""
    total = np.zeros((n_pairs, 2))
    count = np.zeros((n_pairs, 2))
    for a, b, u, pair in gr.segs:
        for side, child, kind in ((0, a, _OUT), (1, b, _IN)):
            if what[child] == _BOX:
                box = groups[gr.ident[child]]
                i = box.index.get((kind, u))
                if i is not None:
                    total[pair, side] += box.shift[0] + box.local.pos[box.rank[i], 0] - box.size[0] / 2
                    count[pair, side] += 1
    return total / np.maximum(count, 1)


def _place(groups: list[_Group], parent: list[int], depth: list[int]) -> None:
    """Absolute top-left of every group box, from the root down."""
    for g in sorted(range(len(groups)), key=lambda g: depth[g]):
        if g == 0:
            groups[g].origin = (0.0, 0.0)
            continue
        p = groups[parent[g]]
        i = p.rank[p.index[(_BOX, g)]]
        cx, cy = p.local.pos[i]
        w, h = groups[g].size
        groups[g].origin = (p.origin[0] + p.shift[0] + cx - w / 2, p.origin[1] + p.shift[1] + cy - h / 2)


def _assemble(view, groups: list[_Group], sizes: np.ndarray, edge_segs: list, style: LayoutStyle) -> Layout:
    """Absolute node positions, group rectangles and edge polylines, for all groups at once."""
    n = len(view.keys)
    # every group's children, layer bands, virtual nodes, edge pairs and segments, concatenated
    frame = np.array([(gr.origin[0] + gr.shift[0], gr.origin[1] + gr.shift[1]) for gr in groups])
    rects = np.array([(*gr.origin, *gr.size) for gr in groups])
    flat = _flatten(groups, frame)
    node = flat.what == _NODE
    pos = np.zeros((n, 2))
    layer = np.zeros(n, np.int64)
    pos[flat.ident[node]] = flat.pos[node]
    layer[flat.ident[node]] = flat.layer[node]
    pair_base = _bases([len(gr.pairs) for gr in groups])
    seg_base = _bases([len(gr.segs) for gr in groups])
    # a group's (a, b, u, pair) rows: its children and pairs are numbered from its own base
    shift = np.stack((flat.base[:-1], flat.base[:-1], 0 * pair_base[:-1], pair_base[:-1]), axis=1)
    segs = np.concatenate([np.array(gr.segs, np.int64).reshape(-1, 4) + shift[g]
                           for g, gr in enumerate(groups)])
    points, connect, counts, ports = _polylines(groups, segs, flat, sizes, rects, style)
    seg_ptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    edge_seg = np.array([seg_base[g] + s for route in edge_segs for g, s in route], np.int64)
    edge_seg_ptr = np.concatenate(([0], np.cumsum([len(r) for r in edge_segs]))).astype(np.int64)
    size = sizes.copy()
    lo = np.vstack([pos - size / 2, rects[1:, :2], points]) if n else np.zeros((1, 2))
    hi = np.vstack([pos + size / 2, rects[1:, :2] + rects[1:, 2:], points]) if n else np.zeros((1, 2))
    x0, y0 = lo.min(axis=0)
    x1, y1 = hi.max(axis=0)
    rects[0] = (x0, y0, x1 - x0, y1 - y0)
    ports = np.unique(np.round(ports, 1), axis=0)
    return Layout(view.signature, pos, size, layer, rects, points, connect, seg_ptr, edge_seg_ptr, edge_seg,
                  (float(x0), float(y0), float(x1), float(y1)), ports)


def _bases(counts: list[int]) -> np.ndarray:
    """Where each part starts when parts of these lengths are concatenated (plus the total)."""
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


@dataclass(eq=False)
class _Flat:
    """All groups' children, layer bands, virtual nodes and edge pairs, concatenated, in absolute units."""

    base: np.ndarray  # group g's children are rows base[g]:base[g + 1]
    group: np.ndarray
    what: np.ndarray
    ident: np.ndarray
    pos: np.ndarray
    layer: np.ndarray
    bottom: np.ndarray  # the bottom of each child's layer band
    pair_chain: np.ndarray  # per edge pair: its first virtual node, how many, reversed or not
    pair_virtual: np.ndarray
    pair_flipped: np.ndarray
    vx: np.ndarray  # per virtual node: x, and its band's top and bottom
    v_band: np.ndarray


def _flatten(groups: list[_Group], frame: np.ndarray) -> _Flat:
    """Concatenate every group's layout, moved to where the group sits."""
    base = _bases([len(gr.refs) for gr in groups])
    band_base = _bases([len(gr.local.band) for gr in groups])
    v_base = _bases([len(gr.local.vx) for gr in groups])
    group = np.repeat(np.arange(len(groups)), np.diff(base))
    orders = [gr.local.order for gr in groups]
    layer = np.concatenate([o.layer[gr.rank] for gr, o in zip(groups, orders, strict=True)])
    bands = np.concatenate([gr.local.band.reshape(-1, 2) + frame[g, 1] for g, gr in enumerate(groups)])
    v_band = np.concatenate([o.all_layer[len(o.layer):] + band_base[g] for g, o in enumerate(orders)])
    return _Flat(
        base, group, np.concatenate([gr.what for gr in groups]), np.concatenate([gr.ident for gr in groups]),
        np.concatenate([gr.local.pos[gr.rank].reshape(-1, 2) for gr in groups]) + frame[group], layer,
        bands[band_base[group] + layer, 1] if len(bands) else np.zeros(0),
        np.concatenate([o.chain_ptr[:-1] + v_base[g] for g, o in enumerate(orders)]),
        np.concatenate([np.diff(o.chain_ptr) for o in orders]), np.concatenate([o.flipped for o in orders]),
        np.concatenate([gr.local.vx + frame[g, 0] for g, gr in enumerate(groups)]),
        bands[v_band] if len(v_band) else np.zeros((0, 2)))


def _polylines(groups: list[_Group], segs: np.ndarray, flat: _Flat, sizes: np.ndarray, rects: np.ndarray,
               style: LayoutStyle):
    """Every segment's points: start, a drop to its band's bottom, two points per virtual node, end."""
    a, b, u, pair = segs[:, 0], segs[:, 1], segs[:, 2], segs[:, 3]
    what, pos = flat.what, flat.pos
    s_count = len(segs)
    half_h = np.zeros(len(what))
    node = what == _NODE
    half_h[node] = sizes[flat.ident[node], 1] / 2
    start = pos[a] + np.stack((np.zeros(s_count), half_h[a]), axis=1)
    end = pos[b] - np.stack((np.zeros(s_count), half_h[b]), axis=1)
    # an end at a box goes through that box's own port for the same source node
    for ends, side, kind, dy in ((start, a, _OUT, 1.0), (end, b, _IN, 0.0)):
        boxed = np.flatnonzero(what[side] == _BOX)
        if len(boxed):
            box = flat.ident[side[boxed]]
            rows = [flat.base[g] + groups[g].index[(kind, src)]
                    for g, src in zip(box.tolist(), u[boxed].tolist(), strict=True)]
            ends[boxed, 0] = pos[rows, 0]
            ends[boxed, 1] = rects[box, 1] + dy * rects[box, 3]
    own_in, own_out = what[a] == _IN, what[b] == _OUT  # this group's own ports sit on its border
    start[own_in, 1] = rects[flat.group[a[own_in]], 1]
    end[own_out, 1] = rects[flat.group[b[own_out]], 1] + rects[flat.group[b[own_out]], 3]
    flipped = flat.pair_flipped[pair]
    drop = ~flipped & (start[:, 1] < flat.bottom[a] - 0.5)
    n_virtual = flat.pair_virtual[pair]
    counts = 2 + drop + 2 * n_virtual
    ptr = np.concatenate(([0], np.cumsum(counts)))
    points = np.empty((int(ptr[-1]), 2))
    points[ptr[:-1]] = start
    points[ptr[1:] - 1] = end
    points[ptr[:-1][drop] + 1] = np.stack((start[drop, 0], flat.bottom[a][drop]), axis=1)
    total_v = int(n_virtual.sum())
    if total_v:
        seg_of = np.repeat(np.arange(s_count), n_virtual)
        j = np.arange(total_v) - np.repeat(np.cumsum(n_virtual) - n_virtual, n_virtual)
        flip = flipped[seg_of]
        vi = flat.pair_chain[pair][seg_of] + np.where(flip, n_virtual[seg_of] - 1 - j, j)
        top, bot = flat.v_band[vi, 0], flat.v_band[vi, 1]
        first = ptr[:-1][seg_of] + 1 + drop[seg_of] + 2 * j
        points[first] = np.stack((flat.vx[vi], np.where(flip, bot, top)), axis=1)
        points[first + 1] = np.stack((flat.vx[vi], np.where(flip, top, bot)), axis=1)
    # spread the inputs of a node along its top edge, in the order they arrive from, so they don't cross
    into = np.flatnonzero(what[b] == _NODE)
    if len(into):
        came_from = points[ptr[1:][into] - 2, 0]
        o = into[np.lexsort((came_from, b[into]))]
        tb = b[o]
        first_of = np.concatenate(([True], tb[1:] != tb[:-1]))
        rank_in = np.arange(len(o)) - np.maximum.accumulate(np.where(first_of, np.arange(len(o)), 0))
        cnt = np.bincount(tb, minlength=len(what))[tb]
        width = sizes[flat.ident[tb], 0]
        spacing = np.minimum(style.port_spacing, width / (cnt + 1))
        points[ptr[1:][o] - 1, 0] += (rank_in - (cnt - 1) / 2) * spacing
    connect = np.ones(len(points), bool)
    connect[ptr[1:] - 1] = False
    ports = np.concatenate((points[ptr[:-1][what[a] == _NODE]], points[ptr[1:][into] - 1]))
    return points, connect, counts, ports


# ---- plain graphs and worker threads ------------------------------------------------------------
@dataclass(eq=False)
class PlainGraph:
    """A graph without modules, for `layout_view`: n nodes of one kind, edges, execution order."""

    edges: np.ndarray
    kind: np.ndarray
    order: np.ndarray
    keys: list[str]
    signature: int = 0

    @property
    def group(self) -> np.ndarray:
        return np.zeros(len(self.keys), np.int64)

    group_parent = np.array([-1])


def plain_graph(n: int, edges, kind: np.ndarray | None = None) -> PlainGraph:
    """Wrap n nodes and (m, 2) edges (node order is execution order) for layout_view."""
    e = np.asarray(edges, np.int64).reshape(-1, 2)
    kinds = np.zeros(n, np.int8) if kind is None else np.asarray(kind)
    return PlainGraph(e, kinds, np.arange(n, dtype=float), [str(i) for i in range(n)], hash(e.tobytes()))


class LayoutJob:
    """One layout, to run in a worker thread: `run()` there, `cancel()` from anywhere, then `result`.

    `progress(fraction)` is called from the worker thread; a Qt caller forwards it with a queued signal.
    """

    def __init__(self, view, style: LayoutStyle = DEFAULT_STYLE, cache: LayoutCache | None = None,
                 progress: Callable[[float], None] | None = None) -> None:
        self.view = view
        self.style = style
        self.cache = cache
        self.progress = progress
        self.result: Layout | None = None
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        """Ask the running layout to stop at its next check (it then ends with LayoutCancelled)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called."""
        return self._cancel.is_set()

    def run(self) -> Layout | None:
        """Compute the layout; returns it (None when cancelled or failed; see `error`)."""
        try:
            self.result = layout_view(self.view, self.style, self.cache, self.progress, self._cancel.is_set)
        except LayoutCancelled as exc:
            self.error = exc
        except Exception as exc:  # handed to the thread that waits on the job
            self.error = exc
        finally:
            self.done.set()
        return self.result
