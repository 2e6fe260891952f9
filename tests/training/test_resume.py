"""gitnetic/training/resume.py. Exact resume: a run killed at step k and resumed ends bit-identical to an
uninterrupted run, also when the kill fell between writing a checkpoint and moving ``checkpoint_last.ckpt``;
and the checkpoint folder's writer (atomic writes and links, which checkpoint a run resumes from).

Real pieces only: the real tokenizer, real MMIDIDX shards read by ``TransformerDataModule``, a tiny
GPT-2 / RoBERTa with dropout on (so the per-step RNG matters), validation in between, and an epoch
boundary after the resume point, so the data position, LR schedule, optimizer moments, dropout and MLM
masks all have to continue exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.training.trainer import TransformerTrainer
from tests.helpers import (
    assert_same_weights,
    encode_files,
    module_and_data,
    stdlib_json_dir,
    tiny_gpt2,
    tiny_roberta,
    write_shard,
)

Params = TransformerTrainer.Params

MAX_STEPS, KILL_AT = 12, 5


class Killed(RuntimeError):
    pass


class KillAt(L.Callback):
    """Dies at the start of step ``step + 1``: after checkpoint ``step`` is on disk, like a SIGKILL'd job."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise Killed(f"killed at step {self.step}")


@pytest.fixture(scope="module")
def shards(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """~30 documents of 8-40 tokens: an epoch is 7-8 batches of 4, so 12 steps cross an epoch."""
    (ids,) = encode_files(tokenizer, [stdlib_json_dir() / "decoder.py"])
    ends = np.cumsum(np.random.default_rng(0).integers(8, 40, size=40))
    docs = [ids[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    out = tmp_path_factory.mktemp("resume_shards")
    return write_shard(out / "train", docs[:30]), write_shard(out / "valid", docs[30:])


def run(tokenizer, shards, objective: str, save_dir: Path, resume: str | None = None, callbacks=()):
    torch.set_num_threads(1)
    params = TransformerTrainer.Params(
        max_steps=MAX_STEPS,
        save_step_frequency=KILL_AT,
        save_dir=str(save_dir),
        resume_from_checkpoint=resume,
        val_check_interval=4,
        progress_bar_refresh_rate=0,
        dvclive_dir="",
        seed=1234,
    )
    trainer = TransformerTrainer(params, enable_model_summary=False, callbacks=list(callbacks))
    if objective == "clm":
        model = tiny_gpt2(tokenizer, n_embd=16, n_positions=40)
    else:
        model = tiny_roberta(tokenizer, hidden_size=16, intermediate_size=32, max_position_embeddings=40 + 2)
    config = model.config
    assert config.to_dict().get("hidden_dropout_prob", config.to_dict().get("resid_pdrop")) > 0  # dropout on
    module, dm = module_and_data(
        tokenizer, model, *shards, module={"learning_rate": 2e-3, "warmup_steps": 3},
        batch_size=4, max_length=32, seed=7,
    )  # fmt: skip
    lightning_trainer = trainer.fit(SimpleNamespace(module=module, datamodule=dm))  # a TaskModule-like task
    return lightning_trainer, module, dm


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_killed_and_resumed_run_matches_the_uninterrupted_run(
    tokenizer, shards, tmp_path: Path, objective: str
) -> None:
    full_trainer, full, dm = run(tokenizer, shards, objective, tmp_path / "full")
    assert dm.num_train_batches_per_epoch() < MAX_STEPS  # the runs cross an epoch boundary
    assert KILL_AT % dm.num_train_batches_per_epoch() != 0  # ... and resume mid-epoch

    with pytest.raises(Killed):
        run(tokenizer, shards, objective, tmp_path / "killed", callbacks=[KillAt(KILL_AT)])
    assert sorted(p.name for p in (tmp_path / "killed").iterdir()) == [
        "checkpoint_last.ckpt",
        f"checkpoint_step{KILL_AT}.ckpt",
    ]
    killed = torch.load(tmp_path / "killed" / "checkpoint_last.ckpt", weights_only=False, map_location="cpu")
    assert killed["global_step"] == KILL_AT
    resumed_trainer, resumed, _ = run(tokenizer, shards, objective, tmp_path / "killed", resume="last")

    assert resumed_trainer.global_step == full_trainer.global_step == MAX_STEPS
    full_state, resumed_state = full.model.state_dict(), resumed.model.state_dict()
    assert full_state.keys() == resumed_state.keys()
    for name, value in full_state.items():
        assert torch.equal(value, resumed_state[name]), name
    full_opt, resumed_opt = (
        full_trainer.optimizers[0].state_dict(),
        resumed_trainer.optimizers[0].state_dict(),
    )
    assert full_opt["param_groups"][0]["lr"] == resumed_opt["param_groups"][0]["lr"]
    for key, state in full_opt["state"].items():
        assert torch.equal(state["exp_avg_sq"], resumed_opt["state"][key]["exp_avg_sq"])
    assert resumed.tokens_seen == full.tokens_seen > 0
    assert float(resumed_trainer.callback_metrics["val/loss"]) == float(
        full_trainer.callback_metrics["val/loss"]
    )
    # the resumed run really started from the step-k weights, not from a fresh or final state
    name = next(iter(full_state))
    assert not torch.equal(killed["state_dict"][f"model.{name}"], full_state[name])


def test_fingerprint_covers_every_prefix_of_a_blend(tmp_path):
    """A blended train prefix names several shard sets: new data in any of them is another run."""
    from gitnetic.training.fingerprint import run_fingerprint

    write_shard(tmp_path / "train-code", [[5, 6, 7]])
    write_shard(tmp_path / "train-commits", [[8, 9]])
    spec = f"0.7 {tmp_path / 'train-code'} 0.3 {tmp_path / 'train-commits'}"
    before = run_fingerprint([{"train_data_prefix": spec}])
    assert "train_data_prefix (content)" in before["items"]
    write_shard(tmp_path / "train-commits", [[8, 9, 10]])
    after = run_fingerprint([{"train_data_prefix": spec}])
    assert after["digest"] != before["digest"]


def test_a_run_killed_between_its_final_checkpoint_and_the_link_resumes_to_its_final_weights(
    tokenizer, shards, tmp_path: Path
) -> None:
    """The flaky resume of issue 28: killed after ``checkpoint_step12.ckpt`` (the final step) was renamed
    into place but before ``checkpoint_last.ckpt`` moved to it. ``auto`` resumes from the step file, the
    resumed run trains and saves nothing, and the link must still end on the final weights."""
    from gitnetic.training.resume import link_or_copy

    save_dir = tmp_path / "ckpt"
    full_trainer, full, _ = run(tokenizer, shards, "clm", save_dir)
    final = save_dir / f"checkpoint_step{MAX_STEPS}.ckpt"
    older = sorted(save_dir.glob("checkpoint_step*.ckpt"), key=os.path.getmtime)[0]
    link_or_copy(older, save_dir / "checkpoint_last.ckpt")  # the link as the kill left it

    resumed_trainer, _, _ = run(tokenizer, shards, "clm", save_dir, resume="auto")
    assert resumed_trainer.ckpt_path == str(final)
    assert resumed_trainer.global_step == full_trainer.global_step == MAX_STEPS
    assert os.path.samefile(save_dir / "checkpoint_last.ckpt", final)
    assert_same_weights(
        save_dir / "checkpoint_last.ckpt", {f"model.{k}": v for k, v in full.model.state_dict().items()}
    )


# ---------------------------------------------------------------------------- the checkpoint folder's writer
def _save(path: Path, step: int, **extra) -> Path:
    torch.save({"state_dict": {}, "global_step": step, **extra}, path)
    return path


def test_checkpoint_writes_are_atomic(tmp_path: Path) -> None:
    from gitnetic.training.resume import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "ckpt" / "checkpoint_last.ckpt"
    io.save_checkpoint({"global_step": 1, "w": torch.ones(3)}, path)
    with pytest.raises(Exception, match="pickle"):  # a save that dies half-way ...
        io.save_checkpoint({"global_step": 2, "bad": lambda: None}, path)
    # ... leaves the previous checkpoint whole and no temp file behind
    assert torch.load(path, weights_only=False)["global_step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint_last.ckpt"]


def test_a_link_that_falls_back_to_a_copy_never_shows_a_partial_file(tmp_path: Path, monkeypatch) -> None:
    """Where hard links are impossible, ``checkpoint_last.ckpt`` is a copy, made under a temporary name and
    renamed: a copy cut short leaves the previous file whole (or none) under the final name."""
    import shutil

    from gitnetic.training import resume

    step4 = _save(tmp_path / "checkpoint_step4.ckpt", 4)
    step8 = _save(tmp_path / "checkpoint_step8.ckpt", 8)
    last = tmp_path / "checkpoint_last.ckpt"

    def no_links(src, dst, *args, **kwargs):
        raise OSError(1, "Operation not permitted")

    copies: list[tuple[str, bool]] = []  # (where the copy went, whether checkpoint_last existed then)
    real_copy = shutil.copyfile

    def watched_copy(src, dst, *args, **kwargs):
        copies.append((Path(dst).name, last.exists()))
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(resume.os, "link", no_links)
    monkeypatch.setattr(resume.shutil, "copyfile", watched_copy)
    resume.link_or_copy(step4, last)
    assert copies == [(copies[0][0], False)] and copies[0][0].startswith(".checkpoint_last.ckpt.")
    assert copies[0][0].endswith(".tmp") and last.read_bytes() == step4.read_bytes()
    assert not os.path.samefile(last, step4)  # a copy

    def killed_copy(src, dst, *args, **kwargs):
        Path(dst).write_bytes(Path(src).read_bytes()[:100])  # half a file, then the "kill"
        raise KeyboardInterrupt

    monkeypatch.setattr(resume.shutil, "copyfile", killed_copy)
    with pytest.raises(KeyboardInterrupt):
        resume.link_or_copy(step8, last)
    assert last.read_bytes() == step4.read_bytes()  # the previous link, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_last.ckpt", "checkpoint_step4.ckpt", "checkpoint_step8.ckpt",
    ]  # fmt: skip


def test_complete_last_link_moves_the_link_only_to_a_newer_checkpoint(tmp_path: Path) -> None:
    from gitnetic.training.resume import complete_last_link, link_or_copy

    step4 = _save(tmp_path / "checkpoint_step4.ckpt", 4)
    step8 = _save(tmp_path / "checkpoint_step8.ckpt", 8)
    last = tmp_path / "checkpoint_last.ckpt"
    assert complete_last_link(tmp_path, step8) and os.path.samefile(last, step8)  # missing: made
    assert not complete_last_link(tmp_path, last) and not complete_last_link(tmp_path, step8)
    assert not complete_last_link(tmp_path, step4)  # resuming an older one on purpose: the link stays
    assert os.path.samefile(last, step8)
    outside = _save(tmp_path.parent / f"{tmp_path.name}-other.ckpt", 2)
    assert not complete_last_link(tmp_path, outside) and os.path.samefile(last, step8)

    link_or_copy(step4, last)  # the link left on step 4 by a kill, after step 12 was written
    step12 = _save(tmp_path / "checkpoint_step12.ckpt", 12)
    assert complete_last_link(tmp_path, step12) and os.path.samefile(last, step12)
    last.write_bytes(b"PK cut short")  # unreadable: replaced even by an older checkpoint
    assert complete_last_link(tmp_path, step8) and os.path.samefile(last, step8)
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_or_corrupt_checkpoints_are_user_errors(tmp_path: Path) -> None:
    trainer = TransformerTrainer(Params(resume_from_checkpoint=str(tmp_path / "nope.ckpt"), dvclive_dir=""))
    with pytest.raises(ConfigError, match="does not exist"):
        trainer.resolve_checkpoint()
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(DataError, match="truncated"):
        TransformerTrainer(Params(dvclive_dir="")).resolve_checkpoint(str(broken))


def test_auto_resume_clears_only_the_checkpoints_training_named(tmp_path: Path) -> None:
    from gitnetic.training.resume import FINGERPRINT_KEY, resume_checkpoint

    _save(tmp_path / "checkpoint_step3.ckpt", 3, **{FINGERPRINT_KEY: {"digest": "old", "items": {}}})
    _save(tmp_path / "mine.ckpt", 7)
    assert resume_checkpoint("auto", str(tmp_path), {"digest": "new", "items": {}}) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.ckpt"]
