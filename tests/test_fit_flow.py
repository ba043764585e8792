"""fit_flow, the one training call every estimator makes: a start weighed against a rival."""

import numpy as np
import torch

from skflow.estimators._fitting import GaussianStart, fit_flow
from skflow.nn import TrainingConfig, build_maf


def _setup(seed=0):
    rng = np.random.RandomState(seed)
    a = rng.normal(size=400)
    x = torch.from_numpy(np.c_[a, 0.5 * a + rng.normal(size=400)]).float()
    flow = build_maf(2, n_flows=2, hidden_sizes=(8,), gaussian_start=True,
                     generator=torch.Generator().manual_seed(seed))
    rows = dict(validation_rows=np.arange(300, 400), training_rows=np.arange(300))
    return flow, x, rows


def _fit(flow, x, rows, rival, log=None):
    return fit_flow(flow, x, training=TrainingConfig(max_epochs=3, batch_size=100, tune_threads=False),
                    generator=torch.Generator().manual_seed(0), start=GaussianStart(), rival=rival,
                    log=log, **rows)


def test_no_training_where_the_start_does_not_score_above_the_rival():
    flow, x, rows = _setup()
    layers = [p.detach().clone() for p in flow.transforms[1:].parameters()]
    said = []
    assert _fit(flow, x, rows, rival=np.inf, log=said.append) is None
    assert len(said) == 1 and said[0].endswith("not above inf: nothing trained from it")
    for before, after in zip(layers, flow.transforms[1:].parameters()):
        torch.testing.assert_close(before, after)  # the autoregressive layers untouched


def test_training_from_a_start_that_scores_above_the_rival():
    flow, x, rows = _setup()
    reference, _, _ = _setup()  # the same flow: the start's held-out score
    GaussianStart().fit(reference, x, None, torch.arange(300))
    with torch.no_grad():
        start_score = reference.log_prob(x[300:]).mean().item()
    result = _fit(flow, x, rows, rival=start_score - 0.5)
    assert result is not None and result.n_epochs == 3
    assert result.best_validation_score >= start_score  # kept what beat the start, or the start
