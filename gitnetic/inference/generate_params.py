"""The generate stage's params (which model, which prompts, where), apart from generation itself.

Why a module of their own: ``python -m gitnetic generate --help`` and a mistyped flag are answered
from these and :class:`gitnetic.inference.decoding.DecodingParams` alone, without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gitnetic.common.dataclass_argparse import DataclassBase

__all__ = ["DEFAULT_CURSOR", "GenerateParams"]

DEFAULT_CURSOR = "<CURSOR>"


@dataclass
class GenerateParams(DataclassBase):
    """Which model, which prompts, on which device (how to decode: :class:`DecodingParams`)."""

    model: str = field(
        metadata={
            "help": "An exported folder ('python -m gitnetic export', or any local HF causal-LM folder) "
            "or a training checkpoint (.ckpt, or its folder: checkpoint_last.ckpt there)."
        }
    )
    config_path: str | None = field(
        default=None, metadata={"help": "Model-config YAML used for training (checkpoints only)."}
    )
    tokenizer_path: str | None = field(
        default=None, metadata={"help": "Tokenizer folder used for training (checkpoints only)."}
    )
    prompt: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Prompt(s) to complete, each generated separately. Without any prompt "
            "option the prompt is read from stdin."
        },
    )
    prompt_file: str | None = field(
        default=None, metadata={"help": "A file whose whole content is one prompt ('-' = stdin)."}
    )
    prefix: str | None = field(
        default=None,
        metadata={"help": "Infill: the code before the cursor (with --suffix); prints the middle only."},
    )
    suffix: str | None = field(default=None, metadata={"help": "Infill: the code after the cursor."})
    infill_file: str | None = field(
        default=None,
        metadata={"help": "Infill: a file with one --cursor marker where the middle goes ('-' = stdin)."},
    )
    cursor: str = field(default=DEFAULT_CURSOR, metadata={"help": "The cursor marker of --infill_file."})
    device: Literal["auto", "cpu", "cuda", "mps"] = field(
        default="auto", metadata={"help": "Where to run (auto: cuda when available, else cpu)."}
    )

    @property
    def infill(self) -> bool:
        return self.prefix is not None or self.suffix is not None or self.infill_file is not None
