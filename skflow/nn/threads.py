"""How many CPU threads torch's operations get during a fit or a scoring call.

A flow's operations are small: a training step at batch 256 is a few
hundred microseconds of matrix products.  Split over threads, every
operation waits for its slowest thread, and on a machine whose cores are
busy with other processes that thread may be descheduled for a whole time
slice, so more threads can make a small fit slower (the threads guide and
``benchmarks/contention.py`` have the numbers).

So the fit loop times its steps and keeps the thread count that runs them
fastest (:class:`ThreadTuner`), and small scoring calls run in one thread
(:func:`threads_for_rows`).  The count is set for the calling thread only
and the caller's count comes back afterwards (:func:`intra_op_threads`):
the user's torch settings are never changed.  ``torch.set_num_threads``
cannot do that: besides the calling thread's OpenMP and MKL counts it sets
the process-wide count that every thread copies when it first runs a torch
operation, so a thread of the user's starting while a skflow call holds
one thread would keep one thread for good.  :func:`set_thread_local_count`
sets the two per-thread counts alone, through the OpenMP runtime and the
MKL that torch itself loaded.  The user's ``torch.set_num_threads`` (or the thread budget
joblib gives its workers through ``OMP_NUM_THREADS``) is the upper bound.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import statistics
import time

import torch

__all__ = ["ThreadTuner", "intra_op_threads", "set_thread_local_count", "threads_for_rows"]


def _local_setters():
    """``omp_set_num_threads`` and MKL's ``MKL_Set_Num_Threads_Local`` as
    loaded by torch, or None where this torch build does not expose them."""
    try:
        omp = ctypes.CDLL(None).omp_set_num_threads
    except (AttributeError, OSError):
        return None
    omp.argtypes, omp.restype = [ctypes.c_int], None
    mkl = None
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        mkl = lib.MKL_Set_Num_Threads_Local
        mkl.argtypes, mkl.restype = [ctypes.c_int], ctypes.c_int
    except (AttributeError, OSError):
        if torch.backends.mkl.is_available():
            return None  # an MKL we cannot reach would keep its own count
    return omp, mkl


_SETTERS = _local_setters() if torch.__config__.parallel_info().find("backend: OpenMP") >= 0 else None


def set_thread_local_count(n: int) -> None:
    """Let torch's CPU operations in the calling thread use ``n`` threads.

    Other threads, and threads started later, keep theirs: only the calling
    thread's OpenMP and MKL counts change.  Where torch does not expose
    them (another parallel backend, another platform), this falls back to
    ``torch.set_num_threads``, which also changes the process-wide count.
    """
    n = max(1, int(n))
    if _SETTERS is None:
        torch.set_num_threads(n)
        return
    torch.get_num_threads()  # torch's first call in a thread would overwrite the counts set below
    omp, mkl = _SETTERS
    omp(n)
    if mkl is not None:
        mkl(n)


@contextlib.contextmanager
def intra_op_threads(n: int | None):
    """Within the block, torch's CPU operations use at most ``n`` threads.

    Parameters
    ----------
    n : int or None
        The limit; None, or a limit at or above the current count, changes
        nothing.  The previous count is restored afterwards, also on errors.
    """
    before = torch.get_num_threads()
    if n is None or n >= before:
        yield
        return
    set_thread_local_count(n)
    try:
        yield
    finally:
        set_thread_local_count(before)


#: Scoring or sampling fewer rows than this runs in one thread: the calls
#: are a few milliseconds, where thread hand-offs cost as much as they save.
SMALL_CALL_ROWS = 4096


def threads_for_rows(n_rows: int) -> int | None:
    """The thread limit for a scoring or sampling call.

    Parameters
    ----------
    n_rows : int
        Rows the call processes.

    Returns
    -------
    limit : int or None
        1 below :data:`SMALL_CALL_ROWS` rows, else None (the caller's own
        count); for :func:`intra_op_threads`.
    """
    return 1 if n_rows < SMALL_CALL_ROWS else None


#: The last choice per (thread budget, work size), so that the next fit of
#: the same size (a search's next candidate, a benchmark's next round)
#: starts from it instead of probing again.  Only timing choices live here.
_REMEMBERED: dict[tuple[int, int], int] = {}


class ThreadTuner:
    """Chooses, by timing, the thread count for a step that repeats.

    The candidates are the caller's thread count, then halving it down to
    one thread (2 -> [2, 1]; 8 -> [8, 4, 2, 1]).  After a warm-up step, each
    candidate in turn runs ``probe_steps`` steps and is scored by its mean
    time per row (on a busy machine a multi-threaded step is now and then
    fast and often very slow: the mean is what a fit pays).  Going down the
    ladder stops at the first candidate that is not 5 % faster than the best
    so far, and a candidate is dropped after one step that is 25 % slower.
    The choice is probed again every ``reprobe_every`` steps, and at once
    when steps become twice as slow as when it was chosen (another process
    took the cores).

    ``work`` (e.g. rows per step x parameters) names the step's size: a
    tuner for a size chosen before in this process starts from that choice
    and only probes again on the schedule above.

    Use :meth:`step` as a context manager around each step, giving the
    number of rows it processes; :meth:`close` restores the caller's count.

    Parameters
    ----------
    max_threads : int or None, default=None
        The largest count tried; None: torch's current count.
    probe_steps : int, default=3
        Timed steps per candidate.
    reprobe_every : int, default=200
        Steps between two probes of the choice.
    work : float or None, default=None
        The step's size, the key under which the choice is remembered for
        the process's next tuner; None: not remembered.

    Attributes
    ----------
    ladder : list of int
        The candidate counts, in the order they are tried.
    history : list of (int, float)
        Each finished probe's thread count and mean seconds per row.

    Examples
    --------
    >>> tuner = ThreadTuner(max_threads=1)
    >>> with tuner.step(256):
    ...     pass
    >>> tuner.current()
    1
    >>> tuner.close()
    """

    def __init__(self, max_threads: int | None = None, probe_steps: int = 3, reprobe_every: int = 200,
                 work: float | None = None):
        self.initial = torch.get_num_threads()
        self.max_threads = self.initial if max_threads is None else max(1, max_threads)
        ladder = [self.max_threads]
        while ladder[-1] > 1:
            ladder.append(ladder[-1] // 2)
        self.ladder = ladder
        self.probe_steps, self.reprobe_every = probe_steps, reprobe_every
        self._key = None if work is None else (self.max_threads, max(0, int(work)).bit_length())
        self.chosen, self._chosen_time = self.max_threads, None
        self.history: list[tuple[int, float]] = []  # (threads, mean seconds per row) of each probe
        self._probe_index: int | None = None
        self._since_probe = 0
        self._recent: list[float] = []
        self._skip = 1  # the first step pays for allocations
        if len(ladder) > 1:
            remembered = _REMEMBERED.get(self._key) if self._key is not None else None
            if remembered is None:
                self._start_probe()
            else:
                self.chosen = remembered

    # --------------------------------------------------------- scheduling
    def _start_probe(self) -> None:
        self._probe_index = 0
        self._probe_times: list[float] = []
        self._best: tuple[int, float] | None = None
        self._since_probe = 0
        self._recent = []

    def current(self) -> int:
        """The thread count the next step runs with."""
        return self.chosen if self._probe_index is None else self.ladder[self._probe_index]

    @contextlib.contextmanager
    def step(self, n_rows: int):
        threads = self.current()
        if threads != torch.get_num_threads():
            set_thread_local_count(threads)
        start = time.perf_counter()
        yield
        self.record((time.perf_counter() - start) / max(1, n_rows))

    def record(self, seconds_per_row: float) -> None:
        """Account for a step of the current thread count that took this long per row."""
        if len(self.ladder) == 1:
            return
        if self._skip:
            self._skip -= 1
            return
        if self._probe_index is not None:
            self._probe(seconds_per_row)
            return
        self._since_probe += 1
        self._recent.append(seconds_per_row)
        del self._recent[:-self.probe_steps]
        if self._chosen_time is None:  # a remembered choice: its first steps are the reference
            if len(self._recent) == self.probe_steps:
                self._chosen_time = statistics.fmean(self._recent)
            return
        slowed = (len(self._recent) == self.probe_steps
                  and statistics.fmean(self._recent) > 2 * self._chosen_time)
        if slowed or self._since_probe >= self.reprobe_every:
            self._start_probe()

    def _probe(self, seconds_per_row: float) -> None:
        threads = self.ladder[self._probe_index]
        self._probe_times.append(seconds_per_row)
        mean = statistics.fmean(self._probe_times)
        hopeless = self._best is not None and mean > 1.25 * self._best[1]
        if len(self._probe_times) < self.probe_steps and not hopeless:
            return
        self.history.append((threads, mean))
        self._probe_times = []
        improved = self._best is None or mean < 0.95 * self._best[1]
        if improved:
            self._best = (threads, mean)
        if improved and self._probe_index + 1 < len(self.ladder):
            self._probe_index += 1
            return
        self.chosen, self._chosen_time = self._best
        self._probe_index = None
        if self._key is not None:
            _REMEMBERED[self._key] = self.chosen

    def close(self) -> None:
        """Give the caller's thread count back."""
        if torch.get_num_threads() != self.initial:
            set_thread_local_count(self.initial)
