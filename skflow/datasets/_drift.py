"""The UCI "Gas Sensor Array Drift" data (Vergara et al. 2012), CSV layout.

Real MOX gas-sensor recordings from the same lab and sensor types as the GAS
data of the MAF paper: 128 features (16 sensors x 8 features), many of them
highly correlated, which makes it a good stand-in for the GAS workflow.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._base import find_shared_data, to_frame

__all__ = ["load_gas_drift"]

_FEATURES = ["dR", "dR_norm", "ema_rise_0.001", "ema_rise_0.01", "ema_rise_0.1",
             "ema_decay_0.001", "ema_decay_0.01", "ema_decay_0.1"]
DRIFT_FEATURE_NAMES = ["concentration"] + [
    f"s{sensor:02d}_{feat}" for sensor in range(1, 17) for feat in _FEATURES
]
SHARED_NAME = "uci_gas_sensor_array_drift"


def load_gas_drift(path=None, *, batches=None, as_frame=False) -> Bunch:
    """Load the gas sensor array drift batches.

    Parameters
    ----------
    path : str or path-like, optional
        Folder of ``batchN.csv`` files (no header; gas name, concentration,
        128 features).  Default: ``uci_gas_sensor_array_drift`` in the shared
        data folder (see :func:`skflow.datasets.find_shared_data`).
    batches : list of int, optional
        Which batches to read (default: all present, in order).
    as_frame : bool, default=False
        Also return a pandas DataFrame (with the gas name) in ``frame``.

    Returns
    -------
    bunch : sklearn.utils.Bunch
        ``data`` (n, 129) float64: concentration then the 128 features;
        ``target``: gas names; ``batch``: batch number of each row;
        ``feature_names``; ``discrete_columns`` (``["concentration"]``, the
        column to drop before density estimation); ``source``; ``frame``.

    Raises
    ------
    FileNotFoundError
        If the folder (or a requested batch) is missing.

    Examples
    --------
    >>> from skflow.datasets import load_gas_drift
    >>> drift = load_gas_drift(batches=[1])  # doctest: +SKIP
    >>> drift.data.shape  # doctest: +SKIP
    (445, 129)
    """
    folder = Path(path) if path is not None else find_shared_data(SHARED_NAME)
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(
            f"gas drift data not found (looked for {SHARED_NAME}); pass its folder as path"
        )
    files = {int(re.findall(r"\d+", f.stem)[0]): f for f in folder.glob("batch*.csv")}
    wanted = sorted(files) if batches is None else list(batches)
    missing = [b for b in wanted if b not in files]
    if missing or not wanted:
        raise FileNotFoundError(f"batches {missing or 'any'} not found in {folder}")
    data, target, batch = [], [], []
    for b in wanted:
        names = np.loadtxt(files[b], delimiter=",", usecols=0, dtype=str, ndmin=1)
        values = np.loadtxt(files[b], delimiter=",", usecols=range(1, 130), ndmin=2)
        data.append(values)
        target.append(names)
        batch.append(np.full(len(values), b))
    bunch = Bunch(
        data=np.concatenate(data),
        target=np.concatenate(target),
        batch=np.concatenate(batch),
        feature_names=list(DRIFT_FEATURE_NAMES),
        discrete_columns=["concentration"],
        source=str(folder),
        DESCR="UCI Gas Sensor Array Drift (Vergara et al. 2012, CC BY 4.0)",
    )
    bunch.frame = None
    if as_frame:
        bunch.frame = to_frame(bunch.data, bunch.feature_names)
        bunch.frame.insert(0, "gas", bunch.target)
    return bunch
