"""Stop training on SIGTERM, SIGINT or SIGUSR1 with a checkpoint of the step reached, and say so.

Why: schedulers end jobs with a signal (SLURM sends SIGTERM on ``scancel``, time limits and preemption,
and SIGUSR1 ahead of time with ``--signal``); a person presses Ctrl+C. Lightning's own handling logs
"Received SIGTERM" and lets the process exit 0, which DVC and Snakemake read as "stage done" although the
model is half-trained. Here the first signal only sets a flag; after the optimizer step in progress, all
ranks agree (any rank signalled = all stop), write one exact-resume checkpoint of that step through the
atomic checkpoint path, and stop with :class:`TrainingInterrupted`, which the CLI turns into one line on
stderr and exit status 75 (``EX_TEMPFAIL``: try again). Time to stop: the step (and, if one is running,
the validation) in progress plus one checkpoint write. A second signal exits at once with status
128+signal (after killing the DDP ranks this process launched): every checkpoint write is atomic, so
the previous checkpoint stays valid and at most a temporary file is left, which the next run removes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from typing import Any

from lightning.pytorch.callbacks import Callback

from gitnetic.common.errors import GitneticError

__all__ = ["EXIT_INTERRUPTED", "HANDLED_SIGNALS", "GracefulInterrupt", "TrainingInterrupted"]

logger = logging.getLogger(__name__)

EXIT_INTERRUPTED = 75  # sysexits.h EX_TEMPFAIL: "temporary failure, the user is invited to retry"
HANDLED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGUSR1") if hasattr(signal, name)
)


class TrainingInterrupted(GitneticError):
    """Training stopped on a signal after saving a checkpoint; running the command again resumes."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, signum: int, step: int, checkpoint: str | None, report: bool = True) -> None:
        # report: False on DDP ranks other than 0, so the user reads the line once
        self.signum, self.step, self.checkpoint, self.report = signum, step, checkpoint, report
        name = signal.Signals(signum).name
        saved = f"checkpoint saved to {checkpoint}" if checkpoint else "no checkpoint (--save_dir is '')"
        super().__init__(
            f"interrupted by {name} at step {step}; {saved}; run the same command again to resume"
        )


class GracefulInterrupt(Callback):
    """Installs the handlers for the training phase (replacing Lightning's), restores them afterwards."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._last_step = -1
        self._children: list[Any] = []  # DDP ranks launched by this process (Lightning's launcher)

    # -- handlers ---------------------------------------------------------------------------------
    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # second signal: leave now; checkpoint writes are atomic
            for child in self._children:  # else they would wait in a collective for this rank
                with contextlib.suppress(OSError):
                    child.kill()
            os._exit(128 + signum)
        self.signum = signum
        logger.info(
            "received %s: saving a checkpoint after this step, then stopping (again to quit at once)",
            signal.Signals(signum).name,
        )

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in HANDLED_SIGNALS:
            self._previous.setdefault(sig, signal.getsignal(sig))
            signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            if handler is not None:
                signal.signal(sig, handler)
        self._previous = {}

    # -- Lightning hooks ----------------------------------------------------------------------------
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        # Lightning registered its own SIGTERM handler just before this hook (and restores the
        # originals at teardown); ours replaces it for the training phase.
        self._last_step = trainer.global_step
        launcher = getattr(trainer.strategy, "launcher", None)
        self._children = list(getattr(launcher, "procs", None) or [])
        self.install()

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self._last_step:
            return  # mid gradient accumulation: only stop at an optimizer-step boundary
        self._last_step = trainer.global_step
        # One collective per step, on every rank: a signal seen by any rank stops all of them at the
        # same step, so they write one consistent checkpoint.
        stop = trainer.strategy.reduce_boolean_decision(self.signum is not None, all=False)
        if not stop:
            return
        signum = self.signum if self.signum is not None else signal.SIGTERM
        if self._children:
            _disarm_child_observer()
        path = None
        saver = getattr(trainer, "checkpoint_callback", None)
        if saver is not None and hasattr(saver, "save_now"):
            path = saver.save_now(trainer)
        raise TrainingInterrupted(signum, trainer.global_step, path, report=trainer.is_global_zero)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.restore()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.restore()


def _disarm_child_observer() -> None:
    """Keep Lightning's child-process observer from SIGKILLing this launcher when the other ranks exit
    with the interrupted status: it treats any non-zero child exit as a crash, and it would turn the
    launcher's status 75 into -9 if it looked in the moment between the ranks' exit and this one's."""
    try:
        from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
    except ImportError:  # another Lightning layout: nothing to disarm
        return
    for thread in threading.enumerate():
        if isinstance(thread, _ChildProcessObserver) and hasattr(thread, "_child_processes"):
            thread._child_processes = []  # its next look finds no child left and ends quietly
