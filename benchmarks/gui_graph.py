"""Graph view timings: layout and full repaint at 1k, 5k and 20k nodes, and events/s the model absorbs.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_graph.py [--sizes 1000 5000 20000] [--grandalf]

Graphs are random layered DAGs shaped like real networks (blocks of linear layers with their
parameters, attention-like branches, residual connections). Bars: 20k-node layout < 2 s, 20k-node
repaint < 25 ms, model >= 100k events/s. Prints lines; asserts nothing.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import _timing  # noqa: F401  (one BLAS thread each, before numpy loads)
import numpy as np

from app.graph_model import OP, PARAM
from app.layout import LayoutCache, layout_view, plain_graph


def network_dag(n_target: int, seed: int = 0) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, edges, kinds) of a random network-like DAG with about n_target nodes, in execution order."""
    rng = np.random.default_rng(seed)
    kinds: list[int] = []
    edges: list[tuple[int, int]] = []

    def node(kind: int, *inputs: int) -> int:
        kinds.append(kind)
        i = len(kinds) - 1
        edges.extend((j, i) for j in inputs)
        return i

    def linear(x: int) -> int:
        return node(OP, x, node(PARAM), node(PARAM))

    x = node(2)
    while len(kinds) < n_target:
        block = rng.integers(3)
        skip = x
        if block == 0:  # attention-like: three projections, two matmuls, softmax
            q, k, v = linear(x), linear(x), linear(x)
            s = node(OP, node(OP, q, k))
            x = linear(node(OP, node(OP, s), v))
        elif block == 1:  # MLP
            x = linear(node(OP, linear(x)))
        else:  # a short chain of elementwise ops
            for _ in range(rng.integers(1, 4)):
                x = node(OP, x)
        if rng.random() < 0.7:
            x = node(OP, x, skip)  # residual
        if rng.random() < 0.5:
            x = node(OP, x, node(PARAM), node(PARAM))  # a norm
    return len(kinds), np.array(edges, np.int64), np.array(kinds, np.int8)


def bench_layout(sizes: list[int]) -> dict[int, tuple]:
    """Layout seconds per size (fresh cache, so nothing is reused)."""
    out = {}
    for size in sizes:
        n, edges, kinds = network_dag(size)
        graph = plain_graph(n, edges, kinds)
        t0 = time.perf_counter()
        layout = layout_view(graph, cache=LayoutCache())
        dt = time.perf_counter() - t0
        bar = "  | bar < 2 s: " + ("met" if dt < 2 else "MISSED") if size >= 20000 else ""
        print(f"layout {n} nodes, {len(edges)} edges: {dt * 1000:.0f} ms{bar}", flush=True)
        out[size] = (graph, layout)
    return out


def transformer_model(layers: int):
    """A GraphModel fed one step of a `layers`-deep transformer encoder (about 46 nodes a layer)."""
    import engine
    from app.graph_model import GraphModel
    from engine import nn
    from engine.events import hub

    net = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), num_layers=layers)
    events: list = []
    off = hub.subscribe(events.append)
    net(engine.randn(2, 3, 16)).sum().backward()
    off()
    model = GraphModel()
    model.apply_batch(events)
    return model


def bench_modules(layers: int) -> None:
    """Layout of a real network's graph with its module groups: cold, and after expanding one module."""
    model = transformer_model(layers)
    view = model.view()
    cache = LayoutCache()
    t0 = time.perf_counter()
    layout_view(view, cache=cache)
    cold = time.perf_counter() - t0
    model.collapse("TransformerEncoder.layers.3")
    layout_view(model.view(), cache=cache)
    model.expand("TransformerEncoder.layers.3")
    expanded = model.view()
    t0 = time.perf_counter()
    layout_view(expanded, cache=cache)
    warm = time.perf_counter() - t0
    print(f"layout {len(view)} nodes in {len(view.groups)} module groups (transformer, {layers} layers): "
          f"{cold * 1000:.0f} ms; again after expanding one layer: {warm * 1000:.0f} ms", flush=True)


def bench_repaint(graphs: dict[int, tuple]) -> None:
    """Median time of a full repaint of the canvas fitted to the whole graph (offscreen)."""
    from PySide6.QtWidgets import QApplication

    from widgets.graph_canvas import GraphCanvas

    app = QApplication.instance() or QApplication([])
    for size, (graph, layout) in graphs.items():
        canvas = GraphCanvas()
        canvas.resize(1280, 800)
        canvas.show()
        canvas.set_graph(graph, layout)
        canvas.fit()
        app.processEvents()
        samples = []
        for _ in range(15):
            t0 = time.perf_counter()
            canvas.viewport().repaint()
            samples.append(time.perf_counter() - t0)
        zoomed = []
        canvas.zoom_to_node(graph.keys[len(graph.keys) // 2])
        app.processEvents()
        for _ in range(15):
            t0 = time.perf_counter()
            canvas.viewport().repaint()
            zoomed.append(time.perf_counter() - t0)
        dt = float(np.median(samples))
        bar = "  | bar < 25 ms: " + ("met" if dt < 0.025 else "MISSED") if size >= 20000 else ""
        print(f"repaint {len(graph.keys)} nodes (whole graph, 1280x800): {dt * 1000:.1f} ms;"
              f"  zoomed in with labels: {float(np.median(zoomed)) * 1000:.1f} ms{bar}", flush=True)
        canvas.close()


def bench_model(iterations: int = 200) -> None:
    """Events per second GraphModel.apply absorbs, replaying a recorded MLP training run."""
    import engine
    from app.graph_model import GraphModel
    from engine import nn
    from engine.events import hub

    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    x, y = engine.randn(16, 32), engine.randint(0, 10, (16,))
    events: list = []
    off = hub.subscribe(events.append)
    for _ in range(20):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    off()
    events = events * (iterations // 20)
    best = 0.0
    for _ in range(5):
        gm = GraphModel()
        t0 = time.perf_counter()
        gm.apply_batch(events)
        best = max(best, len(events) / (time.perf_counter() - t0))
    print(f"model: {best / 1000:.0f}k events/s ({len(events)} events of an MLP training run)"
          f"  | bar >= 100k: {'met' if best >= 1e5 else 'MISSED'}", flush=True)


def bench_grandalf(size: int) -> None:
    """grandalf's Sugiyama layout on the same graph, when grandalf is importable."""
    try:
        from grandalf.graphs import Edge, Graph, Vertex
        from grandalf.layouts import SugiyamaLayout
    except ImportError:
        print("grandalf: not installed (pip install grandalf to compare)")
        return
    n, edges, _ = network_dag(size)

    class View:
        w, h = 124.0, 38.0

    vertices = [Vertex(i) for i in range(n)]
    for v in vertices:
        v.view = View()
    graph = Graph(vertices, [Edge(vertices[a], vertices[b]) for a, b in edges.tolist()])
    t0 = time.perf_counter()
    for component in graph.C:
        sug = SugiyamaLayout(component)
        sug.init_all()
        sug.draw(3)
    print(f"grandalf layout {n} nodes: {(time.perf_counter() - t0) * 1000:.0f} ms", flush=True)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--grandalf", type=int, nargs="*", help="also time grandalf at these sizes")
    args = parser.parse_args(argv)
    graphs = bench_layout(args.sizes)
    bench_modules(max(args.sizes) // 46)
    bench_repaint(graphs)
    bench_model()
    for size in args.grandalf or []:
        bench_grandalf(size)


if __name__ == "__main__":
    main()
