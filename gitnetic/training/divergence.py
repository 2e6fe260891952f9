"""Stop a run whose loss or gradients turn non-finite, with one line naming the step, and save nothing of it.

Why: a run whose loss goes to NaN (a learning rate far too high, an fp16 overflow, a bad batch) used to go on
to ``max_steps`` and exit 0 with every weight NaN, so ``dvc repro`` recorded the stage as done and evaluate,
export and generate read garbage. Lightning's ``EarlyStopping(check_finite=True)`` only looks at a monitored
metric when it is logged and stops *cleanly* (exit 0, the end-of-training checkpoint saved); here the run
must fail, and no checkpoint of the diverged weights may be written.

Cost: no device sync per step. Each step only updates, on the device, the first step whose loss (or,
without AMP loss scaling, whose gradients) was non-finite; the host reads that one number where it waits
for the device anyway: on logging steps (the logged loss is read there), before every checkpoint write
(:class:`gitnetic.training.resume.StepCheckpoint` asks), and at the end of training. On DDP the ranks agree
by one collective at those points (a NaN on one rank's batch is a NaN in everyone's averaged gradients).

With ``16-mixed`` precision the ``GradScaler`` skips steps with inf/NaN gradients and lowers its scale:
that is its normal work, not a divergence, so gradients are not checked and an *infinite* loss is
tolerated; a NaN loss still stops the run (the forward pass itself broke).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from gitnetic.common.errors import GitneticError
from gitnetic.models.checkpoint import checkpoints_newest_first, last_checkpoint_path, same_file
from gitnetic.models.finite import first_non_finite

__all__ = ["EXIT_DIVERGED", "StopOnDivergence", "TrainingDiverged", "divergence_monitor", "refuse_non_finite"]

logger = logging.getLogger(__name__)

EXIT_DIVERGED = 2  # a user error like any other: the settings must change before a rerun helps

# what the device-side record holds in its second slot
_LOSS_NAN, _LOSS_INF, _GRADS = 1, 2, 3
_WHAT = {
    _LOSS_NAN: "the loss became nan",
    _LOSS_INF: "the loss became inf",
    _GRADS: "the gradients became non-finite",
}


class TrainingDiverged(GitneticError):
    """The loss, gradients or weights became non-finite; nothing of that step or later was saved."""

    exit_code = EXIT_DIVERGED

    def __init__(
        self, what: str, step: int, last_good: str | None, detail: str = "", report: bool = True
    ) -> None:
        self.step, self.last_good, self.report = step, last_good, report  # report: rank 0 says it
        kept = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was saved"
        super().__init__(
            f"{what} at step {step}{detail}; {kept}, nothing after it was saved; lower --learning_rate (or "
            "raise --warmup_steps, set --gradient_clip_val) and rerun: a run with changed settings starts "
            "afresh under --resume_from_checkpoint auto, the same command would resume from that checkpoint "
            "and diverge again"
        )


def last_good_checkpoint(trainer: Any) -> str | None:
    """The checkpoint a diverged run leaves behind: the step file its checkpoint callback saved last, else
    (nothing saved yet, e.g. a resumed run) the step file ``checkpoint_last.ckpt`` links to, else None."""
    saver = getattr(trainer, "checkpoint_callback", None)
    saved = getattr(saver, "_last_checkpoint_saved", "") or ""
    if saved and Path(saved).is_file():
        return str(saved)
    dirpath = getattr(saver, "dirpath", None)
    last = last_checkpoint_path(dirpath) if dirpath else None
    if last is None or not last.is_file():
        return None
    linked = (
        p for p in checkpoints_newest_first(last.parent, others=False) if p != last and same_file(p, last)
    )
    return str(next(linked, last))


class StopOnDivergence(Callback):
    """Records the first non-finite step on the device; :meth:`check` raises :class:`TrainingDiverged`."""

    def __init__(self) -> None:
        self._record: torch.Tensor | None = None  # [first bad step (0: none), what went bad]
        self._step = 0  # the optimizer step the current batch contributes to (1-based)

    # -- recording (device only) ------------------------------------------------------------------
    def _note(self, bad: torch.Tensor, nan: torch.Tensor | None = None) -> None:
        """Record this step as the first bad one if ``bad`` and none was before: device kernels only (a
        host-to-device copy of a Python number would wait for the device)."""
        if self._record is None or self._record.device != bad.device:
            self._record = torch.zeros(2, dtype=torch.long, device=bad.device)
        step = torch.full_like(self._record[0], self._step)
        code = (
            torch.full_like(self._record[1], _GRADS)
            if nan is None
            else torch.where(nan, _LOSS_NAN, _LOSS_INF)
        )
        new = bad & (self._record[0] == 0)
        self._record = torch.where(new, torch.stack([step, code]), self._record)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._step = trainer.global_step + 1

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if _loss_scaled(trainer):
            return  # the GradScaler skips non-finite gradients itself
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        # one fused pass over the gradients (foreach); a NaN or inf anywhere makes the max-norm non-finite
        norm = torch.nn.utils.get_total_norm(grads, norm_type=float("inf"), foreach=True)
        self._note(~norm.isfinite())

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
        # Before the gradients: a NaN loss is named as such, not as the NaN gradients it makes.
        # (With 16-mixed, the loss here is the scaled one: inf may be the scale's, NaN is not.)
        if isinstance(loss, torch.Tensor):
            loss = loss.detach()
            nan = loss.isnan().any()
            bad = nan if _loss_scaled(trainer) else ~loss.isfinite().all()
            self._note(bad, nan)

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        every = max(1, int(getattr(trainer, "log_every_n_steps", 1) or 1))
        if trainer.global_step == self._step and trainer.global_step % every == 0:
            self.check(trainer)  # a logging step: the logged loss makes the host wait here anyway

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.state.fn == "fit":
            self.check(trainer)  # do not validate (and log NaN metrics) after a divergence

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.check(trainer)  # before the end-of-training checkpoint (checkpoint callbacks run last)

    # -- checking (one sync) ----------------------------------------------------------------------
    def check(self, trainer: Any) -> None:
        """Raise :class:`TrainingDiverged` if a step so far went non-finite on any rank. Every rank calls it
        at the same points (it is a collective on DDP)."""
        record = self._record
        if record is None:
            record = torch.zeros(2, dtype=torch.long, device=trainer.strategy.root_device)
        if trainer.world_size > 1:  # the earliest bad step of any rank: min over ranks, 0 meaning none
            big = torch.iinfo(torch.long).max
            key = torch.where(record[0] == 0, big, record[0] * 4 + record[1])
            key = trainer.strategy.reduce(key, reduce_op="min")
            record = torch.zeros_like(record) if int(key) == big else torch.stack([key // 4, key % 4])
        step, code = (int(v) for v in record.tolist())
        if step:
            raise TrainingDiverged(
                _WHAT[code], step, last_good_checkpoint(trainer), report=trainer.is_global_zero
            )


def refuse_non_finite(trainer: Any) -> None:
    """Raise :class:`TrainingDiverged` instead of letting a checkpoint of this step be written, if the run
    diverged (the monitor's record) or its weights are not all finite (also without the monitor: a user's
    own trainer). Every rank calls it, as every rank calls the checkpoint save."""
    monitor = divergence_monitor(trainer)
    if monitor is not None:
        monitor.check(trainer)
    module = trainer.lightning_module
    bad = first_non_finite([*module.named_parameters(), *module.named_buffers()])
    if trainer.strategy.reduce_boolean_decision(bad is None, all=True):
        return
    detail = f" ({bad[0]} holds {bad[1]})" if bad is not None else ""
    raise TrainingDiverged(
        "the weights became non-finite",
        trainer.global_step,
        last_good_checkpoint(trainer),
        detail=detail,
        report=trainer.is_global_zero,
    )


def divergence_monitor(trainer: Any) -> StopOnDivergence | None:
    """The trainer's :class:`StopOnDivergence`, if it has one (the checkpoint writer consults it)."""
    return next((c for c in getattr(trainer, "callbacks", []) if isinstance(c, StopOnDivergence)), None)


def _loss_scaled(trainer: Any) -> bool:
    """Whether a GradScaler scales the loss (``16-mixed``): then it, not us, handles non-finite gradients."""
    return getattr(getattr(trainer, "precision_plugin", None), "scaler", None) is not None
