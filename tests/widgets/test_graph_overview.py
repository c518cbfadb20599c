"""A big graph fitted to the window, its nodes specks too small for their labels, still reads: its module boxes'
titles are drawn at a readable size, none over another or over a node (offscreen)."""

import numpy as np
import pytest
from PySide6.QtCore import QRectF

import engine
from app.layout import layout_view
from engine import nn
from tests.app.graphs import recorded_model
from tests.shots import shoot, shown
from widgets.graph_canvas import READABLE_PX, GraphCanvas
from widgets.graph_overview import ROW, ChipPlacer

BLOCKS = 20


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)

    def forward(self, x):
        return (self.bn2(self.conv2(self.bn1(self.conv1(x)).relu())) + x).relu()


class ResNet(nn.Module):
    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.blocks = nn.Sequential(*[Block(c) for _ in range(BLOCKS)])
        self.fc = nn.Linear(c * 16, 10)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).flatten(1))


def fitted(qtbot, view, size=(1100, 700)) -> GraphCanvas:
    """`view` on a canvas of `size`, fitted whole (View > Fit, pressed again after its first, readable fit)."""
    canvas = shown(qtbot, GraphCanvas(), *size)
    canvas.set_graph(view, layout_view(view))
    canvas.fit()
    return canvas


def specks(canvas) -> list[QRectF]:
    """Every node's box on screen, each checked too small for its own label."""
    view = canvas.view
    assert all(canvas.label_px(key) == 0 for key in view.keys)
    return [canvas.node_screen_rect(key) for key in view.keys]


def assert_readable_apart(canvas, rects: list) -> None:
    """The titles read (tall enough, inked, inside the canvas) and none covers another or a node."""
    image = canvas.render_image(1.0)
    screen = QRectF(canvas.viewport().rect())
    nodes = specks(canvas)
    for k, (text, rect) in enumerate(rects):
        assert rect.height() >= READABLE_PX and screen.contains(rect), (text, rect)
        assert not [other for other, r in rects[k + 1:] if r.intersects(rect)], text
        assert not [node for node in nodes if node.intersects(rect)], text
        inked = [image.pixelColor(x, y) for x in range(int(rect.left()), int(rect.right()))
                 for y in range(int(rect.top()), int(rect.bottom()))]
        assert sum(colour.lightness() < 120 for colour in inked) > 20, text  # its letters drawn, dark on the chip


def test_a_300_node_resnet_fitted_whole_reads_the_names_of_its_blocks(qtbot):
    # fitted to the window, the 20-block ResNet's 390 nodes were specks of 3 pixels and not one name was drawn
    net = ResNet()
    view = recorded_model(lambda: nn.functional.cross_entropy(net(engine.randn(2, 1, 4, 4)),
                                                              engine.tensor([0, 1])).backward()).view()
    assert len(view) >= 300
    canvas = fitted(qtbot, view)
    shoot(canvas, "resnet_fitted.png")
    drawn = canvas.drawn_labels()
    assert {"ResNet", "blocks  \u00b7  Sequential"} <= set(drawn)
    assert [f"{k}  \u00b7  Block" for k in range(BLOCKS)] == [t for t in drawn if t.endswith("\u00b7  Block")]
    assert_readable_apart(canvas, canvas.drawn_label_rects())


def test_a_six_layer_transformer_fitted_whole_reads_its_layers(qtbot):
    net = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), num_layers=6)
    view = recorded_model(lambda: net(engine.randn(2, 3, 16)).sum().backward()).view()
    assert len(view) >= 250
    canvas = fitted(qtbot, view)
    drawn = canvas.drawn_labels()
    assert "TransformerEncoder" in drawn
    for k in range(6):
        assert f"layers.{k}  \u00b7  TransformerEncoderLayer" in drawn
    assert_readable_apart(canvas, canvas.drawn_label_rects())
    # zoomed in on one layer, the boxes of its parts have room for their titles too; the one above stays in sight
    rect = canvas.box.viewRect()
    w, h = rect.width() / 3, rect.height() / 3
    canvas.box.setRange(QRectF(rect.center().x() - w / 2, rect.center().y() - h / 2, w, h), padding=0)
    qtbot.waitUntil(lambda: "linear1  \u00b7  Linear" in canvas.drawn_labels())
    assert "TransformerEncoder" in canvas.drawn_labels()  # its box begins above the view: its title at the top
    assert_readable_apart(canvas, canvas.drawn_label_rects())


def test_the_selected_node_of_a_fitted_big_graph_shows_its_name_beside_it(qtbot):
    net = nn.Sequential(*[m for _ in range(80) for m in (nn.Linear(3, 3), nn.Tanh())])
    view = recorded_model(lambda: net(engine.randn(2, 3)).sum().backward()).view()
    canvas = fitted(qtbot, view, (500, 400))
    key = "Sequential.41/tanh:0"
    canvas.select(key)
    qtbot.waitUntil(lambda: "tanh" in canvas.drawn_labels())
    node = canvas.node_screen_rect(key)
    [rect] = [r for t, r in canvas.drawn_label_rects() if t == "tanh"]
    assert rect.left() > node.right() and rect.top() < node.center().y() < rect.bottom()  # beside it, level with it
    assert canvas.label_px(key) == 0  # (the node itself too small for a label)
    canvas.select(None)
    qtbot.waitUntil(lambda: "tanh" not in canvas.drawn_labels())


def test_titles_give_way_rather_than_cover_a_graph_as_wide_as_the_window(qtbot):
    class Wide(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = nn.ModuleList([nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU())
                                        for _ in range(12)])

        def forward(self, x):
            return engine.cat([head(x) for head in self.heads], 1).sum()

    net = Wide()
    view = recorded_model(lambda: net(engine.randn(2, 4)).backward()).view()
    canvas = fitted(qtbot, view, (600, 300))
    assert "Wide" in canvas.drawn_labels()  # above its box
    assert_readable_apart(canvas, canvas.drawn_label_rects())


@pytest.mark.parametrize("over_nodes", [False, True])
def test_a_chip_takes_the_first_place_free_of_chips_and_nodes(over_nodes):
    placer = ChipPlacer(200, 100, most=10)
    placer.block(np.array([[50.0, 0.0]]), np.array([[60.0, 30.0]]))  # a node
    assert placer.place([0], [0], 40, 17) == (0.0, 0.0)
    assert placer.place([10, 10], [5, 20], 30, 17) == (10.0, 20.0)  # below the first chip
    at = placer.place([45, 45, 100], [0, 120, 0], 40, 17, over_nodes=over_nodes)  # the second place: off the canvas
    assert at == ((45.0, 0.0) if over_nodes else (100.0, 0.0))
    assert placer.place([190], [80], 40, 17) == (160.0, 80.0)  # moved in from the canvas's edge
    assert placer.place([0, 10], [0, 10], 40, 17) is None  # each place taken



def test_a_hundred_layer_transformer_fitted_whole_names_its_layers(qtbot):
    # fitted whole, each of the hundred layers was a box 7 pixels tall: only "TransformerEncoder" was drawn
    net = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), num_layers=100)
    view = recorded_model(lambda: net(engine.randn(1, 2, 8))).view()
    canvas = fitted(qtbot, view)
    shoot(canvas, "transformer_100_fitted.png")
    drawn = canvas.drawn_labels()
    layers = [int(t.split()[0].split(".")[1]) for t in drawn if t.startswith("layers.")]
    assert "TransformerEncoder" in drawn
    # as many as have room one above the other, from the first layers to the last
    assert len(layers) >= canvas.viewport().height() // (2 * ROW), drawn
    assert min(layers) <= 5 and max(layers) >= 94, layers
    rects = canvas.drawn_label_rects()
    assert_readable_apart(canvas, rects)
    for k in layers:  # each level with its own layer's nodes
        [rect] = [r for t, r in rects if t.startswith(f"layers.{k} ")]
        nodes = [canvas.node_screen_rect(key) for key in view.keys if key.startswith(f"TransformerEncoder.layers.{k}.")]
        assert min(n.top() for n in nodes) - ROW <= rect.center().y() <= max(n.bottom() for n in nodes) + ROW, k


def test_a_graph_as_wide_as_the_window_names_the_parts_side_by_side(qtbot):
    # sixteen heads side by side filled the window's width: beside each was the next one's nodes, and only the model's
    # title was drawn; above each, its name fits
    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
            self.heads = nn.ModuleList([nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU())
                                        for _ in range(16)])

        def forward(self, x):
            h = self.encoder(x)
            return engine.cat([head(h) for head in self.heads], 1).sum()

    net = Heads()
    view = recorded_model(lambda: net(engine.randn(2, 4)).backward()).view()
    canvas = fitted(qtbot, view, (800, 500))
    shoot(canvas, "heads_fitted.png")
    rects = canvas.drawn_label_rects()
    named = {int(t.split()[0].split(".")[1]): r for t, r in rects if t.startswith("heads.")}
    assert len(named) >= 8, [t for t, _ in rects]
    assert_readable_apart(canvas, rects)
    for k, rect in named.items():  # over its own head's nodes, not a neighbour's
        nodes = [canvas.node_screen_rect(key) for key in view.keys if key.startswith(f"Heads.heads.{k}.")]
        assert min(n.left() for n in nodes) <= rect.center().x() <= max(n.right() for n in nodes), k
        assert rect.bottom() <= min(n.top() for n in nodes), k
