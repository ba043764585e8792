"""scikit-learn's common estimator checks.

Small networks and few epochs keep these fast; the checks exercise the API
contract, not the quality of the fit.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skflow import GaussianDensity, MAFClassifier, MAFDensity, MAFOutlierDetector, MAFRegressor, MixedDensity, \
    MixedOutlierDetector

FAST = dict(n_flows=2, hidden_layer_sizes=(8,), max_iter=3, batch_size=64, random_state=0)

# Checks that cannot pass, with the reason. Keep this empty or tiny.
EXPECTED_FAILED_CHECKS: dict = {}


@parametrize_with_checks(
    [
        MAFDensity(**FAST),
        MAFDensity(**FAST, init="identity"),
        MAFDensity(**FAST, n_estimators=2),
        MAFDensity(**FAST, layer_type="spline", n_bins=4),
        MAFDensity(**FAST, layer_type="affine_spline", n_bins=4),
        MAFDensity(**FAST, base="made_mog", n_components=3),
        MAFOutlierDetector(**FAST),
        GaussianDensity(random_state=0),
        MixedDensity(flow_params=dict(FAST, random_state=None), random_state=0),
        MixedOutlierDetector(flow_params=FAST, random_state=0),
        MAFClassifier(**FAST),
        MAFClassifier(**FAST, init="identity"),
        MAFRegressor(**FAST),
        MAFRegressor(**FAST, base="normal"),
        # From the identity, R² > 0.5 (check_regressors_train) needs some training.
        MAFRegressor(**{**FAST, "max_iter": 30}, learning_rate_init=1e-2, init="identity"),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
