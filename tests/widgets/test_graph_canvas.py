"""The graph canvas, offscreen: what it draws, clicks, hover text, search, colours, export."""

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

import engine
from app.layout import layout_view
from engine import nn
from tests.app.graphs import mlp_graph_model, recorded_model
from tests.shots import shown
from widgets.graph_canvas import (
    BACKGROUND,
    ERROR,
    FAILED,
    FIT_NODE_PX,
    INF,
    INF_ONLY,
    INFINITE,
    NAN,
    NAN_INF,
    NONFINITE,
    READABLE_PX,
    GraphCanvas,
)
from widgets.theme import luminance


@pytest.fixture
def model():
    return mlp_graph_model()


@pytest.fixture
def canvas(qtbot, model):
    c = shown(qtbot, GraphCanvas(), 900, 700)
    view = model.view()
    c.set_graph(view, layout_view(view))
    c.fit()
    return c


def pixel_at(canvas, key) -> QColor:
    return canvas.render_image(1.0).pixelColor(canvas.view_point(key))


def not_background(image: QImage) -> int:
    """How many sampled pixels differ from the background."""
    bg = QColor(BACKGROUND)
    return sum(image.pixelColor(x, y) != bg for x in range(0, image.width(), 7)
               for y in range(0, image.height(), 7))


def test_draws_every_node_and_shows_labels_when_zoomed_in(canvas, model):
    assert canvas.drawn_node_count == len(model.view()) == 10
    canvas.zoom_to_node("Sequential.1/relu:0")
    assert "relu" in canvas.visible_labels()
    assert "5\u00d78" in canvas.visible_labels()


def test_clicking_a_node_emits_its_key_and_selects_it(qtbot, canvas):
    relu = canvas.view_point("Sequential.1/relu:0")
    with qtbot.waitSignal(canvas.nodeClicked) as signal:
        qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=relu)
    assert signal.args == ["Sequential.1/relu:0"]
    assert canvas.selected_key == "Sequential.1/relu:0"


def test_clicking_empty_space_selects_nothing(qtbot, canvas):
    with qtbot.assertNotEmitted(canvas.nodeClicked):
        qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(3, 3))
    assert canvas.selected_key is None


def test_double_clicking_a_collapsed_module_asks_to_expand_it(qtbot, canvas, model):
    model.collapse("Sequential.0")
    view = model.view()
    canvas.set_graph(view, layout_view(view))
    canvas.fit()
    with qtbot.waitSignal(canvas.groupToggleRequested) as signal:
        qtbot.mouseDClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=canvas.view_point("Sequential.0"))
    assert signal.args == ["Sequential.0"]


def test_hovering_a_node_shows_op_shapes_and_module(qtbot, canvas):
    qtbot.mouseMove(canvas.viewport(), canvas.view_point("Sequential.2/linear:0"))
    qtbot.waitUntil(lambda: canvas.toolTip() != "")
    text = canvas.toolTip()
    assert "linear" in text and "5\u00d78, 3\u00d78, 3" in text and "5\u00d73" in text
    assert "module: Sequential.2" in text


def test_search_selects_and_centres_the_match(canvas):
    assert canvas.search("RELU") == "Sequential.1/relu:0"
    assert canvas.selected_key == "Sequential.1/relu:0"
    centre = canvas.view_point("Sequential.1/relu:0")
    size = canvas.viewport().size()
    assert abs(centre.x() - size.width() / 2) < 2 and abs(centre.y() - size.height() / 2) < 2
    assert canvas.search("linear") == "Sequential.0/linear:0"
    assert canvas.search("linear") == "Sequential.2/linear:0"  # again: the next match
    assert canvas.search("no such op") is None


def test_nan_nodes_turn_red_and_metrics_get_a_legend(canvas, model):
    view = model.view()
    values = np.linspace(0.1, 10.0, len(view))
    bad = np.array([k == "Sequential.1/relu:0" for k in view.keys])
    canvas.set_node_values(values, bad, "grad norm")
    assert pixel_at(canvas, "Sequential.1/relu:0") == QColor(NONFINITE[0])
    assert canvas.legend_text() == "grad norm"
    ok = pixel_at(canvas, "Sequential.2/linear:0")
    assert ok != QColor(NONFINITE[0]) and ok != QColor(BACKGROUND)


@pytest.mark.parametrize("metric", [False, True])
def test_nodes_holding_only_infinities_are_amber_and_nan_nodes_red(qtbot, canvas, model, metric):
    # an additive attention mask holds -inf by design: drawn in the NaN red, a healthy model looked broken
    view = model.view()
    nan, inf = view.keys.index("Sequential.1/relu:0"), view.keys.index("Sequential.2/linear:0")
    level = np.zeros(len(view), np.int8)
    level[nan], level[inf] = NAN, INF_ONLY
    values = np.linspace(0.1, 10.0, len(view)) if metric else None
    canvas.set_node_values(values, level, "grad norm", {inf: "\u00b1Inf in its output, no NaN"})
    assert pixel_at(canvas, "Sequential.1/relu:0") == QColor(NONFINITE[0])
    assert pixel_at(canvas, "Sequential.2/linear:0") == QColor(INFINITE[0])
    assert QColor(INFINITE[0]) != QColor(NONFINITE[0])
    # lighter than the red by far: told apart by lightness too, without telling red from orange
    assert luminance(QColor(INFINITE[0])) > 2 * luminance(QColor(NONFINITE[0]))
    qtbot.mouseMove(canvas.viewport(), canvas.view_point("Sequential.2/linear:0"))
    qtbot.waitUntil(lambda: "\u00b1Inf in its output, no NaN" in canvas.toolTip())
    assert "module: Sequential.2" in canvas.toolTip()


def test_an_amber_node_keeps_dark_readable_labels(canvas, model):
    key = "Sequential.1/relu:0"
    view = model.view()
    canvas.set_node_values(None, np.array([INF_ONLY if k == key else 0 for k in view.keys]))
    canvas.zoom_to_node(key)
    image = canvas.render_image(1.0)
    p = canvas.view_point(key)
    dark = sum(image.pixelColor(x, y).lightnessF() < 0.3 for x in range(p.x() - 20, p.x() + 20)
               for y in range(p.y() - 12, p.y() + 12))
    assert dark > 20


def test_the_legend_keys_nan_and_infinity_apart(canvas, model):
    view = model.view()
    level = np.zeros(len(view), np.int8)
    level[view.keys.index("Sequential.2/linear:0")] = INF_ONLY
    canvas.set_node_values(None, level)  # by op family: a key to the flags it shows, and only those
    assert canvas.legend.isVisible() and canvas.legend_text() == ""
    image = canvas.render_image(1.0)
    legend = canvas.mapFromScene(canvas.legend.mapToScene(QRectF(0, 0, 40, 20).center()))
    assert sum(image.pixelColor(x, y) == QColor(INFINITE[0]) for x in range(legend.x() - 20, legend.x() + 20)
               for y in range(legend.y() - 10, legend.y() + 10)) > 20
    canvas.set_node_values(None)
    assert not canvas.legend.isVisible()


def test_current_op_is_outlined(canvas):
    key = "Sequential.2/linear:0"
    p = canvas.view_point(key)
    before = canvas.render_image(1.0)
    canvas.set_current(key)
    after = canvas.render_image(1.0)
    changed = [(x, y) for x in range(p.x() - 90, p.x() + 90, 2) for y in range(p.y() - 40, p.y() + 40, 2)
               if before.pixelColor(x, y) != after.pixelColor(x, y)]
    assert len(changed) > 20


def test_backward_overlay_toggles(canvas):
    before = not_background(canvas.render_image(1.0))
    canvas.set_backward_visible(True)
    assert canvas.backward_visible
    assert not_background(canvas.render_image(1.0)) > before
    canvas.set_backward_visible(False)
    assert not_background(canvas.render_image(1.0)) == before


def test_png_and_svg_exports_hold_the_picture(canvas, tmp_path):
    png, svg = tmp_path / "graph.png", tmp_path / "graph.svg"
    canvas.export_png(str(png), scale=1.0)
    canvas.export_svg(str(svg))
    image = QImage(str(png))
    assert image.width() == canvas.viewport().width()
    assert not_background(image) > 100
    renderer = QSvgRenderer(str(svg))
    assert renderer.isValid()
    drawn = QImage(image.size(), QImage.Format.Format_ARGB32)
    drawn.fill(QColor(BACKGROUND))
    painter = QPainter(drawn)
    renderer.render(painter, QRectF(drawn.rect()))
    painter.end()
    assert not_background(drawn) > 100


def test_a_box_inside_a_repeated_call_is_titled_by_its_own_name(qtbot):
    # "Sequential#1" holds "Sequential.0#1", which was titled in full where the first call's child reads "0"
    net = nn.Sequential(nn.Sequential(nn.Linear(3, 3), nn.Tanh()), nn.Linear(3, 2))

    def twice():
        with engine.no_grad():
            net(engine.randn(2, 3))
            net(engine.randn(2, 3))

    view = recorded_model(twice).view()
    c = GraphCanvas()
    qtbot.addWidget(c)
    c.resize(900, 700)
    c.show()
    c.set_graph(view, layout_view(view))
    c.fit()
    c.zoom_to_node("Sequential.0.0/linear:0#1")  # the inner Linear of the second call
    titles = [t for t in c.visible_labels() if "\u00b7" in t]
    assert "0#1  \u00b7  Sequential" in titles and "0#1  \u00b7  Linear" in titles, titles


def test_a_nan_node_is_labelled_in_white_to_read_on_its_red(canvas, model):
    key = "Sequential.1/relu:0"
    view = model.view()
    canvas.set_node_values(None, np.array([k == key for k in view.keys]))
    canvas.zoom_to_node(key)
    image = canvas.render_image(1.0)
    p = canvas.view_point(key)
    i = view.keys.index(key)
    half_w, half_h = (canvas.layout_data.size[i] / 2 * canvas.box.width() / canvas.box.viewRect().width()).astype(int)
    # the middle of the box, away from its ports: only the red fill and the label's text
    light = sum(image.pixelColor(x, y).lightnessF() > 0.9 for x in range(p.x() - half_w + 6, p.x() + half_w - 6)
                for y in range(p.y() - half_h + 6, p.y() + half_h - 6))
    assert light > 20


def test_long_parameter_names_show_their_ends(qtbot):
    from app.layout import plain_graph
    graph = plain_graph(3, [(0, 2), (1, 2)], kind=np.array([1, 1, 0], np.int8))
    graph.label = ["encoder.layers.0.self_attn.out_proj.weight", "encoder.layers.0.self_attn.out_proj.bias",
                   "linear"]
    c = shown(qtbot, GraphCanvas(), 900, 700)
    c.set_graph(graph, layout_view(graph))
    c.box.setRange(QRectF(0, 0, c.box.width(), c.box.height()), padding=0)  # one unit a pixel: the two
    image = c.render_image(1.0)  # boxes lie alike on the pixel grid, so only their texts tell them apart

    def box(key):
        p = c.view_point(key)
        return image.copy(p.x() - 40, p.y() - 10, 80, 20)

    # elided at their ends both would read "encoder.l…": the weight and the bias would look alike
    assert box("0") != box("1")


def test_the_engines_newer_ops_take_their_familys_colour():
    from widgets.graph_canvas import OP, family_index

    for op, like in (("conv3d", "conv2d"), ("conv_transpose1d", "linear"), ("grid_sampler_2d", "linear"),
                     ("hardswish", "relu"), ("selu", "relu"), ("alpha_dropout", "dropout"), ("cumprod", "cumsum"),
                     ("median", "sum"), ("ctc_loss", "cross_entropy"), ("huber_loss", "mse_loss"),
                     ("svd", "matmul"), ("lu_factor", "mm"), ("flip", "reshape"), ("diag_embed", "reshape")):
        assert family_index(op, OP) == family_index(like, OP), op


def test_following_into_a_big_graph_never_shown_before_zooms_from_the_whole_graph(qtbot):
    # a big graph's first layout arrived only after the stop: following the op started from the view box's
    # initial range (a unit or two across), and "panned" there to a node blown up past the window
    deep = nn.Sequential(*[m for _ in range(60) for m in (nn.Linear(3, 3), nn.Tanh())])

    def forward():
        with engine.no_grad():
            deep(engine.randn(2, 3))

    view = recorded_model(forward).view()
    c = shown(qtbot, GraphCanvas(), 900, 600)
    c.set_graph(view, layout_view(view))  # never fitted, never moved
    key = "Sequential.1/tanh:0"
    c.follow(key, zoom=True, fit=True)
    qtbot.waitUntil(lambda: c.settled)
    box = c.node_screen_rect(key)
    assert QRectF(c.viewport().rect()).contains(box), box
    assert 60 <= box.width() <= 400 and c.label_px(key) >= READABLE_PX


def test_a_graph_of_two_nodes_fits_at_a_readable_size_not_blown_up(qtbot):
    # a tape ending on `w.t().flatten()` filled the window with two boxes 400 pixels wide
    w = engine.ones(1, 3, requires_grad=True)
    model = recorded_model(lambda: w.flatten())
    c = shown(qtbot, GraphCanvas(), 900, 700)
    view = model.view()
    c.set_graph(view, layout_view(view))
    c.fit()
    scale = c.box.width() / c.box.viewRect().width()
    assert scale * c.nodes_item.typical_width <= FIT_NODE_PX * 1.05
    assert "flatten" in c.visible_labels()  # and still readable


def deep_chain_view():
    net = nn.Sequential(*[layer for _ in range(6) for layer in (nn.Linear(8, 8), nn.ReLU())])
    view = recorded_model(lambda: net(engine.randn(2, 8)).sum().backward()).view()
    return view, layout_view(view)


def test_a_deep_graph_in_a_small_canvas_fits_its_width_with_labels_that_read(qtbot):
    # fitted whole into 307x280 (a 1024x640 window with the model builder open), a chain of layers was boxes
    # 28 pixels wide without a label, in a sixth of the canvas's width
    c = shown(qtbot, GraphCanvas(), 307, 280)
    view, layout = deep_chain_view()
    c.set_graph(view, layout)
    c.fit(readable=True)  # as the graph is shown by itself (the person's Fit shows it whole)
    rect = c.box.viewRect()
    x0, y0, x1, y1 = layout.bounds
    assert rect.left() <= x0 and x1 <= rect.right()  # every column of the graph in view
    assert (y1 - y0) > rect.height()  # its length scrolls
    qtbot.waitUntil(lambda: "linear" in c.visible_labels())
    c.fit()  # the person's Fit: the whole graph, as asked
    rect = c.box.viewRect()
    assert rect.top() <= y0 and y1 <= rect.bottom()


def test_a_fitted_graph_is_fitted_again_when_the_canvas_changes_size(qtbot):
    # fitted in a small canvas (the model builder open), the graph kept that view when the builder closed
    c = shown(qtbot, GraphCanvas(), 307, 280)
    view, layout = deep_chain_view()
    c.set_graph(view, layout)
    c.fit(readable=True)  # as the graph is shown by itself (the person's Fit shows it whole)
    x0, y0, x1, y1 = layout.bounds
    assert c.box.viewRect().height() < y1 - y0  # its width, around the current node
    c.resize(700, 1100)

    def whole():
        rect = c.box.viewRect()
        assert rect.top() <= y0 and y1 <= rect.bottom() and rect.left() <= x0 and x1 <= rect.right()

    qtbot.waitUntil(whole)
    c.zoom_to_node(view.keys[3])  # moved by hand (or by a stop): a resize keeps that view
    zoomed = c.box.width() / c.box.viewRect().width()
    c.resize(600, 900)
    qtbot.wait(50)
    assert c.box.width() / c.box.viewRect().width() == pytest.approx(zoomed, rel=0.35)


def test_a_straight_chain_draws_its_edges_not_only_their_ports(qtbot):
    # x -> mul -> sum lies on one vertical line: its edges' bounding box had no width and was never painted
    def run():
        x = engine.randn(3, requires_grad=True)
        (x * 2).sum().backward()

    view = recorded_model(run).view()
    c = shown(qtbot, GraphCanvas(), 600, 500)
    layout = layout_view(view)
    c.set_graph(view, layout)
    c.fit()
    image = c.render_image(1.0)
    for a, b in view.edges.tolist():
        top, bottom = c.view_point(view.keys[a]), c.view_point(view.keys[b])
        half = (bottom.y() - top.y()) // 4  # a quarter of the way between the centres: past the box, not a port
        mid_y = (top.y() + bottom.y()) // 2
        column = [image.pixelColor(x, y) for x in range(top.x() - 2, top.x() + 3)
                  for y in range(mid_y - half // 3, mid_y + half // 3)]
        assert any(colour != QColor(BACKGROUND) for colour in column), (view.keys[a], view.keys[b])


@pytest.mark.parametrize(("levels", "keys"), [
    ((NAN,), ["NaN"]),
    ((INF,), ["\u00b1Inf (alert)"]),  # the tester's '0 NaN, 1 Inf' node read "NaN"
    ((NAN, INF), ["NaN/Inf"]),
    ((NAN_INF,), ["NaN/Inf"]),
    ((ERROR,), ["error (op raised)"]),  # and so did a ShapeError's node
    ((INF_ONLY, ERROR), ["\u00b1Inf only", "error (op raised)"]),
])
def test_the_legend_names_each_state_as_what_it_is(canvas, model, levels, keys):
    view = model.view()
    level = np.zeros(len(view), np.int8)
    for j, v in enumerate(levels):
        level[j + 1] = v
    canvas.set_node_values(None, level)
    assert canvas.legend_keys() == keys
    canvas.set_node_values(np.linspace(0.1, 10.0, len(view)), level, "grad norm")  # a metric's key: named alike
    red = [k for k in keys if k in ("NaN", "\u00b1Inf (alert)", "NaN/Inf")] or ["NaN"]
    assert canvas.legend_keys()[0] == red[0] and ("error (op raised)" in keys) == (ERROR in levels)


def test_a_failed_op_has_a_colour_of_its_own(canvas, model):
    view = model.view()
    level = np.array([ERROR if k == "Sequential.1/relu:0" else 0 for k in view.keys], np.int8)
    canvas.set_node_values(None, level)
    assert pixel_at(canvas, "Sequential.1/relu:0") == QColor(FAILED[0]) != QColor(NONFINITE[0])


class _Cnn(nn.Module):
    """The tester's cnn.py: two conv blocks with BatchNorm and max pooling, then a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(self.block2(self.block1(x)).flatten(1))


def test_a_graph_fitted_by_itself_shows_every_name_whole(qtbot):
    # cnn7.png: "consta…", "batch_no…", "max_poo…", "cross_en…" in a CNN fitted to a 780x430 canvas
    net = _Cnn()
    model = recorded_model(lambda: nn.functional.cross_entropy(net(engine.randn(4, 1, 16, 16)),
                                                               engine.tensor([0, 1, 2, 3])).backward())
    model.collapse("_Cnn.block1")
    view = model.view()
    c = shown(qtbot, GraphCanvas(), 780, 430)
    c.set_graph(view, layout_view(view))
    seen: set[str] = set()
    for key in ("_Cnn.block2.1/batch_norm:0", "cross_entropy:0", "_Cnn.block2.3/max_pool2d:0"):
        c.set_current(key)
        c.fit(readable=True)
        drawn = c.drawn_labels()
        assert drawn and not [text for text in drawn if "\u2026" in text], drawn
        seen.update(drawn)
    assert {"running_mean", "running_var", "batch_norm", "max_pool2d", "cross_entropy"} <= seen
