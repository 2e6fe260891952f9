"""``num_threads`` wins over the caller's OMP_NUM_THREADS, so engines cannot change float results."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gitnetic.common.errors import ConfigError
from gitnetic.training.trainer import TransformerTrainer

PROBE = """
import os, torch
from gitnetic.training.trainer import TransformerTrainer
TransformerTrainer(TransformerTrainer.Params(num_threads={n}))
print(torch.get_num_threads(), os.environ["OMP_NUM_THREADS"])
"""


@pytest.mark.parametrize("caller", [None, "3"])
def test_trainer_num_threads_overrides_the_environment(caller: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if caller is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = caller
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(n=2)], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    # torch's own count and the one DDP ranks / workers inherit through the environment
    assert out == ["2", "2"]


def test_negative_num_threads_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="num_threads"):
        TransformerTrainer.Params(num_threads=-1)
