"""Scaling out with Dask: chunk-wise scoring of Dask arrays.

Hyper-parameter searches need nothing from skflow: every estimator pickles
cleanly, so joblib's ``dask`` backend runs ``GridSearchCV`` on a cluster::

    import joblib
    from dask.distributed import Client, LocalCluster
    from sklearn.model_selection import GridSearchCV

    client = Client(LocalCluster(n_workers=4, threads_per_worker=1))
    with joblib.parallel_backend("dask"):
        GridSearchCV(pipe, {"mafdensity__n_flows": [2, 5, 10]}, n_jobs=-1).fit(X)

Scoring data larger than memory is :func:`score_samples_dask`; training one
model with every worker of a cluster, each on its shard of the rows, is
:func:`fit_data_parallel`.  Needs ``dask[array]`` (and ``distributed`` for a
cluster): ``pip install 'skflow[dask]'``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_data_parallel", "score_samples_dask"]


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


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _fit_rank(estimator, shard, chunk_rows, rank, world, address, timeout):
    """One rank of :func:`fit_data_parallel`, run in a worker."""
    from datetime import timedelta

    import torch.distributed as dist
    from sklearn.base import clone

    from .chunked import ChunkedRows

    dist.init_process_group("gloo", init_method=f"tcp://{address}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=timeout))
    try:
        source = shard() if callable(shard) else shard  # opened where it is read
        return clone(estimator).fit(ChunkedRows(source, chunk_rows=chunk_rows, distributed=True))
    finally:
        dist.destroy_process_group()


def fit_data_parallel(estimator, shards, client=None, *, chunk_rows=65536, timeout=1800):
    """Fit ``estimator`` with one rank per Dask worker, each streaming its own shard.

    Every worker starts a ``torch.distributed`` process (gloo, over TCP to
    the first worker) and fits a clone of ``estimator`` on
    ``ChunkedRows(shard, distributed=True)`` (see :class:`skflow.ChunkedRows`):
    the ranks train one model, averaging gradients each step.  Each worker
    reads only its shard, so give shards it can reach: Parquet paths,
    functions that open one in the worker (``functools.partial(numpy.load,
    "part0.npy", mmap_mode="r")``), or arrays small enough to ship.

    Parameters
    ----------
    estimator : MAFDensity or MAFOutlierDetector
        Unfitted; ``random_state`` must be an integer.
    shards : list
        One source per rank, at most one per worker: what
        :class:`~skflow.ChunkedRows` accepts, or a function of no
        arguments returning it.
    client : distributed.Client, default=None
        The cluster (default: the current client).
    chunk_rows : int, default=65536
        Rows per chunk of array shards.
    timeout : float, default=1800
        Seconds a rank waits for the others to join or to answer.

    Returns
    -------
    estimator : fitted estimator
        Rank 0's fitted clone (every rank holds the same model).
    """
    from distributed import default_client

    client = client or default_client()
    workers = sorted(client.scheduler_info()["workers"])
    if not 1 <= len(shards) <= len(workers):
        raise ValueError(f"give between 1 and {len(workers)} shards (one per worker), got {len(shards)}")
    workers = workers[: len(shards)]
    host = workers[0].split("://")[-1].rsplit(":", 1)[0]
    port = client.submit(_free_port, workers=[workers[0]], pure=False).result()
    futures = [client.submit(_fit_rank, estimator, shard, chunk_rows, rank, len(shards), f"{host}:{port}",
                             timeout, workers=[worker], pure=False, allow_other_workers=False)
               for rank, (shard, worker) in enumerate(zip(shards, workers))]
    return client.gather(futures)[0]
