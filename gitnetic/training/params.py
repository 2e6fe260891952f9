"""Training's params, torch-free (``train --help`` and the params checks need no Lightning):
:class:`TrainerParams`, the trainer's flags (``TransformerTrainer.Params`` in the task contract), and
:class:`TrainParams`, a parsed ``train`` command typed for :func:`gitnetic.training.run.train_task`."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError
from gitnetic.models.params import DEFAULT_SAVE_DIR
from gitnetic.modules.params import run_seed_field

__all__ = ["PRECISIONS", "TrainParams", "TrainerParams"]

PRECISIONS = (
    "32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "64", "16", "bf16",
    "transformer-engine", "transformer-engine-float16",
)  # fmt: skip


@dataclass
class TrainerParams(DataclassBase):
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
        metadata={"help": "Lightning strategy: auto, ddp, fsdp, deepspeed, ... (for several GPUs/nodes)."},
    )
    num_nodes: int = field(default=1, metadata={"help": "Number of machines (each with --gpus GPUs)."})
    accelerator: str | None = field(
        default=None,
        metadata={"help": "Override the accelerator (cpu, gpu, cuda, mps, tpu, auto) chosen from --gpus."},
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


@dataclass
class TrainParams:
    """A parsed ``train`` command, typed: the trainer's params, every component's params, and the
    parser's other values (the pass-through ``lightning.Trainer`` flags among them)."""

    trainer: TrainerParams
    components: tuple[DataclassBase, ...]  # every params dataclass parsed, the trainer's included
    namespace: Namespace

    @classmethod
    def from_parsed(cls, parsed: Sequence[Any]) -> TrainParams:
        """From ``parse_args_into_dataclasses`` output: the params dataclasses, then the namespace."""
        *components, namespace = parsed
        trainer = next((c for c in components if isinstance(c, TrainerParams)), None)
        if trainer is None or not isinstance(namespace, Namespace):
            raise ConfigError(
                "the parsed params hold no TransformerTrainer params; build the parser with "
                "TransformerTrainer.add_argparse_params"
            )
        return cls(trainer, tuple(components), namespace)

    @property
    def task_params(self) -> tuple[Any, ...]:
        """What ``TaskModule.setup`` takes (the seed's contract): the dataclasses, then the namespace."""
        return (*self.components, self.namespace)
