"""Rows that ``fit`` reads a chunk at a time: :class:`ChunkedRows`.

Wrapping data in :class:`ChunkedRows` asks :meth:`skflow.MAFDensity.fit`
(and :meth:`skflow.MAFOutlierDetector.fit`) to stream them instead of
holding them in memory: a numpy array or memmap (a memmap is read with
positioned reads, so its pages never stay mapped in the process), a Dask
array, or a Parquet file or directory (pyarrow).  With
``distributed=True`` the rows are this process's shard of data spread over
a ``torch.distributed`` process group, and the fit trains one model with
every rank (see the user guide on scaling).
"""

from __future__ import annotations

import mmap
import os
from numbers import Integral

import numpy as np

__all__ = ["ChunkedRows"]


class _ArrayReader:
    """Row ranges of an in-memory array, a Dask array or another sliceable array."""

    def __init__(self, array, chunk_rows):
        self.array = array
        n = array.shape[0]
        self.bounds = [(a, min(a + chunk_rows, n)) for a in range(0, n, chunk_rows)]

    def read(self, i):
        a, b = self.bounds[i]
        block = self.array[a:b]
        compute = getattr(block, "compute", None)  # a Dask array computes its block only
        return np.asarray(block if compute is None else compute())


class _MemmapReader(_ArrayReader):
    """Row ranges of a C-ordered memmap, read from its file: a mapped page
    counts in the process's resident memory until the kernel drops it,
    positioned reads do not map anything."""

    def __init__(self, array, chunk_rows):
        super().__init__(array, chunk_rows)
        self.path, self.offset, self.dtype = array.filename, array.offset, array.dtype
        self.row_bytes = array.dtype.itemsize * int(np.prod(array.shape[1:]))
        self.row_shape = array.shape[1:]

    def read(self, i):
        a, b = self.bounds[i]
        out = np.empty((b - a, *self.row_shape), dtype=self.dtype)
        with open(self.path, "rb", buffering=0) as f:
            f.seek(self.offset + a * self.row_bytes)
            view, done = memoryview(out).cast("B"), 0
            while done < len(view):
                got = f.readinto(view[done:])
                if not got:
                    raise ValueError(f"the memmap's file {self.path} ended before row {b}")
                done += got
        return out


class _ParquetReader:
    """Row groups of a Parquet file or dataset, one chunk each."""

    def __init__(self, source, columns):
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        dataset = source if isinstance(source, ds.Dataset) else ds.dataset(os.fspath(source), format="parquet")
        self.columns = list(dataset.schema.names if columns is None else columns)
        missing = [c for c in self.columns if c not in dataset.schema.names]
        if missing:
            raise ValueError(f"the Parquet data have no column(s) {missing}")
        self.groups = []  # (path, filesystem, row group, rows)
        for fragment in dataset.get_fragments():
            meta = pq.ParquetFile(fragment.path, filesystem=fragment.filesystem).metadata
            self.groups += [(fragment.path, fragment.filesystem, g, meta.row_group(g).num_rows)
                            for g in range(meta.num_row_groups) if meta.row_group(g).num_rows]

    def read(self, i):
        import pyarrow.parquet as pq

        path, filesystem, group, _ = self.groups[i]
        table = pq.ParquetFile(path, filesystem=filesystem).read_row_group(group, columns=self.columns)
        kinds = [f"{f.name} ({f.type})" for f in table.schema if not _numeric_arrow(f.type)]
        if kinds:
            raise ValueError(f"column(s) {', '.join(kinds)} of the Parquet data are not numeric")
        return np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                                for c in self.columns])


def _numeric_arrow(kind) -> bool:
    import pyarrow.types as pt

    return pt.is_integer(kind) or pt.is_floating(kind) or pt.is_boolean(kind)


def _is_parquet(source) -> bool:
    if isinstance(source, (str, os.PathLike)):
        return True
    try:
        import pyarrow.dataset as ds
    except ImportError:
        return False
    return isinstance(source, ds.Dataset)


class ChunkedRows:
    """Training rows read one chunk at a time, for data larger than memory.

    ``fit`` passes over the chunks in a new random order each epoch,
    shuffling the rows within each chunk, so only a chunk (and a bounded
    sample of rows, see the user guide on scaling) is in memory at once.
    Early stopping holds out whole chunks.

    Parameters
    ----------
    source : array-like, numpy memmap, Dask array, str, path or pyarrow Dataset
        A 2-D array of shape (n_samples, n_features), or a Parquet file or
        directory (its numeric columns, or ``columns``).  Arrays are cut
        into chunks of ``chunk_rows`` rows; Parquet data into their row
        groups.
    chunk_rows : int, default=65536
        Rows per chunk of an array.  A chunk is what ``fit`` holds and
        shuffles at once: larger chunks mix rows better.
    columns : list of str, default=None
        The Parquet columns to read, in this order (default: all).
    distributed : bool, default=False
        The rows are this process's shard of data spread over the ranks of
        ``torch.distributed``'s default process group (initialised by the
        caller, e.g. under ``torchrun``): every rank calls ``fit`` with its
        own shard and they train one model, averaging gradients.

    Attributes
    ----------
    n_rows : int
    n_features : int
    n_chunks : int
    feature_names : ndarray of str or None
        The Parquet columns (``fit`` records them as ``feature_names_in_``).

    Examples
    --------
    >>> import numpy as np
    >>> from skflow import ChunkedRows, MAFDensity
    >>> X = np.random.RandomState(0).normal(size=(4000, 2))
    >>> rows = ChunkedRows(X, chunk_rows=500)
    >>> rows.n_chunks
    8
    >>> est = MAFDensity(n_flows=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(rows)
    >>> est.score_samples(X[:3]).shape
    (3,)
    """

    def __init__(self, source, chunk_rows: int = 65536, *, columns=None, distributed: bool = False):
        if not isinstance(chunk_rows, Integral) or isinstance(chunk_rows, bool) or chunk_rows < 1:
            raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        self.source, self.chunk_rows, self.columns = source, int(chunk_rows), columns
        self.distributed = bool(distributed)
        self.feature_names = None
        if _is_parquet(source):
            self._reader = _ParquetReader(source, columns)
            self.n_rows = sum(g[3] for g in self._reader.groups)
            self.n_features = len(self._reader.columns)
            self.feature_names = np.asarray(self._reader.columns, dtype=object)
            return
        if columns is not None:
            raise ValueError("columns= selects Parquet columns; slice an array before wrapping it")
        if not hasattr(source, "shape") or not hasattr(source, "__getitem__"):
            source = np.asarray(source)
        if len(source.shape) != 2:
            raise ValueError(f"ChunkedRows needs 2-D data (n_samples, n_features), got shape {tuple(source.shape)}")
        is_file_memmap = (isinstance(source, np.memmap) and isinstance(source.base, mmap.mmap)
                          and source.flags.c_contiguous)
        self._reader = (_MemmapReader if is_file_memmap else _ArrayReader)(source, self.chunk_rows)
        self.n_rows, self.n_features = int(source.shape[0]), int(source.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_features)``."""
        return self.n_rows, self.n_features

    @property
    def chunk_sizes(self) -> list[int]:
        """Rows of each chunk."""
        if isinstance(self._reader, _ParquetReader):
            return [g[3] for g in self._reader.groups]
        return [b - a for a, b in self._reader.bounds]

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_sizes)

    def read(self, i: int) -> np.ndarray:
        """Chunk ``i`` as a float64 array of shape (rows, n_features), checked finite."""
        block = self._reader.read(i)
        if block.dtype.kind not in "biuf":
            raise ValueError(f"chunk {i} holds {block.dtype} values; ChunkedRows needs numbers")
        block = np.asarray(block, dtype=np.float64)
        if block.ndim != 2 or block.shape[1] != self.n_features:
            raise ValueError(f"chunk {i} has shape {block.shape}, expected (rows, {self.n_features})")
        if not np.isfinite(block).all():
            row = int(np.flatnonzero(~np.isfinite(block).all(1))[0]) + sum(self.chunk_sizes[:i])
            raise ValueError(f"row {row} (in chunk {i}) holds NaN or infinite values; "
                             "impute or drop them before fitting")
        return block

    def __repr__(self) -> str:
        kind = "Parquet data" if isinstance(self._reader, _ParquetReader) else type(self.source).__name__
        extra = ", distributed=True" if self.distributed else ""
        return f"ChunkedRows({kind}: {self.n_rows} rows x {self.n_features} features, {self.n_chunks} chunks{extra})"
