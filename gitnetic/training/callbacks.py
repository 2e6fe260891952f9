"""Step checkpoints that a killed run can always resume from.

Lightning's ``ModelCheckpoint`` already does the bookkeeping we need (every N optimizer steps, keep the
newest K, restore that state on resume, rank 0 only), so we configure it rather than rewrite it:
ranking by ``step`` with ``mode="max"`` makes "top K" mean "the K most recent". What it lacks:

* a checkpoint at the very end of training (``max_steps`` is rarely a multiple of the frequency);
* ``checkpoint_last.ckpt`` as a *file* (not a symlink: DVC outputs and copies should not dangle) that
  costs no second write: we hard-link it to the newest step checkpoint, atomically;
* atomic writes on every filesystem (:class:`~gitnetic.training.checkpoint_io.AtomicCheckpointIO`).

Checkpoint names, order, finding and loading live in :mod:`gitnetic.models.checkpoint`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

from gitnetic.common.io import atomic_path
from gitnetic.models.checkpoint import LAST_CHECKPOINT_NAME, STEP_CHECKPOINT_TEMPLATE

__all__ = ["StepCheckpoint"]


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
            self.save_now(trainer)
        else:
            super().on_train_end(trainer, pl_module)

    def save_now(self, trainer: Any) -> str:
        """Checkpoint the current step now (every rank calls it), unless it is on disk already; the path
        of ``checkpoint_last.ckpt``. Used at the end of training and when a signal interrupts it."""
        if self._last_global_step_saved != trainer.global_step:
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
        return os.path.join(self.dirpath or "", LAST_CHECKPOINT_NAME + self.FILE_EXTENSION)

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
