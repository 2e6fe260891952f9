"""The ordered pool: results in input order, and a worker that dies at any point is a WorkerDied, never a
hang and never a silent success (see tests/helpers/pool_scenarios.py: each case runs in a process of its
own, under a timeout)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers import REPO
from tests.helpers.cli import child_env, wait_until

DIED = "WorkerDied: a worker process died before finishing its batch"


def start(name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.pool_scenarios", name],
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.communicate()
        pytest.fail("the pool hung")
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


def test_results_come_in_input_order_and_errors_propagate() -> None:
    result = finish(start("in_order"))
    assert result == {
        "outcome": "completed",
        "got": [
            [[i * i, (i + 1) * (i + 1)] for i in range(50)],
            [[0], [1]],
            [[0], [1], [4], [9]],
            "ValueError: seven",
            [[0], [1], [4]],
        ],
        "children_left": 0,
    }


@pytest.mark.parametrize("name", ["killed_mid_batch", "killed_idle", "killed_after_its_last_reply"])
def test_a_worker_that_dies_is_a_worker_died(name: str) -> None:
    result = finish(start(name))
    assert result["outcome"].startswith(DIED), result
    assert result["children_left"] == 0
    if name == "killed_mid_batch":  # what came before the lost batch came, in order, and nothing after
        assert result["got"] == [[i] for i in range(len(result["got"]))] and len(result["got"]) <= 7


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/wchan").exists(), reason="needs /proc/PID/task/TID/wchan")
def test_a_worker_killed_halfway_through_sending_its_reply_is_a_worker_died() -> None:
    """The worker stops this scenario's process, blocks sending an 8 MB reply into the full pipe and is
    killed there; resumed, the process reads half a reply, then the end of the pipe (a
    ``ProcessPoolExecutor`` waits for the rest forever: one shared pipe, held open by the others)."""
    proc = start("killed_sending")
    parent = psutil.Process(proc.pid)
    wait_until(lambda: parent.status() == psutil.STATUS_STOPPED, proc, "the worker stopping its parent")
    wait_until(
        lambda: any(c.status() == psutil.STATUS_ZOMBIE for c in parent.children()), proc, "the worker's death"
    )
    os.kill(proc.pid, signal.SIGCONT)
    result = finish(proc)
    assert result["outcome"].startswith(DIED) and result["got"] == [], result
