"""The seed's example training command, run for real, and what a trained run must show."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import run_gitnetic

SEED_STEPS = 50


def seed_command(
    config: Path, tokenizer: Path, shards: Path, save_dir: Path, steps: int = SEED_STEPS
) -> list[str]:
    """Exactly the flags of the seed's example command (docs: seed-train.rst), filled in for a CPU run."""
    return [
        "train",
        "--task", "transformer-task",
        "--config_path", str(config),
        "--tokenizer_path", str(tokenizer),
        "--warmup_steps", "5",
        "--learning_rate", "3e-3",
        "--power", "1.0",
        "--train_data_prefix", str(shards / "train"),
        "--val_data_prefix", str(shards / "valid"),
        "--max_tokens", "512",
        "--num_workers", "0",
        "--gpus", "0",
        "--max_steps", str(steps),
        "--val_check_interval", str(steps // 2),
        "--save_step_frequency", str(steps // 2),
        "--save_dir", str(save_dir),
        "--progress_bar_refresh_rate", "0",
        "--log_every_n_steps", "5",
        "--wandb_project", "gitnetic-tests",
        "--wandb_name", "seed-command",
    ]  # fmt: skip


def train_seed_command(root: Path, config: Path, tokenizer: Path, shards: Path) -> dict:
    """Run the seed's example command in ``root``; returns the run (root, save_dir, process, steps)."""
    root.mkdir(parents=True, exist_ok=True)
    proc = run_gitnetic(*seed_command(config, tokenizer, shards, root / "checkpoints"), cwd=root)
    assert proc.returncode == 0, f"seed command failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return {
        "root": root,
        "save_dir": root / "checkpoints",
        "proc": proc,
        "config": config,
        "steps": SEED_STEPS,
    }


def assert_trained(run: dict) -> list[float]:
    """Checkpoints at half and full steps, a falling DVCLive train-loss curve, a sane val loss."""
    save_dir, steps = run["save_dir"], run["steps"]
    for name in (f"checkpoint_step{steps // 2}.ckpt", f"checkpoint_step{steps}.ckpt", "checkpoint_last.ckpt"):
        assert (save_dir / name).is_file(), f"{name} missing in {sorted(p.name for p in save_dir.iterdir())}"
    lines = (run["root"] / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    column = lines[0].split("\t").index("loss")
    losses = [float(line.split("\t")[column]) for line in lines[1:] if line.strip()]
    assert len(losses) >= 8
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    assert last < first - 0.5, f"training loss did not decrease: {losses}"
    metrics = json.loads((run["root"] / "dvclive" / "metrics.json").read_text())
    assert metrics["step"] in (steps - 1, steps)
    assert 0 < metrics["val"]["loss"] < losses[0]
    assert "Traceback" not in run["proc"].stderr
    return losses
