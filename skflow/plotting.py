"""Plots of fitted models (needs matplotlib: ``pip install 'skflow[plot]'``)."""

from __future__ import annotations

from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_training_history"]


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
