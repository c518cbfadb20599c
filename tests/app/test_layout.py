"""Layered layout: no overlaps, edges downwards, long edges around nodes, groups, cache, worker job."""

import threading

import numpy as np
import pytest

import engine
from app.graph_model import GraphModel
from app.layout import LayoutCache, LayoutCancelled, LayoutJob, layout_view, plain_graph
from engine import nn
from engine.events import OpEvent, hub
from tests.app.graphs import mlp_graph_model, record_events


def network(blocks: int, seed: int = 0) -> tuple[int, list[tuple[int, int]]]:
    """A small network-shaped DAG: linear layers with two parameters each, activations, residuals."""
    rng = np.random.default_rng(seed)
    edges: list[tuple[int, int]] = []
    n = 1
    x = 0
    for _ in range(blocks):
        skip = x
        for _ in range(rng.integers(1, 3)):
            w, b, y = n, n + 1, n + 2
            edges += [(x, y), (w, y), (b, y)]
            act = n + 3
            edges.append((y, act))
            n, x = n + 4, act
        if rng.random() < 0.6:
            edges += [(x, n), (skip, n)]
            n, x = n + 1, n
    return n, edges


def boxes(layout):
    return np.concatenate((layout.pos - layout.size / 2, layout.pos + layout.size / 2), axis=1)


def overlaps(lo_hi: np.ndarray) -> int:
    a, b = lo_hi[:, None, :], lo_hi[None, :, :]
    hit = (a[..., 0] < b[..., 2]) & (b[..., 0] < a[..., 2]) \
        & (a[..., 1] < b[..., 3]) & (b[..., 1] < a[..., 3])
    return int(np.triu(hit, 1).sum())


@pytest.fixture
def mlp_view():
    return mlp_graph_model()


def test_network_layout_has_no_overlaps_and_edges_point_down():
    n, edges = network(40)
    layout = layout_view(plain_graph(n, edges))
    assert np.isfinite(layout.pos).all()
    assert overlaps(boxes(layout)) == 0
    e = np.array(edges)
    assert (layout.layer[e[:, 1]] > layout.layer[e[:, 0]]).all()
    assert (layout.pos[e[:, 1], 1] > layout.pos[e[:, 0], 1]).all()


def test_edges_run_from_source_bottom_to_target_top_and_around_other_nodes():
    n, edges = network(30, seed=1)
    layout = layout_view(plain_graph(n, edges))
    lo_hi = boxes(layout)
    long_edges = 0
    for e, (a, b) in enumerate(edges):
        line = layout.edge_polyline(e)
        assert line[0, 1] == pytest.approx(lo_hi[a, 3]) and abs(line[0, 0] - layout.pos[a, 0]) < 1e-6
        assert line[-1, 1] == pytest.approx(lo_hi[b, 1])
        assert lo_hi[b, 0] <= line[-1, 0] <= lo_hi[b, 2]  # inputs spread along the target's top edge
        inner = line[1:-1]
        long_edges += len(inner) > 1
        inside = (inner[:, None, 0] > lo_hi[None, :, 0] + 1) & (inner[:, None, 0] < lo_hi[None, :, 2] - 1) \
            & (inner[:, None, 1] > lo_hi[None, :, 1] + 1) & (inner[:, None, 1] < lo_hi[None, :, 3] - 1)
        assert not inside.any(), f"edge {a}->{b} bends inside a node"
    assert long_edges > 5  # residuals span several layers: they got virtual points


def test_crossing_reduction_uncrosses_a_swapped_pair():
    # execution order puts c before d, but a feeds d and b feeds c: only swapping c and d avoids a crossing
    layout = layout_view(plain_graph(4, [(0, 3), (1, 2)]))
    x = layout.pos[:, 0]
    assert (x[0] < x[1]) == (x[3] < x[2])


def test_wide_layers_use_the_same_rules():
    rng = np.random.default_rng(2)
    width, depth = 60, 5
    edges = [(layer * width + i, (layer + 1) * width + j) for layer in range(depth - 1)
             for i in range(width) for j in rng.choice(width, 2, replace=False)]
    layout = layout_view(plain_graph(width * depth, edges))
    assert overlaps(boxes(layout)) == 0
    e = np.array(edges)
    assert (layout.pos[e[:, 1], 1] > layout.pos[e[:, 0], 1]).all()


def test_a_cycle_from_collapsed_modules_still_lays_out():
    layout = layout_view(plain_graph(3, [(0, 1), (1, 2), (2, 0)]))
    assert np.isfinite(layout.pos).all() and overlaps(boxes(layout)) == 0


def test_module_groups_nest_and_hold_their_nodes(mlp_view):
    view = mlp_view.view()
    layout = layout_view(view)
    assert overlaps(boxes(layout)) == 0
    rect = layout.group_rect
    for i in range(len(view)):
        g = int(view.group[i])
        if g:
            x, y, w, h = rect[g]
            (x0, y0), (x1, y1) = layout.pos[i] - layout.size[i] / 2, layout.pos[i] + layout.size[i] / 2
            assert x <= x0 and x1 <= x + w and y <= y0 and y1 <= y + h, view.keys[i]
    for g in range(2, len(view.groups)):
        p = view.group_parent[g]
        assert rect[p, 0] <= rect[g, 0] and rect[g, 0] + rect[g, 2] <= rect[p, 0] + rect[p, 2]
    e = view.edges
    assert (layout.pos[e[:, 1], 1] > layout.pos[e[:, 0], 1]).all()
    # sibling boxes do not overlap
    siblings = rect[2:5]
    assert overlaps(np.concatenate((siblings[:, :2], siblings[:, :2] + siblings[:, 2:]), axis=1)) == 0


def test_cache_reuses_layouts_and_expanding_lays_out_only_the_inside(mlp_view):
    cache = LayoutCache()
    first = layout_view(mlp_view.view(), cache=cache)
    misses = cache.misses
    again = layout_view(mlp_view.view(), cache=cache)
    assert cache.misses == misses  # nothing laid out again
    assert np.array_equal(first.pos, again.pos)
    mlp_view.collapse("Sequential.0")
    layout_view(mlp_view.view(), cache=cache)
    mlp_view.expand("Sequential.0")
    misses = cache.misses
    expanded = layout_view(mlp_view.view(), cache=cache)
    assert cache.misses == misses  # back to a known state: every group is a cache hit
    assert np.array_equal(expanded.pos, first.pos)


def test_identical_modules_share_one_layout():
    net = nn.Sequential(*[nn.Linear(4, 4) for _ in range(6)])
    events: list = []
    hub.reset_top_level()
    off = hub.subscribe(events.append)
    net(engine.randn(2, 4))
    off()
    model = GraphModel()
    model.apply_batch(events)
    cache = LayoutCache()
    layout_view(model.view(), cache=cache)
    # the 2nd to 5th Linear (an input and an output port, like the 1st) reuse the 1st one's layout
    assert cache.hits >= 4


def test_layout_job_reports_progress_and_can_be_cancelled():
    n, edges = network(60)
    seen: list[float] = []
    job = LayoutJob(plain_graph(n, edges), progress=seen.append)
    worker = threading.Thread(target=job.run)
    worker.start()
    worker.join()
    assert job.result is not None and job.error is None
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 3

    stopped = LayoutJob(plain_graph(n, edges))
    stopped.cancel()
    assert stopped.run() is None
    assert isinstance(stopped.error, LayoutCancelled)


def test_an_input_made_after_its_box_began_still_feeds_it_from_above():
    # a module's position ids: made (order 1) after the box they feed began (order 0), on no cycle
    layout = layout_view(plain_graph(3, [(1, 0), (0, 2)]))
    assert layout.pos[1, 1] < layout.pos[0, 1] < layout.pos[2, 1]
    line = layout.edge_polyline(0)
    assert line[0, 1] < line[-1, 1]  # the edge runs down into its consumer, not up from below it


def _chain():
    x = engine.randn(3, requires_grad=True)
    (x * 2).sum().backward()


def _fan_in():
    a, b = engine.randn(3, requires_grad=True), engine.randn(3, requires_grad=True)
    (a * b + a).sum().backward()


def _top_level_after_modules():
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    x = engine.randn(2, 4)
    (net(x) * engine.randn(2, 3)).mean().backward()


def _modules_after_top_level():
    net = nn.Linear(3, 2)
    x = engine.randn(5, 3, requires_grad=True)
    net(x.tanh() * 3).sum().backward()


@pytest.mark.parametrize("run", [_chain, _fan_in, _top_level_after_modules, _modules_after_top_level])
def test_every_input_of_every_op_of_a_small_graph_has_its_edge_drawn(run):
    # the tester's x -> mul -> sum showed ports and no lines
    events = record_events(run)
    model = GraphModel()
    model.apply_batch(events)
    view = model.view()
    layout = layout_view(view)
    edge_of = {(int(a), int(b)): e for e, (a, b) in enumerate(view.edges.tolist())}
    made: dict[int, int] = {}  # tensor id -> the node showing what made (or stands for) it
    counts: dict[str, int] = {}
    for ev in (e for e in events if isinstance(e, OpEvent)):
        n = counts[ev.key] = counts.get(ev.key, 0) + 1
        op = view.node_of[ev.key if n == 1 else f"{ev.key}#{n - 1}"]
        for i, t in enumerate(ev.inputs):
            src = made.setdefault(t, view.node_of.get(f"{ev.key}/in{i}"))
            assert src is not None and (src, op) in edge_of, (ev.key, i)
            line = layout.edge_polyline(edge_of[(src, op)])
            top_of_op = layout.pos[op, 1] - layout.size[op, 1] / 2
            bottom_of_src = layout.pos[src, 1] + layout.size[src, 1] / 2
            assert len(line) >= 2 and np.isclose(line[0, 1], bottom_of_src) and np.isclose(line[-1, 1], top_of_op)
            assert abs(line[-1, 0] - layout.pos[op, 0]) <= layout.size[op, 0] / 2
        made[ev.output] = op
