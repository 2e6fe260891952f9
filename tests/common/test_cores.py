"""Core sharing: the OpenMP wait policy the CLI sets, and the line a run prints on busy cores."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import psutil

from gitnetic.common.cores import busy_cores_note, sleep_when_idle, usable_cores
from tests.helpers import child_env


def test_idle_openmp_threads_sleep_unless_the_user_chose_a_policy() -> None:
    env: dict[str, str] = {}
    sleep_when_idle(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    for chosen in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "100000"}):
        env = dict(chosen)
        sleep_when_idle(env)
        assert env == chosen


def test_the_cli_sets_the_policy_before_torch_loads(tmp_path) -> None:
    """A stage started by DVC or Snakemake gets it without anyone exporting it, before torch loads."""
    probe = (
        "import os, sys; from gitnetic.cli.main import main; main(['summary', '--params_file', 'none.yaml']); "
        "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    )
    env = child_env()
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.stdout.split()[-2:] == ["PASSIVE", "False"], proc.stdout + proc.stderr


def test_a_run_started_beside_another_gitnetic_run_says_the_cores_are_busy() -> None:
    # Another run is not this process's child (its own DDP ranks are not "other runs"): start it
    # through a shell that exits at once, so it is re-parented away from this process.
    started = subprocess.run(
        ["sh", "-c", f"'{sys.executable}' -c 'import time; time.sleep(60)' gitnetic train >/dev/null 2>&1 & echo $!"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    other = psutil.Process(int(started.stdout.split()[-1]))
    try:
        deadline = time.monotonic() + 30
        while "gitnetic" not in other.cmdline() and time.monotonic() < deadline:
            time.sleep(0.05)
        note = busy_cores_note(2)
    finally:
        other.kill()
    assert note is not None and re.search(r"\(\d+ other gitnetic runs?, load average", note), note
    assert f"the {usable_cores()} CPU cores here are already busy" in note
    assert f"at most cores / num_threads = {max(1, usable_cores() // 2)} at once" in note
