"""Distributed training for real on CPU: two gloo processes (``--strategy ddp``) train, checkpoint and
resume through the CLI, with the datamodule's resumable position saved for a world size of 2."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.helpers import run_gitnetic, tiny_train_args


def _ddp_args(tokenizer: Path, shards: Path, save_dir: Path, steps: int) -> list[str]:
    return tiny_train_args(
        tokenizer, shards, save_dir,
        "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp",
        "--val_check_interval", "3", "--save_step_frequency", "3", "--log_every_n_steps", "1",
        "--resume_from_checkpoint", "last",
        steps=steps,
    )  # fmt: skip


def test_ddp_two_cpu_processes_train_checkpoint_and_resume(tmp_path, tiny_tokenizer, lm_shards):
    save_dir = tmp_path / "ckpt"
    first = run_gitnetic(*_ddp_args(tiny_tokenizer, lm_shards, save_dir, 3), cwd=tmp_path, timeout=240)
    assert first.returncode == 0, first.stderr[-3000:]
    ckpt = torch.load(save_dir / "checkpoint_last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 3
    loader_state = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert loader_state["num_replicas"] == 2  # each rank's position was saved for a world of 2

    # "--resume_from_checkpoint last" continues the same run (step count, optimizer, data position).
    second = run_gitnetic(*_ddp_args(tiny_tokenizer, lm_shards, save_dir, 6), cwd=tmp_path, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = torch.load(save_dir / "checkpoint_last.ckpt", map_location="cpu", weights_only=False)
    assert resumed["global_step"] == 6
    assert sorted(p.name for p in save_dir.glob("checkpoint_step*.ckpt")) == [
        "checkpoint_step3.ckpt",
        "checkpoint_step6.ckpt",
    ]
    assert resumed["gitnetic"]["tokens_seen"] > ckpt["gitnetic"]["tokens_seen"]
    assert not any(
        torch.equal(resumed["state_dict"][k], ckpt["state_dict"][k])
        for k in ckpt["state_dict"]
        if k.endswith("c_attn.weight")
    )
