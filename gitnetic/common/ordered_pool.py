"""Map a function over batches in worker processes, results in input order, with bounded memory.

Why not ``multiprocessing.Pool.imap``: its feeder thread drains the whole input iterator at once (every
document of a corpus would sit in memory, queued), and a worker killed by the OOM killer or ``kill -9``
makes it wait forever. Here at most ``window`` batches are in flight, and a dead worker is a one-line
:class:`WorkerDied` at once (``concurrent.futures`` notices a broken pool), so a caller writing through
temporaries leaves nothing that looks complete.

Workers are started with ``forkserver`` (``spawn`` where that is missing): never ``fork``, which copies
a parent's threads' locks (tqdm's monitor, a Lightning run in the same process) into the child.
With ``workers <= 1``, or for a ``map(..., parallel=False)`` (input too small to repay starting
workers), batches run inline in this process through the same function, so a one-worker run and an
N-worker run execute identical code on identical batches. Workers start at the first parallel map.
"""

from __future__ import annotations

import multiprocessing
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
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


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
        if self._executor is None:
            initializer, initargs = self._init
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=_context(), initializer=initializer, initargs=initargs
            )
        pending: deque[Future[R]] = deque()
        try:
            for batch in batches:
                pending.append(self._executor.submit(fn, batch))
                if len(pending) >= self.window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise WorkerDied(
                f"a {self.what} process died before finishing its batch (killed, or out of memory?); "
                "nothing was written: rerun, with fewer --num_workers if memory is short"
            ) from None
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> OrderedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
