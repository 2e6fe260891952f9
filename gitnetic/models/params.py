"""Params of the models floor, torch-free: :class:`TrainedModelParams`, shared by the subcommands that
load a trained checkpoint (evaluate, export): which checkpoint, and the model config and tokenizer to
rebuild its model with (:func:`gitnetic.models.checkpoint.load_trained_model`); and :class:`LoraParams`,
how train adapts a pretrained model with LoRA (:mod:`gitnetic.models.lora`), which the readers of its
checkpoints find recorded there and need not be told."""

from __future__ import annotations

from dataclasses import dataclass, field

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError

__all__ = ["DEFAULT_SAVE_DIR", "LoraParams", "TrainedModelParams"]

DEFAULT_SAVE_DIR = "checkpoints"  # train --save_dir when none is given


@dataclass
class TrainedModelParams(DataclassBase):
    """Which checkpoint, and the model config and tokenizer it was trained with."""

    checkpoint: str = field(
        metadata={
            "help": "Lightning .ckpt written by train, or its folder (checkpoint_last.ckpt, else newest)."
        }
    )
    config_path: str = field(metadata={"help": "Model-config YAML used for training."})
    tokenizer_path: str = field(metadata={"help": "Tokenizer folder used for training."})


@dataclass
class LoraParams(DataclassBase):
    """LoRA: train small low-rank adapters on a pretrained model (--init_from) instead of all its weights."""

    lora_r: int = field(
        default=0,
        metadata={
            "help": "LoRA rank: with --init_from, train rank-r adapters (peft) and freeze the model's own "
            "weights; checkpoints then hold only the adapters and their optimizer state. 0 = off (full "
            "fine-tune)."
        },
    )
    lora_alpha: float = field(
        default=16.0, metadata={"help": "LoRA scaling numerator: adapters are scaled by lora_alpha / lora_r."}
    )
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapters' input (0 = none)."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Names (suffixes) of the linear layers that get adapters. Unset: the model family's "
            "attention projections: GPT-2 and GPT-BigCode c_attn c_proj (c_proj also names their MLP "
            "output), Llama, Qwen2, Mistral, Gemma, StarCoder2 q_proj k_proj v_proj o_proj, other "
            "families peft's default; 'all-linear' = every linear layer but the output head."
        },
    )

    def __post_init__(self) -> None:
        if self.lora_r < 0:
            raise ConfigError(f"--lora_r must be 0 (off) or a positive rank, got {self.lora_r}")
        if not self.lora_alpha > 0:
            raise ConfigError(f"--lora_alpha must be positive, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.lora_target_modules is not None and not all(
            isinstance(name, str) and name.strip() for name in self.lora_target_modules
        ):
            raise ConfigError(
                f"--lora_target_modules takes layer names like q_proj v_proj, got {self.lora_target_modules}"
            )
