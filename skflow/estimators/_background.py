"""The background density of a likelihood ratio, shared by the outlier detectors."""

from __future__ import annotations

from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .gaussian_density import GaussianDensity


def fitted_background(background, rows, random_state, what="rows"):
    """``background`` cloned and fitted to ``rows`` (a :class:`GaussianDensity`
    when ``background`` is None); without rows, ``background`` itself, which
    must then be fitted (None stays None)."""
    if rows is None:
        if background is None:
            return None
        try:
            check_is_fitted(background)
        except NotFittedError:
            raise ValueError(f"background is not fitted: fit it first, or pass the {what} to fit it on "
                             "as X_background") from None
        return background
    template = GaussianDensity(random_state=random_state) if background is None else background
    return clone(template).fit(rows)
