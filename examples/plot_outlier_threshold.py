"""
Outlier scores and the contamination threshold
==============================================

A MAF outlier detector fitted to mostly normal 2-D data: the histogram of
training scores with ``offset_`` for ``contamination=0.05``, and the
decision boundary (``decision_function == 0``) in the plane.
"""

import matplotlib.pyplot as plt
import numpy as np

from skflow import MAFOutlierDetector

rng = np.random.RandomState(0)
X = np.vstack([rng.normal(size=(600, 2)) * [1.5, 0.4], rng.normal(size=(400, 2)) * 0.5 + [2, 2]])
det = MAFOutlierDetector(contamination=0.05, n_flows=3, hidden_layer_sizes=(32, 32),
                         random_state=0).fit(X)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
ax1.hist(det.score_samples(X), 50)
ax1.axvline(det.offset_, color="k", ls="--", label="offset_")
ax1.set_xlabel("score_samples (log-density)")
ax1.legend()

xx, yy = np.meshgrid(np.linspace(-5, 5, 200), np.linspace(-3, 5, 200))
zz = det.decision_function(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
ax2.contourf(xx, yy, zz, levels=20, cmap="Blues_r")
ax2.contour(xx, yy, zz, levels=[0], colors="k")
flagged = det.predict(X) == -1
ax2.scatter(*X[~flagged].T, s=3, c="w")
ax2.scatter(*X[flagged].T, s=8, c="r", label="predicted outliers")
ax2.legend()
plt.tight_layout()
plt.show()
