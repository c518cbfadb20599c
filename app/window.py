"""The main window. For now a welcome window; the graph view and debugger panels come next."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

WELCOME = """<h2>Tapescope</h2>
<p>A visual debugger for dynamic computational graphs.</p>
<p>The engine is ready to use from scripts:<br><code>import engine</code></p>
<p>The live graph view and the debugger panels are being built.</p>"""


class MainWindow(QMainWindow):
    """Tapescope's top-level window."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Tapescope")
        label = QLabel(WELCOME)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setTextFormat(Qt.TextFormat.RichText)
        self.setCentralWidget(label)
        self.resize(960, 640)
        self.statusBar().showMessage("Ready")


def run_app(argv: list[str] | None = None) -> int:
    """Open the main window and run the Qt event loop until it closes."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("Tapescope")
    app.setOrganizationName("Tapescope")
    window = MainWindow()
    window.show()
    return app.exec()
