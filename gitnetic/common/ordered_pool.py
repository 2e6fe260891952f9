"""Map a function over batches in worker processes, results in input order, with bounded memory.

Why not ``multiprocessing.Pool.imap``: its feeder thread drains the whole input iterator at once (every
document of a corpus would sit in memory, queued), and a worker killed by the OOM killer or ``kill -9``
makes it wait forever. Nor ``concurrent.futures.ProcessPoolExecutor`` (CPython 3.11.7), which hangs
too on a worker killed at the wrong moment: its workers share one result pipe and one job queue, each
under a lock. A worker killed while sending a large result leaves half a message in the pipe and the
pipe held open by the others: the manager thread waits in ``recv()`` for the rest forever. One killed
while idle (waiting for a job holds the queue's lock) after the last job blocks the others, and
``shutdown()`` waits for them forever. Both happened to the corpus stage's kill test (a hang in about 1
kill in 11 at the first; ``tests/common/test_ordered_pool.py`` reproduces both).

So each worker here has a pipe of its own for jobs and one for results, and nothing is shared: a worker
that dies, whenever it dies (idle, mid-batch, mid-send, after its last batch), closes its end, and the
next wait on it sees the end of file or its exit. Any worker death before :meth:`OrderedPool.close`
is a one-line :class:`WorkerDied`, also when all results had arrived, so a caller writing through
temporaries leaves nothing that looks complete. At most ``window`` batches are in flight. A thread in
each worker takes the jobs off its pipe as they come, so this process never blocks sending a job while
the worker blocks sending a result.

Workers are forked when this process runs no other Python thread: fast, and it never re-runs the
caller's ``__main__`` (a user's script calling the library without an ``if __name__ == "__main__"``
guard would otherwise start itself again in every worker). With other threads alive (tqdm's monitor on
a terminal, a Lightning run in the same process), whose locks a fork could copy mid-use, they start
from a ``forkserver`` (``spawn`` where that is missing) instead.
Workers ignore SIGINT: Ctrl-C in a terminal signals the whole process group, and a worker that took it
would print its own "Process ...:" traceback beside the caller's one-line message. The caller gets the
``KeyboardInterrupt`` and leaving the pool stops the workers (a killed caller's die with it).
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
import queue
import signal
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from gitnetic.common.errors import GitneticError

__all__ = ["OrderedPool", "WorkerDied"]

T = TypeVar("T")
R = TypeVar("R")


class WorkerDied(GitneticError):
    """A worker process ended without returning its batch (killed, out of memory)."""


class _RemoteTraceback(Exception):
    """The worker-side traceback of an exception re-raised here (its ``__cause__``)."""

    def __str__(self) -> str:
        return str(self.args[0])


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _die_with_parent(parent: int | None) -> None:
    """Have the kernel SIGKILL this worker when its parent ends (Linux ``PR_SET_PDEATHSIG``): a stage
    stopped by SIGTERM or ``kill -9`` (DVC, Snakemake and SLURM stop jobs so) must not leave workers
    running on as orphans."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if parent is not None and os.getppid() != parent:  # it ended before the line above: no signal comes
        os._exit(1)


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Hold SIGINT back in this thread while a worker starts: a forked worker inherits the mask, so a
    Ctrl-C at that moment reaches it only once it ignores the signal (see :func:`_ignore_sigint`), and
    reaches this process when the mask is restored."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _ignore_sigint() -> None:
    """A worker's first act: SIGINT is the caller's to handle (see the module doc)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # held back by _sigint_held while this worker was forked
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _take_jobs(jobs: Connection, into: queue.SimpleQueue[Any]) -> None:
    """The worker's job reader: empties the pipe as jobs come (``None``, or the pipe's end, stops)."""
    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):
            job = None
        into.put(job)
        if job is None:
            return


def _serve(
    jobs: Connection,
    results: Connection,
    parent: int | None,
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
) -> None:
    """A worker: ``fn(batch)`` for each job, in the order received, each reply ``(ok, value, traceback)``.
    An exception (the initializer's, then for every job) goes back to be raised by the caller."""
    _ignore_sigint()
    _die_with_parent(parent)
    failed: tuple[bool, Any, str] | None = None
    try:
        if initializer is not None:
            initializer(*initargs)
    except Exception as exc:
        failed = (False, exc, traceback.format_exc())
    taken: queue.SimpleQueue[Any] = queue.SimpleQueue()
    threading.Thread(target=_take_jobs, args=(jobs, taken), daemon=True).start()
    while (job := taken.get()) is not None:
        fn, batch = job
        reply = failed
        if reply is None:
            try:
                reply = (True, fn(batch), "")
            except Exception as exc:
                reply = (False, exc, traceback.format_exc())
        try:
            results.send(reply)
        except Exception as exc:  # the result or the exception does not pickle
            results.send((False, RuntimeError(f"a worker's reply could not be sent back: {exc!r}"), ""))


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    jobs: Connection  # this process -> the worker
    results: Connection  # the worker -> this process
    busy: int = 0  # jobs sent whose reply has not arrived
    stale: int = 0  # replies still to come that nobody wants (a map closed early)
    replies: deque[tuple[bool, Any, str]] = field(default_factory=deque)


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
        self._started: list[_Worker] = []

    def map(self, fn: Callable[[T], R], batches: Iterable[T], parallel: bool = True) -> Iterator[R]:
        """``fn(batch)`` for each batch, in order. Closing the iterator early drops the results pending."""
        if self.workers == 1 or not parallel:
            if not self._initialized_here and self._init[0] is not None:
                self._init[0](*self._init[1])
            self._initialized_here = True
            for batch in batches:
                yield fn(batch)
            return
        workers = self.start()
        order: deque[_Worker] = deque()  # the worker of each batch in flight, in input order
        try:
            for batch in batches:
                worker = min(workers, key=lambda w: w.busy)
                try:
                    worker.jobs.send((fn, batch))
                except OSError:  # its end of the pipe is closed: it died
                    raise self._died() from None
                worker.busy += 1
                order.append(worker)
                if len(order) >= self.window:
                    yield self._reply(order.popleft())
            while order:
                yield self._reply(order.popleft())
        finally:
            for worker in workers:  # closed early: what is in flight is nobody's any more
                worker.stale = worker.busy
                worker.replies.clear()

    def _reply(self, worker: _Worker) -> Any:
        """``worker``'s next reply, in order; meanwhile, the replies of the others as they come."""
        while not worker.replies:
            self._receive()
        ok, value, remote = worker.replies.popleft()
        if not ok:
            raise value from _RemoteTraceback(remote) if remote else None
        return value

    def _receive(self) -> None:
        """Wait for any reply or any worker's end; a worker's end (even after its last reply) is fatal."""
        workers = self._started
        ready = wait([w.results for w in workers] + [w.process.sentinel for w in workers])
        for worker in workers:
            if worker.results in ready:
                try:
                    reply = worker.results.recv()
                except (EOFError, OSError):  # nothing more, or the end of a half-sent reply
                    raise self._died() from None
                worker.busy -= 1
                if worker.stale:
                    worker.stale -= 1
                else:
                    worker.replies.append(reply)
            elif worker.process.sentinel in ready:
                raise self._died()

    def start(self) -> list[_Worker]:
        """Start the workers now (else at the first parallel :meth:`map`): call it before starting
        threads, e.g. a progress bar's, so that the workers can be forked (see the module doc)."""
        if not self._started and self.workers > 1:
            context = _context()
            forked = context.get_start_method() == "fork"  # else the parent is the forkserver / spawner
            for _ in range(self.workers):
                jobs_reader, jobs_writer = context.Pipe(duplex=False)
                results_reader, results_writer = context.Pipe(duplex=False)
                args = (jobs_reader, results_writer, os.getpid() if forked else None, *self._init)
                process = context.Process(target=_serve, args=args, daemon=True, name=self.what)
                with _sigint_held():
                    process.start()
                # Only the worker may hold its ends: its death must close them (and a later fork must
                # not inherit them).
                jobs_reader.close()
                results_writer.close()
                self._started.append(_Worker(process, jobs_writer, results_reader))
        return self._started

    def _died(self) -> WorkerDied:
        return WorkerDied(
            f"a {self.what} process died before finishing its batch (killed, or out of memory?); "
            "nothing was written: rerun, with fewer --num_workers if memory is short"
        )

    def close(self, failing: bool = False) -> None:
        """Stop the workers: after their last job, or at once when ``failing``. A worker that ended
        otherwise than so (killed, even after its last reply) raises :class:`WorkerDied`."""
        workers, self._started = self._started, []
        for worker in workers:
            if failing:
                worker.process.kill()
            with contextlib.suppress(OSError):
                worker.jobs.send(None)
        died = False
        for worker in workers:
            self._drain(worker)
            worker.process.join()
            died = died or worker.process.exitcode != 0
            worker.jobs.close()
            worker.results.close()
        if died and not failing:
            raise self._died()

    @staticmethod
    def _drain(worker: _Worker) -> None:
        """Read and drop the replies nobody wants until ``worker`` ends, so that it never blocks
        sending one of them and ends."""
        while worker.process.sentinel not in (ready := wait([worker.results, worker.process.sentinel])):
            if worker.results in ready:
                try:
                    worker.results.recv_bytes()
                except (EOFError, OSError):
                    return

    def __enter__(self) -> OrderedPool:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(failing=exc_type is not None)
