"""Params of the Lightning components (:mod:`gitnetic.modules`), torch-free.

Why here and not inside the classes: ``--help`` and a params file are checked without importing torch or
Lightning, and every module of the package imports them typed. ``TransformerModule.Params`` and
``TransformerDataModule.Params`` stay aliases of these, as the task contract (docs/seed-train.rst) names
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError

__all__ = ["DEFAULT_SEED", "DataModuleParams", "ModuleParams", "run_seed_field"]

DEFAULT_SEED = 17


def run_seed_field() -> Any:
    """The run's seed: one field with one meaning, declared by every params group that needs it (the
    trainer seeds the RNGs with it, the datamodule orders and blends batches with it), so ``--seed`` and
    ``train.seed`` set it once for all; marked shared so the parser accepts the repeated name."""
    return field(
        default=DEFAULT_SEED,
        metadata={
            "help": "Random seed (model init, dropout, masking, data order): same seed → same batches.",
            "shared": True,
        },
    )


@dataclass
class ModuleParams(DataclassBase):
    """Optimization and objective."""

    learning_rate: float = field(
        default=5e-4, metadata={"help": "Peak learning rate (reached after warmup)."}
    )
    learning_rate_end: float = field(
        default=0.0, metadata={"help": "Learning rate at max_steps (polynomial decay ends here)."}
    )
    weight_decay: float = field(
        default=0.01,
        metadata={"help": "AdamW weight decay (never applied to biases and normalization weights)."},
    )
    warmup_steps: int | None = field(
        default=None,
        metadata={
            "help": "Optimizer steps of linear warmup from 0 to --learning_rate (unset: 10% of "
            "--max_steps, at most 1000). A warning says when warmup takes most of the run."
        },
    )
    power: float = field(
        default=1.0, metadata={"help": "Power of the polynomial decay after warmup (1.0 = linear decay)."}
    )
    betas: list[float] = field(
        default_factory=lambda: [0.9, 0.98],
        metadata={"help": "AdamW betas (RoBERTa pretraining: 0.9 0.98)."},
    )
    eps: float = field(default=1e-6, metadata={"help": "AdamW epsilon."})
    objective: Literal["auto", "mlm", "clm"] = field(
        default="auto",
        metadata={
            "help": "Training objective: mlm (masked LM), clm (causal LM) or auto (the model config's "
            "objective, else mlm for *MaskedLM classes, clm for causal ones and by default)."
        },
    )
    mlm_probability: float = field(
        default=0.15,
        metadata={"help": "Share of (non-special, non-padding) tokens masked for the MLM objective."},
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata={
            "help": "Recompute each layer's activations in the backward pass instead of storing them "
            "(Hugging Face models; non-reentrant): ~1/3 more compute, activation memory no longer grows "
            "with depth. Same loss and gradients."
        },
    )

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ConfigError(f"--learning_rate must be positive, got {self.learning_rate}")
        if not 0 <= self.learning_rate_end <= self.learning_rate:
            raise ConfigError(
                f"--learning_rate_end must be between 0 and --learning_rate ({self.learning_rate}), "
                f"got {self.learning_rate_end}"
            )
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ConfigError(f"--warmup_steps must be 0 or more, got {self.warmup_steps}")
        if self.weight_decay < 0:
            raise ConfigError(f"--weight_decay must be 0 or more, got {self.weight_decay}")
        if self.power <= 0:
            raise ConfigError(f"--power must be positive, got {self.power}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"--betas takes two numbers in [0, 1), e.g. --betas 0.9 0.98; got {self.betas}")
        if not 0 < self.mlm_probability < 1:
            raise ConfigError(f"--mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if self.objective not in ("auto", "mlm", "clm"):
            raise ConfigError(f"--objective must be auto, mlm or clm, got {self.objective!r}")


@dataclass
class DataModuleParams(DataclassBase):
    """Data: which shards to read and how to batch them."""

    train_data_prefix: str | None = field(
        default=None,
        metadata={
            "help": "Train shards written by 'gitnetic preprocess', without .bin/.idx (e.g. data/bin/train), "
            "or a weighted blend in Megatron's form '0.7 data/bin/code/train 0.3 data/bin/commits/train' "
            "(sampled by weight, deterministic from --seed; see gitnetic/data/loading/blend.py)."
        },
    )
    val_data_prefix: str | None = field(
        default=None,
        metadata={
            "help": "Validation shards prefix (e.g. data/bin/valid), or a weighted blend like "
            "--train_data_prefix; no validation if unset."
        },
    )
    max_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Token budget per batch, padding included (batch size x longest sequence). "
            "With --packing: batch_size = max_tokens // max_length."
        },
    )
    batch_size: int | None = field(
        default=None,
        metadata={"help": "Most sequences (or packed blocks) per batch; a cap on top of --max_tokens."},
    )
    max_length: int = field(
        default=512,
        metadata={"help": "Sequences are truncated to (or packed into blocks of) this many tokens."},
    )
    packing: bool = field(
        default=False,
        metadata={
            "help": "Pack the token stream into contiguous max_length blocks (no padding, nothing truncated) "
            "instead of length-bucketed max_tokens batches of whole (truncated) sequences."
        },
    )
    num_workers: int = field(
        default=0, metadata={"help": "DataLoader worker processes (0 = load in the main process)."}
    )
    seed: int = run_seed_field()
    shuffle: bool = field(default=True, metadata={"help": "Shuffle training batches each epoch."})
    pin_memory: bool | None = field(
        default=None,
        metadata={"help": "Pin batch memory for faster GPU copies (default: when CUDA is available)."},
    )
    fim_rate: float = field(
        default=0.0,
        metadata={
            "help": "Causal LM: share of documents in each training sample rearranged for "
            "fill-in-the-middle, in the format of the tokenizer's model family (StarCoder's for "
            "gitnetic's own tokenizers: train them with --fim_tokens; docs/fim.md). 0 = plain "
            "left-to-right training."
        },
    )
    fim_spm_rate: float = field(
        default=0.5,
        metadata={
            "help": "Share of the FIM documents in suffix-prefix-middle order (the rest: PSM; families "
            "pretrained PSM only, Qwen2.5-Coder and DeepSeek-Coder, always get PSM)."
        },
    )
