"""
Training and validation curves
==============================

Fit a MAF to two moons and plot the mean log-likelihood per epoch: the
training curve (batch statistics) and the held-out validation curve that
early stopping watches; the dotted line marks the restored weights.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import make_moons

from skflow import MAFDensity
from skflow.plotting import plot_training_history

X, _ = make_moons(2000, noise=0.05, random_state=0)
est = MAFDensity(n_flows=4, hidden_layer_sizes=(32, 32), max_iter=60, random_state=0).fit(X)
ax = plot_training_history(est)
ax.set_title(f"MAF(4) on two moons: {est.n_iter_} epochs")
plt.tight_layout()
plt.show()
