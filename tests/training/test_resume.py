"""Exact resume: a run killed at step k and resumed ends bit-identical to an uninterrupted run.

Real pieces only: the real tokenizer, real MMIDIDX shards read by ``TransformerDataModule``, a tiny
GPT-2 / RoBERTa with dropout on (so the per-step RNG matters), validation in between, and an epoch
boundary after the resume point, so the data position, LR schedule, optimizer moments, dropout and MLM
masks all have to continue exactly.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch

from gitnetic.training.trainer import TransformerTrainer
from tests.helpers import encode_files, module_and_data, stdlib_json_dir, tiny_gpt2, tiny_roberta, write_shard

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
