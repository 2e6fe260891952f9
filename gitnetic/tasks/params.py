"""Params of the tasks (:mod:`gitnetic.tasks`), torch-free.

``TaskModule.Params`` and ``TransformerTask.Params`` stay aliases of these: users' tasks are written
against those names (docs/seed-train.rst).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitnetic.common.dataclass_argparse import DataclassBase

__all__ = ["TaskParams", "TransformerTaskParams"]


@dataclass
class TaskParams(DataclassBase):
    """Task parameters (none for the base task)."""


@dataclass
class TransformerTaskParams(DataclassBase):
    """transformer-task: which model to build and which tokenizer to build it for."""

    config_path: str | None = field(
        default=None,
        metadata={
            "help": "Model-config YAML (model.name/config/config_params, optional tokenizer), the name of "
            "one shipped in gitnetic/configs (e.g. gpt2-tiny), or a local HF model folder (its "
            "config.json, fresh weights). Not needed with --init_from."
        },
    )
    tokenizer_path: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer folder written by 'python -m gitnetic tokenizer' (e.g. data/tokenizer); "
            "with --init_from it defaults to the model folder's own tokenizer."
        },
    )
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "Continue pretraining a local Hugging Face model folder (save_pretrained layout, e.g. "
            "models/hf from 'python -m gitnetic export'): its architecture, weights and tokenizer. "
            "Nothing is downloaded."
        },
    )
