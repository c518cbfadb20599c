"""The real main window under Xvfb: shown on an X display, stepped, and grabbed from the screen.

The window runs in a child process (this process's Qt is offscreen) driven by drive_window.py. Xvfb
picks a free display number itself (-displayfd) and reports it once it accepts clients, so nothing
here waits on a clock. Set TAPESCOPE_SHOTS=/some/dir to keep the screenshot.
"""

import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

pytestmark = pytest.mark.e2e
HERE = Path(__file__).resolve().parent
XVFB = shutil.which("Xvfb")


@pytest.fixture
def display():
    """A fresh Xvfb display (':N'), stopped afterwards."""
    if XVFB is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb; .ci/setup installs it)")
    read, write = os.pipe()
    command = [XVFB, "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"]
    proc = subprocess.Popen(command, pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 30)
        number = os.read(read, 32).decode().strip() if ready else ""
        if not number:
            pytest.fail("Xvfb did not start (no display number within 30 s)")
        yield f":{number}"
    finally:
        os.close(read)
        proc.terminate()
        proc.wait(10)


def test_the_real_window_shows_the_demo_after_steps(display, tmp_path):
    shot = tmp_path / "window.png"
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    out = subprocess.run([sys.executable, str(HERE / "drive_window.py"), str(shot), "--steps", "5",
                          "--size", "1280x800", "--timeout", "60"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    image = QImage(str(shot))
    assert not image.isNull()
    assert image.width() >= 1200 and image.height() >= 700  # the whole window, from the display
    colours = {image.pixel(x, y) for x in range(0, image.width(), 9) for y in range(0, image.height(), 9)}
    assert len(colours) > 40, "the screenshot is (nearly) blank"
    if os.environ.get("TAPESCOPE_SHOTS"):
        os.makedirs(os.environ["TAPESCOPE_SHOTS"], exist_ok=True)
        shutil.copy(shot, Path(os.environ["TAPESCOPE_SHOTS"]) / "real_window.png")
