"""skflow: normalizing-flow density estimation as scikit-learn estimators."""

from ._version import __version__

__all__ = ["ChunkedRows", "GaussianDensity", "MAFClassifier", "MAFDensity", "MAFOutlierDetector", "MAFRegressor", "MixedDensity",
           "MixedOutlierDetector", "__version__"]


def __getattr__(name):
    # The estimators import torch (seconds); `skflow --help` and `--version` need none of it.
    if name in ("GaussianDensity", "MAFClassifier", "MAFDensity", "MAFOutlierDetector", "MAFRegressor",
                "MixedDensity", "MixedOutlierDetector"):
        from . import estimators

        return getattr(estimators, name)
    if name == "ChunkedRows":
        from .chunked import ChunkedRows

        return ChunkedRows
    raise AttributeError(f"module 'skflow' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
