"""skflow: normalizing-flow density estimation as scikit-learn estimators."""

from ._version import __version__
from .estimators import MAFDensity, MAFOutlierDetector

__all__ = ["MAFDensity", "MAFOutlierDetector", "__version__"]
