"""gitnetic/models/checkpoint.py: the one rule for the newest checkpoint, and loading weights. (What training
writes into the folder and resumes from: tests/training/test_resume.py and test_trainer.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gitnetic.common.errors import DataError
from tests.helpers import GPT2_TINY


def test_load_weights_rejects_a_mismatched_state_dict(tiny_tokenizer):
    from gitnetic.models.build import build_model_and_tokenizer
    from gitnetic.models.checkpoint import load_weights

    model = build_model_and_tokenizer(str(GPT2_TINY), str(tiny_tokenizer)).model
    with pytest.raises(DataError, match="does not match"):
        load_weights(model, {"state_dict": {"model.other.weight": torch.zeros(1)}})
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state["model.transformer.wte.weight"] = torch.zeros(3, 3)
    with pytest.raises(DataError, match="does not fit"):
        load_weights(model, {"state_dict": state})


def _save(path: Path, step: int, **extra) -> Path:
    torch.save({"state_dict": {}, "global_step": step, **extra}, path)
    return path


def test_one_rule_for_the_newest_checkpoint(tmp_path: Path) -> None:
    import os

    from gitnetic.models.checkpoint import checkpoints_newest_first, find_checkpoint

    for step in (2, 10, 4):
        _save(tmp_path / f"checkpoint_step{step}.ckpt", step)
    os.link(
        tmp_path / "checkpoint_step4.ckpt", tmp_path / "checkpoint_last.ckpt"
    )  # killed before the link moved
    _save(tmp_path / "by-hand.ckpt", 99)
    names = [p.name for p in checkpoints_newest_first(tmp_path)]
    assert names == [
        "checkpoint_step10.ckpt", "checkpoint_last.ckpt", "checkpoint_step4.ckpt", "checkpoint_step2.ckpt",
        "by-hand.ckpt",
    ]  # fmt: skip
    assert "by-hand.ckpt" not in [p.name for p in checkpoints_newest_first(tmp_path, others=False)]
    assert Path(find_checkpoint(tmp_path)).name == "checkpoint_step10.ckpt"
    (tmp_path / "checkpoint_step10.ckpt").write_bytes(b"PK cut short")  # truncated: the next one is used
    assert Path(find_checkpoint(tmp_path)).name == "checkpoint_last.ckpt"


def test_a_copied_last_checkpoint_goes_before_its_twin_and_after_newer_steps(tmp_path: Path) -> None:
    """Under DVC the link is a copy: `dvc repro` unprotects a persisted output before its stage runs,
    which turns every hard-linked file into a copy of its own. A kill between writing the next step
    file and moving the link then left checkpoint_last.ckpt (step 5) first, and the rerun resumed from
    step 5 instead of 8."""
    import os
    import shutil

    from gitnetic.models.checkpoint import checkpoints_newest_first

    for step in (4, 5, 8):
        _save(tmp_path / f"checkpoint_step{step}.ckpt", step, weights=torch.full((64,), float(step)))
    shutil.copyfile(tmp_path / "checkpoint_step5.ckpt", tmp_path / "checkpoint_last.ckpt")
    names = [p.name for p in checkpoints_newest_first(tmp_path)]
    assert names == [
        "checkpoint_step8.ckpt",
        "checkpoint_last.ckpt",
        "checkpoint_step5.ckpt",
        "checkpoint_step4.ckpt",
    ]
    # its twin pruned: by modification time, copied before step 8 was written and after step 4
    (tmp_path / "checkpoint_step5.ckpt").unlink()
    for name, mtime in (
        ("checkpoint_step4.ckpt", 1000),
        ("checkpoint_last.ckpt", 2000),
        ("checkpoint_step8.ckpt", 3000),
    ):
        os.utime(tmp_path / name, (mtime, mtime))
    names = [p.name for p in checkpoints_newest_first(tmp_path)]
    assert names == ["checkpoint_step8.ckpt", "checkpoint_last.ckpt", "checkpoint_step4.ckpt"]
    shutil.copyfile(tmp_path / "checkpoint_step8.ckpt", tmp_path / "checkpoint_last.ckpt")  # the newest
    names = [p.name for p in checkpoints_newest_first(tmp_path)]
    assert names == ["checkpoint_last.ckpt", "checkpoint_step8.ckpt", "checkpoint_step4.ckpt"]


def test_a_text_file_is_not_a_checkpoint_in_plain_words(tmp_path: Path) -> None:
    """Issue 29 item 7: torch.load's own words for a text file were "(101)"."""
    from gitnetic.models.checkpoint import load_checkpoint

    text = tmp_path / "notes.ckpt"
    text.write_text("hello, not a checkpoint\n" * 10)
    with pytest.raises(DataError) as info:
        load_checkpoint(text)
    assert str(info.value) == (
        f"checkpoint {text} is not a torch checkpoint (neither a zip archive nor a pickle); "
        "pass a .ckpt written by 'python -m gitnetic train'"
    )
    cut = tmp_path / "cut.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, cut)
    cut.write_bytes(cut.read_bytes()[:300])  # a real checkpoint cut short is still "corrupt"
    with pytest.raises(DataError, match="is corrupt or not a torch checkpoint"):
        load_checkpoint(cut)
