"""Reading tables and saving or loading fitted models (what the command line uses).

Models are saved with :mod:`skops.io` (``.skops``: plain arrays and a list of
types, nothing runs on load) or with joblib (``.joblib``/``.pkl``: a pickle,
which runs whatever code the file holds when it is loaded, so only load
those from people you trust).
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["TRUSTED_TYPES", "atomic_write", "load_model", "read_frame", "read_table", "save_model", "to_stdout",
           "write_frame", "write_table"]

#: skflow's own types that a ``.skops`` file may hold (scikit-learn's own
#: estimators, a Pipeline or a StandardScaler, are trusted by skops itself).
TRUSTED_TYPES = [
    "skflow.estimators._categorical_chain.CategoricalChain",
    "skflow.estimators._conditional_mixture.ConditionalGaussianMixture",
    "skflow.estimators.classifier.MAFClassifier",
    "skflow.estimators.density.MAFDensity",
    "skflow.estimators.gaussian_density.GaussianDensity",
    "skflow.estimators.mixed.MixedDensity",
    "skflow.estimators.mixed_outlier.MixedOutlierDetector",
    "skflow.estimators.outlier.MAFOutlierDetector",
    "skflow.estimators.regressor.MAFRegressor",
    "skflow.preprocessing.CorrelationFilter",
    "skflow.preprocessing.DropColumns",
]


def read_table(path):
    """A CSV (header optional), NPY or Parquet file as ``(2-D float array, column names or None)``;
    ``"-"`` reads a CSV table from standard input.

    Raises
    ------
    FileNotFoundError, ValueError
        With the file, and for a CSV the 1-based row and column of the
        first cell that is empty or not a number (rows counted after the
        header).
    """
    if to_stdout(path):
        return _read_stdin()
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
                raise ValueError(f"{path}: column {name!r} is not numeric; fit the table with "
                                 "skflow fit --mixed (MixedDensity), or encode it first")
        data = frame.to_numpy(dtype=float)
    else:
        data, names = _read_csv(path)
    data = np.asarray(data, dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    return data, names


def read_frame(path):
    """A CSV (with a header) or Parquet table as a pandas DataFrame, text
    columns kept as text (for :class:`~skflow.MixedDensity`); ``"-"`` reads
    CSV from standard input."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ValueError("tables with text columns need pandas: pip install 'skflow-density[tables]'") from exc
    if to_stdout(path):
        return pd.read_csv(sys.stdin)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() == ".npy":
        raise ValueError(f"{path}: an NPY file holds numbers only; a table with text columns is a CSV or Parquet file")
    return pd.read_csv(path)


def write_frame(path, frame, overwrite=True) -> None:
    """Write a DataFrame as CSV to ``path`` (atomically) or to standard output for ``None`` or "-"."""
    if to_stdout(path):
        frame.to_csv(sys.stdout, index=False)
        return
    with atomic_write(path, overwrite=overwrite) as f:
        f.write(frame.to_csv(index=False).encode())


def _read_stdin():
    """A CSV table from standard input (``-``), parsed as a CSV file is."""
    text = sys.stdin.read()
    fd, tmp = tempfile.mkstemp(suffix=".csv")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            data, names = _read_csv(tmp)
        except ValueError as exc:
            raise ValueError(str(exc).replace(tmp, "<stdin>")) from None
    finally:
        os.unlink(tmp)
    if data.size == 0:
        raise ValueError("<stdin>: no rows")
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
                    hint = "" if not cell.strip() else "; a table with text columns: skflow fit --mixed (MixedDensity)"
                    return f"{path}: row {number}, column {j}: {what} (1-based, {where}){hint}"
    return f"{path}: not a numeric table"


@contextlib.contextmanager
def atomic_write(path, overwrite=True):
    """Open a binary file that appears at ``path`` whole, or not at all.

    The bytes go to a temporary file in ``path``'s folder, which is flushed
    and synced to disk when the block ends and then takes ``path``'s name in
    one step (``os.replace``).  A process killed while writing leaves the
    file that was there before, complete, and two processes writing the same
    path leave one of the two files, not a mix of both.  With
    ``overwrite=False`` the name is taken only if nothing has it by then (a
    hard link, which fails if the name exists): of two such writers exactly
    one succeeds and the other gets :class:`FileExistsError`.

    Parameters
    ----------
    path : str or path-like
        The file to write; its folder is created if missing.
    overwrite : bool, default=True
        Whether an existing file at ``path`` is replaced.

    Yields
    ------
    file : binary file object
        Write the content to it; do not close it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(f"{path} exists") from None
            os.unlink(tmp)
        _sync_folder(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sync_folder(folder) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_table(path, data, header, overwrite=True) -> None:
    """Write a 2-D array as CSV with a header line to ``path`` (atomically, see
    :func:`atomic_write`), or to standard output for ``None`` or "-"."""
    if to_stdout(path):
        np.savetxt(sys.stdout, data, delimiter=",", header=",".join(header), comments="", fmt="%.10g")
        return
    with atomic_write(path, overwrite=overwrite) as f:
        np.savetxt(f, data, delimiter=",", header=",".join(header), comments="", fmt="%.10g")


def to_stdout(path) -> bool:
    """Whether an output path means standard output (None or "-")."""
    return path in (None, "-")


def save_model(model, path, overwrite=True) -> None:
    """Save with skops for a ``.skops`` path, else with joblib.

    The file is written atomically (:func:`atomic_write`): a kill during the
    save leaves the previous file intact, and concurrent saves to one path
    leave one whole model.  With ``overwrite=False`` an existing file is
    kept and :class:`FileExistsError` raised, also when another process
    creates it during the save.
    """
    path = Path(path)
    with atomic_write(path, overwrite=overwrite) as f:
        if path.suffix.lower() == ".skops":
            import skops.io

            skops.io.dump(model, f)
        else:
            import joblib

            joblib.dump(model, f)


def load_model(path, trusted=None):
    """Load a model saved by :func:`save_model` (or ``joblib.dump`` / ``skops.io.dump``):
    anything with ``score_samples`` (a density, outlier detector, classifier
    or a pipeline ending in one) or ``log_prob`` (a :class:`~skflow.MAFRegressor`).

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
    if not (hasattr(model, "score_samples") or hasattr(model, "log_prob")):
        raise ValueError(f"{path}: holds a {type(model).__name__}, not a density model")
    return model
