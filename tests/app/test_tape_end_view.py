"""A tape opened at its end shows its last op readably: a deep model's whole graph fitted into the window was a
strip of specks; a small graph is still shown whole."""

from PySide6.QtCore import QRectF

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.app.test_window import TIMEOUT, make_window
from widgets.graph_canvas import LABEL_MIN_PX


def _tape(tmp_path, depth: int) -> str:
    path = tmp_path / f"deep{depth}.tape"
    layers = [m for _ in range(depth) for m in (nn.Linear(8, 8), nn.ReLU())]
    model = nn.Sequential(*layers, nn.Linear(8, 3))
    opt = engine.optim.SGD(model.parameters(), lr=0.01)
    with engine.record(path, "summary"):
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(engine.randn(4, 8)), engine.randint(0, 3, (4,))).backward()
            opt.step()
    return str(path)


def _node_px(window) -> float:
    canvas = window.canvas
    return canvas.nodes_item.typical_width * canvas.box.width() / canvas.box.viewRect().width()


def _opened(qtbot, window, tape: str):
    assert window.open_tape(tape)
    qtbot.waitUntil(lambda: window.session.status == "finished", timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.canvas.layout_data is not None and len(window.canvas.view) > 0, timeout=TIMEOUT)
    return window.canvas


def test_a_deep_tape_opens_on_its_last_op_readably(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.resize(1280, 720)
    canvas = _opened(qtbot, window, _tape(tmp_path, 40))
    qtbot.waitUntil(lambda: _node_px(window) >= LABEL_MIN_PX * 0.9, timeout=TIMEOUT)
    x, y, w, h = canvas.nodes_item.rects[canvas._node_of(window.session.model.current)].tolist()
    qtbot.waitUntil(lambda: canvas.box.viewRect().intersects(QRectF(x, y, w, h)), timeout=TIMEOUT)


def test_a_small_tape_opens_whole(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path)
    window.resize(1280, 720)
    canvas = _opened(qtbot, window, _tape(tmp_path, 2))
    qtbot.waitUntil(lambda: canvas.box.viewRect().contains(canvas.fit_rect()), timeout=TIMEOUT)
