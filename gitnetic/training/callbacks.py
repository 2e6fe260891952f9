"""Step checkpoints that a killed run can always resume from.

Lightning's ``ModelCheckpoint`` already does the bookkeeping we need (every N optimizer steps, keep the
newest K, restore that state on resume, rank 0 only), so we configure it rather than rewrite it:
ranking by ``step`` with ``mode="max"`` makes "top K" mean "the K most recent". What it lacks:

* a checkpoint at the very end of training (``max_steps`` is rarely a multiple of the frequency);
* ``checkpoint_last.ckpt`` as a *file* (not a symlink: DVC outputs and copies should not dangle) that
  costs no second write: we hard-link it to the newest step checkpoint, atomically;
* atomic writes on every filesystem: Lightning's local ``_atomic_save`` stages the file in the system
  temp dir and ``shutil.move``\\ s it, which degrades to a non-atomic copy when ``/tmp`` is another
  filesystem. :class:`AtomicCheckpointIO` writes a temp sibling and ``os.replace``\\ s it instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from gitnetic.common.io import atomic_open, atomic_path

__all__ = [
    "AtomicCheckpointIO",
    "StepCheckpoint",
    "LAST_CHECKPOINT_NAME",
    "step_checkpoint_name",
]

LAST_CHECKPOINT_NAME = "checkpoint_last"
STEP_CHECKPOINT_TEMPLATE = "checkpoint_step{step}"


def step_checkpoint_name(step: int) -> str:
    """The file name :class:`StepCheckpoint` gives the checkpoint taken after ``step`` optimizer steps."""
    return STEP_CHECKPOINT_TEMPLATE.format(step=step) + ModelCheckpoint.FILE_EXTENSION


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves go to a temp sibling, are fsynced, then ``os.replace``\\ d."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_open(Path(path), "wb") as fh:
            torch.save(checkpoint, fh)


class StepCheckpoint(ModelCheckpoint):
    """Checkpoint every ``save_step_frequency`` optimizer steps and at the end; keep the newest ``num_last``.

    Files: ``{dirpath}/checkpoint_step{N}.ckpt`` and ``{dirpath}/checkpoint_last.ckpt`` (the newest).
    ``save_step_frequency=0`` saves only at the end; ``num_last_checkpoints=-1`` keeps every step
    checkpoint, ``0`` keeps only ``checkpoint_last.ckpt``.
    """

    CHECKPOINT_NAME_LAST = LAST_CHECKPOINT_NAME

    def __init__(
        self, dirpath: str | os.PathLike[str], save_step_frequency: int, num_last_checkpoints: int = 2
    ):
        if save_step_frequency < 0:
            raise ValueError(f"save_step_frequency must be >= 0, got {save_step_frequency}")
        super().__init__(
            dirpath=dirpath,
            filename=STEP_CHECKPOINT_TEMPLATE,
            monitor="step",
            mode="max",
            save_top_k=num_last_checkpoints,
            save_last="link",
            auto_insert_metric_name=False,
            every_n_train_steps=save_step_frequency,
            every_n_epochs=0,
            # True: never defer a due step checkpoint to the next validation (Lightning does that for
            # the last batch of an epoch, which with step-based validation may be far away or never).
            save_on_train_epoch_end=True,
            enable_version_counter=False,
        )

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """Save the final weights unless the last step was already checkpointed."""
        if not self._should_skip_saving_checkpoint(trainer):
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
        else:
            super().on_train_end(trainer, pl_module)

    @staticmethod
    def _link_checkpoint(trainer: Any, filepath: str, linkpath: str) -> None:
        """Make ``linkpath`` a hard link to ``filepath`` (atomic copy where links are impossible)."""
        if trainer.is_global_zero and not _same_file(filepath, linkpath):
            with atomic_path(linkpath) as tmp:
                tmp.unlink()
                try:
                    os.link(filepath, tmp)
                except OSError:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
                    shutil.copyfile(filepath, tmp)
        trainer.strategy.barrier()


def _same_file(a: str, b: str) -> bool:
    """Also true for two hard links to one file, where rename(2) would do nothing and leave the temp."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
