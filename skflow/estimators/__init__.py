"""The scikit-learn estimators: a thin layer over :mod:`skflow.nn`.

``_base.BaseMAF`` holds what they share (parameters, validation, the fit,
scoring, sampling, pickling); each estimator is one module.
"""

from .density import MAFDensity
from .outlier import MAFOutlierDetector

__all__ = ["MAFDensity", "MAFOutlierDetector"]
