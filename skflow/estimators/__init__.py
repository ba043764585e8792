"""The scikit-learn estimators: a thin layer over :mod:`skflow.nn`.

``_base.BaseMAF`` holds what they share (parameters, validation, the fit,
scoring, sampling, pickling) and ``_base.UnconditionalMAF`` what the two
flows of ``X`` alone add; each estimator is one module.
"""

from .classifier import MAFClassifier
from .density import MAFDensity
from .outlier import MAFOutlierDetector
from .regressor import MAFRegressor

__all__ = ["MAFClassifier", "MAFDensity", "MAFOutlierDetector", "MAFRegressor"]
