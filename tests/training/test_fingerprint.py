"""``--resume_from_checkpoint auto``: which checkpoint of a run's folder it continues."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from gitnetic.training.resume import FINGERPRINT_KEY, auto_resume_checkpoint

RUN = {"digest": "abc", "items": {"train.learning_rate": "0.001"}}


def _save(path: Path, step: int) -> None:
    torch.save({FINGERPRINT_KEY: RUN, "global_step": step, "state_dict": {}}, path)


def test_a_step_checkpoint_newer_than_the_last_link_wins(tmp_path: Path) -> None:
    # killed after checkpoint_step8.ckpt was written but before checkpoint_last was moved to it
    _save(tmp_path / "checkpoint_step4.ckpt", 4)
    os.link(tmp_path / "checkpoint_step4.ckpt", tmp_path / "checkpoint_last.ckpt")
    _save(tmp_path / "checkpoint_step8.ckpt", 8)
    assert auto_resume_checkpoint(str(tmp_path), RUN) == str(tmp_path / "checkpoint_step8.ckpt")


def test_the_last_link_alone_is_used(tmp_path: Path) -> None:
    _save(tmp_path / "checkpoint_last.ckpt", 3)
    assert auto_resume_checkpoint(str(tmp_path), RUN) == str(tmp_path / "checkpoint_last.ckpt")
