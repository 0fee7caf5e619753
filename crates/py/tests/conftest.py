from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def configs() -> Path:
    return REPO / "configs"
