"""skflow: normalizing-flow density estimation as scikit-learn estimators."""

from ._version import __version__
from .density import MAFDensity
from .outlier import MAFOutlierDetector

__all__ = ["MAFDensity", "MAFOutlierDetector", "__version__"]
