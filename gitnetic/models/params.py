"""Params of the models floor, torch-free: :class:`TrainedModelParams`, shared by the subcommands that
load a trained checkpoint (evaluate, export): which checkpoint, and the model config and tokenizer to
rebuild its model with (:func:`gitnetic.models.checkpoint.load_trained_model`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gitnetic.common.dataclass_argparse import DataclassBase

__all__ = ["DEFAULT_SAVE_DIR", "TrainedModelParams"]

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
