"""skflow: normalizing-flow density estimation as scikit-learn estimators."""

from ._version import __version__
from .estimators import MAFClassifier, MAFDensity, MAFOutlierDetector, MAFRegressor

__all__ = ["MAFClassifier", "MAFDensity", "MAFOutlierDetector", "MAFRegressor", "__version__"]
