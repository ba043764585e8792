"""Where data lives: the cache folder and the project's shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["find_shared_data", "get_data_home"]


def get_data_home(data_home=None) -> Path:
    """The folder where downloaded data sets are cached.

    ``data_home`` if given, else ``$SKFLOW_DATA``, else ``~/skflow_data``.

    Examples
    --------
    >>> from skflow.datasets import get_data_home
    >>> get_data_home("/tmp/skflow_doctest_data").name
    'skflow_doctest_data'
    """
    path = Path(data_home or os.environ.get("SKFLOW_DATA", "~/skflow_data")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_shared_data(name: str) -> Path | None:
    """Locate ``name`` in a ``shared/data`` folder, or return None.

    Looks in ``$SKFLOW_SHARED_DATA``, then ``../shared/data`` next to the
    current directory and next to the source checkout.  This is where the
    project's third-party reference data sets sit beside a clone; they are
    never copied into the package.

    Examples
    --------
    >>> from skflow.datasets import find_shared_data
    >>> find_shared_data("no_such_data_set") is None
    True
    """
    candidates = []
    if os.environ.get("SKFLOW_SHARED_DATA"):
        candidates.append(Path(os.environ["SKFLOW_SHARED_DATA"]))
    candidates.append(Path.cwd().parent / "shared" / "data")
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data")
    for base in candidates:
        if (base / name).exists():
            return base / name
    return None


def to_frame(data, columns):
    """A pandas DataFrame view of ``data`` (pandas is imported only here)."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("as_frame=True needs pandas: pip install pandas") from exc
    return pd.DataFrame(data, columns=columns)
