"""The scikit-learn estimators: a thin layer over :mod:`skflow.nn`.

``_base.BaseMAF`` holds what they share (parameters, the fit, scoring,
sampling, pickling) and ``_unconditional.UnconditionalMAF`` what the two
flows of ``X`` alone add; each estimator is one module.  Beside them:
``_gaussian`` (closed-form Gaussians), ``_scaling`` (the standardisation
inside), ``_validation`` (input checks), ``_saved_state`` (checks on loaded
files).
"""

from .classifier import MAFClassifier
from .density import MAFDensity
from .gaussian_density import GaussianDensity
from .mixed import MixedDensity
from .mixed_outlier import MixedOutlierDetector
from .outlier import MAFOutlierDetector
from .regressor import MAFRegressor

__all__ = ["GaussianDensity", "MAFClassifier", "MAFDensity", "MAFOutlierDetector", "MAFRegressor", "MixedDensity", "MixedOutlierDetector"]
