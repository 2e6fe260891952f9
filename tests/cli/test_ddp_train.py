"""Distributed training for real on CPU: two gloo processes (``--strategy ddp``) train, checkpoint and
resume through the CLI, with the datamodule's resumable position saved for a world size of 2; SIGTERM to
the launcher stops both ranks at one step with one checkpoint, and resuming it ends bit for bit where an
uninterrupted run ends."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import psutil
import pytest
import torch

from tests.helpers import checkpoint_weights, run_gitnetic, start_gitnetic, tiny_train_args, wait_until


def _ddp_args(
    tokenizer: Path, shards: Path, save_dir: Path, steps: int, every: int = 3, resume: str = "last"
) -> list[str]:
    return tiny_train_args(
        tokenizer, shards, save_dir,
        "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp",
        "--val_check_interval", str(every), "--save_step_frequency", str(every), "--log_every_n_steps", "1",
        "--resume_from_checkpoint", resume,
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


# SIGTERM run: long enough that the signal, sent as soon as the first periodic checkpoint is on disk,
# lands well before the end; the periodic checkpoint is validated and saved by both ranks in step.
SIG_STEPS, SIG_EVERY = 40, 4
INTERRUPTED = re.compile(
    r"^gitnetic train: interrupted by SIGTERM at step (\d+); checkpoint saved to (\S+); "
    r"run the same command again to resume$"
)


_weights = checkpoint_weights


@pytest.fixture(scope="module")
def ddp_uninterrupted(tmp_path_factory, tiny_tokenizer, lm_shards) -> Path:
    root = tmp_path_factory.mktemp("ddp_uninterrupted")
    args = _ddp_args(tiny_tokenizer, lm_shards, root / "ckpt", SIG_STEPS, SIG_EVERY, resume="auto")
    done = run_gitnetic(*args, cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "ckpt" / "checkpoint_last.ckpt"


def test_ddp_sigterm_to_the_launcher_saves_one_checkpoint_and_resumes_exactly(
    tmp_path, tiny_tokenizer, lm_shards, ddp_uninterrupted
):
    save_dir = tmp_path / "ckpt"
    args = _ddp_args(tiny_tokenizer, lm_shards, save_dir, SIG_STEPS, SIG_EVERY, resume="auto")
    launcher = start_gitnetic(*args, cwd=tmp_path)
    wait_until(save_dir / f"checkpoint_step{SIG_EVERY}.ckpt", launcher, "periodic checkpoint")
    ranks = psutil.Process(launcher.pid).children()  # rank 1, started by Lightning's launcher (rank 0)
    launcher.send_signal(signal.SIGTERM)  # only the launcher, as `kill PID` would
    _, err = launcher.communicate(timeout=120)

    assert launcher.returncode == 75, err[-3000:]
    lines = err.strip().splitlines()
    match = INTERRUPTED.match(lines[-1])
    assert match, lines[-1]
    assert sum(1 for line in lines if INTERRUPTED.match(line)) == 1  # said once, by rank 0
    step = int(match.group(1))
    assert SIG_EVERY < step < SIG_STEPS  # later than the periodic checkpoint, before the end
    assert Path(match.group(2)) == save_dir / "checkpoint_last.ckpt"
    assert ranks and not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ranks)
    # one checkpoint of the step reached (checkpoint_last is a link to it), nothing half-written
    assert sorted(p.name for p in save_dir.iterdir()) == sorted(
        ["checkpoint_last.ckpt", f"checkpoint_step{SIG_EVERY}.ckpt", f"checkpoint_step{step}.ckpt"]
    )
    ckpt = torch.load(save_dir / "checkpoint_last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == step
    assert ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["num_replicas"] == 2
    assert (save_dir / "checkpoint_last.ckpt").samefile(save_dir / f"checkpoint_step{step}.ckpt")

    # the same command again resumes both ranks from that step and ends on the uninterrupted weights
    resumed = run_gitnetic(*args, cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming this run from {save_dir / 'checkpoint_last.ckpt'} (step {step})" in resumed.stderr
    final, expected = _weights(save_dir / "checkpoint_last.ckpt"), _weights(ddp_uninterrupted)
    assert final.keys() == expected.keys()
    for key in expected:
        assert torch.equal(final[key], expected[key]), key
