"""The GAS density experiment of the MAF paper as a scikit-learn pipeline."""

from __future__ import annotations

import time

import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .. import MAFDensity
from ..datasets import GAS_DISCRETE_COLUMNS, fetch_gas, gas_cache_path, gas_paper_split, load_gas, load_gas_drift
from ..io import save_model
from ..preprocessing import CorrelationFilter, DropColumns

__all__ = ["GAS_MAF_PARAMS", "load_experiment_data", "make_gas_pipeline", "run_gas_experiment"]

#: The MAF paper's settings for GAS: MAF(10), 2x100 tanh, batch norm, reversed
#: orders, Adam 1e-4, batch 100, weight decay 1e-6, patience 30 epochs.
GAS_MAF_PARAMS = dict(
    n_flows=10,
    hidden_layer_sizes=(100, 100),
    activation="tanh",
    batch_norm=True,
    order="reverse",
    learning_rate="constant",  # the paper: Adam at a fixed 1e-4
    learning_rate_init=1e-4,
    weight_decay=1e-6,
    batch_size=100,
    max_iter=1000,
    early_stopping=True,
    n_iter_no_change=30,
    init="identity",  # the paper's start (every layer the identity)
    gaussian_weight=0.0,  # the paper's model: the flow alone
    layer_type="affine",  # the paper's MAF layers
    average_decay=None,  # the paper's weights as trained
)


def make_gas_pipeline(
    drop=GAS_DISCRETE_COLUMNS, threshold=0.98, method="maf", estimator=None, **maf_params
) -> Pipeline:
    """drop -> correlation filter -> StandardScaler -> density estimator.

    Parameters
    ----------
    drop : list of str or int, default=["time_s", "co_ppm", "ethylene_ppm"]
        Columns removed first (names need a DataFrame; positions always work).
    threshold : float, default=0.98
    method : {"maf", "caret"}, default="maf"
        Correlation rule, see :class:`~skflow.preprocessing.CorrelationFilter`.
    estimator : estimator, optional
        Replace the flow (e.g. by a ``GaussianMixture`` baseline).
    **maf_params
        Overrides of :data:`GAS_MAF_PARAMS` for :class:`~skflow.MAFDensity`.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``drop``, ``filter``, ``scale``, ``density``.

    Examples
    --------
    >>> from skflow.experiments import make_gas_pipeline
    >>> [name for name, _ in make_gas_pipeline().steps]
    ['drop', 'filter', 'scale', 'density']
    """
    if estimator is None:
        estimator = MAFDensity(**{**GAS_MAF_PARAMS, **maf_params})
    elif maf_params:
        raise TypeError("give either estimator or MAF parameters, not both")
    return Pipeline([
        ("drop", DropColumns(list(drop))),
        ("filter", CorrelationFilter(threshold=threshold, method=method)),
        ("scale", StandardScaler()),
        ("density", estimator),
    ])


def load_experiment_data(path=None, data_home=None):
    """Find data for the GAS experiment and say honestly what it is.

    Order: ``path`` (ethylene_CO.txt or a cached .npy); the :func:`fetch_gas`
    cache; the UCI gas-sensor *drift* data in the shared data folder (real
    MOX sensors from the same lab, not the MAF paper's file); scikit-learn's
    bundled breast-cancer data (real, but not gas data at all).

    Returns
    -------
    X : ndarray
    drop : list of int
        Positions of the discrete columns to drop.
    description : str
    sample_fraction : float
        Share of rows the paper's split samples (0.25 for the full file).

    Examples
    --------
    >>> from skflow.experiments import load_experiment_data
    >>> X, drop, description, fraction = load_experiment_data()  # doctest: +SKIP
    >>> print(description)  # doctest: +SKIP
    """
    if path is not None or gas_cache_path(data_home).exists():
        bunch = load_gas(path, data_home=data_home)
        desc = f"UCI ethylene_CO.txt ({len(bunch.data):,} rows) from {bunch.source}"
        drop = [bunch.feature_names.index(c) for c in bunch.discrete_columns]
        fraction = 0.25 if len(bunch.data) > 1_000_000 else 1.0
        return np.asarray(bunch.data), drop, desc, fraction
    try:
        bunch = load_gas_drift()
        desc = (
            f"NOT the MAF paper's ethylene_CO.txt (not on this machine): the UCI gas sensor "
            f"array drift data, {len(bunch.data):,} rows x 128 real MOX-sensor features "
            f"from the same lab and sensor types, read from {bunch.source}"
        )
        return bunch.data, [0], desc, 1.0
    except FileNotFoundError:
        from sklearn.datasets import load_breast_cancer

        X = load_breast_cancer().data
        desc = (
            "NO gas data found (no --data, no fetch_gas() cache, no shared data folder): "
            "running the same workflow on scikit-learn's bundled breast-cancer data "
            f"({X.shape[0]} rows x {X.shape[1]} real measurements, many highly correlated)"
        )
        return X, [], desc, 1.0


def run_gas_experiment(
    path=None,
    *,
    output="gas_maf.joblib",
    data_home=None,
    download=False,
    random_state=0,
    verbose=1,
    print_fn=print,
    **maf_params,
) -> dict:
    """Run the GAS experiment end to end and return its numbers.

    Loads data (see :func:`load_experiment_data`; ``download=True`` calls
    :func:`fetch_gas` first), applies the paper's split, fits a full-covariance
    Gaussian baseline and the MAF pipeline, prints both test log-likelihoods
    and saves the fitted MAF pipeline with joblib to ``output``.

    Returns
    -------
    results : dict
        ``data``, ``n_train``, ``n_validation``, ``n_test``, ``n_features``
        (after the filter), ``gaussian_test_ll``, ``maf_test_ll`` (mean
        nats per row, with its standard error ``maf_test_ll_se``),
        ``epochs``, ``fit_seconds``, ``model_path``.

    Examples
    --------
    >>> from skflow.experiments import run_gas_experiment
    >>> results = run_gas_experiment("ethylene_CO.txt", output="gas.joblib")  # doctest: +SKIP
    >>> results["maf_test_ll"] > results["gaussian_test_ll"]  # doctest: +SKIP
    True
    """
    if download:
        fetch_gas(data_home)
    X, drop, description, fraction = load_experiment_data(path, data_home)
    print_fn(f"data: {description}")
    train, val, test = gas_paper_split(X, random_state=random_state, sample_fraction=fraction)
    fit_rows = np.concatenate([train, val])
    print_fn(f"split: {len(train):,} train / {len(val):,} validation / {len(test):,} test rows")

    gauss = make_gas_pipeline(drop, estimator=GaussianMixture(1, covariance_type="full"))
    gauss.fit(fit_rows)
    gauss_ll = gauss.score(test)
    n_features = int(gauss.named_steps["filter"].get_support().sum())
    print_fn(f"features after dropping and the correlation filter: {n_features}")
    print_fn(f"Gaussian baseline   test log-likelihood: {gauss_ll:9.3f} nats")

    params = dict(
        validation_fraction=len(val) / len(fit_rows),
        random_state=random_state,
        verbose=verbose,
        **maf_params,
    )
    pipe = make_gas_pipeline(drop, **params)
    start = time.perf_counter()
    pipe.fit(fit_rows)
    seconds = time.perf_counter() - start
    scores = pipe.score_samples(test)
    maf = pipe.named_steps["density"]
    se = scores.std(ddof=1) / np.sqrt(len(scores))
    print_fn(
        f"MAF({maf.n_flows})              test log-likelihood: {scores.mean():9.3f} "
        f"+/- {2 * se:.3f} nats  ({maf.n_iter_} epochs, {seconds:.0f} s on {maf.device_})"
    )
    save_model(pipe, output)
    print_fn(f"saved the fitted pipeline to {output}")
    return dict(
        data=description,
        n_train=len(train),
        n_validation=len(val),
        n_test=len(test),
        n_features=n_features,
        gaussian_test_ll=float(gauss_ll),
        maf_test_ll=float(scores.mean()),
        maf_test_ll_se=float(se),
        epochs=int(maf.n_iter_),
        fit_seconds=seconds,
        model_path=str(output),
    )
