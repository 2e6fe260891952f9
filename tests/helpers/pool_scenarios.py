"""Worker deaths for ``tests/common/test_ordered_pool.py``, each run as ``python -m tests.helpers.pool_scenarios
NAME`` in a process of its own, so that a pool which hangs (what these guard against) fails the test by
its timeout instead of hanging the suite. Each prints one JSON line: what the pool did.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitnetic.common.ordered_pool import OrderedPool, WorkerDied


def square(batch: list[int]) -> list[int]:
    return [x * x for x in batch]


def pid_of(batch: list[int]) -> int:
    return os.getpid()


def fails_on_seven(batch: list[int]) -> list[int]:
    if 7 in batch:
        raise ValueError("seven")
    return batch


def dies_on_seven(batch: list[int]) -> list[int]:
    if 7 in batch:
        os.kill(os.getpid(), signal.SIGKILL)
    return batch


def _writing_to_a_pipe(thread_id: int) -> bool:
    """Whether the thread waits in a pipe (``anon_pipe_write``, ``pipe_write``; ``pipe_wait`` before
    Linux 5.5): the only wait of a thread whose next step is sending its reply."""
    return Path(f"/proc/self/task/{thread_id}/wchan").read_text().endswith(("pipe_write", "pipe_wait"))


def dies_sending(batch: list[int]) -> bytes:
    """Stop the pool's process (``batch[0]``), then reply with more than a pipe holds: the send blocks
    with the pipe full; a thread then kills this worker there, half a reply sent."""
    sending = threading.get_native_id()

    def kill_once_blocked() -> None:
        while not _writing_to_a_pipe(sending):
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGKILL)

    os.kill(batch[0], signal.SIGSTOP)  # the test resumes it once this worker is dead
    threading.Thread(target=kill_once_blocked, daemon=True).start()
    return b"x" * (8 << 20)


def _outcome(run: Callable[[OrderedPool, list[Any]], None]) -> dict[str, Any]:
    got: list[Any] = []
    try:
        with OrderedPool(2) as pool:
            run(pool, got)
        outcome = "completed"
    except WorkerDied as exc:
        outcome = f"WorkerDied: {exc}"
    return {"outcome": outcome, "got": got, "children_left": len(multiprocessing.active_children())}


def _in_order(pool: OrderedPool, got: list[Any]) -> None:
    got.append(list(pool.map(square, ([i, i + 1] for i in range(50)))))
    early = pool.map(square, ([i] for i in range(50)))
    got.append([next(early), next(early)])
    early.close()  # its pending replies must not show up in the next map
    got.append(list(pool.map(square, ([i] for i in range(4)))))
    try:
        list(pool.map(fails_on_seven, ([i] for i in range(20))))
    except ValueError as exc:
        got.append(f"ValueError: {exc}")
    got.append(list(pool.map(square, ([i] for i in range(3)))))


def _killed_mid_batch(pool: OrderedPool, got: list[Any]) -> None:
    for result in pool.map(dies_on_seven, ([i] for i in range(20))):
        got.append(result)


def _killed_idle(pool: OrderedPool, got: list[Any]) -> None:
    pool.start()
    idle = multiprocessing.active_children()[0]
    os.kill(idle.pid, signal.SIGKILL)
    for result in pool.map(square, ([i] for i in range(20))):
        got.append(result)


def _killed_after_its_last_reply(pool: OrderedPool, got: list[Any]) -> None:
    got.extend(pool.map(pid_of, ([i] for i in range(4))))  # two batches each
    os.kill(got[0], signal.SIGKILL)


def _killed_sending(pool: OrderedPool, got: list[Any]) -> None:
    for result in pool.map(dies_sending, [[os.getpid()]]):
        got.append(len(result))


SCENARIOS = {
    "in_order": _in_order,
    "killed_mid_batch": _killed_mid_batch,
    "killed_idle": _killed_idle,
    "killed_after_its_last_reply": _killed_after_its_last_reply,
    "killed_sending": _killed_sending,
}

if __name__ == "__main__":
    print(json.dumps(_outcome(SCENARIOS[sys.argv[1]])), flush=True)
