"""Conditional flows as estimators: MAFClassifier, MAFRegressor, and the
conditional Gaussian start layer under them."""

import joblib
import numpy as np
import pytest
import skops.io
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skflow import MAFClassifier, MAFRegressor
from skflow.io import TRUSTED_TYPES
from skflow.nn import ConditionalGaussianAffine, build_maf
from skflow.nn.made import MADE

FAST = dict(n_flows=2, hidden_layer_sizes=(16,), max_iter=5, random_state=0)


def _random_layer(n_features, context_features, n_groups, seed=0):
    gen = torch.Generator().manual_seed(seed)
    layer = ConditionalGaussianAffine(n_features, context_features, n_groups).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return layer


def _class_data(n=600, seed=0):
    rng = np.random.RandomState(seed)
    means = np.array([[0.0, 0.0], [2.5, 0.5], [0.0, 3.0]])
    covs = np.array([[[1.0, 0.6], [0.6, 1.0]], [[0.5, 0.0], [0.0, 2.0]], [[1.5, -0.7], [-0.7, 1.0]]])
    y = rng.randint(0, 3, size=n)
    X = np.stack([rng.multivariate_normal(means[k], covs[k]) for k in y])
    return X, y, means, covs


def _heteroscedastic(n, seed=0):
    """y | x ~ N(1 + 2 x, (0.3 exp(0.5 x))^2): a known conditional density."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(-2, 2, size=(n, 1))
    loc, scale = 1 + 2 * x[:, 0], 0.3 * np.exp(0.5 * x[:, 0])
    return x, loc + scale * rng.normal(size=n), loc, scale


# --------------------------------------------------------------- the layer
@pytest.mark.parametrize("n_groups", [1, 3])
def test_conditional_affine_inverts_and_its_log_det_is_the_jacobian(n_groups):
    layer = _random_layer(3, 3, n_groups)
    rng = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, generator=rng, dtype=torch.float64)
    context = torch.eye(3, dtype=torch.float64)[[0, 1, 2, 1, 0]] if n_groups > 1 else \
        torch.randn(5, 3, generator=rng, dtype=torch.float64)
    u, log_det = layer(x, context)
    torch.testing.assert_close(layer.inverse(u, context), x, rtol=0, atol=1e-10)
    for i in range(5):
        jac = torch.autograd.functional.jacobian(lambda row: layer(row[None], context[i : i + 1])[0][0], x[i])
        assert torch.allclose(jac, jac.tril())  # lower-triangular in x
        torch.testing.assert_close(log_det[i], torch.linalg.slogdet(jac)[1], rtol=0, atol=1e-10)


def test_grouped_start_is_one_gaussian_per_class():
    _, _, means, covs = _class_data()
    flow = build_maf(2, n_flows=2, hidden_sizes=(8,), context_features=3, gaussian_start="grouped",
                     batch_norm=False, dtype=torch.float64).eval()
    flow.transforms[0].set_group_gaussians(torch.tensor(means), torch.tensor(covs))
    x = np.random.RandomState(0).normal(size=(7, 2)) * 2
    for k in range(3):
        with torch.no_grad():
            got = flow.log_prob(torch.tensor(x), torch.eye(3, dtype=torch.float64)[[k]]).numpy()
        np.testing.assert_allclose(got, multivariate_normal(means[k], covs[k]).logpdf(x), rtol=0, atol=1e-8)


def test_linear_start_is_a_linear_gaussian_regression():
    coef = np.array([[1.0, -0.5], [0.3, 2.0]])
    intercept = np.array([0.2, -1.0])
    cov = np.array([[0.7, 0.2], [0.2, 0.4]])
    flow = build_maf(2, n_flows=1, hidden_sizes=(8,), context_features=2, gaussian_start="linear",
                     batch_norm=False, dtype=torch.float64).eval()
    flow.transforms[0].set_linear_gaussian(torch.tensor(coef), torch.tensor(intercept), torch.tensor(cov))
    rng = np.random.RandomState(0)
    c, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    with torch.no_grad():
        got = flow.log_prob(torch.tensor(y), torch.tensor(c)).numpy()
    want = [multivariate_normal(ci @ coef + intercept, cov).logpdf(yi) for ci, yi in zip(c, y)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)


def test_gaussian_start_needs_a_context():
    with pytest.raises(ValueError, match="needs context_features"):
        build_maf(2, gaussian_start="linear", batch_norm=True)
    with pytest.raises(ValueError, match="gaussian_start must be"):
        build_maf(2, context_features=1, gaussian_start="per-row", batch_norm=True)


def test_one_input_made_with_context_uses_every_hidden_unit():
    made = MADE(1, (8,), n_outputs_per_input=2, context_features=3)
    assert made.layers[0].degrees.tolist() == [0] * 8
    assert bool(made.layers[-1].mask.all())


def test_made_width_warning_counts_the_context_degree():
    from skflow.nn import MADEWidthWarning

    with pytest.warns(MADEWidthWarning):
        MADE(4, (3,), context_features=1)


# ------------------------------------------------------------- classifier
def _shrunk_covariances(X, y, alpha, beta):
    """The class covariances of the Gaussian start, written out with numpy."""
    d, counts = X.shape[1], np.bincount(y)
    covs = [np.cov(X[y == k].T, bias=True) for k in range(len(counts))]
    pooled = sum(n * c for n, c in zip(counts, covs)) / len(y)
    pooled = (1 - beta) * pooled + beta * np.trace(pooled) / d * np.eye(d)
    ridge = (1e-6 * np.trace(pooled) / d + 1e-12) * np.eye(d)
    return [(1 - alpha) * c + alpha * pooled + ridge for c in covs]


def test_classifier_starts_at_the_class_gaussians():
    X, y, _, _ = _class_data()
    clf = MAFClassifier(n_flows=1, hidden_layer_sizes=(8,), max_iter=1, learning_rate_init=1e-12,
                        early_stopping=False, calibrate=False, dtype="float64", random_state=0).fit(X, y)
    alpha, beta = clf.covariance_shrinkage_
    counts = np.bincount(y)
    # The Gaussians are those of the standardised rows, with the standardisation's Jacobian.
    np.testing.assert_allclose(clf.location_, X.mean(0))
    np.testing.assert_allclose(clf.scale_, X.std(0))
    Z = (X - X.mean(0)) / X.std(0)
    joint = np.stack([np.log(counts[k] / len(y)) + multivariate_normal(Z[y == k].mean(0), cov).logpdf(Z)
                      for k, cov in enumerate(_shrunk_covariances(Z, y, alpha, beta))], 1)
    joint -= np.log(X.std(0)).sum()
    np.testing.assert_allclose(clf.predict_joint_log_proba(X), joint, rtol=0, atol=1e-6)
    np.testing.assert_allclose(clf.score_samples(X), logsumexp(joint, axis=1), rtol=0, atol=1e-6)


def test_shrinkage_is_chosen_by_cross_validated_log_loss():
    from skflow.estimators import _class_gaussians as classifier

    X, y, _, _ = _class_data(90, seed=3)
    chosen = classifier._select_shrinkage(torch.tensor(X), torch.tensor(y), 3)
    fold = np.arange(len(y)) % classifier.FOLDS
    losses = {}
    for alpha in classifier._ALPHAS:
        for beta in classifier._BETAS:
            total = 0.0
            for f in range(classifier.FOLDS):
                fit, test = fold != f, fold == f
                covs = _shrunk_covariances(X[fit], y[fit], alpha, beta)
                prior = np.bincount(y[fit]) / fit.sum()
                joint = np.stack([np.log(prior[k]) + multivariate_normal(X[fit][y[fit] == k].mean(0), c).logpdf(X[test])
                                  for k, c in enumerate(covs)], 1)
                total -= (joint[np.arange(test.sum()), y[test]] - logsumexp(joint, axis=1)).sum()
            losses[alpha, beta] = total
    assert chosen == min(losses, key=losses.get)


def test_early_stopping_watches_the_held_out_log_loss(monkeypatch):
    X, y, _, _ = _class_data(400)
    from skflow.estimators._class_gaussians import HeldOutLogLoss

    seen = []
    original = HeldOutLogLoss.__call__

    def recording(self, x_val, c_val):
        score = original(self, x_val, c_val)

        def wrapped(flow):
            value = score(flow)
            # Held-out mean log p(y | x) by hand, from the flow's class densities.
            with torch.no_grad():
                flow.eval()
                joint = torch.stack([flow.log_prob(x_val, c) for c in torch.eye(3, dtype=x_val.dtype)], 1).double()
                flow.train()
            joint += torch.as_tensor(self.class_prior).log()
            by_hand = (joint[torch.arange(len(x_val)), c_val.argmax(1)] - joint.logsumexp(1)).mean()
            assert abs(value - float(by_hand)) < 1e-9
            seen.append(value)
            return value

        return wrapped

    monkeypatch.setattr(HeldOutLogLoss, "__call__", recording)
    clf = MAFClassifier(**FAST).fit(X, y)
    assert seen[1:] == clf.validation_scores_  # seen[0]: the starting point
    assert clf.best_validation_score_ == max(seen[: clf.best_epoch_ + 1])
    assert clf.temperature_ >= 1.0


def test_classifier_probabilities_follow_bayes_rule():
    X, y, means, covs = _class_data(1500)
    clf = MAFClassifier(**FAST, calibrate=False).fit(X[:1000], y[:1000])
    proba = clf.predict_proba(X[1000:])
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X[1000:]), clf.classes_[proba.argmax(1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X[1000:])), proba, atol=1e-12)
    joint = np.stack([np.log(1 / 3) + multivariate_normal(means[k], covs[k]).logpdf(X[1000:]) for k in range(3)], 1)
    bayes = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
    assert np.abs(proba - bayes).mean() < 0.03
    assert clf.score(X[1000:], y[1000:]) > 0.85


def test_classifier_string_labels_priors_and_sampling():
    X, y, _, _ = _class_data()
    labels = np.array(["ant", "bee", "cat"])[y]
    clf = MAFClassifier(**FAST, priors=[0.2, 0.3, 0.5]).fit(X, labels)
    np.testing.assert_array_equal(clf.classes_, ["ant", "bee", "cat"])
    np.testing.assert_array_equal(clf.class_prior_, [0.2, 0.3, 0.5])
    assert set(clf.predict(X)) <= set(clf.classes_)
    Xs, ys = clf.sample(3000, random_state=0)
    assert Xs.shape == (3000, 2)
    np.testing.assert_allclose([np.mean(ys == c) for c in clf.classes_], [0.2, 0.3, 0.5], atol=0.03)
    # Draws of a class look like that class's training rows.
    np.testing.assert_allclose(Xs[ys == "bee"].mean(0), X[y == 1].mean(0), atol=0.2)
    Xs2, ys2 = clf.sample(5, random_state=0)
    np.testing.assert_array_equal(ys2, ys[:5])


def test_classifier_reproducible_and_persistent(tmp_path):
    X, y, _, _ = _class_data()
    a = MAFClassifier(**FAST).fit(X, y)
    b = MAFClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    joblib.dump(a, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(X), a.predict_proba(X))
    skops.io.dump(a, tmp_path / "clf.skops")
    loaded = skops.io.load(tmp_path / "clf.skops", trusted=TRUSTED_TYPES + skops.io.get_untrusted_types(
        file=tmp_path / "clf.skops"))
    np.testing.assert_array_equal(loaded.predict_proba(X), a.predict_proba(X))
    assert not set(skops.io.get_untrusted_types(file=tmp_path / "clf.skops")) - set(TRUSTED_TYPES)


def test_classifier_errors():
    X, y, _, _ = _class_data(100)
    with pytest.raises(ValueError, match="at least 2 classes"):
        MAFClassifier(**FAST).fit(X, np.zeros(100))
    with pytest.raises(ValueError, match="Unknown label type"):
        MAFClassifier(**FAST).fit(X, np.linspace(0, 1, 100))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MAFClassifier(**FAST).fit(X, y[:50])
    with pytest.raises(ValueError, match="priors must have one entry per class"):
        MAFClassifier(**FAST, priors=[0.5, 0.5]).fit(X, y)
    with pytest.raises(ValueError, match="sum to 1"):
        MAFClassifier(**FAST, priors=[0.5, 0.5, 0.5]).fit(X, y)
    clf = MAFClassifier(**FAST, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="classes of the fitted model"):
        clf.fit(X, np.where(y == 2, 3, y))
    with pytest.raises(ValueError, match="2 features"):
        clf.predict(np.zeros((3, 5)))


def test_classifier_in_a_grid_search_with_workers():
    X, y, _, _ = _class_data(300)
    pipe = make_pipeline(StandardScaler(), MAFClassifier(**FAST))
    search = GridSearchCV(pipe, {"mafclassifier__n_flows": [1, 2]}, cv=2, n_jobs=2,
                          scoring="neg_log_loss").fit(X, y)
    serial = GridSearchCV(clone(pipe), {"mafclassifier__n_flows": [1, 2]}, cv=2,
                          scoring="neg_log_loss").fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"])


# -------------------------------------------------------------- regressor
def test_regressor_starts_at_the_ridge_regression():
    x, y, _, _ = _heteroscedastic(400)
    reg = MAFRegressor(n_flows=1, hidden_layer_sizes=(8,), max_iter=1, learning_rate_init=1e-12,
                       early_stopping=False, dtype="float64", base="normal", random_state=0).fit(x, y)
    xs = (x - x.mean(0)) / x.std(0)
    ys = (y - y.mean()) / y.std()
    design = np.c_[xs, np.ones(len(xs))]
    penalty = np.diag([reg.ridge_penalty_, 0.0])
    beta = np.linalg.solve(design.T @ design + penalty, design.T @ ys)
    # The spread: out-of-fold residuals of the same 5 folds (rows in order without early stopping).
    fold = np.arange(len(ys)) % 5
    oof = np.empty_like(ys)
    for f in range(5):
        fit = fold != f
        b = np.linalg.solve(design[fit].T @ design[fit] + penalty, design[fit].T @ ys[fit])
        oof[~fit] = ys[~fit] - design[~fit] @ b
    resid_var = np.mean(oof ** 2)
    resid_var += 1e-6 * resid_var + 1e-12
    want = norm(design @ beta, np.sqrt(resid_var)).logpdf(ys) - np.log(y.std())
    np.testing.assert_allclose(reg.log_prob(x, y), want, rtol=0, atol=1e-8)
    np.testing.assert_allclose(reg.predict(x), (design @ beta) * y.std() + y.mean(), rtol=0, atol=1e-8)


def test_ridge_penalty_is_chosen_by_cross_validated_likelihood():
    from sklearn.linear_model import Ridge

    from skflow.estimators import _linear_gaussian as regressor

    rng = np.random.RandomState(0)
    c = rng.normal(size=(60, 8))
    t = c[:, :2] @ [1.0, -0.5] + rng.normal(size=60)
    fold = np.arange(60) % regressor.FOLDS
    scores = {}
    for penalty in regressor._PENALTIES:
        total = 0.0
        for f in range(regressor.FOLDS):
            fit, test = fold != f, fold == f
            model = Ridge(alpha=penalty).fit(c[fit], t[fit])
            resid = t[fit] - model.predict(c[fit])
            total += norm(model.predict(c[test]), np.sqrt(np.mean(resid ** 2) * (1 + 1e-6))).logpdf(t[test]).sum()
        scores[penalty] = total
    assert regressor._select_penalty(c, t[:, None])[0] == max(scores, key=scores.get)


def test_regressor_recovers_a_known_conditional_gaussian():
    x, y, loc, scale = _heteroscedastic(6000)
    reg = MAFRegressor(n_flows=2, hidden_layer_sizes=(32, 32), base="normal", random_state=0).fit(x[:5000], y[:5000])
    truth = norm(loc[5000:], scale[5000:]).logpdf(y[5000:]).mean()
    got = reg.log_prob(x[5000:], y[5000:]).mean()
    assert abs(got - truth) < 0.05, (got, truth)
    np.testing.assert_allclose(reg.predict(x[5000:]), loc[5000:], atol=0.1)
    lower, upper = reg.predict_interval(x[5000:], coverage=0.9)
    coverage = np.mean((y[5000:] >= lower) & (y[5000:] <= upper))
    assert 0.86 <= coverage <= 0.94
    np.testing.assert_allclose(upper - lower, 2 * norm.ppf(0.95) * scale[5000:], rtol=0.15)


def test_regressor_closed_form_agrees_with_its_draws():
    x, y, _, _ = _heteroscedastic(1000)
    reg = MAFRegressor(**FAST, base="normal").fit(x, y)
    rows = x[:4]
    draws = reg.sample(rows, 20000, random_state=0)
    assert draws.shape == (4, 20000)
    np.testing.assert_allclose(reg.predict(rows), draws.mean(1), atol=0.02)
    q = reg.predict_quantiles(rows, [0.1, 0.5, 0.9])
    assert q.shape == (4, 3)
    np.testing.assert_allclose(q, np.quantile(draws, [0.1, 0.5, 0.9], axis=1).T, atol=0.03)


def test_regressor_several_targets():
    x, y, _, _ = _heteroscedastic(1500)
    rng = np.random.RandomState(1)
    Y = np.c_[y, y ** 2 + 0.2 * rng.normal(size=len(y)), np.full(len(y), 7.0)]  # a constant target too
    reg = MAFRegressor(**FAST).fit(x, Y)
    assert reg.n_targets_ == 3
    assert reg.predict(x[:5]).shape == (5, 3)
    np.testing.assert_array_equal(reg.predict(x[:5]), reg.predict(x[:5]))  # repeatable
    assert reg.predict_quantiles(x[:5], [0.25, 0.75]).shape == (5, 3, 2)
    assert reg.sample(x[:5], 4, random_state=0).shape == (5, 4, 3)
    assert np.isfinite(reg.log_prob(x[:5], Y[:5])).all()
    from sklearn.metrics import r2_score

    assert r2_score(Y[:, 0], reg.predict(x)[:, 0]) > 0.8
    np.testing.assert_allclose(reg.predict(x[:5])[:, 2], 7.0, atol=1e-3)


def test_regressor_is_autoregressive_in_y_and_free_in_x():
    x, y, _, _ = _heteroscedastic(600)
    rng = np.random.RandomState(2)
    X = np.c_[x, rng.normal(size=(600, 2))]
    Y = np.c_[y, y + rng.normal(size=600), rng.normal(size=600)]
    reg = MAFRegressor(**FAST, order="identity", dtype="float64").fit(X, Y)
    flow = reg.flow_
    c = torch.tensor(reg._scaled_features(X[:1])[0])
    t = torch.tensor(reg._scaled_targets(Y[:1])[0])
    jac_y = torch.autograd.functional.jacobian(lambda v: flow(v[None], c)[0][0], t[0])
    assert torch.allclose(jac_y, jac_y.tril()) and bool((jac_y.diagonal() > 0).all())
    jac_c = torch.autograd.functional.jacobian(lambda v: flow(t, v[None])[0][0], c[0])
    assert bool((jac_c != 0).all())


def test_regressor_persistence_and_reproducibility(tmp_path):
    x, y, _, _ = _heteroscedastic(500)
    reg = MAFRegressor(**FAST).fit(x, y)
    again = MAFRegressor(**FAST).fit(x, y)
    np.testing.assert_array_equal(reg.predict(x), again.predict(x))
    joblib.dump(reg, tmp_path / "reg.joblib")
    loaded = joblib.load(tmp_path / "reg.joblib")
    np.testing.assert_array_equal(loaded.predict(x), reg.predict(x))
    np.testing.assert_array_equal(loaded.log_prob(x, y), reg.log_prob(x, y))


def test_regressor_errors():
    x, y, _, _ = _heteroscedastic(100)
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MAFRegressor(**FAST).fit(x, bad)
    bad[3] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        MAFRegressor(**FAST).fit(x, bad)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MAFRegressor(**FAST).fit(x, y[:10])
    with pytest.raises(ValueError, match="dim 3"):
        MAFRegressor(**FAST).fit(x, y.reshape(10, 10, 1))
    reg = MAFRegressor(**FAST).fit(x, y)
    with pytest.raises(ValueError, match="target column"):
        reg.log_prob(x, np.c_[y, y])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        reg.predict_quantiles(x, [0.5, 1.0])
    with pytest.raises(ValueError, match="coverage"):
        reg.predict_interval(x, coverage=1.5)
    with pytest.raises(TypeError, match="n_samples must be an int"):
        reg.sample(x, 2.5)


def test_classifier_mixes_the_class_gaussians_into_a_trained_flow():
    from scipy.special import logsumexp
    from sklearn.datasets import make_moons

    from skflow.estimators._gaussian import gaussian_log_pdfs

    X, y = make_moons(1500, noise=0.1, random_state=0)
    X = np.c_[X, np.random.RandomState(0).normal(size=len(X))]  # and a column of noise
    clf = MAFClassifier(n_flows=2, hidden_layer_sizes=(32,), max_iter=40, random_state=0).fit(X, y)
    assert clf.best_epoch_ > 0 and clf.gaussian_weight_ >= 0.2
    # the class densities are the stated mixture: recompute predict_proba from its parts
    Z = (X - clf.location_) / clf.scale_
    flow = np.stack([clf._log_density(Z.astype(np.float32), np.eye(2, dtype=np.float32)[[k]]) for k in range(2)], 1)
    gauss = gaussian_log_pdfs(Z, clf.class_means_, clf.class_covariances_)
    w = clf.gaussian_weight_
    joint = (np.logaddexp(np.log(w) + gauss, np.log1p(-w) + flow) - np.log(clf.scale_).sum()) / clf.temperature_
    joint += np.log(clf.class_prior_)
    np.testing.assert_allclose(clf.predict_log_proba(X), joint - logsumexp(joint, 1, keepdims=True), atol=1e-5)
    # a kept start mixes nothing in
    kept = MAFClassifier(n_flows=1, hidden_layer_sizes=(8,), max_iter=1, learning_rate_init=1e-9,
                         random_state=0).fit(X, y)
    assert kept.best_epoch_ == 0 and kept.gaussian_weight_ == 0.0


def test_a_collapsed_classifier_fit_is_retried_on_the_held_out_log_loss(monkeypatch):
    import skflow.estimators._fitting as fitting
    from sklearn.datasets import make_moons
    from sklearn.metrics import log_loss

    X, y = make_moons(1000, noise=0.1, random_state=0)
    X_test, y_test = make_moons(1000, noise=0.1, random_state=1)
    # the weights as trained: averaging damps the constructed collapse
    params = dict(layer_type="affine", n_flows=3, hidden_layer_sizes=(32, 32), learning_rate_init=1.0,
                  random_state=0, max_iter=60, average_decay=None)
    monitored = []
    train_flow = fitting.train_flow

    def recording(*args, **kwargs):
        monitored.append(kwargs.get("validation_score"))
        return train_flow(*args, **kwargs)

    monkeypatch.setattr(fitting, "train_flow", recording)
    monkeypatch.setattr(fitting, "COLLAPSE_NATS", np.inf)  # no retry: the start is kept
    without = MAFClassifier(**params).fit(X, y)
    assert without.best_epoch_ == 0 and min(without.validation_scores_) < without.validation_scores_[0] - 100
    monitored.clear()
    monkeypatch.setattr(fitting, "COLLAPSE_NATS", 1.0)
    retried = MAFClassifier(**params).fit(X, y)
    # the retry, too, watched the held-out log loss (not the features' log-likelihood)
    assert len(monitored) == 2 and all(score is not None for score in monitored)
    assert retried.best_epoch_ > without.n_iter_
    assert log_loss(y_test, retried.predict_proba(X_test)) < log_loss(y_test, without.predict_proba(X_test)) - 0.05
