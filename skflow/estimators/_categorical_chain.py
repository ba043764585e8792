"""The categorical part of a mixed table's density: an autoregressive chain.

``P(c_1, ..., c_K) = P(c_1) P(c_2 | c_1) ... P(c_K | c_1..c_{K-1})``: the
first factor is the smoothed frequency of each category, every later one a
multinomial logistic regression on the one-hot codes of the columns before
it, mixed with the uniform distribution by the weight the same smoothing
gives (``m/2 / (n + m/2)`` for ``m`` categories and ``n`` rows), so that a
category never seen in training (a declared one) keeps a little
probability.  Each factor sums to one over its column's categories, so the
chain does over every combination (the tests enumerate it).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

__all__ = ["CategoricalChain", "one_hot"]

#: Pseudo-count of each category in the first column's frequencies (Jeffreys' prior).
SMOOTHING = 0.5


def one_hot(codes: np.ndarray, sizes) -> np.ndarray:
    """The codes of each column (``codes[:, j]`` in ``range(sizes[j])``) as one-hot blocks, float64."""
    out = np.zeros((len(codes), int(sum(sizes))))
    offset = 0
    for j, size in enumerate(sizes):
        out[np.arange(len(codes)), offset + codes[:, j]] = 1.0
        offset += size
    return out


class CategoricalChain:
    """Fit with the integer codes of K categorical columns (``sizes[j]``
    categories in column j); ``log_prob`` and ``sample`` them."""

    def __init__(self, sizes, C=1.0, random_state=None):
        self.sizes, self.C, self.random_state = [int(s) for s in sizes], C, random_state

    def fit(self, codes: np.ndarray):
        counts = np.bincount(codes[:, 0], minlength=self.sizes[0]) + SMOOTHING
        self.first_ = np.log(counts / counts.sum())
        self.uniform_weights_ = [SMOOTHING * m / (len(codes) + SMOOTHING * m) for m in self.sizes]
        self.factors_ = []
        for j in range(1, len(self.sizes)):
            seen = np.unique(codes[:, j])
            if len(seen) == 1:  # one category in training: probability one (a constant column)
                self.factors_.append(int(seen[0]))
                continue
            model = LogisticRegression(C=self.C, max_iter=1000)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(one_hot(codes[:, :j], self.sizes[:j]), codes[:, j])
            self.factors_.append(model)
        return self

    def _log_factor(self, j: int, before: np.ndarray) -> np.ndarray:
        """Rows' log-probabilities of every category of column j (j >= 1), shape (n, sizes[j])."""
        factor = self.factors_[j - 1]
        p = np.zeros((len(before), self.sizes[j]))
        if isinstance(factor, int):
            p[:, factor] = 1.0
        else:
            p[:, factor.classes_] = factor.predict_proba(one_hot(before, self.sizes[:j]))
        weight = self.uniform_weights_[j]
        return np.log((1.0 - weight) * p + weight / self.sizes[j])

    def log_prob(self, codes: np.ndarray) -> np.ndarray:
        total = self.first_[codes[:, 0]].copy()
        for j in range(1, len(self.sizes)):
            total += self._log_factor(j, codes[:, :j])[np.arange(len(codes)), codes[:, j]]
        return total

    def sample(self, n: int, rng: np.random.RandomState, given: np.ndarray | None = None) -> np.ndarray:
        """``n`` draws of every column's code; ``given`` (shape (n, k)) fixes
        the first k columns' codes and draws the rest given them."""
        codes = np.zeros((n, len(self.sizes)), dtype=np.int64)
        k = 0 if given is None else given.shape[1]
        if k:
            codes[:, :k] = given
        else:
            codes[:, 0] = rng.choice(self.sizes[0], size=n, p=np.exp(self.first_))
        for j in range(max(k, 1), len(self.sizes)):
            p = np.exp(self._log_factor(j, codes[:, :j]))
            cumulative = np.cumsum(p / p.sum(1, keepdims=True), axis=1)
            codes[:, j] = np.minimum((rng.uniform(size=(n, 1)) > cumulative).sum(1), self.sizes[j] - 1)
        return codes
