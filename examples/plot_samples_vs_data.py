"""
Samples against data
====================

A pair plot of real rows of scikit-learn's wine data (standardised, four
features) and of draws from a MAF fitted to all 13 features.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

from skflow import MAFDensity

X = StandardScaler().fit_transform(load_wine().data)
est = MAFDensity(n_flows=3, hidden_layer_sizes=(32, 32), batch_size=32, random_state=0).fit(X)
S = est.sample(len(X), random_state=0)

cols = [0, 5, 6, 9]
fig, axes = plt.subplots(len(cols), len(cols), figsize=(7, 7))
for i, a in enumerate(cols):
    for j, b in enumerate(cols):
        ax = axes[i, j]
        if i == j:
            bins = np.linspace(-3, 3, 20)
            ax.hist(X[:, a], bins, alpha=0.5, density=True, label="data")
            ax.hist(S[:, a], bins, alpha=0.5, density=True, label="MAF samples")
        else:
            ax.scatter(X[:, b], X[:, a], s=4, alpha=0.6)
            ax.scatter(S[:, b], S[:, a], s=4, alpha=0.6)
        ax.set_xticks([])
        ax.set_yticks([])
axes[0, 0].legend(fontsize=7)
fig.suptitle("wine: data (blue) vs MAF samples (orange)")
plt.show()
