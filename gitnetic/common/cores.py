"""Sharing CPU cores between runs: idle OpenMP threads sleep instead of spinning, and a run that starts
on cores other work already uses says so.

Why: torch's CPU kernels run on an OpenMP thread team (libgomp in the CPU wheels) whose idle threads,
by default, spin at each barrier for a while before they sleep. Alone on its cores that saves a wake-up.
But two experiments of ``num_threads: 2`` on 2 cores (``dvc queue start -j 2``), or one run on a machine
others use, put more threads than cores on the CPU: a thread spinning for its partner burns the time
slice that partner needs, and every run crawls (two such trainings at once reached 0.36x the
throughput of running them one after the other; see bench/RESULTS.md). With ``OMP_WAIT_POLICY=PASSIVE``
a waiting thread sleeps at once. It changes how threads wait, not how work is split (``num_threads`` is
untouched), so the floats are bit-identical. libgomp reads it once, when torch loads it, so the CLI
sets it before anything imports torch; a value the user set (or ``GOMP_SPINCOUNT``) wins.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

import psutil

__all__ = ["busy_cores_note", "sleep_when_idle", "usable_cores"]

WAIT_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")
_STAGES = ("train", "evaluate", "export", "generate")


def sleep_when_idle(environ: MutableMapping[str, str] | None = None) -> None:
    """Let idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose a wait policy.
    Call it before torch is imported; child processes inherit it."""
    env = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env[WAIT_POLICY[0]] = WAIT_POLICY[1]


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a SLURM or container cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _other_runs() -> int:
    """Running gitnetic torch stages (train, evaluate, ...) other than this process and its own family
    (the DDP launcher above it, the ranks below it)."""
    me = psutil.Process()
    family = {me.pid, *(p.pid for p in me.parents()), *(p.pid for p in me.children(recursive=True))}
    count = 0
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if proc.info["pid"] in family or "gitnetic" not in cmd:
            continue
        after = cmd[cmd.index("gitnetic") + 1 :]
        count += bool(after) and after[0] in _STAGES
    return count


def busy_cores_note(num_threads: int) -> str | None:
    """One line for a run that starts on cores already busy (other gitnetic runs, or a load average at
    least the core count), saying what to do; None when the cores are free."""
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
        others = _other_runs()
    except (OSError, psutil.Error):
        return None
    if not others and load < cores:
        return None
    what = f"{others} other gitnetic run{'s' * (others != 1)}, " if others else ""
    return (
        f"the {cores} CPU cores here are already busy ({what}load average {load:.1f}): this run's "
        f"{num_threads} threads share them and it trains slower; run at most cores / num_threads = "
        f"{max(1, cores // max(1, num_threads))} at once (dvc queue start -j N, README: several experiments at once)"
    )
