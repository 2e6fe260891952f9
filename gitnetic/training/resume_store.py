"""Where an interrupted ``dvc exp run`` keeps its checkpoints, so running the same experiment resumes it.

Why a second place: before it runs the pipeline, ``dvc exp run`` checks out the baseline commit's
outputs with ``force`` (in the workspace, and in the fresh temp folder of a ``--temp`` or queued run),
so the persisted ``models/checkpoints`` of a killed experiment are replaced by the baseline's and
``--resume_from_checkpoint auto`` only finds checkpoints of another run. ``dvc repro`` does no such
checkout, which is why it resumed and ``dvc exp run`` did not.

So while a run executes under DVC, every checkpoint it writes is also hard-linked (no second copy on
disk) into ``$DVC_ROOT/.dvc/tmp/gitnetic-resume/<fingerprint digest>/``, with a copy of the DVCLive
folder as it was at that step. (A hard link is safe because nothing writes into a checkpoint file:
the checkpoint writer and DVC's checkout both replace files by renaming a new one over them.) ``DVC_ROOT`` is the main repository even for temp-folder executors (DVC
sets it so), and the digest is :func:`gitnetic.training.fingerprint.run_fingerprint`'s: only a run of
the very same params and data finds the entry, so a different experiment starts fresh. A run that
finds an entry puts it back into its checkpoint folder and DVCLive folder before looking for a
checkpoint to resume; a run that completes deletes its entry. ``.dvc/tmp`` is tracked by neither git
nor DVC: ``dvc exp show``, ``dvc status`` and the DVC cache of a completed experiment are the same as
if it had never been interrupted. ``GITNETIC_RESUME_STORE`` names another folder for the entries;
``off`` disables the store.

Layout of an entry: ``step-<N>/<checkpoint file name>`` and ``step-<N>/dvclive/``; each ``step-<N>``
is written under a temporary name and renamed, so a kill never leaves a half entry, and only the
newest one is kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from gitnetic.models.checkpoint import CHECKPOINT_LAST, FINGERPRINT_KEY, checkpoint_step, is_valid_checkpoint

__all__ = ["STORE_ENV", "KeepCheckpoints", "ResumeStore"]

logger = logging.getLogger(__name__)

STORE_ENV = "GITNETIC_RESUME_STORE"
STORE_DIR = Path(".dvc") / "tmp" / "gitnetic-resume"
LIVE_DIR = "dvclive"
_ENTRY = re.compile(r"^step-(\d+)$")


def _is_rank_zero() -> bool:
    from lightning.fabric.utilities.rank_zero import _get_rank

    return (_get_rank() or 0) == 0


def _link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` becomes ``src``'s content (a hard link when the filesystem allows), replaced atomically."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class ResumeStore:
    """The resume entry of one run (one fingerprint digest) in one store folder."""

    def __init__(self, folder: str | Path, digest: str) -> None:
        self.digest = digest
        self.path = Path(folder) / digest
        self.restored: Path | None = None  # the checkpoint put back into the save_dir, if any

    @classmethod
    def for_run(cls, digest: str, environ: dict[str, str] | None = None) -> ResumeStore | None:
        """The entry for a run with fingerprint ``digest``: under DVC (``DVC_ROOT`` set) or where
        ``GITNETIC_RESUME_STORE`` says; None outside DVC or with ``GITNETIC_RESUME_STORE=off``."""
        env = os.environ if environ is None else environ
        chosen = env.get(STORE_ENV, "")
        if chosen.lower() == "off":
            return None
        if chosen:
            return cls(chosen, digest)
        root = env.get("DVC_ROOT")
        if not root or not (Path(root) / ".dvc").is_dir():
            return None
        return cls(Path(root) / STORE_DIR, digest)

    # ---------------------------------------------------------------------------------- reading
    def latest(self) -> tuple[int, Path] | None:
        """``(step, checkpoint file)`` of the newest complete entry, or None."""
        entries = []
        for sub in self.path.glob("step-*") if self.path.is_dir() else ():
            match = _ENTRY.match(sub.name)
            ckpts = sorted(sub.glob("*.ckpt"))
            if match and ckpts:
                entries.append((int(match.group(1)), ckpts[0]))
        return max(entries) if entries else None

    def restore(self, save_dir: str | Path, dvclive_dir: str | None) -> int | None:
        """Put the newest kept checkpoint back into ``save_dir`` (as its step file and
        ``checkpoint_last.ckpt``, replacing the checkpoints there) and its DVCLive logs into
        ``dvclive_dir``; the step restored, or None when there is nothing to restore. Rank 0 only."""
        found = self.latest()
        if found is None or not _is_rank_zero() or self._ahead_in(Path(save_dir), found[0]):
            return None
        try:
            return self._restore(*found, Path(save_dir), dvclive_dir)
        except OSError as exc:
            logger.warning("could not restore the interrupted run from %s (%s)", self.path, exc)
            return None

    def _ahead_in(self, folder: Path, step: int) -> bool:
        """Whether ``folder`` holds a newer checkpoint of this very run than ``step`` (the store keeps a
        checkpoint at the next batch; a kill in between leaves the newest one only there, e.g. under
        ``dvc repro``, which checks nothing out): then resume from it instead."""
        import torch

        for path in folder.glob("*.ckpt"):
            found = checkpoint_step(path)
            if found is None or found <= step or not is_valid_checkpoint(path):
                continue
            try:
                ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
            except Exception:  # noqa: BLE001 - a damaged file raises anything
                continue
            if isinstance(ckpt, dict) and (ckpt.get(FINGERPRINT_KEY) or {}).get("digest") == self.digest:
                return True
        return False

    def _restore(self, step: int, kept: Path, folder: Path, dvclive_dir: str | None) -> int:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.ckpt"):  # another run's (the baseline's, checked out by DVC)
            old.unlink()
        target = folder / kept.name
        _link_or_copy(kept, target)
        if target.name != CHECKPOINT_LAST:
            _link_or_copy(kept, folder / CHECKPOINT_LAST)
        self.restored = target
        live = kept.parent / LIVE_DIR
        if dvclive_dir and live.is_dir():
            shutil.rmtree(dvclive_dir, ignore_errors=True)
            shutil.copytree(live, dvclive_dir)
        logger.info(
            "this run was interrupted at step %d: restored its checkpoint and logs from %s",
            step,
            self.path,
        )
        return step

    # ---------------------------------------------------------------------------------- writing
    def keep(self, step: int, checkpoint: Path, dvclive_dir: str | None) -> None:
        """Make ``checkpoint`` (taken after ``step`` optimizer steps) and a copy of ``dvclive_dir`` the
        entry's newest; older ones are removed."""
        entry = self.path / f"step-{step}"
        if entry.is_dir():
            return
        tmp = self.path / f".step-{step}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _link_or_copy(checkpoint, tmp / checkpoint.name)
        if dvclive_dir and Path(dvclive_dir).is_dir():
            shutil.copytree(dvclive_dir, tmp / LIVE_DIR)
        os.replace(tmp, entry)
        for sub in self.path.iterdir():
            if sub != entry:
                shutil.rmtree(sub, ignore_errors=True)

    def finish(self, save_dir: str | Path, num_last: int) -> None:
        """The run completed: delete the entry, and the restored step checkpoint if an uninterrupted
        run would not have kept it (it is not among the ``num_last`` newest; -1 keeps all). Rank 0."""
        if not _is_rank_zero():
            return
        restored = self.restored
        restored_step = checkpoint_step(restored) if restored is not None else None
        if restored is not None and num_last >= 0 and restored_step is not None:
            steps = sorted(
                (s for p in Path(save_dir).glob("*.ckpt") if (s := checkpoint_step(p)) is not None),
                reverse=True,
            )
            if restored_step not in steps[:num_last]:
                restored.unlink(missing_ok=True)
        shutil.rmtree(self.path, ignore_errors=True)
        if self.path.parent.name == STORE_DIR.name:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()  # only when no other run has an entry


class KeepCheckpoints(Callback):
    """Links each new checkpoint of ``save_dir`` into the store, with the DVCLive logs of that step.

    It looks at the start of each batch (and when training stops on an exception): by then Lightning
    has also logged the metrics of the checkpointed step, so the kept logs end exactly there.
    """

    def __init__(self, store: ResumeStore, save_dir: str, dvclive_dir: str | None) -> None:
        self.store, self.save_dir, self.dvclive_dir = store, Path(save_dir), dvclive_dir
        self._kept: tuple[int, int] | None = None

    def _keep_newest(self, trainer: Any) -> None:
        last = self.save_dir / CHECKPOINT_LAST
        if not trainer.is_global_zero or not last.is_file():
            return
        stat = last.stat()
        if self._kept == (stat.st_ino, stat.st_mtime_ns):
            return
        step_file = next(
            (
                p
                for p in self.save_dir.glob("*.ckpt")
                if checkpoint_step(p) is not None and os.path.samefile(p, last)
            ),
            None,
        )
        step = checkpoint_step(step_file) if step_file else None
        if step is None:
            return
        try:
            self.store.keep(step, step_file, self.dvclive_dir)  # type: ignore[arg-type]
        except OSError as exc:  # the store only saves time on a rerun: never stop training for it
            logger.warning("could not keep %s in %s (%s); training goes on", step_file, self.store.path, exc)
        self._kept = (stat.st_ino, stat.st_mtime_ns)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._keep_newest(trainer)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._keep_newest(trainer)
