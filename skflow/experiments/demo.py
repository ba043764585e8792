"""The ``skflow demo``: two moons, GaussianMixture against three flows."""

from __future__ import annotations

import numpy as np

from .. import MAFDensity


def run_demo(verbose: bool = False, print_fn=print) -> dict:
    """Two moons: GaussianMixture with 1 and 10 components against the affine,
    spline and affine_spline flows (5 layers of 2x64), test log-likelihoods
    printed and returned by name."""
    from sklearn.datasets import make_moons
    from sklearn.mixture import GaussianMixture

    X, _ = make_moons(4000, noise=0.05, random_state=0)
    X_test, _ = make_moons(2000, noise=0.05, random_state=1)
    print_fn("two moons (scikit-learn's make_moons), 4,000 training rows")
    scores, results = {}, {}
    for k in (1, 10):
        gm = GaussianMixture(k, random_state=0).fit(X)
        scores[k] = gm.score(X_test)
        results[f"GaussianMixture({k})"] = scores[k]
        print_fn(f"{f'GaussianMixture({k:2d})':<29}test log-likelihood {scores[k]:7.3f}")
    for label, layer_type in (("MAFDensity(5)", "affine"), ("MAFDensity(5, spline)", "spline"),
                              ("MAFDensity(5, affine_spline)", "affine_spline")):
        maf = MAFDensity(n_flows=5, hidden_layer_sizes=(64, 64), layer_type=layer_type, random_state=0,
                         verbose=1 if verbose else 0).fit(X)
        ours = results[label] = maf.score(X_test)
        gap = ours - scores[10]
        if maf.init_ == "gaussian_mixture":
            k, covariance = maf.start_mixture_
            kept = "kept as it was" if maf.best_epoch_ == 0 else "then trained beyond it"
            start = f"a cross-validated mixture of {k} {covariance} Gaussians, {kept}"
        else:  # more rows than the mixture start takes
            start = f"the identity, on {len(X):,} rows"
        print_fn(f"{label:<29}test log-likelihood {ours:7.3f}: {abs(gap):.3f} nats per row "
                 f"{'above' if gap > 0 else 'below'} GaussianMixture(10) (start: {start})")
    print_fn(f"five samples of the affine_spline flow:\n{np.round(maf.sample(5, random_state=0), 3)}")
    return results
