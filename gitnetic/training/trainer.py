"""``TransformerTrainer``: the seed's trainer flags mapped onto ``lightning.Trainer``.

One params dataclass holds every flag users set in ``params.yaml`` (GPUs, steps, checkpoints, logging,
resume, precision, distributed strategy); :meth:`TransformerTrainer.add_argparse_params` also exposes
every other simple ``lightning.Trainer`` argument as a pass-through flag, so nothing Lightning can do
needs a code change here. Loggers: DVCLive (for the DVC pipeline's metrics and plots) and, when asked
for, Weights & Biases — offline unless the user is logged in, so training never waits on the network.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import types
import typing
from dataclasses import fields
from typing import Any, Literal, get_args, get_origin

import lightning
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import seed_everything
from lightning.pytorch.callbacks import ProgressBar as LightningProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from gitnetic.common.console import adopt_library_loggers
from gitnetic.common.cores import busy_cores_note
from gitnetic.common.dataclass_argparse import DataclassArgumentParser, scalar_parser
from gitnetic.common.errors import ConfigError
from gitnetic.common.threads import set_torch_threads
from gitnetic.training.divergence import StopOnDivergence, TrainingDiverged
from gitnetic.training.fingerprint import run_fingerprint
from gitnetic.training.loggers import build_loggers
from gitnetic.training.params import TrainerParams
from gitnetic.training.progress import ProgressBar
from gitnetic.training.resume import AtomicCheckpointIO, Resume, StepCheckpoint, resume_for
from gitnetic.training.signals import GracefulInterrupt, TrainingInterrupted
from gitnetic.training.throughput import ThroughputLogger, describe_model

__all__ = ["TransformerTrainer", "trainer_kwargs_from_namespace", "lightning_passthrough_params"]

logger = logging.getLogger(__name__)

# lightning.Trainer arguments we never expose as flags: objects, or set by us on purpose.
_NOT_PASSTHROUGH = {"logger", "callbacks", "plugins", "use_distributed_sampler"}


class TransformerTrainer:
    """Builds and runs a ``lightning.Trainer`` from :class:`~gitnetic.training.params.TrainerParams`
    (``TransformerTrainer.Params``).

    Extra keyword arguments go to ``lightning.Trainer`` unchanged and win over the mapped ones
    (``callbacks`` are appended to ours).
    """

    Params = TrainerParams  # the name the task contract uses (shared/seed-train.rst)
    params: TrainerParams
    params_type: type[TrainerParams] = TrainerParams

    def __init__(self, params: TransformerTrainer.Params | None = None, **trainer_kwargs: Any) -> None:
        self.params = params if params is not None else self.Params()
        self.trainer_kwargs = trainer_kwargs
        self.trainer: Any = None
        # Before any torch work (the task builds the model next): the thread count shapes float results.
        set_torch_threads(self.params.num_threads)
        # The run's one seeding, here and not in fit(): the task builds (randomly initialises) its model
        # after this; training steps re-derive their randomness from the seed and the step
        # (gitnetic.modules.transformer_module), so nothing between here and fit() can change them.
        _seed_everything(self.params.seed)

    # ------------------------------------------------------------------ argparse
    @classmethod
    def add_argparse_params(cls, parser: DataclassArgumentParser) -> None:
        """Add :class:`Params` and a pass-through flag for every other simple ``lightning.Trainer`` argument."""
        parser.add_arguments(cls.Params, title="TransformerTrainer parameters")
        group = parser.add_argument_group(
            "lightning.Trainer pass-through",
            "Other lightning.Trainer arguments, passed unchanged when given (see the Lightning Trainer docs).",
        )
        for name, tp, switch in _passthrough_specs():
            extra: dict[str, Any] = {"nargs": "?", "const": True, "metavar": "true|false"} if switch else {}
            if get_origin(tp) is Literal:
                extra["choices"] = list(get_args(tp))
            try:
                group.add_argument(
                    f"--{name}",
                    dest=name,
                    type=scalar_parser(tp),
                    default=None,
                    help=f"lightning.Trainer({name}=...)",
                    **extra,
                )
            except argparse.ArgumentError:  # a component's params already own --NAME: theirs wins
                continue

    # ------------------------------------------------------------------ mapping
    def resolve_resume(
        self, ckpt_path: str | None = None, fingerprint: dict[str, Any] | None = None
    ) -> Resume:
        """What this run continues from (:func:`gitnetic.training.resume.resume_for`): ``ckpt_path`` or
        ``--resume_from_checkpoint`` (a path, 'last' if one exists, 'auto': the newest checkpoint of the
        run with ``fingerprint``, or nothing: a fresh start)."""
        spec = ckpt_path if ckpt_path is not None else self.params.resume_from_checkpoint
        return resume_for(
            spec,
            self.params.save_dir,
            fingerprint,
            dvclive_dir=self.params.dvclive_dir,
            rank_zero=rank_zero_only.rank == 0,
        )

    def resolve_checkpoint(
        self, ckpt_path: str | None = None, fingerprint: dict[str, Any] | None = None
    ) -> str | None:
        """The checkpoint file :meth:`resolve_resume` chooses (None: a fresh start)."""
        return self.resolve_resume(ckpt_path, fingerprint).checkpoint

    def lightning_kwargs(self, resume: Resume | None = None) -> dict[str, Any]:
        """Keyword arguments for ``lightning.Trainer`` (loggers and callbacks included)."""
        p = self.params
        accelerator, devices = self._devices()
        val_check_interval: int | float = p.val_check_interval
        kwargs: dict[str, Any] = {
            "accelerator": accelerator,
            "devices": devices,
            "num_nodes": p.num_nodes,
            "strategy": p.strategy,
            "precision": p.precision,
            "max_steps": p.max_steps,
            "max_epochs": p.max_epochs,
            "log_every_n_steps": p.log_every_n_steps,
            "accumulate_grad_batches": p.accumulate_grad_batches,
            "gradient_clip_val": p.gradient_clip_val,
            # TransformerDataModule's batch sampler already shards batches across ranks.
            "use_distributed_sampler": False,
            "enable_progress_bar": p.progress_bar_refresh_rate > 0,
            "enable_checkpointing": bool(p.save_dir),
            "logger": self._loggers(resuming=resume is not None and resume.checkpoint is not None) or False,
            "callbacks": self._callbacks(resume),
            # Lightning's table (with an always-0 FLOPs column) is replaced by one line from fit();
            # --enable_model_summary true brings it back.
            "enable_model_summary": False,
        }
        if isinstance(val_check_interval, int):
            # Lightning counts an integer interval in batches and only within an epoch unless
            # check_val_every_n_epoch is None; users mean optimizer steps across epochs.
            kwargs["val_check_interval"] = val_check_interval * p.accumulate_grad_batches
            kwargs["check_val_every_n_epoch"] = None
        else:
            kwargs["val_check_interval"] = val_check_interval
        extra = dict(self.trainer_kwargs)
        if extra.get("enable_progress_bar") is False:  # a pass-through flag turned the bar off
            kwargs["callbacks"] = [c for c in kwargs["callbacks"] if not isinstance(c, LightningProgressBar)]
        if "callbacks" in extra:
            more = extra.pop("callbacks")
            kwargs["callbacks"] += list(more) if isinstance(more, list | tuple) else [more]
        kwargs.update(extra)
        return kwargs

    def _devices(self) -> tuple[str, Any]:
        p = self.params
        accelerator = p.accelerator or ("gpu" if p.gpus != 0 else "cpu")
        if p.devices is not None and p.devices != "":
            devices: Any = p.devices
            if isinstance(devices, str) and devices.lstrip("-").isdigit():
                devices = int(devices)
        elif accelerator in ("gpu", "cuda"):
            devices = p.gpus if p.gpus != 0 else "auto"
        elif accelerator == "cpu":
            devices = 1
        else:
            devices = "auto"
        return accelerator, devices

    def _callbacks(self, resume: Resume | None) -> list[Any]:
        p = self.params
        callbacks: list[Any] = []
        if p.save_dir:
            callbacks.append(StepCheckpoint(p.save_dir, p.save_step_frequency, p.num_last_checkpoints))
        if p.progress_bar_refresh_rate > 0:
            callbacks.append(ProgressBar(refresh_rate=p.progress_bar_refresh_rate))
        if p.log_throughput:
            peak = p.peak_tflops * 1e12 if p.peak_tflops else None
            callbacks.append(ThroughputLogger(peak_flops=peak))
        callbacks.append(GracefulInterrupt())  # signals -> checkpoint at the current step, exit 75
        callbacks.append(StopOnDivergence())  # a NaN/inf loss or gradient -> one line, exit 2, nothing saved
        if resume is not None:  # the fingerprint in every checkpoint; under DVC, the resume store
            callbacks += resume.callbacks(p.save_dir, p.dvclive_dir)
        return callbacks

    def _loggers(self, resuming: bool) -> list[Any]:
        p = self.params
        return build_loggers(
            dvclive_dir=p.dvclive_dir,
            wandb_project=p.wandb_project,
            wandb_name=p.wandb_name,
            wandb_id=p.wandb_id,
            resuming=resuming,
        )

    # ------------------------------------------------------------------ running
    def build(self, resume: Resume | None = None) -> Any:
        """Create the ``lightning.Trainer`` (also available as ``self.trainer``) for a run that continues
        as ``resume`` says."""
        adopt_library_loggers()  # Lightning's messages once, in gitnetic's format

        kwargs = self.lightning_kwargs(resume)
        _no_slurm_requeue(kwargs)
        _check_gpus(kwargs["accelerator"], self.params.gpus)
        _enable_tf32(kwargs["accelerator"])
        try:
            trainer = lightning.Trainer(**kwargs)
        except (ValueError, TypeError, MisconfigurationException) as exc:
            message = " ".join(str(exc).split())
            raise ConfigError(f"invalid trainer settings: {message}") from None
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        self.trainer = trainer
        return trainer

    def fit(
        self,
        task: Any,
        datamodule: Any = None,
        *,
        ckpt_path: str | None = None,
        fingerprint: dict[str, Any] | None = None,
    ) -> Any:
        """Train ``task.module`` on ``task.datamodule`` (or ``fit(module, datamodule)``); return the Trainer.

        Resumes from ``ckpt_path`` or ``Params.resume_from_checkpoint`` (weights, optimizer, LR schedule,
        step count, tokens seen and the data position all continue where the checkpoint left them).
        ``fingerprint``: the run's :func:`~gitnetic.training.fingerprint.run_fingerprint`, which every
        checkpoint stores and ``auto`` compares; :func:`gitnetic.training.run.train_task` passes the one of
        every parsed param. Without it, the run is what this trainer and the module know: the trainer's
        params and the module's hyper-parameters.
        """
        if datamodule is None and hasattr(task, "module"):
            module, datamodule = task.module, getattr(task, "datamodule", None)
        else:
            module = task

        hparams = getattr(module, "hparams", None)
        if fingerprint is None:
            own = {k: v for k, v in dict(hparams or {}).items() if k != "trainer"}
            fingerprint = run_fingerprint([self.params, own])
        resume = self.resolve_resume(ckpt_path, fingerprint)
        trainer = self.build(resume)
        if hparams is not None:
            hparams["trainer"] = self.params.to_dict()
        if self.params.compile:
            target = getattr(module, "model", module)
            target.compile()
        if resume.checkpoint:
            logger.info("resuming from %s", resume.checkpoint)
        if trainer.is_global_zero:
            cpu = trainer.strategy.root_device.type == "cpu"
            if cpu and (note := busy_cores_note(torch.get_num_threads())):
                logger.warning(note)
            logger.info(
                "train: %s; %s, precision %s",
                describe_model(module),
                trainer.strategy.root_device,
                trainer.precision,
            )
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume.checkpoint)
        except (TrainingInterrupted, TrainingDiverged):
            _wait_for_ranks(trainer)
            raise
        if not trainer.interrupted:
            resume.finish(self.params.save_dir, self.params.num_last_checkpoints)
        return trainer


def _wait_for_ranks(trainer: Any, timeout_s: float = 120.0) -> None:
    """Let the DDP processes this one launched finish too (they stop at the same step), so the command
    ends only when the whole run has."""
    for proc in getattr(getattr(trainer.strategy, "launcher", None), "procs", None) or []:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()


def _no_slurm_requeue(kwargs: dict[str, Any]) -> None:
    """Under SLURM, Lightning's SLURMEnvironment would install its own SIGUSR1 (checkpoint + scontrol
    requeue) and SIGTERM handlers; gitnetic's signal handling (gitnetic.training.signals) must be the one
    in force, and requeueing is left to the scheduler's settings (``sbatch --requeue``, Snakemake retries)."""

    if "plugins" not in kwargs and SLURMEnvironment.detect():
        kwargs["plugins"] = [SLURMEnvironment(auto_requeue=False)]


def _seed_everything(seed: int) -> None:

    seed_everything(seed, workers=True, verbose=False)


def _check_gpus(accelerator: str, gpus: int) -> None:

    mps = accelerator == "gpu" and torch.backends.mps.is_available()  # Lightning's "gpu" is MPS on Macs
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available() and not mps:
        raise ConfigError(f"--gpus {gpus} but no CUDA GPU is available here; use --gpus 0 to train on CPU")


def _enable_tf32(accelerator: str) -> None:
    """TF32 matmuls on Ampere+ GPUs: ~2x faster fp32 GEMMs at a precision LM training does not miss."""

    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        if torch.cuda.get_device_capability()[0] >= 8:
            torch.set_float32_matmul_precision("high")


# ---------------------------------------------------------------------- pass-through flags
def _flag_type(tp: Any) -> Any:
    """The part of a ``lightning.Trainer`` annotation a flag can carry: its scalar and ``Literal`` members
    (None when it takes objects only), parsed by the params parser's own :func:`scalar_parser`."""
    options = get_args(tp) if get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    simple = [o for o in options if o in (bool, int, float, str) or get_origin(o) is Literal]
    if not simple:
        return None
    return simple[0] if len(simple) == 1 else typing.Union[tuple(simple)]  # noqa: UP007


def _passthrough_specs() -> list[tuple[str, Any, bool]]:
    """``(name, flag type, is a switch)`` for each simple ``lightning.Trainer`` argument not in Params."""

    hints = typing.get_type_hints(lightning.Trainer.__init__)
    covered = {f.name for f in fields(TransformerTrainer.Params)}
    specs = []
    for name in list(hints):
        if name == "return" or name in covered or name in _NOT_PASSTHROUGH:
            continue
        tp = _flag_type(hints[name])
        if tp is None:
            continue
        members = get_args(tp) if get_origin(tp) is typing.Union else (tp,)
        switch = [m for m in members if get_origin(m) is not Literal] == [bool]  # --flag alone means true
        specs.append((name, tp, switch))
    return specs


def lightning_passthrough_params() -> list[str]:
    """Names of the ``lightning.Trainer`` arguments exposed as pass-through flags."""
    return [name for name, _, _ in _passthrough_specs()]


def trainer_kwargs_from_namespace(namespace: argparse.Namespace) -> dict[str, Any]:
    """The pass-through ``lightning.Trainer`` arguments the user actually set (i.e. not None)."""
    return {
        name: getattr(namespace, name)
        for name in lightning_passthrough_params()
        if getattr(namespace, name, None) is not None
    }
