"""Collection rules for the doctests in skflow/ (tests/ has its own conftest)."""

import pytest

try:
    import dask.array  # noqa: F401
    import dask.distributed  # noqa: F401

    HAVE_DASK = True
except ImportError:
    HAVE_DASK = False


def pytest_collection_modifyitems(config, items):
    # The Dask doctests need dask, an optional extra: skip them where it is missing.
    if HAVE_DASK:
        return
    for item in items:
        if item.nodeid.startswith("skflow/dask.py"):
            item.add_marker(pytest.mark.skip(reason="needs dask (pip install skflow[dask])"))
