"""Shared test settings: Qt offscreen, a fixed seed per test."""

import os

import pytest

from tests.shots import shown

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _seed():
    import engine

    engine.manual_seed(0)
    yield


@pytest.fixture
def panel(qtbot):
    """The model builder panel, shown, with its first check done."""
    from app.builder import PanelServices
    from widgets.builder_panel import BuilderPanel

    p = shown(qtbot, BuilderPanel(PanelServices(), check_delay_ms=10), 560, 720)
    p.check_now()
    return p


@pytest.fixture
def inspector(qtbot):
    """A tensor inspector, shown."""
    from widgets.tensor_inspector import TensorInspector

    return shown(qtbot, TensorInspector(), 620, 760)
