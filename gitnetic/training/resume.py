"""Everything training does to its checkpoint folder so that a stopped run can continue: writing, linking,
fingerprinting, choosing the checkpoint to resume from, and keeping it where ``dvc exp run`` cannot undo it.

Why one module: these steps only work together. A resume is exact only if every file under a final name
is whole (writes and links go to a temporary sibling and are renamed), if ``checkpoint_last.ckpt`` names
the run's newest checkpoint (also after a kill between writing a step file and moving the link), and if
the checkpoint chosen is this very run's (its fingerprint). Names, the newest-first order, finding and
loading, which evaluate, export, the pipeline summary and the Snakefile read, live a floor below in
:mod:`gitnetic.models.checkpoint`; this module is their one writer.

Contents, in the order a run meets them:

* :func:`resume_for` (with :func:`resume_checkpoint`, :func:`auto_resume_checkpoint`,
  :func:`complete_last_link` and the :class:`ResumeStore`): what ``--resume_from_checkpoint PATH|last|auto``
  continues, as a :class:`Resume`;
* :class:`StepCheckpoint`, :class:`RecordFingerprint`, :class:`KeepCheckpoints`: the callbacks that write;
* :class:`AtomicCheckpointIO` and :func:`link_or_copy`: the only two ways a file gets a checkpoint's name.

The resume store (``ResumeStore``): before it runs the pipeline, ``dvc exp run`` checks out the baseline
commit's outputs with ``force`` (in the workspace, and in the fresh temp folder of a ``--temp`` or queued
run), so the persisted ``models/checkpoints`` of a killed experiment are replaced by the baseline's and
``auto`` only finds checkpoints of another run (``dvc repro`` does no such checkout). So while a run
executes under DVC, every checkpoint it writes is also hard-linked (no second copy on disk) into
``$DVC_ROOT/.dvc/tmp/gitnetic-resume/<fingerprint digest>/``, with a copy of the DVCLive folder as it was at
that step. (A hard link is safe because nothing writes into a checkpoint file: the checkpoint writer and
DVC's checkout both replace files by renaming a new one over them.) ``DVC_ROOT`` is the main repository
even for temp-folder executors, and the digest is :func:`gitnetic.training.fingerprint.run_fingerprint`'s:
only a run of the very same params and data finds the entry. A run that finds one puts it back into its
checkpoint and DVCLive folders before choosing a checkpoint; a run that completes deletes it. ``.dvc/tmp``
is tracked by neither git nor DVC, so ``dvc exp show``, ``dvc status`` and the DVC cache of a completed
experiment are as if it had never been interrupted. ``GITNETIC_RESUME_STORE`` names another folder for the
entries; ``off`` disables the store. An entry is ``step-<N>/<checkpoint file name>`` and
``step-<N>/dvclive/``, written under a temporary name and renamed; only the newest is kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.common.io import atomic_open, atomic_path
from gitnetic.models.checkpoint import (
    CHECKPOINT_LAST,
    LAST_CHECKPOINT_NAME,
    STEP_CHECKPOINT_TEMPLATE,
    checkpoint_step,
    checkpoints_newest_first,
    is_valid_checkpoint,
    last_checkpoint_path,
    same_file,
)
from gitnetic.training.divergence import refuse_non_finite

__all__ = [
    "AUTO",
    "FINGERPRINT_KEY",
    "LAST",
    "STORE_ENV",
    "AtomicCheckpointIO",
    "CheckpointWriteError",
    "KeepCheckpoints",
    "RecordFingerprint",
    "Resume",
    "ResumeStore",
    "StepCheckpoint",
    "auto_resume_checkpoint",
    "complete_last_link",
    "link_or_copy",
    "resume_checkpoint",
    "resume_for",
]

logger = logging.getLogger(__name__)

LAST = "last"  # --resume_from_checkpoint last: SAVE_DIR/checkpoint_last.ckpt when it exists
AUTO = "auto"  # --resume_from_checkpoint auto: the newest checkpoint of this very run (its fingerprint)
FINGERPRINT_KEY = "gitnetic_fingerprint"  # where a checkpoint stores its run's fingerprint
STORE_ENV = "GITNETIC_RESUME_STORE"
STORE_DIR = Path(".dvc") / "tmp" / "gitnetic-resume"
LIVE_DIR = "dvclive"
_ENTRY = re.compile(r"^step-(\d+)$")


# ---------------------------------------------------------------------------------------------- writing
def link_or_copy(src: str | Path, dst: str | Path) -> None:
    """``dst`` becomes ``src``'s content: a hard link where the file system allows (no second copy on
    disk), else a copy. Either is made under a temporary name and renamed, so a kill never leaves a
    partial file under ``dst`` (a copy can take seconds for a large checkpoint)."""
    if same_file(src, dst):  # rename(2) onto a link of the same file does nothing and would keep the temp
        return
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())


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


class StepCheckpoint(ModelCheckpoint):
    """Checkpoint every ``save_step_frequency`` optimizer steps and at the end; keep the newest ``num_last``.

    Lightning's ``ModelCheckpoint`` already does the bookkeeping (every N optimizer steps, keep the newest
    K, restore that state on resume, rank 0 only), so it is configured rather than rewritten: ranking by
    ``step`` with ``mode="max"`` makes "top K" mean "the K most recent". What it lacks: a checkpoint at
    the very end of training (``max_steps`` is rarely a multiple of the frequency), and
    ``checkpoint_last.ckpt`` as a *file* (not a symlink: DVC outputs and copies should not dangle) that
    costs no second write: a hard link to the newest step checkpoint, made by :func:`link_or_copy`.

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
        return str(last_checkpoint_path(self.dirpath or ""))

    def _save_checkpoint(self, trainer: Any, filepath: str) -> None:
        """Every save of this callback (each step, the end of training, a signal) goes through here: a
        diverged run's weights are refused (:mod:`gitnetic.training.divergence`), so the folder and its
        ``checkpoint_last.ckpt`` keep the last good step."""
        refuse_non_finite(trainer)
        super()._save_checkpoint(trainer, filepath)

    @staticmethod
    def _link_checkpoint(trainer: Any, filepath: str, linkpath: str) -> None:
        """Make ``linkpath`` a hard link to ``filepath`` (an atomic copy where links are impossible)."""
        if trainer.is_global_zero:
            link_or_copy(filepath, linkpath)
        trainer.strategy.barrier()


class RecordFingerprint(Callback):
    """Stores the run's fingerprint in every checkpoint it writes (what ``auto`` compares)."""

    def __init__(self, fingerprint: dict[str, Any]) -> None:
        self.fingerprint = fingerprint

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[FINGERPRINT_KEY] = self.fingerprint


# ---------------------------------------------------------------------------------------------- choosing
def resume_checkpoint(
    spec: str | None, save_dir: str | None, fingerprint: dict[str, Any] | None = None, remove: bool = True
) -> str | None:
    """The checkpoint ``train --resume_from_checkpoint SPEC`` resumes from, or ``None`` for a fresh start.

    ``SPEC`` is a file; ``last`` (``SAVE_DIR/checkpoint_last.ckpt`` when it exists: a first run and its
    restarts can share one command line); or ``auto`` (:func:`auto_resume_checkpoint` with
    ``fingerprint``; ``remove`` lets it clear stale checkpoints: rank 0 only). A missing explicit file is
    a ``ConfigError``; a truncated one a ``DataError``.
    """
    if not spec:
        return None
    if spec == AUTO:
        if fingerprint is None:
            raise ValueError("--resume_from_checkpoint auto needs the run's fingerprint")
        return auto_resume_checkpoint(save_dir, fingerprint, remove=remove)
    if spec == LAST:
        if not save_dir:
            raise ConfigError(
                f"--resume_from_checkpoint last needs --save_dir (where {CHECKPOINT_LAST} lives)"
            )
        path = last_checkpoint_path(save_dir)
        if not path.is_file():
            logger.info("no %s yet: starting a fresh run", path)
            return None
    else:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"checkpoint {path} does not exist; pass an existing .ckpt file or 'last'")
    if not is_valid_checkpoint(path):
        raise DataError(f"checkpoint {path} is truncated or not a PyTorch checkpoint; pick an older one")
    return str(path)


def _stored_fingerprint(path: Path) -> dict[str, Any] | None:
    """The checkpoint's fingerprint (``{}`` if it has none) and step, without reading its tensors (mmap):
    ``{"fingerprint", "step"}``; None if the file is unreadable."""
    if not is_valid_checkpoint(path):
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except Exception:  # noqa: BLE001 - a damaged file raises anything
        return None
    if not isinstance(ckpt, dict):
        return None
    return {"fingerprint": ckpt.get(FINGERPRINT_KEY) or {}, "step": int(ckpt.get("global_step", 0) or 0)}


def auto_resume_checkpoint(
    save_dir: str | None, fingerprint: dict[str, Any], remove: bool = True
) -> str | None:
    """The newest valid checkpoint in ``save_dir`` of this very run, or None (then the folder is cleared).

    A truncated or unreadable newest checkpoint is skipped with a warning (the one before it is used);
    checkpoints of another run (different fingerprint, see :mod:`gitnetic.training.fingerprint`) are
    removed with one line saying what changed. Only with ``remove`` (rank 0) are files removed.
    """
    if not save_dir or not Path(save_dir).is_dir():
        return None
    folder = Path(save_dir)
    if remove:
        for tmp in folder.glob(".*.tmp"):  # a write cut short by a kill
            tmp.unlink(missing_ok=True)
    found = checkpoints_newest_first(folder, others=False)
    for path in found:
        info = _stored_fingerprint(path)
        if info is None:
            logger.warning("%s is truncated or unreadable: skipping it, trying an older checkpoint", path)
            continue
        stored = info["fingerprint"]
        if stored.get("digest") == fingerprint.get("digest"):
            logger.info("resuming this run from %s (step %d)", path, info["step"])
            return str(path)
        old, new = stored.get("items", {}), fingerprint.get("items", {})
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        what = ", ".join(changed[:6]) + (", ..." if len(changed) > 6 else "") if old else "no fingerprint"
        logger.warning(
            "checkpoints in %s are from another run (%s): removing them and starting fresh "
            "(pass --resume_from_checkpoint last to continue them on purpose)",
            folder,
            f"changed: {what}" if old else what,
        )
        break
    else:
        if found:
            logger.warning("no readable checkpoint in %s: starting fresh", folder)
    if remove:
        for path in found:
            path.unlink(missing_ok=True)
    return None


def complete_last_link(save_dir: str | Path, resumed: str | Path) -> bool:
    """Make ``checkpoint_last.ckpt`` the checkpoint a run resumes from where the folder lost track of it;
    whether it did. Rank 0, before training.

    Why: a kill between writing ``checkpoint_stepN.ckpt`` and moving the link leaves the link on an older
    step, and Snakemake deletes the link (a declared output) after a failed attempt; ``auto`` resumes
    from the step file all the same. If ``N`` is the run's final step, the resumed run trains nothing and
    saves nothing, so ``checkpoint_last.ckpt``, which evaluate, export, DVC and Snakemake read, would keep
    the older weights or stay missing while the command exits 0. So the link moves when it is missing,
    unreadable, or older than ``resumed`` by the folder's one newest-first rule; a checkpoint chosen on
    purpose that is older than an intact link leaves the link alone.
    """
    last, resumed = last_checkpoint_path(save_dir), Path(resumed)
    if same_file(resumed, last):
        return False
    if is_valid_checkpoint(last):
        order = checkpoints_newest_first(save_dir, others=False)
        rank = next((i for i, p in enumerate(order) if same_file(p, resumed)), None)
        if rank is None or rank > next(i for i, p in enumerate(order) if p.name == CHECKPOINT_LAST):
            return False
    link_or_copy(resumed, last)
    logger.info("%s now names %s, the checkpoint this run resumes from", last, resumed)
    return True


@dataclass
class Resume:
    """Where a run continues from (``checkpoint``; None: a fresh start), the fingerprint its checkpoints
    carry, and under DVC the store that keeps them across ``dvc exp run``'s checkout."""

    checkpoint: str | None
    fingerprint: dict[str, Any] | None
    store: ResumeStore | None = None

    def callbacks(self, save_dir: str, dvclive_dir: str | None) -> list[Callback]:
        """What the run's trainer adds so that its own checkpoints can be resumed from in turn."""
        callbacks: list[Callback] = []
        if self.fingerprint is not None:
            callbacks.append(RecordFingerprint(self.fingerprint))
        if self.store is not None:
            callbacks.append(KeepCheckpoints(self.store, save_dir, dvclive_dir))
        return callbacks

    def finish(self, save_dir: str, num_last: int) -> None:
        """The run completed: its store entry is no longer needed."""
        if self.store is not None:
            self.store.finish(save_dir, num_last)


def resume_for(
    spec: str | None,
    save_dir: str,
    fingerprint: dict[str, Any] | None,
    *,
    dvclive_dir: str | None = None,
    rank_zero: bool = True,
) -> Resume:
    """What a run with ``--resume_from_checkpoint SPEC`` continues from, with its folder made consistent.

    Under DVC with ``auto``, the store's entry of this fingerprint is put back first; then
    :func:`resume_checkpoint` chooses; then (rank 0) :func:`complete_last_link`. ``fingerprint``: the
    run's (:func:`gitnetic.training.fingerprint.run_fingerprint`); ``auto`` needs it.
    """
    store = None
    if spec == AUTO and fingerprint is None:
        raise ValueError("--resume_from_checkpoint auto needs the run's fingerprint")
    if spec == AUTO and save_dir and fingerprint is not None:
        store = ResumeStore.for_run(fingerprint["digest"])
        if store is not None:
            store.restore(save_dir, dvclive_dir)
    checkpoint = resume_checkpoint(spec, save_dir, fingerprint, remove=rank_zero)
    if checkpoint is not None and save_dir and rank_zero:
        complete_last_link(save_dir, checkpoint)
    return Resume(checkpoint, fingerprint, store)


# ---------------------------------------------------------------------------------------------- storing
def _is_rank_zero() -> bool:
    from lightning.fabric.utilities.rank_zero import _get_rank

    return (_get_rank() or 0) == 0


class ResumeStore:
    """The resume entry of one run (one fingerprint digest) in one store folder (see the module doc)."""

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
        for path in folder.glob("*.ckpt"):
            found = checkpoint_step(path)
            if found is None or found <= step:
                continue
            info = _stored_fingerprint(path)
            if info is not None and info["fingerprint"].get("digest") == self.digest:
                return True
        return False

    def _restore(self, step: int, kept: Path, folder: Path, dvclive_dir: str | None) -> int:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.ckpt"):  # another run's (the baseline's, checked out by DVC)
            old.unlink()
        target = folder / kept.name
        link_or_copy(kept, target)
        if target.name != CHECKPOINT_LAST:
            link_or_copy(kept, folder / CHECKPOINT_LAST)
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
        link_or_copy(checkpoint, tmp / checkpoint.name)
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
        linked = (
            (step, p)
            for p in self.save_dir.glob("*.ckpt")
            if (step := checkpoint_step(p)) is not None and same_file(p, last)
        )
        step, step_file = next(linked, (None, None))
        if step is None or step_file is None:
            return
        try:
            self.store.keep(step, step_file, self.dvclive_dir)
        except OSError as exc:  # the store only saves time on a rerun: never stop training for it
            logger.warning("could not keep %s in %s (%s); training goes on", step_file, self.store.path, exc)
        self._kept = (stat.st_ino, stat.st_mtime_ns)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._keep_newest(trainer)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._keep_newest(trainer)
