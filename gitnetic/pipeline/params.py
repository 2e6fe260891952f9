"""Params of the whole-pipeline helpers (``init``, ``summary``), torch-free and apart from their work."""

from __future__ import annotations

from dataclasses import dataclass, field

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError

__all__ = ["InitParams", "SummaryParams"]


@dataclass
class InitParams(DataclassBase):
    """The corpus to size a run for, the compute budget, and where to write the result."""

    path: str | None = field(
        default=None,
        metadata={
            "help": "Your code: a folder, or a git repository (read at --rev). Unset: the Python standard "
            "library (the template's corpus)."
        },
    )
    source: str | None = field(
        default=None,
        metadata={
            "help": "stdlib, dir or git; unset: git when --path is a git repository, dir for another "
            "folder, stdlib without --path."
        },
    )
    rev: str = field(default="HEAD", metadata={"help": "Git revision to read (branch, tag or commit)."})
    include: list[str] | None = field(
        default=None, metadata={"help": "Glob patterns of files to collect (unset: the template's, **/*.py)."}
    )
    exclude: list[str] | None = field(
        default=None,
        metadata={
            "help": "Glob patterns of files to leave out (unset: none for your code; the template's for stdlib)."
        },
    )
    max_bytes: int | None = field(
        default=None,
        metadata={
            "help": "Cap on corpus bytes (0 = none; unset: none for your code, the template's for stdlib)."
        },
    )
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "Plan a fine-tune of this local Hugging Face model folder instead of a model from "
            "scratch (--from works too): full or LoRA, gradient checkpointing, batch and steps sized to "
            "--gpu_memory_gb and the budget; config.json is enough to plan (docs/sizing.md).",
            "aliases": ["--from"],
        },
    )
    tokens: int | None = field(
        default=None,
        metadata={
            "help": "Tokens in the corpus, if known (unset: estimated from its bytes at the vocabulary's "
            "bytes per token)."
        },
    )
    gpu_memory_gb: float = field(
        default=80.0,
        metadata={"help": "Memory of the GPU a --from fine-tune runs on, in GB (an H100/A100 has 80)."},
    )
    lora_r: int = field(
        default=16,
        metadata={"help": "LoRA rank when a --from model's full fine-tune does not fit (alpha = 2 x rank)."},
    )
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Modules LoRA adapts, for --from (unset: the model family's defaults, as peft's)."},
    )
    max_length: int | None = field(
        default=None,
        metadata={"help": "Sequence length of a --from fine-tune (unset: the model's limit, at most 2048)."},
    )
    budget_minutes: float = field(
        default=10.0,
        metadata={
            "help": "Training time budget on this machine's CPU, in minutes (ignored with --gpu_hours)."
        },
    )
    gpu_hours: float | None = field(
        default=None,
        metadata={
            "help": "Train on one GPU for at most this many hours instead (sets gpus 1, bf16-mixed; a --from "
            "LoRA plan bf16-true)."
        },
    )
    cpu_gflops: float | None = field(
        default=None,
        metadata={
            "help": "Effective training GFLOP/s of this CPU (unset: 14 per core, measured on the project's "
            "2-core VM)."
        },
    )
    gpu_tflops: float = field(
        default=100.0,
        metadata={
            "help": "Effective training TFLOP/s of the GPU for --gpu_hours (about 1/3 of its bf16 peak)."
        },
    )
    epochs: float | None = field(
        default=None,
        metadata={
            "help": "At most this many passes over the train split (unset: 4 from scratch, where repeats "
            "beyond ~4 help little; 2 for a --from fine-tune)."
        },
    )
    tokens_per_param: float = field(
        default=20.0, metadata={"help": "Chinchilla ratio: training tokens per non-embedding parameter."}
    )
    output: str = field(default="params.yaml", metadata={"help": "The params file to write."})
    template: str | None = field(
        default=None,
        metadata={
            "help": "Params file whose other sections and keys are kept (unset: --output if it exists, "
            "else params.yaml)."
        },
    )
    model_config: str = field(
        default="configs/gpt2-init.yaml", metadata={"help": "Where to write the generated model config."}
    )
    force: bool = field(
        default=False, metadata={"help": "Overwrite --output and --model_config if they exist."}
    )
    dry_run: bool = field(default=False, metadata={"help": "Print the plan, write nothing."})

    def __post_init__(self) -> None:
        if self.source not in (None, "stdlib", "dir", "git"):
            raise ConfigError(f"--source must be stdlib, dir or git, got {self.source!r}")
        if self.budget_minutes <= 0:
            raise ConfigError(f"--budget_minutes must be positive, got {self.budget_minutes}")
        if self.gpu_hours is not None and self.gpu_hours <= 0:
            raise ConfigError(f"--gpu_hours must be positive, got {self.gpu_hours}")
        for name in (
            "cpu_gflops",
            "gpu_tflops",
            "epochs",
            "tokens_per_param",
            "tokens",
            "gpu_memory_gb",
            "lora_r",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name} must be positive, got {value}")


@dataclass
class SummaryParams(DataclassBase):
    """Summary: which params file locates the pipeline's outputs."""

    params_file: str = field(
        default="params.yaml",
        metadata={"help": "The pipeline's params file (its train/evaluate/export sections give the paths)."},
    )
