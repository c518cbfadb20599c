"""Drive the real main window and save a screenshot (run by test_real_window.py, and for the README).

    python tests/e2e/drive_window.py OUT.png [--train 200] [--steps 4] [--settings S.ini]

Opens the demo (paused on entry), optionally trains until iteration `--train` and pauses, steps into
`--steps` ops, then grabs the window from the screen (QScreen.grabWindow: what the display shows).
Event-driven from start to end: every move waits for the session's next change, never for a clock;
a watchdog ends the run with exit code 3 if it hangs.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from app.window import MainWindow, apply_palette


def main(argv: list[str] | None = None) -> int:
    """Run the scenario; 0 when the screenshot was saved."""
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=0, help="train until this iteration first")
    parser.add_argument("--steps", type=int, default=4, help="then step into this many ops")
    parser.add_argument("--settings", default="", help="an .ini file for QSettings (default: a new one)")
    parser.add_argument("--size", default="1440x900")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--dark", action="store_true", help="the dark palette")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(["tapescope"])
    apply_palette(app, dark=True if args.dark else None)
    settings_path = args.settings or args.out + ".ini"
    window = MainWindow(QSettings(settings_path, QSettings.Format.IniFormat))
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    window.show()
    window.open_demo()
    plan = [("train", args.train)] if args.train else []
    plan += [("step", 1)] * args.steps
    result = {"code": 3}

    def advance(change=None) -> None:
        s = window.session
        if s.status != "paused":
            return
        if plan and plan[0][0] == "train" and s.iteration >= plan[0][1]:
            plan.pop(0)
        if plan:
            what, n = plan[0]
            if what == "train":
                if s.status == "paused" and s.iteration < n:
                    window.command("resume")
                    watch_iterations(n)
                return
            plan.pop(0)
            window.command("step_into")
            return
        window.pump.changed.disconnect(advance)
        QTimer.singleShot(0, grab)

    def watch_iterations(n: int) -> None:
        def check(change) -> None:
            if window.session.iteration >= n and window.session.status == "running":
                window.pump.changed.disconnect(check)
                window.command("pause")
        window.pump.changed.connect(check)

    def grab() -> None:
        window.repaint()
        app.processEvents()
        screen = window.screen()
        image = screen.grabWindow(window.winId()) if os.environ.get("QT_QPA_PLATFORM") != "offscreen" \
            else window.grab()
        if image.isNull() or not image.save(args.out, "PNG"):
            result["code"] = 4
        else:
            result["code"] = 0
        window.close()
        app.quit()

    window.pump.changed.connect(advance)
    QTimer.singleShot(int(args.timeout * 1000), app.quit)  # the watchdog: a hang fails, never blocks
    app.exec()
    if os.path.exists(settings_path) and not args.settings:
        os.remove(settings_path)
    return result["code"]


if __name__ == "__main__":
    sys.exit(main())
