"""Reading tables and saving or loading fitted models (what the command line uses).

Models are saved with :mod:`skops.io` (``.skops``: plain arrays and a list of
types, nothing runs on load) or with joblib (``.joblib``/``.pkl``: a pickle,
which runs whatever code the file holds when it is loaded, so only load
those from people you trust).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

__all__ = ["TRUSTED_TYPES", "load_model", "read_table", "save_model", "to_stdout", "write_table"]

#: skflow's own types that a ``.skops`` file may hold (scikit-learn's own
#: estimators, a Pipeline or a StandardScaler, are trusted by skops itself).
TRUSTED_TYPES = [
    "skflow.estimators.classifier.MAFClassifier",
    "skflow.estimators.density.MAFDensity",
    "skflow.estimators.outlier.MAFOutlierDetector",
    "skflow.estimators.regressor.MAFRegressor",
    "skflow.preprocessing.CorrelationFilter",
    "skflow.preprocessing.DropColumns",
]


def read_table(path):
    """A CSV (header optional), NPY or Parquet file as ``(2-D float array, column names or None)``.

    Raises
    ------
    FileNotFoundError, ValueError
        With the file, and for a CSV the 1-based row and column of the
        first cell that is empty or not a number (rows counted after the
        header).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    names = None
    if suffix == ".npy":
        data = np.load(path, allow_pickle=False)
    elif suffix in (".parquet", ".pq"):
        try:
            import pandas as pd
        except ImportError as exc:
            raise ValueError("reading Parquet needs pandas and pyarrow") from exc
        frame = pd.read_parquet(path)
        names = [str(c) for c in frame.columns]
        for name, dtype in zip(names, frame.dtypes):
            if getattr(dtype, "kind", "O") not in "biuf":
                raise ValueError(f"{path}: column {name!r} is not numeric; encode it first "
                                 "(e.g. with scikit-learn's OneHotEncoder)")
        data = frame.to_numpy(dtype=float)
    else:
        data, names = _read_csv(path)
    data = np.asarray(data, dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    return data, names


def _read_csv(path):
    with open(path, newline="") as f:
        first = f.readline()
    delimiter = "," if "," in first else None
    header = None
    try:
        np.asarray(first.replace(",", " ").split(), dtype=float)
    except ValueError:
        header = [h.strip() for h in (first.split(",") if delimiter else first.split())]
    try:
        data = np.loadtxt(path, delimiter=delimiter, skiprows=int(header is not None), ndmin=2)
    except ValueError:
        raise ValueError(_bad_cell(path, delimiter, header is not None)) from None
    if header is not None and len(header) != data.shape[1]:
        raise ValueError(f"{path}: the header names {len(header)} columns, the rows have {data.shape[1]}")
    return data, header


def _bad_cell(path, delimiter, has_header):
    """Where a CSV stops being a numeric table, in words."""
    with open(path, newline="") as f:
        rows = csv.reader(f) if delimiter else (line.split() for line in f)
        width = None
        for i, row in enumerate(rows):
            if has_header and i == 0:
                continue
            number = i + (0 if has_header else 1)  # 1-based, header excluded
            if not row:
                continue
            if width is not None and len(row) != width:
                return f"{path}: row {number} has {len(row)} columns, the rows before it {width}"
            width = len(row)
            for j, cell in enumerate(row, start=1):
                try:
                    float(cell)
                except ValueError:
                    what = "an empty cell (missing value)" if not cell.strip() else f"{cell.strip()!r} is not a number"
                    where = "rows counted after the header" if has_header else "no header"
                    return f"{path}: row {number}, column {j}: {what} (1-based, {where})"
    return f"{path}: not a numeric table"


def write_table(path, data, header) -> None:
    """Write a 2-D array as CSV with a header line to ``path``, or to standard output for ``None`` or "-"."""
    target = sys.stdout
    if not to_stdout(path):
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(target, data, delimiter=",", header=",".join(header), comments="", fmt="%.10g")


def to_stdout(path) -> bool:
    """Whether an output path means standard output (None or "-")."""
    return path in (None, "-")


def save_model(model, path) -> None:
    """Save with skops for a ``.skops`` path, else with joblib."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".skops":
        import skops.io

        skops.io.dump(model, path)
    else:
        import joblib

        joblib.dump(model, path)


def load_model(path, trusted=None):
    """Load a model saved by :func:`save_model` (or ``joblib.dump`` / ``skops.io.dump``).

    A ``.skops`` file loads only if every type in it is trusted: skops's
    defaults, :data:`TRUSTED_TYPES` and ``trusted``.  Any other file is
    unpickled with joblib, which runs whatever code it holds: only load
    such files from people you trust.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix.lower() == ".skops":
        import skops.io

        try:
            untrusted = skops.io.get_untrusted_types(file=path)
        except Exception:  # skops raises many kinds on a foreign file
            raise ValueError(f"{path}: not a model saved with skops") from None
        allowed = set(TRUSTED_TYPES) | set(trusted or ())
        unknown = [t for t in untrusted if t not in allowed]
        if unknown:
            raise ValueError(f"{path}: holds types skflow does not trust: {', '.join(unknown)}; if you "
                             "trust the file, load it with skops.io.load(path, trusted=[...])")
        model = skops.io.load(path, trusted=untrusted)
    else:
        import joblib

        try:
            model = joblib.load(path)
        except Exception:  # joblib raises many kinds on a foreign file
            raise ValueError(f"{path}: not a model saved with joblib (or a damaged file)") from None
    if not hasattr(model, "score_samples"):
        raise ValueError(f"{path}: holds a {type(model).__name__}, not a density model")
    return model
