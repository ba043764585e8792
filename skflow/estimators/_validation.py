"""Checks on what users pass in, and how a fit reports where it stopped."""

from __future__ import annotations

import os
import warnings
from numbers import Integral

import numpy as np

from ._point_masses import find_point_mass


def check_numeric_columns(X) -> None:
    """A clear error naming the first non-numeric column of a DataFrame."""
    columns, dtypes = getattr(X, "columns", None), getattr(X, "dtypes", None)
    if columns is None or dtypes is None or not hasattr(dtypes, "__iter__"):
        return
    for name, dtype in zip(columns, dtypes):
        if getattr(dtype, "kind", "O") not in "biuf":
            raise ValueError(f"column {name!r} is not numeric ({dtype}); encode it first, e.g. with "
                             "OneHotEncoder or OrdinalEncoder in a Pipeline, or model the table with "
                             "skflow.MixedDensity or skflow.MixedOutlierDetector (categorical columns included)")


def check_n_samples(n_samples, values_per_draw: int = 0) -> None:
    """A clear error for a number of draws that is not a non-negative int, or
    whose result (``values_per_draw`` float64 values each, with the working
    copies sampling needs) would not fit in this machine's memory."""
    if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, Integral):
        raise TypeError(f"n_samples must be an int, got {n_samples!r}")
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    needed = 3 * 8 * int(n_samples) * max(1, values_per_draw)  # the result, a float32 chunk copy, labels
    available = _available_memory()
    if available is not None and needed > available:
        raise ValueError(f"n_samples={n_samples} needs about {needed / 2**30:.1f} GiB, more than the "
                         f"{available / 2**30:.1f} GiB of memory available; draw in smaller batches")


def _available_memory() -> int | None:
    """Bytes of memory available to this process (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


class FewRowsWarning(UserWarning):
    """A fit on fewer rows than a full-covariance Gaussian needs: the model is mostly guesswork."""


def warn_if_few_rows(n_rows: int, n_features: int) -> None:
    """Warn when ``n_rows`` cannot determine a Gaussian in ``n_features`` dimensions."""
    if n_rows < n_features + 2:
        warnings.warn(f"fitting on {n_rows} rows of {n_features} features: fewer than n_features + 2, so "
                      "even one Gaussian's covariance is not determined by the data; the model's "
                      "densities are mostly the shrinkage and the architecture's guesses", FewRowsWarning,
                      stacklevel=4)


class PointMassWarning(UserWarning):
    """A column on no grid holds one value in many rows: a point mass, which no density can hold."""


#: Rows looked at for point masses (evenly spaced): enough for a share of 5 %.
POINT_MASS_SAMPLE = 100_000


def warn_if_point_masses(X: np.ndarray, steps: np.ndarray) -> None:
    """Warn when a column of ``X`` that is not dequantised (``steps`` 0) has a point mass."""
    sample = X[:: max(1, len(X) // POINT_MASS_SAMPLE)]
    found = []
    for j in np.flatnonzero(steps == 0):
        value = find_point_mass(sample[:, j])
        if value is not None:
            found.append(f"column {j} is {value:g} in {np.mean(sample[:, j] == value):.0%} of the rows")
    if found:
        warnings.warn(f"{'; '.join(found)}, and on no grid: a density has no finite height at such a point mass, "
                      "so the flow's log-density there grows as it trains and dominates held-out scores. "
                      "MixedDensity models point masses (its point_masses parameter); or leave the column out",
                      PointMassWarning, stacklevel=4)


def describe_stopping(est) -> str:
    """Where a fit stopped, in words (printed with ``verbose`` and by ``skflow fit``)."""
    run = est.n_iter_
    if not est.early_stopping:
        return f"trained {run} epochs (kept the last weights)"
    if getattr(est, "_fit_out_of_time", False):
        head = f"stopped at max_time={est.max_time:g} s in epoch {run}"
    elif est._fit_epochs < est._fit_epoch_limit:
        head = f"stopped early at epoch {run}"
    elif est.max_iter == "auto":
        head = f"reached the limit of max_iter='auto', {est._fit_epoch_limit} epochs"
    else:
        head = f"reached max_iter={est.max_iter} epochs"
    if est.best_epoch_ == run:
        return f"{head}; the last epoch was the best on validation"
    if np.ndim(est.best_epoch_) == 0 and est.best_epoch_ == 0:
        start = "the start"
        init = getattr(est, "init_", est.init)  # the start the fit made (the conditional estimators: init)
        if init == "gaussian" or (init == "gaussian_mixture" and getattr(est, "start_mixture_", (1,))[0] == 1):
            start = "the Gaussian start"
        elif init == "gaussian_mixture":
            start = f"the start at a mixture of {est.start_mixture_[0]} Gaussians"
        return f"{head}; no epoch beat {start} on validation, so {start} was kept"
    return f"{head}, best validation at epoch {est.best_epoch_} (restored)"


def describe_gaussian_weight(est) -> str | None:
    """What the Gaussian mixed into a fitted flow does to its scores, in words,
    where ``gaussian_weight="auto"`` gave it more than its floor (printed with
    ``verbose`` and by ``skflow fit``); None otherwise."""
    weight = getattr(est, "gaussian_weight_", 0.0)
    if est.gaussian_weight != "auto" or weight <= est._gaussian_weight_floor:
        return None
    if weight == 1.0:
        return ("the Gaussian of the training rows takes the whole weight (gaussian_weight_=1): what "
                "training kept did not score the validation rows clearly better than it, so the scores "
                "are the Gaussian's")
    return (f"the flow is mixed with the Gaussian of the training rows at weight {weight:.2f} "
            "(gaussian_weight_), chosen on the validation rows")
