"""Interrupted training, for real: SIGTERM, a failing checkpoint write, a changed param after a crash.

The contract other tools rely on (SLURM requeue, DVC/Snakemake reruns): a signal during training saves
an exact-resume checkpoint at the step reached and exits 75 with one line on stderr; running the same
command again (``--resume_from_checkpoint auto``) continues to the same weights, bit for bit, as an
uninterrupted run.
"""

from __future__ import annotations

import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import (
    assert_same_weights,
    cli_env,
    run_gitnetic,
    start_gitnetic,
    tiny_train_args,
    wait_until,
)

STEPS, EVERY = 30, 10
# How long after the first periodic checkpoint the signal goes: a few steps, never the whole run. On a
# quiet 2-core machine the tiny model takes ~16 ms a step, so 0.3 s reached step 29 of 30, and a little
# faster the signal came after the end (exit 0, or a checkpoint at the final step).
PAST_PERIODIC_S = 0.1
LINE = re.compile(
    r"^gitnetic train: interrupted by (SIG\w+) at step (\d+); checkpoint saved to (\S+); "
    r"run the same command again to resume$"
)


def train_args(tokenizer: Path, shards: Path, save_dir: Path, *extra: str, steps: int = STEPS) -> list[str]:
    return tiny_train_args(
        tokenizer, shards, save_dir,
        "--val_check_interval", str(EVERY), "--limit_val_batches", "2", "--save_step_frequency", str(EVERY),
        "--dvclive_dir", "", "--num_threads", "1", "--resume_from_checkpoint", "auto",
        *extra,
        steps=steps,
    )  # fmt: skip


def interrupt(
    args: list[str], cwd: Path, save_dir: Path, signum: int, env: dict
) -> subprocess.CompletedProcess:
    """Start training, send ``signum`` once the first periodic checkpoint is on disk, wait for the end."""
    proc = start_gitnetic(*args, cwd=cwd, env=env)
    wait_until(save_dir / f"checkpoint_step{EVERY}.ckpt", proc, "periodic checkpoint")
    time.sleep(PAST_PERIODIC_S)  # a few steps past the periodic checkpoint
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_tokenizer, lm_shards) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    done = run_gitnetic(*train_args(tiny_tokenizer, lm_shards, root / "ckpt"), cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "ckpt" / "checkpoint_last.ckpt"


def test_sigterm_saves_the_step_reached_exits_75_and_resumes_exactly(
    tmp_path, tiny_tokenizer, lm_shards, uninterrupted
):
    save_dir = tmp_path / "ckpt"
    args = train_args(tiny_tokenizer, lm_shards, save_dir)
    stopped = interrupt(args, tmp_path, save_dir, signal.SIGTERM, cli_env())
    assert stopped.returncode == 75, stopped.stderr[-3000:]
    last_line = stopped.stderr.strip().splitlines()[-1]
    match = LINE.match(last_line)
    assert match, last_line
    step = int(match.group(2))
    assert match.group(1) == "SIGTERM" and Path(match.group(3)) == save_dir / "checkpoint_last.ckpt"
    assert EVERY < step < STEPS  # later than the last periodic checkpoint, before the end
    ckpt = torch.load(save_dir / "checkpoint_last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == step and "gitnetic_fingerprint" in ckpt
    assert not list(save_dir.glob(".*.tmp"))

    # The same command again resumes from that step and ends where an uninterrupted run ends.
    resumed = run_gitnetic(*args, cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming this run from {save_dir / 'checkpoint_last.ckpt'} (step {step})" in resumed.stderr
    assert_same_weights(save_dir / "checkpoint_last.ckpt", uninterrupted)


def test_a_second_signal_exits_at_once_and_leaves_only_whole_checkpoints(
    tmp_path, tiny_tokenizer, lm_shards, uninterrupted
):
    """SIGTERM, then SIGINT as soon as the checkpoint of the step reached starts to appear (or, if the
    poll misses the write, right after it): the process ends at once, non-zero, and every checkpoint
    under a final name is whole; the same command then resumes and ends on the uninterrupted weights."""
    from gitnetic.models.checkpoint import is_valid_checkpoint, load_checkpoint

    save_dir = tmp_path / "ckpt"
    args = train_args(tiny_tokenizer, lm_shards, save_dir)
    proc = start_gitnetic(*args, cwd=tmp_path)
    wait_until(save_dir / f"checkpoint_step{EVERY}.ckpt", proc, "periodic checkpoint")
    time.sleep(PAST_PERIODIC_S)
    before = set(save_dir.iterdir())
    proc.send_signal(signal.SIGTERM)
    while proc.poll() is None and set(save_dir.iterdir()) <= before:
        pass  # busy-wait: the checkpoint write of a tiny model lasts milliseconds
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode not in (0, None), err[-3000:]
    assert "received SIGTERM: saving a checkpoint" in err and "Traceback" not in err

    finals = sorted(save_dir.glob("*.ckpt"))
    assert finals, sorted(p.name for p in save_dir.iterdir())
    for path in finals:  # whole or absent: a cut-short write is only ever a hidden .tmp sibling
        assert is_valid_checkpoint(path), path.name
        assert load_checkpoint(path)["global_step"] >= EVERY
    assert {p.name for p in save_dir.iterdir()} - {p.name for p in finals} <= {
        p.name for p in save_dir.glob(".*.tmp")
    }

    resumed = run_gitnetic(*args, cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming this run from" in resumed.stderr
    assert_same_weights(save_dir / "checkpoint_last.ckpt", uninterrupted)
    assert not list(save_dir.glob(".*.tmp"))


def test_changed_param_after_a_crash_starts_fresh(tmp_path, tiny_tokenizer, lm_shards, uninterrupted):
    save_dir = tmp_path / "ckpt"
    save_dir.mkdir()
    # the crashed run's checkpoints: those of the uninterrupted run, whose learning rate differed
    (save_dir / "checkpoint_step60.ckpt").write_bytes(uninterrupted.read_bytes())
    (save_dir / "checkpoint_last.ckpt").write_bytes(uninterrupted.read_bytes())
    args = train_args(tiny_tokenizer, lm_shards, save_dir, "--learning_rate", "0.003", steps=2)
    fresh = run_gitnetic(*args, cwd=tmp_path, timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "are from another run (changed: learning_rate" in fresh.stderr
    assert "resuming" not in fresh.stderr
    ckpt = torch.load(save_dir / "checkpoint_last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 2
    assert not (save_dir / "checkpoint_step60.ckpt").exists()


def test_truncated_newest_checkpoint_falls_back_to_an_older_one(
    tmp_path, tiny_tokenizer, lm_shards, uninterrupted
):
    save_dir = tmp_path / "ckpt"
    save_dir.mkdir()
    (save_dir / f"checkpoint_step{STEPS}.ckpt").write_bytes(uninterrupted.read_bytes())
    (save_dir / "checkpoint_last.ckpt").write_bytes(uninterrupted.read_bytes()[:5000])  # cut short
    done = run_gitnetic(*train_args(tiny_tokenizer, lm_shards, save_dir), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "checkpoint_last.ckpt is truncated or unreadable: skipping it" in done.stderr
    assert f"checkpoint_step{STEPS}.ckpt (step {STEPS})" in done.stderr


def test_failing_checkpoint_write_keeps_the_previous_one(tmp_path, tiny_tokenizer, lm_shards, uninterrupted):
    save_dir = tmp_path / "ckpt"
    save_dir.mkdir()
    last = save_dir / "checkpoint_last.ckpt"
    last.write_bytes(uninterrupted.read_bytes())
    before = last.read_bytes()
    limit = len(before) // 2  # ulimit -f below the checkpoint size: the write fails with EFBIG

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    # continue the finished run on purpose with more steps: the first new checkpoint cannot be written
    args = train_args(tiny_tokenizer, lm_shards, save_dir, steps=STEPS + EVERY)
    args[args.index("auto")] = "last"
    proc = subprocess.run(
        [sys.executable, "-m", "gitnetic", *args], cwd=tmp_path, env=cli_env(), capture_output=True,
        text=True, timeout=300, preexec_fn=small_files, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"gitnetic train: error: could not write checkpoint {save_dir}"), line
    assert "File too large" in line and "Traceback" not in proc.stderr
    assert last.read_bytes() == before  # the previous checkpoint_last is intact and loadable
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == STEPS
    assert not list(save_dir.glob(".*.tmp"))
