"""TransformerDataModule over real MMIDIDX shards: padding, packing, errors and exact Lightning resume."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.loading.batching import max_tokens_batches
from gitnetic.modules.transformer_datamodule import TransformerDataModule
from tests.helpers import marked_docs, write_shard

Params = TransformerDataModule.Params
MARK = 10  # document i starts with token MARK + i, so a batch row tells which document it is


def write_shards(prefix: Path, sizes: list[int], seed: int = 0) -> list[np.ndarray]:
    docs = marked_docs(sizes, seed, MARK)
    write_shard(prefix, docs)
    return docs


@pytest.fixture
def shards(tmp_path: Path) -> tuple[str, list[np.ndarray]]:
    sizes = np.random.default_rng(3).integers(2, 40, size=60).tolist()
    prefix = tmp_path / "train"
    return str(prefix), write_shards(prefix, sizes)


def test_batches_are_padded_with_the_tokenizer_pad_id(tokenizer, shards) -> None:
    prefix, docs = shards
    dm = TransformerDataModule(
        tokenizer=tokenizer, params=Params(train_data_prefix=prefix, max_tokens=120, max_length=32)
    )
    dm.setup("fit")
    pad = tokenizer.pad_token_id
    assert pad == 1
    seen = []
    for batch in dm.train_dataloader():
        ids, mask = batch["input_ids"], batch["attention_mask"]
        assert ids.dtype == torch.long and mask.dtype == torch.long and ids.shape == mask.shape
        assert ids.numel() <= 120
        for row, m in zip(ids, mask, strict=True):
            n = int(m.sum())
            assert m[:n].all() and not m[n:].any()  # right padding, mask 0 exactly on padding
            assert (row[n:] == pad).all()
            doc = docs[int(row[0]) - MARK]
            np.testing.assert_array_equal(row[:n].numpy(), doc[:32])  # truncated to max_length
            seen.append(int(row[0]) - MARK)
        assert mask.sum(1).max() == ids.shape[1]  # padded to the longest in the batch, no further
    assert sorted(seen) == list(range(len(docs)))
    assert dm.num_train_batches_per_epoch() == len(dm.train_dataloader())


def test_packing_yields_full_blocks_of_the_token_stream(tokenizer, shards) -> None:
    prefix, docs = shards
    params = Params(train_data_prefix=prefix, max_tokens=64, max_length=16, packing=True, shuffle=False)
    dm = TransformerDataModule(tokenizer=tokenizer, params=params)
    batches = list(dm.train_dataloader())
    assert all(b["input_ids"].shape[0] <= 64 // 16 for b in batches)
    stream = torch.cat([b["input_ids"][b["attention_mask"].bool()] for b in batches]).numpy()
    np.testing.assert_array_equal(stream, np.concatenate(docs))  # unshuffled: the stream in order
    rows = torch.cat([b["attention_mask"].sum(1) for b in batches]).tolist()
    assert rows == [16] * (len(stream) // 16) + [len(stream) % 16]  # only the last block is short


def test_validation_is_ordered_and_complete(tokenizer, shards, tmp_path: Path) -> None:
    prefix, docs = shards
    valid = tmp_path / "valid"
    val_docs = write_shards(valid, [5, 9, 3, 30, 12], seed=1)
    dm = TransformerDataModule(
        tokenizer=tokenizer, params=Params(train_data_prefix=prefix, val_data_prefix=str(valid), batch_size=2)
    )
    dm.setup("fit")
    first = [b["input_ids"][:, 0].tolist() for b in dm.val_dataloader()]
    again = [b["input_ids"][:, 0].tolist() for b in dm.val_dataloader()]
    assert first == again
    assert sorted(i - MARK for b in first for i in b) == list(range(len(val_docs)))


def test_missing_prefix_is_a_one_line_data_error(tokenizer, tmp_path: Path) -> None:
    dm = TransformerDataModule(
        tokenizer=tokenizer, params=Params(train_data_prefix=str(tmp_path / "nope"), max_tokens=64)
    )
    with pytest.raises(DataError, match="run 'python -m gitnetic preprocess'") as info:
        dm.setup("fit")
    assert "\n" not in str(info.value) and str(tmp_path / "nope") in str(info.value)


def test_bad_params_are_config_errors(tokenizer, shards) -> None:
    prefix, _ = shards
    with pytest.raises(ConfigError, match="--max_tokens"):
        TransformerDataModule(tokenizer=tokenizer, params=Params(train_data_prefix=prefix))
    with pytest.raises(ConfigError, match="raise --max_tokens or lower --max_length"):
        TransformerDataModule(
            tokenizer, Params(train_data_prefix=prefix, max_tokens=8, max_length=16, packing=True)
        )
    dm = TransformerDataModule(tokenizer, Params(train_data_prefix=prefix, max_tokens=8, max_length=16))
    with pytest.raises(ConfigError, match="raise --max_tokens or lower --max_length"):
        dm.train_dataloader()
    with pytest.raises(ConfigError, match="--train_data_prefix"):
        TransformerDataModule(tokenizer, Params(max_tokens=64)).setup("fit")


def test_params_parse_from_the_command_line() -> None:
    parser = DataclassArgumentParser()
    TransformerDataModule.add_argparse_params(parser)
    params, _ = parser.parse_args_into_dataclasses(
        ["--train_data_prefix", "data/bin/train", "--max_tokens", "2048", "--packing", "--no_shuffle"]
    )
    assert isinstance(params, Params)
    assert (params.train_data_prefix, params.max_tokens, params.packing, params.shuffle) == (
        "data/bin/train",
        2048,
        True,
        False,
    )
    assert (params.max_length, params.seed, params.num_workers, params.pin_memory) == (512, 17, 0, None)


# ---------------------------------------------------------------------------- Lightning resume


class Recorder(L.LightningModule):
    """Records which documents each training step saw; one parameter so a real optimizer steps."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[list[int]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append((batch["input_ids"][:, 0] - MARK).tolist())
        return (self.w - batch["attention_mask"].float().mean()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(dm, tmp_path: Path, ckpt_path: str | None = None, recorder=Recorder, **kwargs) -> Recorder:
    module = recorder()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        use_distributed_sampler=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
        **kwargs,
    )
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    return module


def test_lightning_resume_mid_epoch_replays_exactly_the_remaining_batches(
    tokenizer, shards, tmp_path: Path
) -> None:
    """With DataLoader workers, so the sampler runs ahead of training (prefetch) and must not decide."""
    prefix, docs = shards
    num_workers = 2

    def datamodule():
        params = Params(
            train_data_prefix=prefix, max_tokens=100, max_length=32, num_workers=num_workers, seed=5
        )
        return TransformerDataModule(tokenizer=tokenizer, params=params)

    ckpts = tmp_path / "ckpt"
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=ckpts, filename="{step}", every_n_train_steps=1, save_top_k=-1
    )
    full = _fit(datamodule(), tmp_path, max_epochs=2, callbacks=[checkpoint]).seen
    per_epoch = len(max_tokens_batches(np.array([len(d) for d in docs]), 100, 32))
    assert len(full) == 2 * per_epoch
    assert full[:per_epoch] != full[per_epoch:]  # reshuffled between epochs
    for step in (3, per_epoch, per_epoch + 2):  # mid-epoch 0, at the epoch boundary, mid-epoch 1
        resumed = _fit(datamodule(), tmp_path, ckpt_path=str(ckpts / f"step={step}.ckpt"), max_epochs=2).seen
        assert resumed == full[step:], f"resume from step {step}"


class ValidatingRecorder(Recorder):
    def validation_step(self, batch, batch_idx):
        self.log("val_tokens", batch["attention_mask"].float().sum())


def test_lightning_resume_with_accumulation_and_step_validation(tokenizer, shards, tmp_path: Path) -> None:
    """The trainer's setup: max_steps across epochs, gradient accumulation, validation every N steps."""
    prefix, _ = shards

    def fit(ckpt_path: str | None = None, callbacks=()) -> list[list[int]]:
        params = Params(train_data_prefix=prefix, val_data_prefix=prefix, max_tokens=100, max_length=32)
        dm = TransformerDataModule(tokenizer, params)
        return _fit(
            dm, tmp_path, ckpt_path, ValidatingRecorder, max_steps=14, accumulate_grad_batches=2,
            val_check_interval=6, check_val_every_n_epoch=None, callbacks=list(callbacks),
        ).seen  # fmt: skip

    ckpts = tmp_path / "ckpt"
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=ckpts, filename="{step}", every_n_train_steps=3, save_top_k=-1
    )
    full = fit(callbacks=[checkpoint])
    assert len(full) == 28
    for step in (3, 9):  # step 9 = batch 18: past the first epoch and after a validation run
        assert fit(str(ckpts / f"step={step}.ckpt")) == full[2 * step :], f"resume from step {step}"


@pytest.mark.parametrize("which", ["train", "val"])
def test_shards_of_a_larger_vocabulary_are_refused_at_setup(which, tokenizer, shards, tmp_path: Path) -> None:
    """Issue 29 item 3: shards of another tokenizer used to fail mid-training with ``IndexError: index out of
    range in self`` (149 lines); now setup says which prefix, which id, the model's size and the fix."""
    prefix, docs = shards
    foreign = tmp_path / "foreign"
    write_shard(foreign, [*docs[:3], np.array([5, 7354, 6], dtype=np.uint16)])
    train, val = (str(foreign), prefix) if which == "train" else (prefix, str(foreign))
    params = Params(train_data_prefix=train, val_data_prefix=val, max_tokens=64)
    dm = TransformerDataModule(tokenizer=tokenizer, params=params, vocab_size=1000)
    with pytest.raises(DataError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{foreign} holds token id 7354 but the model has 1000")
    assert "preprocess" in message and "--tokenizer_path" in message


def test_without_a_vocab_size_the_tokenizer_bounds_the_token_ids(tokenizer, shards, tmp_path: Path) -> None:
    """A user task that builds the datamodule as the seed contract does (tokenizer, params) is checked too."""
    prefix, docs = shards
    foreign = tmp_path / "foreign"
    write_shard(foreign, [*docs[:3], np.array([5, len(tokenizer), 6], dtype=np.uint16)])
    dm = TransformerDataModule(
        tokenizer=tokenizer, params=Params(train_data_prefix=str(foreign), max_tokens=64)
    )
    with pytest.raises(
        DataError, match=f"holds token id {len(tokenizer)} but the model has {len(tokenizer)}"
    ):
        dm.setup("fit")
    ok = TransformerDataModule(tokenizer=tokenizer, params=Params(train_data_prefix=prefix, max_tokens=64))
    ok.setup("fit")
    assert ok.train_dataset is not None
