"""``TransformerDataModule``: MMIDIDX shards → padded ``{"input_ids", "attention_mask"}`` batches.

Batches are planned at index level by :mod:`gitnetic.data.loading.batching` (``max_tokens`` length buckets
or packed blocks) and handed out per rank by :class:`DistributedBatchSampler`, so the trainer must
be built with ``use_distributed_sampler=False`` (Lightning would otherwise try to swap in its own
sampler). The train DataLoader is *stateful* (``state_dict``/``load_state_dict``): Lightning stores
its state in every checkpoint and restores it before iterating when resuming, which gives exact
mid-epoch resume with no extra calls from the module or trainer; the consumed-batch count is read
from the trainer's own progress counters, so DataLoader prefetching cannot skew it. Lightning also
calls ``set_epoch`` on the sampler each epoch, so no ``reload_dataloaders_every_n_epochs`` is needed.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.loading.batching import (
    DistributedBatchSampler,
    PackedBlocks,
    collate_padded,
    max_tokens_batches,
    packed_batches,
)
from gitnetic.data.loading.blend import ConcatTokens, blend_samples, parse_blend
from gitnetic.data.loading.fim import FimDataset, fim_ids
from gitnetic.data.shards.indexed import IndexedDataset, check_token_ids
from gitnetic.data.tokenizer.fim_tokens import newline_mask, no_fim_tokens
from gitnetic.modules.params import DataModuleParams

__all__ = ["TransformerDataModule"]

logger = logging.getLogger(__name__)


class _Truncated(Dataset):
    """The first ``max_length`` tokens of each sequence (what ``max_tokens`` batches were planned for)."""

    def __init__(self, dataset: Any, max_length: int) -> None:
        self.dataset = dataset
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.dataset[index][: self.max_length], dtype=np.int64)


class _Blend:
    """Datasets of a weighted prefix, with their normalised weights (planned by ``_plan_blend``)."""

    def __init__(self, datasets: list[Any], weights: list[float]) -> None:
        self.datasets, self.weights = datasets, weights
        self.num_tokens = sum(d.num_tokens for d in datasets)


class _ResumableDataLoader(DataLoader):
    """A DataLoader Lightning recognises as stateful, so its resume position lands in checkpoints.

    ``consumed_fn`` returns the number of batches of the current epoch the training loop has
    finished (or None outside a fit), which is what must be skipped on resume — not the number the
    sampler has yielded, which runs ahead by the prefetch depth.
    """

    consumed_fn: Any = None

    def state_dict(self) -> dict[str, int]:
        consumed = self.consumed_fn() if self.consumed_fn is not None else None
        return self.batch_sampler.state_dict(consumed=consumed)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_sampler.load_state_dict(state)


class TransformerDataModule(LightningDataModule):
    """Training/validation batches from ``gitnetic preprocess`` shards, DDP-aware and resumable."""

    Params = DataModuleParams
    params: Params
    params_type: type[Params] = Params

    def __init__(self, tokenizer: Any, params: DataModuleParams, vocab_size: int | None = None) -> None:
        """``vocab_size``: the model's, which every token id of the shards must be below (checked at
        setup); without it, the tokenizer's size (the model is built with one row per token)."""
        super().__init__()
        self.tokenizer = tokenizer
        self.params = params
        self.vocab_size = vocab_size
        self.train_dataset: Any = None
        self.val_dataset: Any = None
        self._check_params()

    @classmethod
    def add_argparse_params(cls, parser: DataclassArgumentParser) -> None:
        parser.add_arguments(cls.Params, title="TransformerDataModule parameters")

    # ------------------------------------------------------------------ setup
    def _check_params(self) -> None:
        p = self.params
        for name in ("max_tokens", "batch_size", "max_length"):
            value = getattr(p, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name} must be a positive integer, got {value}")
        if p.num_workers < 0:
            raise ConfigError(f"--num_workers must be 0 or more, got {p.num_workers}")
        if not 0 <= p.fim_rate <= 1 or not 0 <= p.fim_spm_rate <= 1:
            raise ConfigError(
                f"--fim_rate and --fim_spm_rate must be between 0 and 1, got {p.fim_rate} and {p.fim_spm_rate}"
            )
        if p.fim_rate > 0:
            ids = fim_ids(self.tokenizer)
            if ids is None:
                raise ConfigError(
                    no_fim_tokens(self.tokenizer, f"--fim_rate {p.fim_rate}") + " or set --fim_rate 0"
                )
            if getattr(self.tokenizer, "eos_token_id", None) is None:
                raise ConfigError(
                    f"--fim_rate {p.fim_rate} needs a tokenizer with an end-of-text token (</s>) to find "
                    "documents by; set --fim_rate 0"
                )
            logger.info(
                "FIM: %s format, %s of the documents (ids prefix %d, suffix %d, middle %d%s)",
                ids.family,
                p.fim_rate,
                ids.prefix,
                ids.suffix,
                ids.middle,
                "" if ids.eot is None else f", end of middle {ids.eot}",
            )
            if not ids.spm and p.fim_spm_rate > 0:
                logger.warning(
                    "FIM: %s trained prefix-suffix-middle (PSM) only; all FIM samples are PSM "
                    "(--fim_spm_rate %s not used)",
                    ids.family,
                    p.fim_spm_rate,
                )
        if p.max_tokens is None and p.batch_size is None:
            raise ConfigError("set --max_tokens (tokens per batch) or --batch_size (sequences per batch)")
        if p.packing and p.max_tokens is not None and p.max_tokens < p.max_length:
            raise ConfigError(
                f"--max_tokens {p.max_tokens} is smaller than one packed block of --max_length {p.max_length}; "
                "raise --max_tokens or lower --max_length"
            )

    @property
    def pad_token_id(self) -> int:
        for name in ("pad_token_id", "eos_token_id"):
            value = getattr(self.tokenizer, name, None)
            if value is not None:
                return int(value)
        return 0

    def setup(self, stage: str | None = None) -> None:
        p = self.params
        if stage in (None, "fit"):
            if not p.train_data_prefix:
                raise ConfigError("--train_data_prefix is required for training (e.g. data/bin/train)")
            if self.train_dataset is None:
                self.train_dataset = self._open(p.train_data_prefix, "train")
        if stage == "validate" and not p.val_data_prefix:
            raise ConfigError("--val_data_prefix is required to validate (e.g. data/bin/valid)")
        if p.val_data_prefix and self.val_dataset is None and stage in (None, "fit", "validate"):
            self.val_dataset = self._open(p.val_data_prefix, "validation")

    def _open(self, spec: str, what: str) -> Any:
        """One prefix -> its IndexedDataset; a weighted blend -> a :class:`_Blend` of them."""
        # a missing or corrupt prefix raises ShardError (a DataError) saying to run preprocess

        blend = parse_blend(spec)
        datasets = []
        for _, prefix in blend:
            dataset = IndexedDataset(prefix)
            if dataset.num_tokens == 0:
                raise DataError(
                    f"{what} shards at {prefix} hold no tokens; re-run preprocess on a non-empty corpus"
                )
            self._check_vocabulary(prefix, dataset)
            datasets.append(dataset)
        if len(blend) == 1:
            return datasets[0]
        return _Blend(datasets, [w for w, _ in blend])

    def _check_vocabulary(self, prefix: str, dataset: IndexedDataset) -> None:
        """Refuse shards of another tokenizer before training starts, not at the first batch holding an id
        past the embedding (a bare ``IndexError``, or a device-side assert on a GPU). The scan is bounded:
        :meth:`IndexedDataset.max_token_id` reads a sample of a set larger than its budget."""
        vocab = self.vocab_size
        if vocab is None:
            try:
                vocab = len(self.tokenizer)
            except TypeError:  # a tokenizer without a size: nothing to check against
                return
        peak, _ = dataset.max_token_id(below=vocab)
        where = getattr(self.tokenizer, "name_or_path", "") or "the model's tokenizer"
        check_token_ids(
            prefix,
            peak,
            vocab,
            f"the shards were made with another tokenizer: preprocess them with --tokenizer_path {where}, "
            "or train with the tokenizer (and model config) that made them",
        )

    # ------------------------------------------------------------------ planning
    def _plan(self, dataset: Any, shuffle: bool) -> tuple[Dataset, Any]:
        """The Dataset the DataLoader indexes and ``epoch -> batches`` over its indices."""
        p = self.params
        if isinstance(dataset, _Blend):
            return self._plan_blend(dataset, shuffle)
        if p.packing:
            blocks = PackedBlocks(dataset, p.max_length)
            caps = [c for c in (p.batch_size, p.max_tokens // p.max_length if p.max_tokens else None) if c]
            batch_size = min(caps)
            fn = functools.partial(packed_batches, len(blocks), batch_size, p.seed, shuffle=shuffle)
            return blocks, lambda epoch: fn(epoch=epoch)
        max_tokens = p.max_tokens if p.max_tokens is not None else p.batch_size * p.max_length
        sizes = np.asarray(dataset.sizes)

        def batches(epoch: int) -> list[np.ndarray]:
            return max_tokens_batches(
                sizes, max_tokens, p.max_length, p.batch_size, seed=p.seed, epoch=epoch, shuffle=shuffle
            )

        if not shuffle:  # the plan never changes: compute it once
            fixed = batches(0)
            return _Truncated(dataset, p.max_length), lambda epoch: fixed
        return _Truncated(dataset, p.max_length), batches

    def _plan_blend(self, blend: _Blend, shuffle: bool) -> tuple[Dataset, Any]:
        """Blend by weight (``blend_samples``), then cut into packed or ``max_tokens`` batches."""

        p = self.params
        if p.packing:
            parts = [PackedBlocks(d, p.max_length) for d in blend.datasets]
            caps = [c for c in (p.batch_size, p.max_tokens // p.max_length if p.max_tokens else None) if c]
            batch_size = min(caps)
        else:
            parts = blend.datasets
        concat = ConcatTokens(parts)
        counts = concat.counts
        sizes = None if p.packing else concat.sizes
        max_tokens = p.max_tokens if p.max_tokens is not None else (p.batch_size or 1) * p.max_length

        def batches(epoch: int) -> list[np.ndarray]:
            samples = blend_samples(counts, blend.weights, p.seed, epoch, shuffle=shuffle)
            if p.packing:
                return np.array_split(samples, np.arange(batch_size, len(samples), batch_size))
            planned = max_tokens_batches(
                sizes[samples],
                max_tokens,
                p.max_length,
                p.batch_size,
                seed=p.seed,
                epoch=epoch,
                shuffle=shuffle,
            )
            return [samples[b] for b in planned]

        dataset: Any = concat if p.packing else _Truncated(concat, p.max_length)
        if not shuffle:
            fixed = batches(0)
            return dataset, lambda epoch: fixed
        return dataset, batches

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def _consumed_in_epoch(self) -> int | None:
        """Batches whose training step finished in the current epoch, from Lightning's progress."""
        trainer = self.trainer
        if trainer is None:
            return None
        return int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)

    def _loader(
        self, dataset: Dataset, sampler: DistributedBatchSampler, cls: type[DataLoader]
    ) -> DataLoader:
        p = self.params
        pin = torch.cuda.is_available() if p.pin_memory is None else p.pin_memory
        return cls(
            dataset,
            batch_sampler=sampler,
            collate_fn=functools.partial(collate_padded, pad_id=self.pad_token_id),
            num_workers=p.num_workers,
            pin_memory=pin,
            persistent_workers=p.num_workers > 0,
        )

    def _check_trainer_sampler(self) -> None:
        trainer = self.trainer
        # Lightning keeps the flag on a private connector only (tests/training/test_lightning_internals.py
        # fails if an upgrade moves it)
        if (
            trainer is not None
            and trainer.world_size > 1
            and trainer._accelerator_connector.use_distributed_sampler  # noqa: SLF001
        ):
            raise ConfigError(
                "TransformerDataModule shards batches across ranks itself; build the Trainer with "
                "use_distributed_sampler=False"
            )

    def _train_plan(self) -> tuple[Dataset, DistributedBatchSampler]:
        if self.train_dataset is None:
            self.setup("fit")
        dataset, batches_fn = self._plan(self.train_dataset, shuffle=self.params.shuffle)
        if self.params.fim_rate > 0:
            dataset = self._fim(dataset)
        world, rank = self._world()
        # the sampler starts at the trainer's epoch: with num_workers > 0 Lightning creates the
        # first iterator (which prefetches) before it calls set_epoch
        epoch = int(self.trainer.current_epoch) if self.trainer is not None else 0
        sampler = DistributedBatchSampler(
            batches_fn, num_replicas=world, rank=rank, seed=self.params.seed, epoch=epoch
        )
        return dataset, sampler

    def _fim(self, dataset: Dataset) -> Dataset:
        """Training samples with fill-in-the-middle applied per document (validation stays plain, so
        ``val/loss`` keeps measuring left-to-right quality)."""

        p = self.params
        ids = fim_ids(self.tokenizer)
        assert ids is not None  # checked in _check_params
        # a header from preprocess --repo_context that ends at its path's newline (Qwen2.5-Coder) is
        # found with the tokenizer's newline tokens
        newline = newline_mask(self.tokenizer) if ids.path_in_header and ids.repo_name is not None else None
        eos = int(self.tokenizer.eos_token_id)
        return FimDataset(dataset, ids, eos, p.fim_rate, p.fim_spm_rate, p.seed, newline)

    def train_dataloader(self) -> DataLoader:
        self._check_trainer_sampler()
        dataset, sampler = self._train_plan()
        if len(sampler) == 0:
            total = len(sampler.global_batches(sampler.epoch))
            raise DataError(
                f"the train set makes {total} batch(es), fewer than the {sampler.num_replicas} processes; "
                "lower --max_tokens/--batch_size, use fewer devices or add data"
            )
        loader = self._loader(dataset, sampler, _ResumableDataLoader)
        loader.consumed_fn = self._consumed_in_epoch
        return loader

    def val_dataloader(self) -> DataLoader | list:
        if self.val_dataset is None:
            if self.params.val_data_prefix:
                self.setup("validate")
            else:
                return []
        dataset, batches_fn = self._plan(self.val_dataset, shuffle=False)
        world, rank = self._world()
        sampler = DistributedBatchSampler(batches_fn, num_replicas=world, rank=rank, drop_last=False)
        return self._loader(dataset, sampler, DataLoader)

    def num_train_batches_per_epoch(self) -> int:
        """Training batches per epoch on this rank (before gradient accumulation): for max_steps maths."""
        return len(self._train_plan()[1])
