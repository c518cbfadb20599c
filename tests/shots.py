"""Screenshots taken by tests, kept for a person to look at only when TAPESCOPE_SHOTS names a folder."""

import os
from pathlib import Path


def shoot(widget, name: str) -> None:
    """Grab the widget as drawn (the grab must succeed); save it under $TAPESCOPE_SHOTS when that is set."""
    image = widget.grab()
    assert not image.isNull(), f"{name}: the widget could not be drawn"
    folder = os.environ.get("TAPESCOPE_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        assert image.save(str(Path(folder) / name))


def shown(qtbot, widget, width: int, height: int):
    """`widget` at `width` x `height`, shown and exposed, closed after the test; returns it."""
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget
