"""Fixtures the app tests share."""

import pytest


@pytest.fixture
def sessions():
    """Sessions a test starts; each is stopped and joined afterwards."""
    made = []
    yield made
    for s in made:
        s.close()
