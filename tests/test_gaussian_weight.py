"""The mixture of the flow with the Gaussian (gaussian_weight)."""

import numpy as np
import pytest
from scipy.stats import f as f_distribution
from scipy.stats import kstest, multivariate_normal, multivariate_t
from sklearn.datasets import make_moons

from skflow import MAFDensity, MAFOutlierDetector
from skflow.estimators._gaussian import GAUSSIAN_WEIGHT_FLOOR as FLOOR
from skflow.estimators._gaussian import _best_gaussian_weight

from ._helpers import joblib_round_trip


def test_best_weight_follows_the_better_model():
    rng = np.random.RandomState(0)
    gaussian, flow = rng.normal(size=200), rng.normal(size=200)
    assert _best_gaussian_weight(gaussian - 5, flow) == FLOOR  # the flow is better on every row: the floor
    assert _best_gaussian_weight(gaussian, flow - 5) == 1.0
    # each better by far on half the rows: the mixture needs both, equally
    a = np.r_[np.zeros(100), np.full(100, -30.0)]
    assert _best_gaussian_weight(a, a[::-1]) == pytest.approx(0.5)


def test_cautious_weight_keeps_the_gaussian_until_the_flow_clearly_pays():
    gaussian = np.random.RandomState(0).normal(size=400)
    sign = np.r_[np.ones(210), -np.ones(190)]
    # The flow better by 0.1 on 210 rows and worse by 0.1 on 190: 0.005 nats on
    # average, a tenth of the rows' standard error (0.05).
    slight = gaussian + 0.1 * sign
    assert _best_gaussian_weight(gaussian, slight) == FLOOR
    assert _best_gaussian_weight(gaussian, slight, caution=3.0) == 1.0
    # Better by 0.5 nats on every row, ten standard errors: the Gaussian gets a
    # share only as long as it costs less than three of them.
    clear = gaussian + 0.5 + 0.1 * sign
    weight = _best_gaussian_weight(gaussian, clear, caution=3.0)
    assert FLOOR < weight < 0.5
    # Better by 2 nats on rows whose log-likelihoods hardly vary (standard
    # error 0.005): even a share of 0.05 costs more than three of them.
    tight = 0.1 * gaussian
    assert _best_gaussian_weight(tight, tight + 2.0, caution=3.0) == FLOOR
    # Within the standard errors: the largest such weight, never below the best.
    a = np.r_[np.zeros(100), np.full(100, -30.0)]
    assert 0.5 - 1e-12 <= _best_gaussian_weight(a, a[::-1], caution=3.0) < 1.0


@pytest.mark.parametrize("seed", range(5))
def test_cautious_weight_is_the_largest_within_the_best_means_standard_errors(seed):
    rng = np.random.RandomState(seed)
    gaussian = rng.normal(size=60)
    flow = gaussian + rng.normal(0.3, 0.5, size=60)
    weights = np.r_[FLOOR, np.linspace(0.05, 1.0, 20)]
    with np.errstate(divide="ignore"):
        means = np.array([np.logaddexp(np.log(w) + gaussian, np.log1p(-w) + flow).mean() for w in weights])
    best = int(np.argmax(means))
    rows = np.logaddexp(np.log(weights[best]) + gaussian, np.log1p(-weights[best]) + flow)
    bound = means[best] - 3.0 * rows.std(ddof=1) / np.sqrt(len(rows))
    expected = weights[np.flatnonzero(means >= bound).max()]
    assert _best_gaussian_weight(gaussian, flow, caution=3.0) == pytest.approx(expected)


def test_the_detector_is_cautious_and_the_density_is_not():
    assert MAFOutlierDetector._gaussian_weight_caution == 1.0
    assert MAFDensity._gaussian_weight_caution == 0.0


@pytest.fixture(scope="module")
def moons():
    X, _ = make_moons(600, noise=0.1, random_state=0)
    return (X - X.mean(0)) / X.std(0)


@pytest.mark.parametrize("weight", [0.3, 1.0])
def test_fixed_weight_scores_the_mixture(moons, weight):
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(16, 16), max_iter=20, random_state=0,
                     gaussian_weight=weight).fit(moons)
    assert est.gaussian_weight_ == weight
    gaussian = multivariate_normal(est.gaussian_mean_, est.gaussian_covariance_).logpdf(moons)
    est.gaussian_weight_ = 0.0
    flow = est.score_samples(moons)
    est.gaussian_weight_ = weight
    expected = gaussian if weight == 1.0 else np.logaddexp(np.log(weight) + gaussian, np.log1p(-weight) + flow)
    # ... and 0.001 of the Student t with the Gaussian's moments and two degrees of freedom
    student = multivariate_t(est.gaussian_mean_, est.gaussian_covariance_, df=2).logpdf(moons)
    expected = np.logaddexp(np.log(0.999) + expected, np.log(0.001) + student)
    np.testing.assert_allclose(est.score_samples(moons), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(est.gaussian_mean_, moons.mean(0), atol=1e-12)


def test_samples_come_from_both_parts_in_proportion(moons):
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(16, 16), max_iter=20, random_state=0,
                     gaussian_weight=1.0).fit(moons)
    draws = est.sample(20_000, random_state=0)
    np.testing.assert_allclose(draws.mean(0), est.gaussian_mean_, atol=0.03)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), est.gaussian_covariance_, atol=0.04)
    est.set_params(gaussian_weight=0.5)
    est.gaussian_weight_ = 0.5
    np.testing.assert_array_equal(est.sample(50, random_state=3), est.sample(50, random_state=3))


def test_auto_weight_is_small_where_the_flow_wins_and_the_floor_without_a_start(moons):
    est = MAFDensity(n_flows=3, hidden_layer_sizes=(32, 32), random_state=0).fit(moons)
    assert est.best_epoch_ > 0 and FLOOR <= est.gaussian_weight_ < 0.5
    assert MAFDensity(init="identity", max_iter=5, random_state=0).fit(moons).gaussian_weight_ == FLOOR
    assert MAFDensity(early_stopping=False, max_iter=5, random_state=0).fit(moons).gaussian_weight_ == FLOOR
    assert not hasattr(MAFDensity(gaussian_weight=0.0, max_iter=5, random_state=0).fit(moons), "gaussian_mean_")


def test_gaussian_data_give_the_gaussian():
    X = np.random.RandomState(0).multivariate_normal([0, 1], [[1, 0.5], [0.5, 2]], size=400)
    est = MAFDensity(random_state=0).fit(X)
    assert est.best_epoch_ == 0 and est.gaussian_weight_ == FLOOR  # the flow is that Gaussian already


def test_a_kept_mixture_start_is_weighed_against_the_gaussian():
    # Two clusters: the mixture start wins the start's selection, and a learning
    # rate of 1e-9 keeps it.  It is then no Gaussian, so the detector weighs it
    # against one (before, a kept start always got w = 0); a kept single
    # Gaussian still gets w = 0, there being nothing to weigh.
    rng = np.random.RandomState(0)
    X = np.r_[rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) + [4.0, 0.0]]
    fast = dict(n_flows=2, hidden_layer_sizes=(8,), learning_rate_init=1e-9, max_iter=3, random_state=0)
    det = MAFOutlierDetector(**fast).fit(X)
    assert det.best_epoch_ == 0 and det.start_mixture_[0] > 1
    assert 0.0 < det.gaussian_weight_ < 1.0
    one = MAFOutlierDetector(**fast).fit(rng.normal(size=(400, 2)))
    assert one.best_epoch_ == 0 and one.start_mixture_[0] == 1 and one.gaussian_weight_ == 0.0


def test_the_detector_scores_the_mixture_without_the_student_t(moons):
    det = MAFOutlierDetector(n_flows=2, hidden_layer_sizes=(16, 16), max_iter=20, random_state=0,
                             gaussian_weight=0.3).fit(moons)
    z = (moons - det.location_) / det.scale_  # standardised by the training rows (calibration rows held out)
    gaussian = multivariate_normal(det.gaussian_mean_, det.gaussian_covariance_).logpdf(z) - np.log(det.scale_).sum()
    det.gaussian_weight_ = 0.0
    flow = det.score_samples(moons)
    det.gaussian_weight_ = 0.3
    expected = np.logaddexp(np.log(0.3) + gaussian, np.log(0.7) + flow)
    np.testing.assert_allclose(det.score_samples(moons), expected, rtol=1e-10, atol=1e-10)


def test_an_error_across_a_thin_direction_stays_within_the_student_t_bound():
    # Three shares that sum to one (up to rounding) and a fourth column: a row
    # whose shares sum to 0.8 sits far out across the thin direction.
    rng = np.random.RandomState(0)
    shares = rng.dirichlet([4.0, 3.0, 2.0], size=600)
    X = np.c_[shares + rng.normal(scale=1e-3, size=shares.shape), rng.normal(size=600)]
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(16,), max_iter=10, random_state=0).fit(X)
    error = np.array([[0.3, 0.3, 0.2, 0.0]])
    z = (error - est.location_) / est.scale_
    log_jacobian = -np.log(est.scale_).sum()
    gaussian = multivariate_normal(est.gaussian_mean_, est.gaussian_covariance_).logpdf(z) + log_jacobian
    student = multivariate_t(est.gaussian_mean_, est.gaussian_covariance_, df=2).logpdf(z) + log_jacobian
    score = est.score_samples(error)[0]
    assert gaussian < -1000  # the Gaussian alone (and so its floor) gives no protection here
    assert score >= np.log(0.001) + student - 1e-9
    assert score > np.median(est.score_samples(X)) - 60


def test_student_t_draws_have_the_t_distribution():
    from skflow.estimators._gaussian import student_t_draws

    rng = np.random.RandomState(0)
    d, n = 3, 4000
    A = rng.normal(size=(d, d))
    cov, mean = A @ A.T + np.eye(d), rng.normal(size=d)
    draws = student_t_draws(rng.normal(size=(n, d)), 1.0 - rng.uniform(size=n), mean, np.linalg.cholesky(cov))
    # The squared Mahalanobis distance over d of a t with 2 degrees of freedom is F(d, 2).
    maha = np.einsum("ij,jk,ik->i", draws - mean, np.linalg.inv(cov), draws - mean) / d
    assert kstest(maha, f_distribution(d, 2).cdf).pvalue > 0.01
    assert kstest(maha, f_distribution(d, 20).cdf).pvalue < 1e-6  # the test can tell lighter tails


def test_outlier_offset_uses_the_mixture(moons):
    det = MAFOutlierDetector(n_flows=2, hidden_layer_sizes=(16, 16), max_iter=20, random_state=0,
                             gaussian_weight=0.4, contamination=0.1).fit(moons)
    assert np.mean(det.predict(moons) == -1) == pytest.approx(0.1, abs=0.01)


def test_mixture_survives_joblib(moons):
    est = MAFDensity(n_flows=2, hidden_layer_sizes=(16, 16), max_iter=20, random_state=0,
                     gaussian_weight=0.25).fit(moons)
    again = joblib_round_trip(est)
    np.testing.assert_array_equal(again.score_samples(moons), est.score_samples(moons))
    np.testing.assert_array_equal(again.sample(10, random_state=1), est.sample(10, random_state=1))


def test_no_row_falls_more_than_the_floor_below_the_gaussian():
    from scipy.stats import multivariate_normal

    from skflow.estimators._gaussian import GAUSSIAN_WEIGHT_FLOOR

    rng = np.random.RandomState(0)
    x = rng.normal(size=(1500, 2))
    X = np.c_[x[:, 0], 0.5 * x[:, 0] ** 2 + 0.1 * x[:, 1]] * [3.0, 0.2]  # curved, thin
    est = MAFDensity(n_flows=3, hidden_layer_sizes=(32, 32), max_iter=30, random_state=0).fit(X)
    assert est.gaussian_weight_ >= GAUSSIAN_WEIGHT_FLOOR
    far = np.array([[0.0, 0.44], [6.6, -0.2], [-30.0, 5.0]])  # off the curve, beyond it, far out
    z = (far - est.location_) / est.scale_
    gaussian = multivariate_normal(est.gaussian_mean_, est.gaussian_covariance_).logpdf(z) - np.log(est.scale_).sum()
    assert np.all(est.score_samples(far) >= np.log(GAUSSIAN_WEIGHT_FLOOR) + gaussian - 1e-9)


def test_one_solve_gives_the_gaussian_and_the_student_t():
    from skflow.estimators._gaussian import gaussian_and_t_log_pdfs

    rng = np.random.RandomState(1)
    d = 4
    A = rng.normal(size=(d, d))
    cov, mean = A @ A.T + 0.1 * np.eye(d), rng.normal(size=d)
    X = rng.standard_t(2, size=(300, d)) * 3
    gaussian, student = gaussian_and_t_log_pdfs(X, mean, cov, chunk=64)  # several chunks
    np.testing.assert_allclose(gaussian, multivariate_normal(mean, cov).logpdf(X), rtol=1e-10)
    np.testing.assert_allclose(student, multivariate_t(mean, cov, df=2).logpdf(X), rtol=1e-10)
