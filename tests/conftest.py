import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(os.environ.get("SKFLOW_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_path(*parts) -> Path:
    """A path under ../shared/data, or skip the test where it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture
def gaussian_data():
    rng = np.random.RandomState(0)
    cov = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.2], [0.3, 0.2, 1.0]])
    return rng.multivariate_normal(np.zeros(3), cov, size=2000), cov
