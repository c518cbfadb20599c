"""The main window at a real scale factor: a 1920x1080 screen at QT_SCALE_FACTOR=2 (960x540 logical), in
a child process, since a scale factor is read once when Qt starts. Its docks fit the screen, and their
tabs, the module tree's classes and the status line read whole. At 1.5 (1280x720 logical) a transformer's
panels read: its modules' names and classes, a log line, the timeline's legend, every statistic."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r'''
import json, sys
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QTabBar
from app.window import MainWindow

app = QApplication([])
window = MainWindow(QSettings(sys.argv[1], QSettings.Format.IniFormat))
window.show()
window.open_demo(epochs=1, n=128)
steps = [0]


def report():
    screen = app.primaryScreen()
    rect = window.rect()
    docks = {d.objectName(): [d.x(), d.y(), d.width(), d.height()] for d in window.findChildren(QDockWidget)
             if d.isVisible() and not d.isFloating() and rect.intersects(d.geometry())}
    tabs = []
    for bar in window.findChildren(QTabBar):
        if bar.isVisible():
            for i in range(bar.count()):
                text = bar.tabText(i)
                tabs.append([text, bar.tabRect(i).width(), bar.fontMetrics().horizontalAdvance(text)])
    tree = window.module_tree
    classes = []
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        right = tree.header().sectionPosition(1) + tree.fontMetrics().horizontalAdvance(item.text(1))
        classes.append([item.text(1), right, tree.viewport().width()])
    status = [[label.text(), label.width(), label.fontMetrics().horizontalAdvance(label.text())]
              for label in window.status_panel.findChildren(QLabel) if label.isVisible() and label.text()
              and not label.wordWrap()]
    print(json.dumps({"dpr": app.devicePixelRatio(), "screen": list(screen.availableGeometry().getRect()),
                      "window": list(window.frameGeometry().getRect()), "inside": list(rect.getRect()),
                      "docks": docks, "tabs": tabs, "classes": classes, "status": status}))
    app.quit()


def step():
    if window.module_tree.topLevelItemCount() and window.canvas.settled:
        QTimer.singleShot(200, report)  # a frame for the left column to take the tree's width
        return
    if steps[0] < 40 and window.status_panel.state.text().startswith("Paused"):
        steps[0] += 1
        window.command("step_over")
    QTimer.singleShot(50, step)


QTimer.singleShot(0, step)
QTimer.singleShot(60_000, app.quit)
app.exec()
'''


def reported(tmp_path, child: str, scale: str, *args: str) -> dict:
    """What `child` prints (a line of JSON) of the window it makes on a 1920x1080 screen at a scale factor of `scale`,
    given the settings file and `args`."""
    config = tmp_path / "screen.json"
    screen = {"name": "laptop", "x": 0, "y": 0, "width": 1920, "height": 1080, "logicalDpi": 96,
              "logicalBaseDpi": 96, "dpr": 1}
    config.write_text(json.dumps({"windowFrameMargins": False, "screens": [screen]}))
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}", QT_SCALE_FACTOR=scale,
               PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", child, str(tmp_path / "settings.ini"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the window never reported: {done.stdout[-1000:]} {done.stderr[-2000:]}"
    return json.loads(lines[-1])


def test_the_window_at_a_scale_factor_of_2_fits_and_reads(tmp_path):
    seen = reported(tmp_path, CHILD, "2")
    assert seen["dpr"] == 2.0
    sx, sy, sw, sh = seen["screen"]
    assert (sw, sh) == (960, 540)
    x, y, w, h = seen["window"]
    assert sx <= x and sy <= y and x + w <= sx + sw and y + h <= sy + sh, seen["window"]  # on the screen whole
    _, _, iw, ih = seen["inside"]
    for name in ("modules", "inspector", "alerts", "source", "loss", "timeline"):
        assert name in seen["docks"], f"{name} is not shown: {sorted(seen['docks'])}"
    for name, (dx, dy, dw, dh) in seen["docks"].items():
        assert dx >= 0 and dy >= 0 and dx + dw <= iw and dy + dh <= ih, (name, seen["docks"][name])
        assert dw >= 100 and dh >= 60, (name, dw, dh)
    for text, width, needs in seen["tabs"]:
        assert width >= needs + 8, f"the tab {text!r} is cut ({width} px for {needs})"
    assert seen["classes"], "the module tree stayed empty"
    for text, right, room in seen["classes"]:
        assert right <= room, f"the module tree's class {text!r} is cut ({right} px in {room})"
    for text, width, needs in seen["status"]:
        assert width >= needs, f"the status line's {text!r} is cut ({width} px for {needs})"


READ_AT_1_5 = r'''
import json, sys
from PySide6.QtCore import QSettings, QTimer, Qt
from PySide6.QtWidgets import QApplication, QLabel
from app.window import MainWindow
from widgets.module_tree import CLASS_CHARS

app = QApplication([])
window = MainWindow(QSettings(sys.argv[1], QSettings.Format.IniFormat))
window.show()
window.run_script(sys.argv[2])
seen, state, usual = {}, {"resumed": False}, app.font()


def columns(view):
    return view.viewport().width() // view.fontMetrics().horizontalAdvance("x")


def legend_words():
    t = window.timeline
    shown = [label.text() for label in t.findChildren(QLabel) if label.isVisible() and label is not t.where]
    return shown[0].replace("<br>", " ") if shown else ""


def rows_cut():
    table = window.inspector.stats
    return [table.verticalHeaderItem(r).text() for r in range(table.rowCount())
            if table.rowViewportPosition(r) + table.rowHeight(r) > table.viewport().height()]


def read():
    tree = window.module_tree
    cut = []
    for item in tree.findItems("", Qt.MatchFlag.MatchContains | Qt.MatchFlag.MatchRecursive):
        for column in (0, 1):
            index = tree.indexFromItem(item, column)
            if tree.sizeHintForIndex(index).width() > tree.visualRect(index).width() and (
                    column == 0 or len(item.text(1)) <= CLASS_CHARS):
                cut.append(item.text(column))
    seen.update(dpr=app.devicePixelRatio(), window=list(window.size().toTuple()), tree_cut=cut,
                output=columns(window.output), source=columns(window.source_view.text), legend=legend_words(),
                rows_cut=rows_cut())
    font = app.font()
    font.setPointSizeF(11)  # a desktop's larger font
    app.setFont(font)
    QTimer.singleShot(200, larger_font)


def larger_font():
    seen["rows_cut_11pt"] = rows_cut()
    seen["row_11pt"] = window.inspector.stats.rowHeight(0)
    app.setFont(usual)
    window.builder.open()  # beside the Model Builder the timeline is narrower
    QTimer.singleShot(300, builder_open)


def builder_open():
    seen["legend_beside_builder"] = legend_words()
    print(json.dumps(seen))
    app.quit()


def step():
    status = window.status_panel.state.text()
    if status.startswith("Paused") and not state["resumed"]:
        state["resumed"] = True
        window.command("resume")
    if status.startswith("Finished") and window.module_tree.topLevelItemCount():
        window.canvas.select(next(k for k in window.session.summaries if "linear" in k))
        QTimer.singleShot(300, read)
        return
    QTimer.singleShot(50, step)


QTimer.singleShot(0, step)
QTimer.singleShot(90_000, app.quit)
app.exec()
'''


def test_at_a_scale_factor_of_1_5_a_transformers_panels_read(tmp_path):
    # a 1920x1080 screen at 1.5 (1280x720 logical): the tree's classes were cut beside an empty names' column, the
    # output showed 31 characters, the timeline's legend was bare swatches beside the Model Builder, and with an
    # 11-point font the statistics table's last row lay under its edge
    from tests.app.test_small_screens import TRANSFORMER

    lm = tmp_path / "lm.py"
    lm.write_text(textwrap.dedent(TRANSFORMER))
    seen = reported(tmp_path, READ_AT_1_5, "1.5", str(lm))
    assert seen["dpr"] == 1.5 and seen["window"] == [1280, 720]
    assert seen["tree_cut"] == []
    assert seen["output"] >= 44 and seen["source"] >= 44, seen
    assert seen["rows_cut"] == [] and seen["rows_cut_11pt"] == [] and seen["row_11pt"] > 19, seen
    for words in (seen["legend"], seen["legend_beside_builder"]):
        assert all(name in words for name in ("forward", "backward", "optimizer", "breakpoint", "alert", "edit")), words
