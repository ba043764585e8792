"""Scaling out with Dask: chunk-wise scoring of Dask arrays.

Hyper-parameter searches need nothing from skflow: every estimator pickles
cleanly, so joblib's ``dask`` backend runs ``GridSearchCV`` on a cluster::

    import joblib
    from dask.distributed import Client, LocalCluster
    from sklearn.model_selection import GridSearchCV

    client = Client(LocalCluster(n_workers=4, threads_per_worker=1))
    with joblib.parallel_backend("dask"):
        GridSearchCV(pipe, {"mafdensity__n_flows": [2, 5, 10]}, n_jobs=-1).fit(X)

Scoring data larger than memory is :func:`score_samples_dask`.  Needs
``dask[array]`` (and ``distributed`` for a cluster): ``pip install 'skflow[dask]'``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["score_samples_dask"]


def score_samples_dask(estimator, X):
    """Lazily score a Dask array block by block.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline with ``score_samples``
        It is shipped to the workers once (it pickles as CPU tensors).
    X : dask.array.Array of shape (n_samples, n_features)
        Rows may be chunked freely; columns are gathered into one chunk.

    Returns
    -------
    log_density : dask.array.Array of shape (n_samples,), float64
        Call ``.compute()`` (or store it) to run.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from skflow import MAFDensity
    >>> from skflow.dask import score_samples_dask
    >>> X = np.random.RandomState(0).normal(size=(1000, 2))
    >>> est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X)
    >>> lazy = score_samples_dask(est, da.from_array(X, chunks=(250, 2)))
    >>> np.allclose(lazy.compute(), est.score_samples(X))
    True
    """
    import dask.array as da

    X = da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D Dask array, got {X.ndim} dimension(s)")
    X = X.rechunk({1: -1})
    return X.map_blocks(
        lambda block: estimator.score_samples(block), drop_axis=1, dtype=np.float64
    )
