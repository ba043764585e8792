"""MixedDensity: categorical, integer, bounded and continuous columns in one density."""

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, multivariate_t

from skflow import MixedDensity
from skflow.estimators._categorical_chain import CategoricalChain
from skflow.estimators._column_maps import ColumnMap, one_sided_scale

FAST = {"n_flows": 2, "hidden_layer_sizes": (16,), "max_iter": 20}


def _table(n=600, seed=0):
    rng = np.random.RandomState(seed)
    colour = rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])
    shape = np.where(colour == "red", rng.choice(["round", "square"], n, p=[0.9, 0.1]),
                     rng.choice(["round", "square"], n, p=[0.2, 0.8]))
    centre = pd.Series(colour).map({"red": -2.0, "green": 0.0, "blue": 3.0}).to_numpy()
    return pd.DataFrame({
        "colour": pd.Categorical(colour, categories=["red", "green", "blue", "violet"]),
        "shape": shape.astype(object),
        "x": centre + rng.normal(size=n),
        "weight": np.exp(0.5 * centre + 0.3 * rng.normal(size=n)),  # positive
        "count": rng.poisson(np.where(colour == "red", 1.0, 6.0)),
        "share": rng.beta(2, 5, n),
    })


@pytest.mark.parametrize("low, high", [(None, None), (0.5, None), (None, 2.0), (-1.0, 3.0)])
def test_column_map_jacobian_matches_autograd(low, high):
    m = ColumnMap(low, high)
    x = np.linspace(-0.9 if low is None or low < 0 else 0.6, 1.9, 7)
    z, log_jacobian = m.forward(x)
    t = torch.tensor(x, requires_grad=True)
    if low is not None and high is not None:
        zt = torch.log(t - low) - torch.log(high - t)
    elif low is not None:
        zt = torch.log(t - low)
    elif high is not None:
        zt = torch.log(high - t)
    else:
        zt = t * 1.0
    (grad,) = torch.autograd.grad(zt.sum(), t)
    np.testing.assert_allclose(log_jacobian, np.log(np.abs(grad.numpy())), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.inverse(z), x, rtol=1e-12)


@pytest.mark.parametrize("low, high", [(0.5, None), (None, 2.0)])
@pytest.mark.parametrize("scale", [0.05, 1.0, 30.0])
def test_soft_log_map_jacobian_and_inverse(low, high, scale):
    m = ColumnMap(low, high, scale)
    bound = low if high is None else high
    side = 1.0 if high is None else -1.0
    x = bound + side * np.array([1e-6, 0.01, 0.3, 1.0, 4.0, 50.0, 1e4])  # far out: no overflow
    z, log_jacobian = m.forward(x)
    t = torch.tensor(x, requires_grad=True)
    gap = side * (t - bound)
    zt = scale * torch.log(torch.expm1(gap / scale))  # overflows far out: compared where finite
    (grad,) = torch.autograd.grad(zt[torch.isfinite(zt)].sum(), t)
    finite = torch.isfinite(zt).numpy()
    np.testing.assert_allclose(z[finite], zt.detach().numpy()[finite], rtol=1e-9, atol=1e-9)
    grad = torch.where(torch.isfinite(zt), grad, torch.ones_like(grad))  # dz/dx = 1 where it overflowed
    np.testing.assert_allclose(log_jacobian, np.log(np.abs(grad.numpy())), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(m.inverse(z), x, rtol=1e-9)
    # far from the bound the map is a shift, so a column there keeps its shape
    np.testing.assert_allclose(z[-1], side * (x[-1] - bound), rtol=1e-12)  # z ~ the distance to the bound
    assert m.inside(m.inverse(np.array([-1e3, 0.0, 1e3]) * scale)).all()
    with pytest.raises(ValueError, match="exactly one bound"):
        ColumnMap(0.0, 1.0, scale)


def test_one_sided_scale_picks_the_map_under_which_a_column_is_gaussian():
    rng = np.random.RandomState(0)
    skewed = np.exp(rng.normal(size=2000))  # lognormal: the log map
    assert one_sided_scale(skewed, low=0.0) is None
    far = 100.0 + 10.0 * rng.normal(size=2000)  # normal far from 0: a soft log that is a shift there
    scale = one_sided_scale(far, low=0.0)
    assert scale is not None and scale <= 25.0
    z, log_jacobian = ColumnMap(0.0, None, scale).forward(far)
    gaussian = -0.5 * np.log(2 * np.pi * np.e * far.var())  # the plain Gaussian's mean log-likelihood
    logged = -0.5 * np.log(2 * np.pi * np.e * np.log(far).var()) - np.log(far).mean()
    chosen = -0.5 * np.log(2 * np.pi * np.e * z.var()) + log_jacobian.mean()
    assert chosen > gaussian - 1e-3 and chosen > logged + 0.001
    assert one_sided_scale(-far, high=0.0) == pytest.approx(scale)  # mirrored for an upper bound


def test_categorical_chain_sums_to_one_over_every_combination():
    rng = np.random.RandomState(0)
    codes = np.c_[rng.randint(3, size=200), rng.randint(2, size=200), rng.randint(4, size=200)]
    chain = CategoricalChain([3, 2, 4]).fit(codes)
    every = np.array(list(itertools.product(range(3), range(2), range(4))))
    assert np.exp(chain.log_prob(every)).sum() == pytest.approx(1.0, abs=1e-12)
    draws = chain.sample(20000, np.random.RandomState(1))
    frequencies = np.array([np.mean((draws == c).all(1)) for c in every])
    np.testing.assert_allclose(frequencies, np.exp(chain.log_prob(every)), atol=0.01)


def test_known_mixed_model_is_recovered():
    # P(c) and c's Gaussian are known: the fit's mean log-likelihood must be close to the truth's
    rng = np.random.RandomState(1)
    n = 4000
    c = rng.choice(["a", "b"], n, p=[0.3, 0.7])
    mean = np.where(c == "a", -2.0, 2.0)
    frame = pd.DataFrame({"c": c, "y": mean + 0.5 * rng.normal(size=n)})
    truth = np.log(np.where(c == "a", 0.3, 0.7)) - 0.5 * ((frame.y - mean) / 0.5) ** 2 - np.log(0.5 * np.sqrt(2 * np.pi))
    est = MixedDensity(flow_params={**FAST, "max_iter": 50}, random_state=0).fit(frame[:3000])
    assert est.column_types_ == ["categorical", "continuous"]
    assert est.score(frame[3000:]) == pytest.approx(truth[3000:].mean(), abs=0.05)


def test_types_bounds_and_sampling_respect_the_table():
    frame = _table()
    est = MixedDensity(bounds={"share": (0, 1)}, flow_params=FAST, random_state=0).fit(frame)
    assert est.column_types_ == ["categorical", "categorical", "continuous", "continuous", "integer", "continuous"]
    assert est.bounds_ == {2: (None, None), 3: (0, None), 4: (0, None), 5: (0, 1)}
    assert est.steps_ == {4: 1.0}
    draws = est.sample(3000, random_state=0)
    assert list(draws.columns) == list(frame.columns)
    assert (draws.dtypes == frame.dtypes).all()
    assert list(draws.colour.cat.categories) == ["red", "green", "blue", "violet"]
    assert set(draws["shape"]) <= {"round", "square"} and draws["shape"].dtype == frame["shape"].dtype
    assert (draws.weight > 0).all() and (draws["count"] >= 0).all() and draws.share.between(0, 1, "neither").all()
    # the dependence between the parts survives: red rows are mostly round and have few counts
    red = draws[draws.colour == "red"]
    assert (red["shape"] == "round").mean() > 0.75 and red["count"].mean() < 2.5
    assert abs(len(red) / 3000 - 0.5) < 0.05
    # the same seed gives the same draws
    pd.testing.assert_frame_equal(draws, est.sample(3000, random_state=0))


def test_scores_are_exact_in_the_datas_units():
    frame = _table()
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    scores = est.score_samples(frame[:5])
    # a positive column scaled by c shifts the log-density by -log(c) (its log map absorbs the scale)
    scaled = frame.assign(weight=frame.weight * 10.0)
    est10 = MixedDensity(flow_params=FAST, random_state=0).fit(scaled)
    np.testing.assert_allclose(est10.score_samples(scaled[:5]), scores - np.log(10.0), atol=1e-4)
    outside = frame[:3].copy()
    outside.loc[0, "weight"] = -1.0
    assert np.isneginf(est.score_samples(outside)[0]) and np.isfinite(est.score_samples(outside)[1:]).all()


def test_unseen_category_and_bad_input_say_why():
    frame = _table()
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    bad = frame[:2].copy()
    bad["shape"] = ["round", "triangle"]
    with pytest.raises(ValueError, match="'shape' has category 'triangle', not seen in fit"):
        est.score_samples(bad)
    with pytest.raises(ValueError, match="outside its bounds"):
        MixedDensity(bounds={"x": (0, None)}).fit(frame)
    with pytest.raises(ValueError, match="not numeric columns"):
        MixedDensity(bounds={"colour": (0, 1)}).fit(frame)
    with pytest.raises(ValueError, match=r"bounds\['x'\] must be \(low, high\), got \(0,\)"):
        MixedDensity(bounds={"x": (0,)}).fit(frame)
    with pytest.raises(ValueError, match="column_types"):
        MixedDensity(column_types={"x": "ordinal"}).fit(frame)
    with pytest.raises(ValueError, match="missing"):
        MixedDensity().fit(frame.assign(shape=[None] + list(frame["shape"][1:])))


def test_numeric_only_and_categorical_only_tables():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 2))
    est = MixedDensity(flow_params=FAST, random_state=0).fit(X)
    assert est.column_types_ == ["continuous", "continuous"] and est.sample(4).shape == (4, 2)
    cats = pd.DataFrame({"a": rng.choice(list("xyz"), 300), "b": rng.choice(list("uv"), 300)})
    only = MixedDensity().fit(cats)
    every = pd.DataFrame(list(itertools.product("xyz", "uv")), columns=["a", "b"])
    assert np.exp(only.score_samples(every)).sum() == pytest.approx(1.0)


def test_a_grid_column_with_values_on_its_bound_draws_within_it():
    rng = np.random.RandomState(3)
    wet = rng.uniform(size=800) < 0.4
    rain = np.where(wet, np.round(rng.gamma(1.5, 4.0, 800), 1), 0.0)  # millimetres, one decimal, dry days 0
    frame = pd.DataFrame({"rain": rain, "temperature": 10 + 5 * rng.normal(size=800) - 3 * wet})
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    assert est.grid_steps_ == {0: 0.1} and est.bounds_[0] == (0, None) and est.bounds_[1] == (None, None)
    draws = est.sample(2000, random_state=0)
    assert (draws.rain >= 0).all() and (draws.rain == 0).mean() > 0.2
    assert np.isfinite(est.score_samples(frame)).all()


def test_declared_categories_never_seen_keep_a_little_probability():
    frame = _table()
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    assert list(est.categories_["colour"]) == ["red", "green", "blue", "violet"]
    row = frame[:1].copy()
    row["colour"] = pd.Categorical(["violet"], categories=frame.colour.cat.categories)
    score = est.score_samples(row)[0]
    assert np.isfinite(score) and score < est.score_samples(frame[:1])[0] - 3
    # the chain with unseen categories still sums to one
    chain = est.categorical_model_
    every = np.array(list(itertools.product(range(4), range(2))))
    assert np.exp(chain.log_prob(every)).sum() == pytest.approx(1.0, abs=1e-12)


def test_a_row_unlike_its_category_falls_no_further_than_the_mixed_in_gaussian():
    from skflow.estimators._gaussian import _gaussian_log_pdf

    frame = _table()
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    odd = frame[:1].copy()
    odd["colour"] = pd.Categorical(["red"], categories=frame.colour.cat.categories)
    odd["x"], odd["weight"], odd["count"] = 6.0, 40.0, 30  # blue-like, and beyond
    z, log_jacobian, _ = est._numeric(*est._numeric_values(odd))
    floor = (est.categorical_model_.log_prob(est._codes(odd)) + np.log(0.01) + log_jacobian
             + _gaussian_log_pdf(z, est.numeric_mean_, est.numeric_covariance_))
    assert est.score_samples(odd)[0] >= floor[0] - 1e-9


def test_persistence_clone_and_search(tmp_path):
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    from skflow.io import load_model, save_model

    frame = _table(300)
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    expected = est.score_samples(frame[:5])
    for name in ("model.skops", "model.joblib"):  # skops: plain values, no pandas dtype objects
        save_model(est, tmp_path / name)
        loaded = load_model(tmp_path / name)
        np.testing.assert_array_equal(loaded.score_samples(frame[:5]), expected)
        pd.testing.assert_frame_equal(loaded.sample(20, random_state=1), est.sample(20, random_state=1))
    assert hasattr(est, "flows_") and not hasattr(clone(est), "flows_")
    search = GridSearchCV(MixedDensity(flow_params=FAST, random_state=0), {"categorical_C": [0.1, 10.0]}, cv=2)
    assert search.fit(frame).best_params_["categorical_C"] in (0.1, 10.0)


def test_sampling_given_the_first_categorical_columns():
    frame = _table(1500)
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    given = pd.DataFrame({"colour": ["red"] * 1000 + ["blue"] * 1000})
    draws = est.sample(random_state=0, given=given)
    assert len(draws) == 2000 and (draws.colour.astype(str).to_numpy() == given.colour.to_numpy()).all()
    red, blue = draws[:1000], draws[1000:]
    assert (red["shape"] == "round").mean() > 0.75 and (blue["shape"] == "square").mean() > 0.6
    assert red.x.mean() < -1 and blue.x.mean() > 2  # the numbers follow the given categories
    with pytest.raises(ValueError, match="first categorical columns in order"):
        est.sample(given=pd.DataFrame({"shape": ["round"]}))
    with pytest.raises(ValueError, match="'colour' has category 'pink'"):
        est.sample(given=pd.DataFrame({"colour": ["pink"]}))


def test_the_conditional_part_is_the_equal_mixture_of_four_starts():
    from scipy.special import logsumexp

    from skflow import MAFRegressor
    from skflow.estimators._conditional_mixture import ConditionalGaussianMixture

    frame = _table(400)
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)  # as fit draws it
    z = est._numeric(*est._numeric_values(frame, noise=np.random.RandomState(seed)))[0]
    codes = est._codes(frame)
    context = est._context(codes)
    starts = [{}, {"init": "identity"}, {"base": "normal"}]
    flows = [MAFRegressor(**{"random_state": seed, **FAST, **start}).fit(context, z) for start in starts]
    flows.append(ConditionalGaussianMixture(est.categorical_model_.sizes, seed).fit(context, z))
    assert [(f.init, f.base) for f in est.flows_] == [(f.init, f.base) for f in flows]
    # the score: P(categories) times the 0.99 / 0.01 mix of the flows' equal mixture and the Gaussian,
    # itself 0.999 / 0.001 mixed with the Student t (2 degrees of freedom) of the same moments
    z, log_jacobian, _ = est._numeric(*est._numeric_values(frame))  # scored without dequantisation noise
    conditional = logsumexp([f.log_prob(context, z) for f in flows], axis=0) - np.log(4)
    gaussian = multivariate_normal(est.numeric_mean_, est.numeric_covariance_).logpdf(z)
    student = multivariate_t(est.numeric_mean_, est.numeric_covariance_, df=2).logpdf(z)
    numeric = np.logaddexp(np.log(0.999) + np.logaddexp(np.log(0.99) + conditional, np.log(0.01) + gaussian),
                           np.log(0.001) + student)
    expected = est.categorical_model_.log_prob(codes) + numeric + log_jacobian
    np.testing.assert_allclose(est.score_samples(frame), expected, rtol=1e-10, atol=1e-8)
    # draws come from every member
    draws = est.sample(3000, random_state=0)
    assert draws.shape == (3000, frame.shape[1]) and np.isfinite(est.score_samples(draws)).all()
    fixed = MixedDensity(flow_params={**FAST, "init": "identity"}, random_state=0).fit(frame)
    assert [f.init for f in fixed.flows_] == ["identity"]
    normal = MixedDensity(flow_params={**FAST, "base": "normal"}, random_state=0).fit(frame)
    assert [(f.init, f.base) for f in normal.flows_] == [("gaussian", "normal"), ("identity", "normal"),
                                                         ("gaussian_mixture", "conditioned")]


def test_above_a_thousand_rows_the_best_start_on_validation_is_kept():
    from skflow import MAFRegressor

    frame = _table(1500)
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)  # as fit draws it
    z = est._numeric(*est._numeric_values(frame, noise=np.random.RandomState(seed)))[0]
    context = est._context(est._codes(frame))
    scores = {(start.get("init", "gaussian"), start.get("base", "made_mog")):
              MAFRegressor(**{"random_state": seed, **FAST, **start}).fit(context, z).best_validation_score_
              for start in ({}, {"init": "identity"}, {"base": "normal"})}
    assert len(est.flows_) == 1
    assert (est.flows_[0].init, est.flows_[0].base) == max(scores, key=scores.get)
    assert est.flows_[0].best_validation_score_ == max(scores.values())
    # without validation rows nothing can pick: the mixture of the four
    unpicked = MixedDensity(flow_params={**FAST, "early_stopping": False}, random_state=0).fit(frame)
    assert len(unpicked.flows_) == 4


def test_conditioned_mixture_is_the_exact_conditional_of_the_joint_mixture():
    from skflow.estimators._categorical_chain import one_hot
    from skflow.estimators._conditional_mixture import ConditionalGaussianMixture

    rng = np.random.RandomState(0)
    n = 1500
    codes = np.c_[rng.choice(3, n, p=[0.5, 0.3, 0.2]), rng.randint(2, size=n)]
    centre = np.array([-3.0, 0.0, 4.0])[codes[:, 0]] + 0.5 * codes[:, 1]
    z = np.c_[centre + rng.normal(size=n), np.exp(0.3 * centre) * rng.normal(size=n)]
    context = one_hot(codes, [3, 2])
    model = ConditionalGaussianMixture([3, 2], random_state=0).fit(context, z)
    assert model.choice_[0] > 1  # the categories' clusters need components
    # the density given each combination integrates to one over z (a grid over the bulk)
    grid = np.stack(np.meshgrid(np.linspace(-9, 10, 241), np.linspace(-12, 12, 241)), -1).reshape(-1, 2)
    cell = (19 / 240) * (24 / 240)
    for c in [(0, 0), (1, 1), (2, 0)]:
        ctx = np.repeat(one_hot(np.array([c]), [3, 2]), len(grid), 0)
        assert np.exp(model.log_prob(ctx, grid)).sum() * cell == pytest.approx(1.0, abs=0.01)
    # it equals the joint mixture's density at (z, codes) over its density of the codes
    k, lw = model.choice_[0], model.log_weights_
    c = model._codes(context[:5])
    joint, codes_only = [], []
    for j in range(k):
        cov_cc = model.code_chols_[j] @ model.code_chols_[j].T
        cov_zz = model.number_chols_[j] @ model.number_chols_[j].T + model.slopes_[j] @ cov_cc @ model.slopes_[j].T
        cov_zc = model.slopes_[j] @ cov_cc
        cov = np.block([[cov_zz, cov_zc], [cov_zc.T, cov_cc]])
        mean = np.r_[model.number_means_[j], model.code_means_[j]]
        zs = (z[:5] - model.mean_[:2]) / model.scale_[:2]
        joint.append(lw[j] + multivariate_normal(mean, cov).logpdf(np.c_[zs, c]))
        codes_only.append(lw[j] + multivariate_normal(model.code_means_[j], cov_cc).logpdf(c))
    expected = logsumexp(joint, axis=0) - logsumexp(codes_only, axis=0) - np.log(model.scale_[:2]).sum()
    np.testing.assert_allclose(model.log_prob(context[:5], z[:5]), expected, rtol=1e-9)
    # draws follow the given codes: their mean moves with the first category as the data's does
    draws = model.sample(one_hot(np.array([[0, 0]] * 4000 + [[2, 1]] * 4000), [3, 2]), random_state=1)[:, 0]
    assert abs(draws[:4000, 0].mean() + 3.0) < 0.2 and abs(draws[4000:, 0].mean() - 4.5) < 0.3


def _wages(n=1500, seed=0):
    """A zero-inflated wage (0 for 40 % of the rows, lognormal above) beside an age and a sector."""
    rng = np.random.RandomState(seed)
    sector = rng.choice(["public", "private"], n, p=[0.3, 0.7])
    working = rng.uniform(size=n) < np.where(sector == "public", 0.8, 0.5)
    age = 40.0 + 10.0 * rng.normal(size=n)
    wage = np.where(working, np.exp(1.0 + 0.02 * (age - 40.0) + 0.4 * rng.normal(size=n)), 0.0)
    return pd.DataFrame({"sector": sector, "age": age, "wage": wage})


def test_a_point_mass_is_found_and_scored_by_its_probability():
    frame = _wages()
    est = MixedDensity(flow_params={**FAST, "max_iter": 40}, random_state=0).fit(frame[:1200])
    assert est.point_masses_ == {2: 0.0}  # the wage; age has no repeated value
    assert est.bounds_[2] == (0, None)  # the other wages are positive: bounded by the mass's value
    # in the sector "public" 80 % work: the chain's P(wage = 0 | sector) is the mass's probability
    chain = est.categorical_model_
    assert chain.sizes == [2, 2]
    public = int(np.flatnonzero(est.categories_["sector"] == "public")[0])
    p_zero = np.exp(chain.log_prob(np.array([[public, 1]])))[0] / np.exp(chain.first_[public])
    assert p_zero == pytest.approx(0.2, abs=0.05)
    # close to the truth's mean log-likelihood on held-out rows, rows at the mass in probability units
    held = frame[1200:]
    sector_p = np.where(held.sector == "public", 0.3, 0.7)
    work_p = np.where(held.sector == "public", 0.8, 0.5)
    age_ll = -0.5 * ((held.age - 40.0) / 10.0) ** 2 - np.log(10.0 * np.sqrt(2 * np.pi))
    wage = held.wage.to_numpy()
    log_wage = np.log(np.where(wage > 0, wage, 1.0))
    wage_ll = np.where(wage > 0, np.log(work_p) - 0.5 * ((log_wage - 1.0 - 0.02 * (held.age - 40.0)) / 0.4) ** 2
                       - np.log(0.4 * np.sqrt(2 * np.pi)) - log_wage, np.log(1.0 - work_p))
    truth = np.log(sector_p) + age_ll + wage_ll
    assert est.score(held) == pytest.approx(truth.mean(), abs=0.15)
    # draws: the mass's share at exactly 0, no negative wages
    draws = est.sample(4000, random_state=0)
    assert (draws.wage >= 0).all()
    assert np.mean(draws.wage == 0) == pytest.approx(np.mean(frame.wage == 0), abs=0.03)
    assert (draws.wage[draws.wage > 0] > 1e-3).mean() > 0.99
    # given the sector, the mass's probability is the sector's
    public_draws = est.sample(random_state=1, given=pd.DataFrame({"sector": ["public"] * 2000}))
    assert np.mean(public_draws.wage == 0) == pytest.approx(0.2, abs=0.04)


def test_a_point_mass_is_a_value_far_more_common_than_any_other():
    from skflow.estimators._point_masses import find_point_mass

    rng = np.random.RandomState(0)
    spread = rng.lognormal(size=200)
    assert find_point_mass(np.r_[np.zeros(40), spread]) == 0.0
    assert find_point_mass(np.r_[np.zeros(8), spread]) is None  # 4 % of the rows
    # rounding: $2 and $3 tips about as common as each other are not one mass
    assert find_point_mass(np.r_[np.full(33, 2.0), np.full(23, 3.0), spread]) is None
    assert find_point_mass(np.r_[np.full(33, 2.0), np.full(11, 3.0), spread]) == 2.0
    assert find_point_mass(np.r_[np.zeros(40), np.ones(40)]) is None  # two values: categorical, not a mass


def test_a_few_exact_zeros_of_a_positive_column_are_a_mass_on_its_bound():
    # three zeros among 150 positive values: too few for the share rule, but they sit on the bound
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"assists": np.r_[np.zeros(3), rng.lognormal(-3, 1, 150)], "putouts": rng.lognormal(size=153)})
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    assert est.point_masses_ == {0: 0.0} and est.bounds_[0] == (0, None)
    draws = est.sample(3000, random_state=0)
    assert (draws.assists >= 0).all() and 0 < np.mean(draws.assists == 0) < 0.06
    assert np.isfinite(est.score_samples(frame)).all()
    # declared bounds or none: the rule is the bounds', so it steps aside
    assert MixedDensity(bounds=None, flow_params={**FAST, "max_iter": 2}).fit(frame).point_masses_ == {}
    assert MixedDensity(bounds={"assists": (-1, None)}, flow_params={**FAST, "max_iter": 2}).fit(frame).point_masses_ == {}


def test_an_integer_column_on_a_sparse_lattice_scores_the_probability_of_its_values():
    # scaled scores: 12 values between 300 and 600, each of many rows
    rng = np.random.RandomState(0)
    lattice = np.sort(rng.choice(np.arange(300, 601), 12, replace=False))
    p = rng.dirichlet(np.ones(12) * 3)
    frame = pd.DataFrame({"score": rng.choice(lattice, 2000, p=p).astype(np.int64)})
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    np.testing.assert_array_equal(est._lattices[0], lattice)
    probabilities = np.exp(est.score_samples(pd.DataFrame({"score": lattice})))
    assert probabilities.sum() == pytest.approx(1.0, abs=0.1)  # the density at a value times its cell
    assert np.corrcoef(probabilities, p)[0, 1] > 0.7  # a small flow, briefly trained, smears a little
    draws = est.sample(3000, random_state=0)
    assert set(draws.score) <= set(lattice)
    # a column whose values rarely repeat is no lattice (a weight in pounds)
    wide = pd.DataFrame({"weight": rng.choice(np.arange(1500, 5000), 400).astype(np.int64)})
    assert MixedDensity(flow_params={**FAST, "max_iter": 2}, random_state=0).fit(wide)._lattices == {}


def test_the_stand_in_is_integrated_out_exactly():
    # at the mass, the numeric part is the flow's joint density integrated over the stand-in:
    # the fixed quadrature agrees with a Monte Carlo average of p(others, u) / q(u)
    from scipy.stats import norm

    frame = _wages(600)
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    rows = frame[frame.wage == 0][:5]
    x, at_mass = est._numeric_values(rows)
    z, _, _ = est._numeric(x, at_mass)
    codes = est._chain_codes(rows, at_mass)
    quadrature = est._numeric_log_density(codes, z, at_mass)
    (k,) = est._point_mass_positions()
    mean, scale = est._stand_ins[0]
    u = mean + scale * np.random.RandomState(0).normal(size=20000)
    for i in range(len(rows)):
        zs = np.repeat(z[i : i + 1], len(u), axis=0)
        zs[:, k] = u
        joint = est._numeric_log_density_at(np.repeat(codes[i : i + 1], len(u), axis=0), zs)
        monte_carlo = logsumexp(joint - norm.logpdf(u, mean, scale)) - np.log(len(u))
        assert quadrature[i] == pytest.approx(monte_carlo, abs=0.02)


def test_one_column_with_a_point_mass_sums_to_one():
    # the mass's probability plus the density's integral over the other values
    rng = np.random.RandomState(0)
    values = np.where(rng.uniform(size=800) < 0.3, 0.0, rng.gamma(3.0, 1.0, 800))
    est = MixedDensity(flow_params=FAST, random_state=0).fit(values[:, None])
    assert est.point_masses_ == {0: 0.0}
    grid = np.linspace(1e-6, 40.0, 400001)
    density = np.exp(est.score_samples(grid[:, None]))
    mass = np.exp(est.score_samples(np.zeros((1, 1))))[0]
    assert mass == pytest.approx(0.3, abs=0.05)
    assert mass + np.trapezoid(density, grid) == pytest.approx(1.0, abs=0.01)


def test_point_masses_declared_removed_and_refused():
    frame = _wages(300)
    frame["hours"] = np.where(frame.wage > 0, 40, 0)  # integer: each value has a probability already
    frame["tenths"] = np.round(np.abs(frame.age - 40.0), 1)  # on a grid: dequantised, no point mass
    frame["rare"] = np.where(np.arange(300) < 10, 7.0, np.random.RandomState(0).normal(size=300))  # 3 %
    est = MixedDensity(flow_params={**FAST, "max_iter": 2}, random_state=0).fit(frame)
    assert est.point_masses_ == {2: 0.0}
    declared = MixedDensity(point_masses={"rare": 7.0, "wage": None}, flow_params={**FAST, "max_iter": 2},
                            random_state=0).fit(frame)
    assert declared.point_masses_ == {5: 7.0}
    assert np.isfinite(declared.score_samples(frame)).all()
    assert MixedDensity(point_masses=None, flow_params={**FAST, "max_iter": 2}).fit(frame).point_masses_ == {}
    with pytest.raises(ValueError, match="hours.*integer"):
        MixedDensity(point_masses={"hours": 0}).fit(frame)
    with pytest.raises(ValueError, match="does not have"):
        MixedDensity(point_masses={"salary": 0}).fit(frame)
    with pytest.raises(ValueError, match="point mass -1.0 outside its bounds"):
        MixedDensity(point_masses={"wage": -1.0}, bounds={"wage": (0, None)}).fit(frame.assign(wage=frame.wage - (frame.wage == 0)))


def test_point_masses_survive_files_and_the_outlier_detector(tmp_path):
    from skflow import MixedOutlierDetector
    from skflow.io import load_model, save_model

    frame = _wages(300)
    est = MixedDensity(flow_params=FAST, random_state=0).fit(frame)
    save_model(est, tmp_path / "model.skops")
    loaded = load_model(tmp_path / "model.skops")
    np.testing.assert_array_equal(loaded.score_samples(frame[:20]), est.score_samples(frame[:20]))
    pd.testing.assert_frame_equal(loaded.sample(50, random_state=1), est.sample(50, random_state=1))
    detector = MixedOutlierDetector(point_masses=None, flow_params=FAST, random_state=0).fit(frame)
    assert detector.density_.point_masses_ == {}
    detector = MixedOutlierDetector(flow_params=FAST, random_state=0).fit(frame)
    assert detector.density_.point_masses_ == {2: 0.0}
    # a negative wage is outside the bound: -inf, the smallest p-value
    odd = frame[:1].assign(wage=-1.0)
    assert detector.score_samples(odd)[0] == -np.inf
