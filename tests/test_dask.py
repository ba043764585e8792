"""GridSearchCV on a Dask cluster and chunk-wise scoring of Dask arrays."""

import joblib
import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skflow import MAFDensity  # noqa: E402
from skflow.dask import score_samples_dask  # noqa: E402

TINY = dict(n_flows=1, hidden_layer_sizes=(8,), max_iter=3, random_state=0)
X = np.random.RandomState(0).normal(size=(300, 3))


def test_grid_search_on_a_local_dask_cluster_matches_sequential():
    pipe = make_pipeline(StandardScaler(), MAFDensity(**TINY))
    grid = {"mafdensity__n_flows": [1, 2]}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        with joblib.parallel_backend("dask"):
            on_dask = GridSearchCV(pipe, grid, cv=2, n_jobs=-1).fit(X)
    local = GridSearchCV(pipe, grid, cv=2, n_jobs=1).fit(X)
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])


def test_score_samples_dask_chunkwise():
    est = make_pipeline(StandardScaler(), MAFDensity(**TINY)).fit(X)
    lazy = score_samples_dask(est, da.from_array(X, chunks=(70, 2)))  # columns split too
    assert lazy.shape == (300,)
    np.testing.assert_allclose(lazy.compute(), est.score_samples(X))
    with pytest.raises(ValueError, match="2-D"):
        score_samples_dask(est, da.zeros(10))
