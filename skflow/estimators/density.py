"""Density estimation with a Masked Autoregressive Flow."""

from __future__ import annotations

from numpy.typing import ArrayLike
from sklearn.base import DensityMixin

from ._docs import ENSEMBLE_PARAMETERS_DOC, FLOW_ATTRIBUTES_DOC, MIXTURE_ATTRIBUTES_DOC, SCALING_ATTRIBUTES_DOC, flow_parameters_doc
from ._unconditional import UnconditionalMAF


class MAFDensity(DensityMixin, UnconditionalMAF):
    __doc__ = f"""Masked Autoregressive Flow density estimator.

    A stack of MADE-based affine autoregressive layers (Papamakarios et al.
    2017) over a standard normal, trained by maximum likelihood with Adam.
    Exact log-densities cost one network pass per layer; sampling goes one
    feature at a time (computing each hidden unit once), which makes a drawn
    row several times dearer than a scored one.  Numpy in and out, PyTorch inside, on the CPU or a CUDA device.

    Parameters
    ----------
    {flow_parameters_doc()}

    {ENSEMBLE_PARAMETERS_DOC.strip()}

    Attributes
    ----------
    {FLOW_ATTRIBUTES_DOC.strip()}

    {MIXTURE_ATTRIBUTES_DOC.strip()}

    {SCALING_ATTRIBUTES_DOC.strip()}

    covariance_shrinkage_ : float
        With ``init="gaussian"``: the share of the start's covariance moved
        onto a multiple of the identity, chosen by cross-validation.

    See Also
    --------
    MAFOutlierDetector : The same model as an outlier detector.
    sklearn.mixture.GaussianMixture : A mixture-of-Gaussians density.
    sklearn.neighbors.KernelDensity : Kernel density estimation.

    References
    ----------
    G. Papamakarios, T. Pavlakou and I. Murray, "Masked Autoregressive Flow
    for Density Estimation", NeurIPS 2017.

    M. Germain, K. Gregor, I. Murray and H. Larochelle, "MADE: Masked
    Autoencoder for Distribution Estimation", ICML 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from skflow import MAFDensity
    >>> X = np.random.RandomState(0).normal(size=(500, 2))
    >>> est = MAFDensity(n_flows=2, hidden_layer_sizes=(16,), max_iter=5,
    ...                  random_state=0).fit(X)
    >>> est.score_samples(X[:3]).shape
    (3,)
    >>> est.sample(4, random_state=0).shape
    (4, 2)
    """

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Mean log-likelihood of ``X`` (nats per row); higher is better.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return float(self.score_samples(X).mean())
