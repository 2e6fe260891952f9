"""The SLURM profiles are valid for the installed Snakemake and SLURM executor plugin (a dry run parses
every key as a command-line option), and give the train job its warning signal and resubmissions.

Why here, without a cluster: a renamed plugin option or a typo in a profile fails every SLURM run, and
these checks take seconds; the real runs on a SLURM cluster are in tests/slurm (``-m slurm``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("snakemake_executor_plugin_slurm")


@pytest.mark.parametrize(
    ("profile", "signal"), [("slurm", "--signal=USR1@600"), ("slurm-local", "--signal=USR1@10")]
)
def test_slurm_profile_dry_run(profile: str, signal: str, tmp_path: Path) -> None:
    for name in ("workflow", "configs"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns(".snakemake"))
    shutil.copy2(REPO / "params.yaml", tmp_path / "params.yaml")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SLURM_JOB_ID", None)
    proc = subprocess.run(
        ["snakemake", "-n", "--forceall", "--workflow-profile", f"workflow/profiles/{profile}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    train = out[out.index("rule train:") :].split("\n\n")[0]
    assert re.search(rf"slurm_extra={re.escape(signal)}\b", train), train
    assert "mpi=" in train  # the key that makes the SLURM executor run train's shell in the batch step
    # outside SLURM the command is the plain one; inside a SLURM job it becomes an srun step
    assert 'if [ -z "$launch" ] && [ -n "${SLURM_JOB_ID:-}" ]; then launch="srun --ntasks=1' in train
