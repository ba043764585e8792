"""Plots of fitted models (needs matplotlib: ``pip install 'skflow[plot]'``)."""

from __future__ import annotations

from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_feature_log_densities", "plot_training_history"]


def plot_training_history(estimator, ax=None):
    """Training and validation log-likelihood per epoch.

    Parameters
    ----------
    estimator : MAFDensity or MAFOutlierDetector (fitted), or a Pipeline ending in one
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from skflow import MAFDensity
    >>> from skflow.plotting import plot_training_history
    >>> est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    >>> ax = plot_training_history(est.fit(np.random.RandomState(0).normal(size=(100, 2))))
    """
    import matplotlib.pyplot as plt

    est = estimator[-1] if hasattr(estimator, "steps") else estimator
    check_is_fitted(est, "loss_curve_")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    epochs = range(1, len(est.loss_curve_) + 1)
    ax.plot(epochs, [-v for v in est.loss_curve_], label="training (batch statistics)")
    if est.validation_scores_:
        ax.plot(epochs, est.validation_scores_, label="validation")
        best = max(range(len(est.validation_scores_)), key=est.validation_scores_.__getitem__)
        ax.axvline(best + 1, color="k", ls=":", label="restored weights")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean log-likelihood (nats)")
    ax.legend()
    return ax


def plot_feature_log_densities(estimator, x, feature_names=None, ax=None):
    """Bar chart of one row's :meth:`~skflow.MAFDensity.feature_log_densities`.

    The lowest bars are the features least expected given the others.

    Parameters
    ----------
    estimator : MAFDensity or MAFOutlierDetector (fitted)
    x : array-like of shape (n_features,) or (1, n_features)
        The row.
    feature_names : sequence of str, optional
        Defaults to ``feature_names_in_`` where the model has it.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from skflow import MAFOutlierDetector
    >>> from skflow.plotting import plot_feature_log_densities
    >>> X = np.random.RandomState(0).normal(size=(200, 3))
    >>> det = MAFOutlierDetector(n_flows=1, hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X)
    >>> ax = plot_feature_log_densities(det, [0.0, 4.0, 0.0])
    """
    import matplotlib.pyplot as plt
    import numpy as np

    row = np.asarray(x, dtype=np.float64).reshape(1, -1)
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:  # fitted on a DataFrame: score one, as its columns are named
        import pandas as pd

        row = pd.DataFrame(row, columns=names)
    values = estimator.feature_log_densities(row)[0]
    if feature_names is None:
        names = getattr(estimator, "feature_names_in_", None)
        feature_names = [str(n) for n in names] if names is not None else [f"x{i}" for i in range(len(values))]
    if len(feature_names) != len(values):
        raise ValueError(f"feature_names has {len(feature_names)} names for {len(values)} features")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.4 * len(values) + 1))
    order = np.argsort(values)
    ax.barh([feature_names[i] for i in order], values[order], color="C0")
    ax.set_xlabel("log p(feature | the other features)")
    ax.set_title("lowest: least expected given the rest")
    return ax
