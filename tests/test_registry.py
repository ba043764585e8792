"""A new layer type or base is one module plus one registration."""

import numpy as np
import pytest

from skflow import MAFClassifier, MAFDensity
from skflow.nn import BASES, StandardNormal
from skflow.nn.layers import AUTOREGRESSIVE_TRANSFORMS, MaskedAffineAutoregressive, register_layer_type

from ._helpers import joblib_round_trip


def _toy_affine(n_features, hidden_sizes, order, activation, degree_mode, generator, context_features,
                log_scale_bound=5.0):
    # A toy layer type: the affine layer with its log-scale clamped ten times tighter.
    return MaskedAffineAutoregressive(n_features, hidden_sizes, order, activation, log_scale_bound / 10,
                                      degree_mode, generator, context_features)


@pytest.fixture
def toys():
    register_layer_type("toy", _toy_affine, options=("log_scale_bound",))
    BASES["toy_normal"] = lambda n_features, context_features, generator, **_: StandardNormal(n_features)
    yield
    del AUTOREGRESSIVE_TRANSFORMS["toy"], BASES["toy_normal"]


def test_a_registered_layer_type_and_base_work_in_every_estimator(toys):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3))
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(8,), max_iter=2, layer_type="toy", base="toy_normal",
                     random_state=0).fit(X)
    bound = [layer for layer in est.flow_.transforms if isinstance(layer, MaskedAffineAutoregressive)][0]
    assert bound.log_scale_bound == pytest.approx(0.5)  # the toy's own factory built the layers
    np.testing.assert_array_equal(joblib_round_trip(est).score_samples(X), est.score_samples(X))
    clf = MAFClassifier(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, layer_type="toy", random_state=0)
    assert clf.fit(X, (X[:, 0] > 0).astype(int)).score(X, (X[:, 0] > 0).astype(int)) > 0.5


def test_an_unregistered_name_is_refused_with_the_registered_ones():
    with pytest.raises(ValueError, match="'affine_spline'"):
        MAFDensity(layer_type="toy").fit(np.random.RandomState(0).normal(size=(20, 2)))
