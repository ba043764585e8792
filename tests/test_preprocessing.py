"""DropColumns and CorrelationFilter: hand-worked answers for both rules."""

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skflow.preprocessing import (
    CorrelationFilter,
    DropColumns,
    caret_find_correlation,
    maf_correlation_filter,
)

# b is the hub: mean |r| off-diagonal a .545, b .795, c .35
HUB = np.array([[1.0, 0.99, 0.1], [0.99, 1.0, 0.6], [0.1, 0.6, 1.0]])
TIE = np.array([[1.0, 0.95], [0.95, 1.0]])


def test_maf_rule_drops_first_correlated_column():
    assert maf_correlation_filter(HUB, 0.98).tolist() == [0]
    assert maf_correlation_filter(TIE, 0.9).tolist() == [0]


def test_maf_rule_uses_signed_correlation():
    neg = np.array([[1.0, -0.99], [-0.99, 1.0]])
    assert maf_correlation_filter(neg, 0.98).tolist() == []
    # caret takes absolute values: a tie, so it drops the second column.
    assert caret_find_correlation(neg, 0.98).tolist() == [1]


def test_maf_rule_is_iterative():
    # a~b and b~c above threshold, a and c not: dropping a first leaves b~c,
    # so b goes too; c survives.
    C = np.array([[1.0, 0.99, 0.5], [0.99, 1.0, 0.99], [0.5, 0.99, 1.0]])
    assert maf_correlation_filter(C, 0.98).tolist() == [0, 1]


def test_caret_exact_drops_hub_variable():
    # Order by mean |r|: b, a, c.  Pair (b, a): mn1 = mean row b = .795;
    # mn2 = mean of rows b and c off-diagonal = (.99+.6+.1+.6)/4 = .5725 -> drop b.
    assert caret_find_correlation(HUB, 0.9, exact=True).tolist() == [1]


def test_caret_exact_tie_drops_second_member():
    # mn1 = .95 == mn2 = .95: not greater, so caret drops j (the second column).
    assert caret_find_correlation(TIE, 0.9, exact=True).tolist() == [1]


def test_caret_fast_variant():
    # column means incl. diagonal: a .697, b .863, c .567 -> b has the larger rank.
    assert caret_find_correlation(HUB, 0.9, exact=False).tolist() == [1]
    # equal ranks: caret's fast rule drops the row member (the first).
    assert caret_find_correlation(TIE, 0.9, exact=False).tolist() == [0]


def test_caret_exact_walk_skips_deleted_and_stops():
    # Two independent blocks {0,1} (.97) and {2,3} (.95): one of each pair goes.
    C = np.eye(4)
    C[0, 1] = C[1, 0] = 0.97
    C[2, 3] = C[3, 2] = 0.95
    dropped = caret_find_correlation(C, 0.9, exact=True).tolist()
    assert len(dropped) == 2 and len({0, 1} & set(dropped)) == 1
    assert caret_find_correlation(C, 0.99, exact=True).tolist() == []


def test_constant_column_gives_no_nan_and_is_kept():
    rng = np.random.RandomState(0)
    a = rng.normal(size=200)
    X = np.column_stack([a, np.full(200, 3.0), a * 2 + 1e-4 * rng.normal(size=200), rng.normal(size=200)])
    for method in ("maf", "caret"):
        f = CorrelationFilter(0.98, method=method).fit(X)
        assert np.all(np.isfinite(f.correlation_))
        assert f.correlation_[1, 0] == 0 and f.correlation_[1, 1] == 1
        assert 1 not in f.dropped_
        assert len(set(f.dropped_) & {0, 2}) == 1


def test_filter_transform_and_feature_names():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    a, b = rng.normal(size=(2, 300))
    X = pd.DataFrame({"x": a, "y": a + 1e-3 * b, "z": b})
    f = CorrelationFilter(0.98).set_output(transform="pandas")
    out = f.fit_transform(X)
    assert list(out.columns) == ["y", "z"]
    assert list(f.get_feature_names_out()) == ["y", "z"]
    assert f.get_support().tolist() == [False, True, True]


def test_drop_columns_by_name_and_position():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(np.arange(12.0).reshape(3, 4), columns=["t", "a", "b", "c"])
    d = DropColumns(["t", "b"]).set_output(transform="pandas")
    assert list(d.fit_transform(X).columns) == ["a", "c"]
    assert DropColumns([0, -1]).fit_transform(X.to_numpy()).tolist() == [[1, 2], [5, 6], [9, 10]]
    with pytest.raises(ValueError, match="not found"):
        DropColumns(["nope"]).fit(X)
    with pytest.raises(ValueError, match="no column names"):
        DropColumns(["t"]).fit(X.to_numpy())
    with pytest.raises(ValueError, match="out of range"):
        DropColumns([7]).fit(X)


def test_feature_names_flow_through_pipeline():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    a, b, c = rng.normal(size=(3, 100))
    X = pd.DataFrame({"time": np.arange(100.0), "s1": a, "s2": a + 1e-3 * b, "s3": c})
    pipe = make_pipeline(DropColumns(["time"]), CorrelationFilter(0.98), StandardScaler())
    pipe.set_output(transform="pandas")
    assert list(pipe.fit_transform(X).columns) == ["s2", "s3"]
    assert list(pipe.get_feature_names_out()) == ["s2", "s3"]


@parametrize_with_checks([DropColumns([0]), CorrelationFilter()])
def test_sklearn_compatible_transformer(estimator, check):
    check(estimator)
