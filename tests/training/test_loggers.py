"""DVCLive inside a DVC repo whose git history is still empty: a one-line fix-it error, not a crash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitnetic.common.errors import ConfigError
from gitnetic.training.loggers import StepDVCLiveLogger


def test_dvclive_in_a_repo_without_commits_says_how_to_fix(tmp_path: Path, monkeypatch):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent)) or "dvc"
    subprocess.run([dvc, "init", "-q"], cwd=tmp_path, check=True, env=dict(os.environ, DVC_NO_ANALYTICS="1"))
    monkeypatch.chdir(tmp_path)
    logger = StepDVCLiveLogger(dir="dvclive", save_dvc_exp=False, dvcyaml=False)
    with pytest.raises(ConfigError, match="make a first commit") as info:
        _ = logger.experiment
    assert "\n" not in str(info.value)
