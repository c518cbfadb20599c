"""A 1024x640 window debugging a script whose modules have long names, offscreen: once the module tree widens the
left column, the loss group's tabs still read whole, and the Editor in front fits its column without scrolling."""

from PySide6.QtWidgets import QTabBar

from tests.app.test_hidpi_layout import tab_bar
from tests.app.test_window import TIMEOUT, paused, script
from tests.shots import shoot

LONG_NAMES = """
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    engine.manual_seed(0)
    x, y = engine.randn(32, 2), engine.randint(0, 2, (32,))


    class SpiralClassifierWithResidualBlocks(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_projection = nn.Linear(2, 32)
            self.residual_block_layers = nn.ModuleList(
                [nn.Sequential(nn.Linear(32, 32), nn.LayerNorm(32), nn.Tanh()) for _ in range(2)])
            self.classification_head = nn.Linear(32, 2)

        def forward(self, x):
            h = self.input_projection(x)
            for block in self.residual_block_layers:
                h = h + block(h)
            return self.classification_head(h)


    model = SpiralClassifierWithResidualBlocks()
    opt = engine.optim.Adam(model.parameters(), lr=0.01)
    for step in range(3):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


def tabs_whole(bar: QTabBar) -> None:
    """Each tab of `bar` at least as wide as the same tab in a bar with all the room it asks for (Qt elides a
    tab's title from there: "Lo… | Train… | Gradient F…" passed a check of its text's width plus 8 pixels)."""
    probe = QTabBar()
    probe.setFont(bar.font())
    probe.setExpanding(False)
    for i in range(bar.count()):
        probe.addTab(bar.tabText(i))
    probe.adjustSize()
    for i in range(bar.count()):
        assert bar.tabRect(i).width() >= probe.tabRect(i).width(), (bar.tabText(i), bar.tabRect(i).width())


def test_a_1024x640_window_keeps_the_loss_tabs_and_the_editor_whole_once_the_modules_arrive(qtbot, make_window,
                                                                                           tmp_path):
    window = make_window((1024, 640))
    window.run_script(script(tmp_path, "long_names.py", LONG_NAMES))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("run_to_phase")  # through the first forward pass: the module tree fills and widens its column
    editor = window.module_editor
    qtbot.waitUntil(lambda: editor.tree.topLevelItemCount() > 0, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.docks["modules"].width() > 200, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: tabs_whole(tab_bar(window, "Gradient Flow")) is None, timeout=TIMEOUT)
    window.docks["editor"].raise_()
    tree = editor.tree
    qtbot.waitUntil(lambda: tree.isVisible() and tree.header().length() <= tree.viewport().width(), timeout=TIMEOUT)
    assert tree.horizontalScrollBar().maximum() == 0
    qtbot.waitUntil(lambda: tabs_whole(tab_bar(window, "Gradient Flow")) is None, timeout=TIMEOUT)
    shoot(window, "session_1024x640_editor.png")
