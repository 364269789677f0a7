"""Real image pairs for the metric tests (read from ../shared/data/real, never copied)."""

from __future__ import annotations

import pytest

from tests.metrics.helpers import load_pairs


@pytest.fixture(scope="session")
def fashion_pairs(real_data):
    return load_pairs(real_data, "deepfashion", 6)


@pytest.fixture(scope="session")
def market_pairs(real_data):
    return load_pairs(real_data, "market", 8)
