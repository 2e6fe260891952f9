"""A real 2-process DDP run (gloo, CPU): each rank gets its own slice of the epoch plan, none overlap,
and validation's loss and bits per byte are the ratios of sums over both ranks."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gitnetic.data.loading.batching import DistributedBatchSampler, max_tokens_batches
from gitnetic.data.token_bytes import token_byte_lengths
from gitnetic.data.tokenizer.load import load_tokenizer
from tests.helpers import marked_docs, write_shard

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import lightning as L
    import torch

    from gitnetic.data.tokenizer.load import load_tokenizer
    from gitnetic.modules.transformer_datamodule import TransformerDataModule

    MARK = 10
    tokenizer_dir, train, valid, out, bytes_valid = sys.argv[1:6]


    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))
            self.train_seen, self.val_seen = [], []

        def training_step(self, batch, batch_idx):
            self.train_seen.append([self.current_epoch, (batch["input_ids"][:, 0] - MARK).tolist()])
            return (self.w - batch["attention_mask"].float().mean()) ** 2

        def validation_step(self, batch, batch_idx):
            self.val_seen.append((batch["input_ids"][:, 0] - MARK).tolist())
            self.log("val_loss", batch["attention_mask"].float().mean(), sync_dist=True)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)


    if __name__ == "__main__":
        params = TransformerDataModule.Params(
            train_data_prefix=train, val_data_prefix=valid, max_tokens=100, max_length=32, seed=5
        )
        dm = TransformerDataModule(tokenizer=load_tokenizer(tokenizer_dir), params=params)
        module = Recorder()
        trainer = L.Trainer(
            accelerator="cpu", devices=2, strategy="ddp", use_distributed_sampler=False, max_epochs=2,
            logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(module, datamodule=dm)
        result = {"world": trainer.world_size, "train": module.train_seen, "val": module.val_seen}

        # the real module validating on both ranks (the processes exist now: this trainer starts none)
        import math
        import transformers
        from gitnetic.modules.transformer_module import TransformerModule

        class Local(TransformerModule):
            def on_validation_epoch_end(self):  # this rank's own sums, before the (in-place) reduction
                self.local = [float(self._val_loss_sum), int(self._val_token_count), int(self._val_byte_count)]
                super().on_validation_epoch_end()

        torch.manual_seed(0)
        tokenizer = load_tokenizer(tokenizer_dir)
        config = transformers.GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=64)
        lm = Local(transformers.GPT2LMHeadModel(config), tokenizer)
        validator = L.Trainer(
            accelerator="cpu", devices=2, strategy="ddp", use_distributed_sampler=False, logger=False,
            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        )
        one_block_a_batch = TransformerDataModule.Params(
            train_data_prefix=train, val_data_prefix=bytes_valid, packing=True, batch_size=1, max_length=32
        )
        validator.validate(lm, datamodule=TransformerDataModule(tokenizer=tokenizer, params=one_block_a_batch))
        result["nats"], result["tokens"], result["bytes"] = lm.local
        result["logged"] = {k: float(v) for k, v in validator.callback_metrics.items()}
        Path(out, f"rank{trainer.global_rank}.json").write_text(json.dumps(result))
    """
)


def test_two_process_ddp_ranks_see_disjoint_slices_of_the_plan(tiny_tokenizer: Path, tmp_path: Path) -> None:
    sizes = np.random.default_rng(3).integers(2, 40, size=70).tolist()
    val_sizes = [5, 9, 3, 30, 12, 7, 21]
    write_shard(tmp_path / "train", marked_docs(sizes, seed=0))
    write_shard(tmp_path / "valid", marked_docs(val_sizes, seed=1))
    # 32-token documents, one packed block a batch, so rank 0 validates the even ones: one-byte tokens,
    # and rank 1 the odd ones: the longest tokens, and the two ranks' bits per byte are far apart
    lengths = token_byte_lengths(load_tokenizer(tiny_tokenizer), 512)
    short, long = np.flatnonzero(lengths == 1), np.argsort(lengths)[-40:]
    rng = np.random.default_rng(2)
    write_shard(tmp_path / "bytes_valid", [rng.choice(long if i % 2 else short, 32) for i in range(6)])
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "LOCAL_RANK", "MASTER_", "WORLD_SIZE"))
    }
    env.update(OMP_NUM_THREADS="1", PL_DISABLE_FORK="1")
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            str(tiny_tokenizer),
            str(tmp_path / "train"),
            str(tmp_path / "valid"),
            str(tmp_path),
            str(tmp_path / "bytes_valid"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world"] for r in ranks] == [2, 2]

    for epoch in (0, 1):
        plan = max_tokens_batches(np.array(sizes), 100, 32, seed=5, epoch=epoch)
        per_rank = [[b for e, b in r["train"] if e == epoch] for r in ranks]
        # exactly what the single-process plan hands each rank, in order, equal counts
        for rank, seen in enumerate(per_rank):
            assert seen == [b.tolist() for b in plan[rank : len(plan) // 2 * 2 : 2]]
        union = [i for seen in per_rank for b in seen for i in b]
        assert len(union) == len(set(union))  # no sequence seen twice in an epoch
        dropped = {i for b in plan[len(plan) // 2 * 2 :] for i in b}
        assert set(union) | dropped == set(range(len(sizes)))

    # validation: every sequence once per validation run across ranks, uneven tail kept
    val_plan = DistributedBatchSampler(
        lambda e: max_tokens_batches(np.array(val_sizes), 100, 32, shuffle=False)
    )
    val_once = sorted(i for b in val_plan for i in b)
    val_union = sorted(i for r in ranks for b in r["val"] for i in b)
    assert val_union == sorted(val_once * 2)  # two epochs, each validated once
    assert val_once == list(range(len(val_sizes)))

    # val/loss and val/bits_per_byte: the ratios of the sums over both ranks, the same on each rank
    nats, tokens, nbytes = (sum(r[k] for r in ranks) for k in ("nats", "tokens", "bytes"))
    assert ranks[0]["logged"] == ranks[1]["logged"]
    assert ranks[0]["logged"]["val/loss"] == pytest.approx(nats / tokens, rel=1e-6)
    bits = ranks[0]["logged"]["val/bits_per_byte"]
    assert bits == pytest.approx(nats / (math.log(2) * nbytes), rel=1e-6)
    mean_of_ratios = sum(r["nats"] / (math.log(2) * r["bytes"]) for r in ranks) / 2
    assert abs(bits - mean_of_ratios) > 0.1 * bits  # the ranks differ: the check above can tell
