"""A real 2-process DDP run (gloo, CPU): each rank gets its own slice of the epoch plan, none overlap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from gitnetic.data.loading.batching import DistributedBatchSampler, max_tokens_batches
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
    tokenizer_dir, train, valid, out = sys.argv[1:5]


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
        Path(out, f"rank{trainer.global_rank}.json").write_text(json.dumps(result))
    """
)


def test_two_process_ddp_ranks_see_disjoint_slices_of_the_plan(tiny_tokenizer: Path, tmp_path: Path) -> None:
    sizes = np.random.default_rng(3).integers(2, 40, size=70).tolist()
    val_sizes = [5, 9, 3, 30, 12, 7, 21]
    write_shard(tmp_path / "train", marked_docs(sizes, seed=0))
    write_shard(tmp_path / "valid", marked_docs(val_sizes, seed=1))
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
