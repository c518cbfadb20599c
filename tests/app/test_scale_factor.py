"""The main window at a real scale factor: a 1920x1080 screen at QT_SCALE_FACTOR=2 (960x540 logical), in
a child process, since a scale factor is read once when Qt starts. Its docks fit the screen, and their
tabs, the module tree's classes and the status line read whole."""

import json
import os
import subprocess
import sys
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


def test_the_window_at_a_scale_factor_of_2_fits_and_reads(tmp_path):
    config = tmp_path / "screen.json"
    screen = {"name": "laptop", "x": 0, "y": 0, "width": 1920, "height": 1080, "logicalDpi": 96,
              "logicalBaseDpi": 96, "dpr": 1}
    config.write_text(json.dumps({"windowFrameMargins": False, "screens": [screen]}))
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}", QT_SCALE_FACTOR="2",
               PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "settings.ini")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the window never reported: {done.stdout[-1000:]} {done.stderr[-2000:]}"
    seen = json.loads(lines[-1])
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
