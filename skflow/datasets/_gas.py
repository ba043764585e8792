"""The UCI "Gas sensor array under dynamic gas mixtures" data (ethylene_CO.txt).

``read_ethylene_co`` parses the original text file in bounded memory,
``fetch_gas`` downloads and caches the UCI archive in the style of
scikit-learn's ``fetch_*`` functions, ``load_gas`` reads it from a path or
the cache, and ``gas_paper_split`` reproduces the MAF paper's split.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._base import get_data_home, to_frame

__all__ = [
    "ETHYLENE_CO_COLUMNS",
    "fetch_gas",
    "gas_paper_split",
    "load_gas",
    "read_ethylene_co",
]

GAS_URL = (
    "https://archive.ics.uci.edu/static/public/322/"
    "gas+sensor+array+under+dynamic+gas+mixtures.zip"
)
# No checksum of the UCI archive is published; set one here to enforce it.
GAS_ARCHIVE_SHA256: str | None = None
ETHYLENE_CO_ROWS = 4_208_261
ETHYLENE_CO_MEMBER = "ethylene_CO.txt"

# Sensor types in file order (UCI description; pairs of identical sensors).
_SENSOR_TYPES = ["TGS2602", "TGS2602", "TGS2600", "TGS2600",
                 "TGS2610", "TGS2610", "TGS2620", "TGS2620"] * 2
ETHYLENE_CO_COLUMNS = ["time_s", "co_ppm", "ethylene_ppm"] + [
    f"sensor{i + 1:02d}_{kind}" for i, kind in enumerate(_SENSOR_TYPES)
]
GAS_DISCRETE_COLUMNS = ["time_s", "co_ppm", "ethylene_ppm"]
_N_COLUMNS = len(ETHYLENE_CO_COLUMNS)
_CHUNK_ROWS = 100_000


def _count_lines(binary) -> int:
    count = 0
    for block in iter(lambda: binary.read(1 << 24), b""):
        count += block.count(b"\n")
        last = block
    # A file without a trailing newline still has a last row.
    return count + (1 if count and not last.endswith(b"\n") else 0)


def _parse(text_lines, out: np.ndarray, source: str) -> int:
    """Fill ``out`` from whitespace-separated lines; return the rows read."""
    header = next(text_lines, "")
    if not header.lstrip().lower().startswith("time"):
        raise ValueError(
            f"{source} does not look like ethylene_CO.txt: the first line should be the "
            f"header 'Time (seconds), CO conc (ppm), ...', got {header[:80]!r}"
        )
    row = 0
    while True:
        lines = list(itertools.islice(text_lines, _CHUNK_ROWS))
        if not lines:
            return row
        if row + len(lines) > out.shape[0]:
            raise ValueError(f"{source} has more rows than expected ({out.shape[0]})")
        try:
            block = np.loadtxt(lines, dtype=out.dtype, ndmin=2)
        except ValueError as exc:
            raise ValueError(
                f"{source}: cannot parse rows {row + 2}-{row + len(lines) + 1}: {exc}"
            ) from None
        if block.shape[1] != _N_COLUMNS:
            raise ValueError(
                f"{source}: expected {_N_COLUMNS} columns (time, 2 concentrations, 16 "
                f"sensors), found {block.shape[1]}"
            )
        out[row : row + len(block)] = block
        row += len(block)


def read_ethylene_co(path, dtype=np.float32, expected_rows: int | None = None) -> np.ndarray:
    """Read ``ethylene_CO.txt`` (UCI format) into an array.

    Memory stays bounded: the rows are counted in one binary pass, the output
    is allocated once, and the text is parsed in blocks of 100,000 lines.

    Parameters
    ----------
    path : str or path-like
        The text file: a header line, then 19 whitespace-separated numbers per
        row (time, CO and ethylene concentrations, 16 sensor readings).
    dtype : numpy dtype, default=np.float32
        float32 halves memory (4.2 M rows: 320 MB) and keeps the sensors' two
        decimals; the time column loses its last digit above about 10^5 s.
    expected_rows : int, optional
        Raise ``ValueError`` unless exactly this many data rows are found.

    Returns
    -------
    data : ndarray of shape (n_rows, 19)
        Columns as in :data:`ETHYLENE_CO_COLUMNS`.

    Examples
    --------
    >>> from skflow.datasets import read_ethylene_co
    >>> data = read_ethylene_co("ethylene_CO.txt")  # doctest: +SKIP
    >>> data.shape  # doctest: +SKIP
    (4208261, 19)
    """
    path = Path(path)
    with open(path, "rb") as f:
        n_rows = _count_lines(f) - 1
    if n_rows < 0:
        raise ValueError(f"{path} is empty")
    if expected_rows is not None and n_rows != expected_rows:
        raise ValueError(f"{path} has {n_rows} data rows, expected {expected_rows}")
    out = np.empty((n_rows, _N_COLUMNS), dtype=dtype)
    with open(path, encoding="ascii", errors="replace") as f:
        read = _parse(iter(f), out, str(path))
    return out[:read]


def _bunch(data: np.ndarray, source: str, as_frame: bool) -> Bunch:
    bunch = Bunch(
        data=data,
        feature_names=list(ETHYLENE_CO_COLUMNS),
        discrete_columns=list(GAS_DISCRETE_COLUMNS),
        source=source,
        DESCR=(
            "UCI 'Gas sensor array under dynamic gas mixtures', ethylene_CO.txt "
            "(Fonollosa et al. 2015, CC BY 4.0): time, CO and ethylene "
            "concentrations, 16 MOX sensor readings at 100 Hz."
        ),
    )
    bunch.frame = to_frame(data, bunch.feature_names) if as_frame else None
    return bunch


def gas_cache_path(data_home=None) -> Path:
    """Where :func:`fetch_gas` caches ethylene_CO (a ``.npy`` file; it may not exist yet)."""
    return get_data_home(data_home) / "gas" / "ethylene_CO.npy"


def load_gas(path=None, *, data_home=None, as_frame=False) -> Bunch:
    """Load ethylene_CO from a path or from :func:`fetch_gas`'s cache.

    Parameters
    ----------
    path : str or path-like, optional
        ``ethylene_CO.txt`` in the UCI format, or a ``.npy`` file written by
        :func:`fetch_gas`.  Without it the cache in ``data_home`` is used.
    data_home : str or path-like, optional
        See :func:`skflow.datasets.get_data_home`.
    as_frame : bool, default=False
        Also return a pandas DataFrame in ``frame``.

    Returns
    -------
    bunch : sklearn.utils.Bunch
        ``data`` (n_rows, 19) float32, ``feature_names``, ``discrete_columns``
        (time and the two concentrations, which the MAF paper drops),
        ``source``, ``frame``.

    Raises
    ------
    FileNotFoundError
        If no path is given and nothing is cached.

    Examples
    --------
    >>> from skflow.datasets import load_gas
    >>> gas = load_gas("ethylene_CO.txt", as_frame=True)  # doctest: +SKIP
    >>> gas.frame.columns[:3].tolist()  # doctest: +SKIP
    ['time_s', 'co_ppm', 'ethylene_ppm']
    """
    if path is None:
        cache = gas_cache_path(data_home)
        if not cache.exists():
            raise FileNotFoundError(
                f"no cached GAS data in {cache.parent}; run skflow.datasets.fetch_gas() "
                "to download it, or pass the path of ethylene_CO.txt"
            )
        return _bunch(np.load(cache, mmap_mode="r"), str(cache), as_frame)
    path = Path(path)
    if path.suffix == ".npy":
        data = np.load(path, mmap_mode="r")
    else:
        data = read_ethylene_co(path)
    return _bunch(data, str(path), as_frame)


def _download(url: str, target: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise OSError(
            f"could not download the GAS archive from {url}: {exc}. Without network "
            "access, download it elsewhere and use load_gas(path) or "
            "`skflow gas --data PATH`."
        ) from exc


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _extract_ethylene_co(archive: Path) -> np.ndarray:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.rsplit("/", 1)[-1] == ETHYLENE_CO_MEMBER]
            if not members:
                raise ValueError(
                    f"the archive has no {ETHYLENE_CO_MEMBER}; it holds {zf.namelist()[:10]}"
                )
            out = np.empty((ETHYLENE_CO_ROWS, _N_COLUMNS), dtype=np.float32)
            with zf.open(members[0]) as raw:
                text = io.TextIOWrapper(raw, encoding="ascii", errors="replace")
                n = _parse(iter(text), out, f"{archive.name}:{members[0]}")
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"the downloaded archive is corrupt or truncated: {exc}") from exc
    if n != ETHYLENE_CO_ROWS:
        raise ValueError(
            f"{ETHYLENE_CO_MEMBER} in the archive has {n} data rows, expected "
            f"{ETHYLENE_CO_ROWS}; the download is incomplete or not the UCI file"
        )
    return out


def fetch_gas(data_home=None, download_if_missing=True, *, as_frame=False) -> Bunch:
    """Download (once), verify and load the UCI GAS data (ethylene_CO.txt).

    The UCI archive is downloaded into ``data_home/gas``, checked (it must
    hold ``ethylene_CO.txt`` with the UCI header, 19 numeric columns and
    exactly 4,208,261 rows; and the archive's SHA-256 where one is known),
    and cached as ``ethylene_CO.npy`` (float32, 320 MB) so later calls load
    in a second.  Nothing is cached when a check fails.

    Parameters
    ----------
    data_home : str or path-like, optional
        Cache folder; default ``$SKFLOW_DATA`` or ``~/skflow_data``.
    download_if_missing : bool, default=True
        If False, raise ``OSError`` instead of downloading.
    as_frame : bool, default=False
        Also return a pandas DataFrame in ``frame``.

    Returns
    -------
    bunch : sklearn.utils.Bunch
        As :func:`load_gas`.

    Raises
    ------
    OSError
        Without network access (or with ``download_if_missing=False``) when
        nothing is cached.
    ValueError
        When the download is corrupt, truncated or not the UCI file.

    Examples
    --------
    >>> from skflow.datasets import fetch_gas
    >>> gas = fetch_gas()  # doctest: +SKIP
    >>> gas.data.shape  # doctest: +SKIP
    (4208261, 19)
    """
    cache = gas_cache_path(data_home)
    if not cache.exists():
        if not download_if_missing:
            raise OSError(f"GAS data not found in {cache.parent} and download_if_missing is False")
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache.parent, prefix=".download-") as tmp:
            archive = Path(tmp) / "gas.zip"
            _download(GAS_URL, archive)
            if GAS_ARCHIVE_SHA256 is not None and _sha256(archive) != GAS_ARCHIVE_SHA256:
                raise ValueError("the downloaded GAS archive's SHA-256 does not match")
            data = _extract_ethylene_co(archive)
            partial = Path(tmp) / "ethylene_CO.npy"
            np.save(partial, data)
            os.replace(partial, cache)
    return load_gas(cache, as_frame=as_frame)


def gas_paper_split(X, random_state=0, sample_fraction=0.25):
    """The MAF paper's GAS split.

    Take a random ``sample_fraction`` of the rows, then the last 10% of them
    as test set and the last 10% of the rest as validation set.  On the full
    file: 852,174 / 94,685 / 105,206 rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    random_state : int, RandomState instance or None, default=0
    sample_fraction : float, default=0.25

    Returns
    -------
    train, validation, test : ndarrays

    Examples
    --------
    >>> import numpy as np
    >>> from skflow.datasets import gas_paper_split
    >>> train, val, test = gas_paper_split(np.arange(4_208_261))
    >>> len(train), len(val), len(test)
    (852174, 94685, 105206)
    """
    rng = check_random_state(random_state)
    n = len(X)
    idx = rng.permutation(n)[: int(sample_fraction * n)]
    n_test = int(0.1 * len(idx))
    rest, test = idx[: len(idx) - n_test], idx[len(idx) - n_test :]
    n_val = int(0.1 * len(rest))
    train, val = rest[: len(rest) - n_val], rest[len(rest) - n_val :]
    take = X.iloc if hasattr(X, "iloc") else X
    return take[train], take[val], take[test]
