"""No dock group's tab bar floats where the group is not: Qt left the first tab bars of the tabbed groups shown
where they were laid out before the window took its size, and one ("Alerts | Breakpoints") was drawn over the
Output panel once that repainted. Run in a fresh process, as the app starts: the test process's Qt state (an
application made and used before) lays the docks out before the first show and hides the effect."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys, time
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication, QTabBar
    from app.window import MainWindow
    app = QApplication(sys.argv[:1])
    window = MainWindow(QSettings(sys.argv[1], QSettings.Format.IniFormat))
    window.resize(1200, 800)
    window.show()
    window.resize(1280, 720)
    end = time.time() + 2
    while time.time() < end:
        app.processEvents()
        time.sleep(0.01)
    titles = {dock.windowTitle(): dock for dock in window.docks.values()}
    for bar in window.findChildren(QTabBar, options=Qt.FindChildOption.FindDirectChildrenOnly):
        if bar.isVisible() and bar.count():
            tabs = [bar.tabText(i) for i in range(bar.count())]
            docks = [titles[t] for t in tabs if t in titles]
            at = bar.geometry()
            placed = any(d.isVisible() and abs(d.geometry().bottom() + 1 - at.top()) <= 3 for d in docks)
            print("|".join(tabs), "placed" if placed else "MISPLACED")
""")


def test_every_shown_tab_bar_of_the_window_lies_under_its_own_docks(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "settings.ini")], cwd=root, env=env,
                         capture_output=True, text=True, timeout=60).stdout.split("\n")
    bars = [line for line in out if line.endswith(("placed", "MISPLACED"))]
    assert "Alerts|Breakpoints placed" in bars and "Loss|Training|Gradient Flow placed" in bars
    assert not [line for line in bars if line.endswith("MISPLACED")]
