"""The default layout at 1280x720 with a transformer's module tree: no panel's text is cut (a tester saw the
source panel show 15 characters a line, the timeline's legend bare colour squares, the alerts' empty text and
the histogram's axis name cut mid-word), and a narrow row's output tab comes forward when the run prints."""

from app.window import SOURCE_COLUMNS
from tests.app.test_window import TIMEOUT, paused, script
from tests.shots import shoot

TRANSFORMER = """
    import engine
    import engine.nn as nn
    import engine.nn.functional as F

    engine.manual_seed(0)
    V, D, T = 20, 16, 6
    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, D)
            layer = nn.TransformerEncoderLayer(D, 2, 32, dropout=0.0, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 2)
            self.out = nn.Linear(D, V)
        def forward(self, x):
            return self.out(self.enc(self.emb(x)))
    model = LM()
    opt = engine.optim.Adam(model.parameters(), lr=1e-3)
    data = engine.randint(0, V, (4, T + 1))
    for it in range(2):
        opt.zero_grad()
        loss = F.cross_entropy(model(data[:, :-1]).reshape(-1, V), data[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        print("epoch", it, "| loss", round(loss.item(), 4), "| acc 0.91 | lr 0.001")
"""


def columns(view) -> int:
    """How many characters of its font a text view shows side by side."""
    return view.viewport().width() // view.fontMetrics().horizontalAdvance("x")


def test_at_1280x720_a_transformers_session_reads_in_every_panel(qtbot, make_window, tmp_path):
    window = make_window((1280, 720))
    window.run_script(script(tmp_path, "lm.py", TRANSFORMER))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    window.command("resume")
    qtbot.waitUntil(lambda: window.status_panel.state.text().startswith("Finished"), timeout=60_000)
    qtbot.waitUntil(lambda: window.module_tree.topLevelItemCount() > 0, timeout=TIMEOUT)
    d = window.docks

    def source_and_output_read():
        # a line of code and a training log's line, side by side
        assert d["output"] not in window.tabifiedDockWidgets(d["source"])
        assert columns(window.source_view.text) >= 40, columns(window.source_view.text)
        # the output as many characters as the source: Gradient Flow's names (a transformer's) gave way (the output had
        # 31, a log line cut at "acc 0.91 |"), keeping their layer indices
        assert columns(window.output) >= SOURCE_COLUMNS, columns(window.output)

    qtbot.waitUntil(source_and_output_read, timeout=TIMEOUT)
    for name in ("plots", "gradients"):  # a click on Training measured the row without the loss tab behind it, and
        d[name].raise_()  # put the output behind the source
        qtbot.waitUntil(lambda name=name: not d[name].visibleRegion().isEmpty(), timeout=TIMEOUT)
        window.fit_bottom_row()  # (what a tab coming forward asks for)
        source_and_output_read()
    d["loss"].raise_()
    timeline = window.timeline
    assert timeline.legend.isVisible(), "the timeline's legend lost its names"
    legend = timeline.legend
    assert legend.geometry().right() <= timeline.width() and legend.width() >= legend.sizeHint().width()
    d["alerts"].raise_()
    empty = window.alerts_panel.empty
    qtbot.waitUntil(lambda: empty.isVisible(), timeout=TIMEOUT)
    assert empty.heightForWidth(empty.width()) <= empty.height(), (empty.text(), empty.size())  # it was cut
    assert window.alerts_panel.empty_text().startswith("No alerts.\nWatched for: NaN and Inf")
    shoot(window, "small_screen_1280.png")


def test_a_short_histograms_count_axis_names_only_what_fits(qtbot):
    import numpy as np
    from PySide6.QtGui import QFont, QFontMetrics

    from engine.debug.summary import summarize
    from tests.shots import shown
    from widgets.histogram import HistogramView

    view = shown(qtbot, HistogramView("value"), 200, 220)
    view.show_summary(summarize(np.random.default_rng(0).standard_normal(200_000).astype(np.float32)))
    axis = view.getAxis("left")
    font = QFont(view.font())
    font.setPointSizeF(8)
    qtbot.waitUntil(lambda: view.count_label() == "count (sampled)", timeout=TIMEOUT)
    for height, name in ((120, "count"), (60, "")):  # at 120 pixels "count (sampled)" read "ount (sampl"
        view.resize(200, height)
        qtbot.waitUntil(lambda name=name: view.count_label() == name, timeout=TIMEOUT)
        assert QFontMetrics(font).horizontalAdvance(view.count_label()) <= axis.height()
    assert axis.toolTip() == "count (sampled)"


def test_a_narrow_rows_output_tab_comes_forward_while_the_run_prints(qtbot, make_window, tmp_path):
    window = make_window((960, 540))
    d = window.docks
    qtbot.waitUntil(lambda: d["output"] in window.tabifiedDockWidgets(d["source"]), timeout=TIMEOUT)
    # a run long enough to print while it runs (a short one's lines can come with its end, as the source returns)
    window.run_script(script(tmp_path, "lm.py", TRANSFORMER.replace("range(2)", "range(40)")))
    qtbot.waitUntil(lambda: paused(window), timeout=TIMEOUT)
    assert not d["source"].visibleRegion().isEmpty()
    window.command("resume")
    qtbot.waitUntil(lambda: window.status_panel.state.text().startswith("Finished"), timeout=60_000)
    qtbot.waitUntil(lambda: not d["output"].visibleRegion().isEmpty(), timeout=TIMEOUT)
    assert "epoch 1" in window.output.toPlainText()


def test_a_narrow_statistic_keeps_its_digits_before_its_exponents_zero(qtbot):
    # at a scale factor of 1.5 a gradient's mean read "-7.8e-09" in a column that had room for "-7.81e-9"
    import numpy as np
    from PySide6.QtWidgets import QLabel

    from engine.debug.summary import summarize
    from widgets.tensor_inspector import STATS, _stat_shorts

    metrics = QLabel().fontMetrics()
    summary = summarize(np.full(4, -7.81267e-09, np.float32))
    shorts = _stat_shorts(summary)[STATS.index("mean")]
    room = metrics.horizontalAdvance("-7.8e-09")
    assert next(t for t in shorts if metrics.horizontalAdvance(t) <= room) == "-7.81e-9", shorts
