"""Fixtures for the tests on a real one-node SLURM cluster (``-m slurm``; ``scripts/test-slurm.sh``).

* ``slurm_cluster`` (session): makes sure the cluster of ``scripts/slurm-local.sh`` answers (starting it
  when this process may: root on Debian/Ubuntu), else skips with the one-line reason.
* ``pipeline`` (session): the e2e test module's helpers (``make_repo``, ``tiny_params``, ``shard_digests``,
  ...), loaded from its file because test modules cannot import each other by name.
* ``run_cmd``: run a command to completion with the e2e environment and a SLURM-sized timeout.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import pipeline_env, run_ok

REPO = Path(__file__).resolve().parents[2]
SLURM_DIR = Path(os.environ.get("GITNETIC_SLURM_DIR", "/tmp/gitnetic-slurm"))
PARTITION = os.environ.get("GITNETIC_SLURM_PARTITION", "cpu")
TIMEOUT_S = 900


def _partition_up() -> bool:
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-p", PARTITION, "-o", "%a %T"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    states = ("idle", "mixed", "allocated", "completing")
    return proc.returncode == 0 and any(
        line.startswith("up ") and line.split()[1].startswith(states) for line in proc.stdout.splitlines()
    )


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The partition to submit to, on a cluster that answers."""
    if "SLURM_CONF" not in os.environ and (SLURM_DIR / "slurm.conf").is_file():
        os.environ["SLURM_CONF"] = str(SLURM_DIR / "slurm.conf")
    if not _partition_up():
        if os.geteuid() != 0 or (shutil.which("apt-get") is None and shutil.which("slurmctld") is None):
            pytest.skip("no SLURM cluster answers and starting one needs root on Debian/Ubuntu")
        subprocess.run(["bash", str(REPO / "scripts" / "slurm-local.sh"), "up"], check=True, timeout=600)
        os.environ["SLURM_CONF"] = str(SLURM_DIR / "slurm.conf")
    return PARTITION


@pytest.fixture(scope="session")
def pipeline() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gitnetic_e2e_pipeline", REPO / "tests/e2e/test_pipeline.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def run_cmd(pipeline: ModuleType):
    def run(*cmd: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        """Run to completion; fail the test with the output's tail if it fails. Returns stdout+stderr."""
        return run_ok(*cmd, cwd=cwd, env=pipeline_env(**(env or {})), timeout=TIMEOUT_S)

    return run
