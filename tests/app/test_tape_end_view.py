"""A tape opened at its end shows its last op readably: a deep model's whole graph fitted into the window was a
strip of specks; a small graph is still shown whole."""

from PySide6.QtCore import QRectF

import engine
import engine.nn as nn
import engine.nn.functional as F
from tests.app.test_window import TIMEOUT
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


def test_a_deep_tape_opens_on_its_last_op_readably(qtbot, make_window, tmp_path):
    window = make_window()
    window.resize(1280, 720)
    canvas = _opened(qtbot, window, _tape(tmp_path, 40))
    qtbot.waitUntil(lambda: _node_px(window) >= LABEL_MIN_PX * 0.9, timeout=TIMEOUT)
    x, y, w, h = canvas.nodes_item.rects[canvas._node_of(window.session.model.current)].tolist()
    qtbot.waitUntil(lambda: canvas.box.viewRect().intersects(QRectF(x, y, w, h)), timeout=TIMEOUT)


def test_a_small_tape_opens_whole(qtbot, make_window, tmp_path):
    window = make_window()
    window.resize(1280, 720)
    canvas = _opened(qtbot, window, _tape(tmp_path, 2))
    qtbot.waitUntil(lambda: canvas.box.viewRect().contains(canvas.fit_rect()), timeout=TIMEOUT)


def _failing_tape(tmp_path, error: str) -> str:
    path = tmp_path / "failed.tape"
    model = nn.Linear(8, 3)
    try:
        with engine.record(path, "summary"):
            out = model(engine.randn(4, 8))
            if error == "inplace":
                h = out.sigmoid()
                h += 1
                h.sum().backward()
            raise ValueError("the script's own error")
    except (ValueError, RuntimeError):
        pass
    return str(path)


def _rows(window) -> list[tuple[str, str, str]]:
    panel = window.alerts_panel
    return [tuple(panel.topLevelItem(i).text(c) for c in range(3)) for i in range(panel.topLevelItemCount())]


def test_a_tape_of_a_run_that_raised_lists_its_error_as_a_live_run_does(qtbot, make_window, tmp_path):
    window = make_window()
    _opened(qtbot, window, _failing_tape(tmp_path, "value"))
    ((iteration, kind, where),) = _rows(window)
    assert (iteration, kind) == ("0", "error") and where.startswith("test_tape_end_view.py:")
    assert "the script's own error" in window.alerts_panel.topLevelItem(0).toolTip(3)
    # an error the debugger explained is listed once, as its alert
    window = make_window()
    _opened(qtbot, window, _failing_tape(tmp_path, "inplace"))
    assert [kind for _, kind, _ in _rows(window)] == ["changed in place"]
