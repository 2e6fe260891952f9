"""Which objective a model trains and is scored with, and how MLM inputs are masked: the one rule.

Why here, beside :class:`~gitnetic.modules.transformer_module.TransformerModule`: training, evaluation
and export must agree on the objective and on the masking, and the module is what both training and
evaluation run. Everything that decides ``mlm`` or ``clm`` calls :func:`resolve_objective`; everything
that masks calls :func:`mask_tokens`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gitnetic.common.errors import ConfigError, TaskError
from gitnetic.models.config import ModelConfig

__all__ = [
    "IGNORE_INDEX",
    "check_mask_token",
    "config_objective",
    "mask_tokens",
    "objective_of_class",
    "resolve_objective",
]

IGNORE_INDEX = -100  # label of positions that are not predicted (cross entropy's ignore_index)


def objective_of_class(class_name: str) -> str | None:
    """``mlm``/``clm`` for a model class name, or None when it can't tell.

    ``*MaskedLM`` is masked; ``*CausalLM`` and ``*LMHead*`` are causal; other names are looked up in
    transformers' auto-model tables (e.g. a causal LM registered under an unusual name).
    """
    if not class_name:
        return None
    if "MaskedLM" in class_name:
        return "mlm"
    if "CausalLM" in class_name or "LMHead" in class_name:
        return "clm"
    from transformers.models.auto.modeling_auto import (  # here: the table import costs seconds
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if class_name in set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()):
        return "clm"
    if class_name in set(MODEL_FOR_MASKED_LM_MAPPING_NAMES.values()):
        return "mlm"
    return None


def config_objective(model_config: ModelConfig) -> str | None:
    """``clm``/``mlm`` of a model config: its ``objective:`` key, else its model class; None if unknown."""
    return model_config.objective or objective_of_class((model_config.model_name or "").rsplit(".", 1)[-1])


def resolve_objective(requested: str, model: Any, model_config: ModelConfig | None = None) -> str:
    """The objective ``model`` trains and is scored with (module, evaluator, task: this one function).

    An explicit ``mlm``/``clm`` wins, unless the model config's ``objective:`` says the other (a
    contradiction is an error); ``auto`` takes the config's ``objective:``, else the model class
    (:func:`objective_of_class`), else ``clm``.
    """
    declared = model_config.objective if model_config is not None else None
    if requested != "auto":
        if declared is not None and declared != requested:
            raise TaskError(
                f"--objective {requested} contradicts objective: {declared} in {model_config.source}; "
                "drop one of them"
            )
        return requested
    return declared or objective_of_class(type(model).__name__) or "clm"


def check_mask_token(objective: str, tokenizer: Any) -> None:
    """MLM replaces targets by ``<mask>``: a tokenizer without one cannot train or score it."""
    if objective == "mlm" and getattr(tokenizer, "mask_token_id", None) is None:
        raise ConfigError(
            "objective mlm needs a tokenizer with a mask token (<mask>); retrain the tokenizer with it, "
            "or pass --objective clm for a causal model"
        )


def mask_tokens(
    input_ids: Tensor,
    attention_mask: Tensor,
    *,
    special_ids: Tensor,
    mask_token_id: int,
    vocab_size: int,
    mlm_probability: float,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """BERT masking, vectorised: returns ``(inputs, labels)``.

    ``mlm_probability`` of the maskable tokens (not special, not padding) become targets; of those 80%
    are replaced by ``<mask>``, 10% by a random token and 10% kept. Labels are ``-100`` elsewhere.
    All draws come from ``generator``, so equal generator states give equal masks.
    """
    device = input_ids.device
    maskable = attention_mask.bool() & ~torch.isin(input_ids, special_ids.to(device))
    draw = torch.rand(input_ids.shape, generator=generator, device=device)
    targets = maskable & (draw < mlm_probability)
    labels = torch.where(targets, input_ids, IGNORE_INDEX)
    how = torch.rand(input_ids.shape, generator=generator, device=device)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=device)
    inputs = torch.where(targets & (how < 0.8), mask_token_id, input_ids)
    inputs = torch.where(targets & (how >= 0.8) & (how < 0.9), random_ids, inputs)
    return inputs, labels
