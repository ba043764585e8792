"""skflow: normalizing-flow density estimation as scikit-learn estimators."""

from ._version import __version__
from .density import MAFDensity

__all__ = ["MAFDensity", "__version__"]
