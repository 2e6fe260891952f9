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
from dataclasses import dataclass, field, fields
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
from gitnetic.common.dataclass_argparse import DataclassArgumentParser, DataclassBase, scalar_parser
from gitnetic.common.errors import ConfigError
from gitnetic.common.threads import set_torch_threads
from gitnetic.models.checkpoint import DEFAULT_SAVE_DIR
from gitnetic.modules.params import run_seed_field
from gitnetic.training.fingerprint import run_fingerprint
from gitnetic.training.loggers import build_loggers
from gitnetic.training.progress import ProgressBar
from gitnetic.training.resume import AtomicCheckpointIO, Resume, StepCheckpoint, resume_for
from gitnetic.training.signals import GracefulInterrupt, TrainingInterrupted
from gitnetic.training.throughput import ThroughputLogger, describe_model

__all__ = ["TransformerTrainer", "trainer_kwargs_from_namespace", "lightning_passthrough_params"]

logger = logging.getLogger(__name__)

PRECISIONS = (
    "32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "64", "16", "bf16",
    "transformer-engine", "transformer-engine-float16",
)  # fmt: skip

# lightning.Trainer arguments we never expose as flags: objects, or set by us on purpose.
_NOT_PASSTHROUGH = {"logger", "callbacks", "plugins", "use_distributed_sampler"}


class TransformerTrainer:
    """Builds and runs a ``lightning.Trainer`` from :class:`TransformerTrainer.Params`.

    Extra keyword arguments go to ``lightning.Trainer`` unchanged and win over the mapped ones
    (``callbacks`` are appended to ours).
    """

    @dataclass
    class Params(DataclassBase):
        """Trainer: devices, steps, checkpoints, logging and resume."""

        gpus: int = field(
            default=0, metadata={"help": "GPUs per node (0 = train on CPU, -1 = all visible GPUs)."}
        )
        max_steps: int = field(
            default=10000,
            metadata={
                "help": "Optimizer steps to train for; the LR schedule decays over them (-1 = use max_epochs)."
            },
        )
        max_epochs: int = field(
            default=-1, metadata={"help": "Stop after this many epochs (-1 = no epoch limit)."}
        )
        val_check_interval: int | float = field(
            default=1.0,
            metadata={
                "help": "Validate every N optimizer steps (an integer) or after this fraction of each epoch (a float; 1.0 = at epoch ends)."
            },
        )
        save_step_frequency: int = field(
            default=1000,
            metadata={"help": "Save a checkpoint every N optimizer steps (0 = only at the end)."},
        )
        save_dir: str = field(
            default=DEFAULT_SAVE_DIR,
            metadata={
                "help": "Checkpoint folder: checkpoint_step{N}.ckpt and checkpoint_last.ckpt ('' = no checkpoints)."
            },
        )
        num_last_checkpoints: int = field(
            default=2, metadata={"help": "Step checkpoints to keep, newest first (-1 = keep all)."}
        )
        resume_from_checkpoint: str | None = field(
            default=None,
            metadata={
                "help": "Checkpoint to resume from; 'last' for SAVE_DIR/checkpoint_last.ckpt when it exists "
                "(whatever run wrote it: continue a run on purpose, e.g. with more steps); 'auto' for the newest "
                "valid checkpoint in SAVE_DIR only if it comes from this very run (same params, model config, "
                "tokenizer, data, devices, precision), else stale checkpoints are removed and training starts fresh."
            },
        )
        progress_bar_refresh_rate: int = field(
            default=1, metadata={"help": "Refresh the progress bar every N steps (0 = no progress bar)."}
        )
        log_every_n_steps: int = field(
            default=50, metadata={"help": "Send training metrics to the loggers every N steps."}
        )
        dvclive_dir: str = field(
            default="dvclive",
            metadata={"help": "DVCLive output folder (metrics.json, plots/); '' disables DVCLive."},
        )
        wandb_project: str | None = field(
            default=None, metadata={"help": "Log to this Weights & Biases project."}
        )
        wandb_name: str | None = field(default=None, metadata={"help": "Weights & Biases run name."})
        wandb_id: str | None = field(
            default=None, metadata={"help": "Weights & Biases run id, to continue that run."}
        )
        seed: int = run_seed_field()  # the datamodule's too: one --seed (gitnetic.modules.params)
        precision: str = field(
            default="32-true",
            metadata={"help": f"Numeric precision: one of {', '.join(PRECISIONS[:6])}, ..."},
        )
        accumulate_grad_batches: int = field(
            default=1, metadata={"help": "Batches per optimizer step (gradient accumulation)."}
        )
        gradient_clip_val: float | None = field(
            default=None, metadata={"help": "Clip the gradient norm to this value (unset = no clipping)."}
        )
        strategy: str = field(
            default="auto",
            metadata={
                "help": "Lightning strategy: auto, ddp, fsdp, deepspeed, ... (for several GPUs/nodes)."
            },
        )
        num_nodes: int = field(default=1, metadata={"help": "Number of machines (each with --gpus GPUs)."})
        accelerator: str | None = field(
            default=None,
            metadata={
                "help": "Override the accelerator (cpu, gpu, cuda, mps, tpu, auto) chosen from --gpus."
            },
        )
        devices: str | None = field(
            default=None,
            metadata={"help": "Override the devices chosen from --gpus (e.g. 2, -1, '0,1', auto)."},
        )
        compile: bool = field(default=False, metadata={"help": "torch.compile the model before training."})
        num_threads: int = field(
            default=0,
            metadata={
                "help": "CPU threads per process for torch (0 = as OMP_NUM_THREADS or the machine says). "
                "Float results on CPU depend on it: fix it to get the same model from DVC, Snakemake and by hand."
            },
        )
        log_throughput: bool = field(
            default=True,
            metadata={
                "help": "Log tokens/s, step time, peak memory and (on GPUs) MFU every --log_every_n_steps "
                "(perf/* in DVCLive, tok/s and MFU in the progress bar); never adds a per-step device sync."
            },
        )
        peak_tflops: float | None = field(
            default=None,
            metadata={
                "help": "Peak TFLOP/s of one device for MFU (default: looked up from the GPU name and "
                "--precision, see gitnetic.training.throughput.PEAK_TFLOPS; no MFU on CPUs)."
            },
        )

        def __post_init__(self) -> None:
            if self.max_steps < 1 and self.max_steps != -1:
                raise ConfigError(
                    f"--max_steps must be positive (or -1 to use --max_epochs), got {self.max_steps}"
                )
            if self.max_steps == -1 and self.max_epochs < 1:
                raise ConfigError("training would never stop: set --max_steps N or --max_epochs N")
            if self.gpus < -1:
                raise ConfigError(f"--gpus must be 0 (CPU), a positive count or -1 (all), got {self.gpus}")
            checks = {
                "save_step_frequency": self.save_step_frequency >= 0,
                "progress_bar_refresh_rate": self.progress_bar_refresh_rate >= 0,
                "log_every_n_steps": self.log_every_n_steps >= 1,
                "accumulate_grad_batches": self.accumulate_grad_batches >= 1,
                "num_nodes": self.num_nodes >= 1,
                "num_last_checkpoints": self.num_last_checkpoints >= -1,
                "num_threads": self.num_threads >= 0,
            }
            for name, ok in checks.items():
                if not ok:
                    raise ConfigError(f"--{name} has an invalid value {getattr(self, name)!r}; see --help")
            if isinstance(self.val_check_interval, float) and not 0 < self.val_check_interval <= 1:
                raise ConfigError(
                    f"--val_check_interval {self.val_check_interval}: use an integer step count or a fraction in (0, 1]"
                )
            if isinstance(self.val_check_interval, int) and self.val_check_interval < 1:
                raise ConfigError(
                    f"--val_check_interval must be a positive step count, got {self.val_check_interval}"
                )
            if str(self.precision) not in PRECISIONS:
                raise ConfigError(f"--precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
            if self.peak_tflops is not None and not self.peak_tflops > 0:
                raise ConfigError(f"--peak_tflops must be positive, got {self.peak_tflops}")
            if self.gradient_clip_val is not None and self.gradient_clip_val < 0:
                raise ConfigError(f"--gradient_clip_val must be positive, got {self.gradient_clip_val}")

    params: Params
    params_type: type[Params] = Params

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
        except TrainingInterrupted:
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
