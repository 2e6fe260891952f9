"""Writing checkpoints atomically: Lightning's checkpoint IO, with a temp file, fsync and rename.

Names, order and reading of the checkpoint folder live in :mod:`gitnetic.models.checkpoint`; this is the
one thing about checkpoints that only training does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

from gitnetic.common.errors import DataError
from gitnetic.common.io import atomic_open

__all__ = ["AtomicCheckpointIO", "CheckpointWriteError"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves go to a temp sibling, are fsynced, then ``os.replace``\\ d.

    Why: Lightning's local ``_atomic_save`` stages the file in the system temp dir and
    ``shutil.move``\\ s it, which degrades to a non-atomic copy when ``/tmp`` is another filesystem;
    a run killed then leaves a truncated checkpoint under the final name.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        try:
            with atomic_open(Path(path), "wb") as fh:
                torch.save(checkpoint, fh)
        except (OSError, RuntimeError) as exc:
            # Disk full, file size limit (EFBIG), quota: the temp file is gone and the previous
            # checkpoints are untouched, so say where and stop without a traceback.
            raise CheckpointWriteError(Path(path), exc) from None


class CheckpointWriteError(DataError):
    """A checkpoint could not be written; the checkpoints written before it are intact."""

    def __init__(self, path: Path, exc: BaseException) -> None:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        reason = (cause.strerror or str(cause)) if cause is not None else str(exc).strip().splitlines()[0]
        super().__init__(
            f"could not write checkpoint {path} ({reason}); the previous checkpoints in {path.parent} are "
            "intact: free disk space (or raise the file size limit) and run the same command again to resume"
        )
