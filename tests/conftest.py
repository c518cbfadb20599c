"""Shared test settings: Qt offscreen, a fixed seed per test."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _seed():
    import engine

    engine.manual_seed(0)
    yield
