"""Map a function over batches in worker processes, results in input order, with bounded memory.

Why not ``multiprocessing.Pool.imap``: its feeder thread drains the whole input iterator at once (every
document of a corpus would sit in memory, queued), and a worker killed by the OOM killer or ``kill -9``
makes it wait forever. Here at most ``window`` batches are in flight, and a dead worker is a one-line
:class:`WorkerDied` at once (``concurrent.futures`` notices a broken pool), so a caller writing through
temporaries leaves nothing that looks complete.

Workers are forked when this process runs no other Python thread: fast, and it never re-runs the
caller's ``__main__`` (a user's script calling the library without an ``if __name__ == "__main__"``
guard would otherwise start itself again in every worker). With other threads alive (tqdm's monitor on
a terminal, a Lightning run in the same process), whose locks a fork could copy mid-use, they start
from a ``forkserver`` (``spawn`` where that is missing) instead.
With ``workers <= 1``, or for a ``map(..., parallel=False)`` (input too small to repay starting
workers), batches run inline in this process through the same function, so a one-worker run and an
N-worker run execute identical code on identical batches. Workers start at the first parallel map.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from gitnetic.common.errors import GitneticError

__all__ = ["OrderedPool", "WorkerDied"]

T = TypeVar("T")
R = TypeVar("R")


class WorkerDied(GitneticError):
    """A worker process ended without returning its batch (killed, out of memory)."""


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _die_with_parent(parent: int | None) -> None:
    """Have the kernel SIGKILL this worker when its parent ends (Linux ``PR_SET_PDEATHSIG``): a stage
    stopped by SIGTERM or ``kill -9`` (DVC, Snakemake and SLURM stop jobs so) must not leave workers
    running on as orphans, which ``concurrent.futures`` alone does."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if parent is not None and os.getppid() != parent:  # it ended before the line above: no signal comes
        os._exit(1)


def _start_worker(
    parent: int | None, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    _die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


class OrderedPool:
    """``with OrderedPool(workers, initializer, initargs) as pool: for r in pool.map(fn, batches): ...``

    ``initializer(*initargs)`` runs once per worker (and once here when inline): build expensive state
    such as compiled regexes there, not per batch. ``fn`` must be a module-level function (pickled by name).
    """

    def __init__(
        self,
        workers: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        window: int | None = None,
        what: str = "worker",
    ) -> None:
        self.workers = max(1, workers)
        self.window = window or 3 * self.workers
        self.what = what
        self._init = (initializer, initargs)
        self._initialized_here = False
        self._executor: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[T], R], batches: Iterable[T], parallel: bool = True) -> Iterator[R]:
        """``fn(batch)`` for each batch, in order. Closing the iterator early cancels what is pending."""
        if self.workers == 1 or not parallel:
            if not self._initialized_here and self._init[0] is not None:
                self._init[0](*self._init[1])
            self._initialized_here = True
            for batch in batches:
                yield fn(batch)
            return
        executor = self.start()
        assert executor is not None
        pending: deque[Future[R]] = deque()
        try:
            for batch in batches:
                pending.append(executor.submit(fn, batch))
                if len(pending) >= self.window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise self._died() from None
        finally:
            for future in pending:
                future.cancel()

    def start(self) -> ProcessPoolExecutor | None:
        """Start the workers now (else at the first parallel :meth:`map`): call it before starting
        threads, e.g. a progress bar's, so that the workers can be forked (see the module doc)."""
        if self._executor is None and self.workers > 1:
            context = _context()
            forked = context.get_start_method() == "fork"  # else the parent is the forkserver / spawner
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=_start_worker,
                initargs=(os.getpid() if forked else None, *self._init),
            )
            try:
                self._executor.submit(int).result()  # forks every worker (all at once with fork)
            except BrokenProcessPool:
                raise self._died() from None
        return self._executor

    def _died(self) -> WorkerDied:
        return WorkerDied(
            f"a {self.what} process died before finishing its batch (killed, or out of memory?); "
            "nothing was written: rerun, with fewer --num_workers if memory is short"
        )

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> OrderedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
