"""Export a training checkpoint as a ``from_pretrained``-ready Hugging Face folder.

The folder holds the HF model (safetensors + config), the tokenizer and a generation config with the
tokenizer's special ids, so ``AutoModelFor*.from_pretrained(dir)`` / ``AutoTokenizer.from_pretrained(dir)``
work offline and ``generate`` stops at ``</s>``. It is written atomically: a failed export never
replaces a good one. The model is rebuilt by :func:`gitnetic.models.checkpoint.load_trained_model`,
the same loader evaluation and generation use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from gitnetic.common.io import atomic_dir
from gitnetic.models.checkpoint import load_trained_model
from gitnetic.models.trained_params import TrainedModelParams
from gitnetic.modules.objective import config_objective

__all__ = ["EXPORT_INFO", "ExportParams", "export"]

# What was exported, written next to the model: checkpoint, step, class, objective, config, tokenizer.
EXPORT_INFO = "gitnetic_export.json"


@dataclass
class ExportParams(TrainedModelParams):
    """Export: which checkpoint, how its model was built, where to write the folder."""

    output_dir: str = field(default="models/hf", metadata={"help": "Folder to write (replaced atomically)."})


def export(params: ExportParams) -> dict[str, object]:
    """Write the folder; returns what was exported (also saved as :data:`EXPORT_INFO`)."""
    trained = load_trained_model(params.checkpoint, params.config_path, params.tokenizer_path)
    model, tokenizer = trained.model, trained.tokenizer
    generation = getattr(model, "generation_config", None)
    if generation is not None:
        for name in ("pad", "bos", "eos"):
            value = getattr(tokenizer, f"{name}_token_id", None)
            if value is not None:
                setattr(generation, f"{name}_token_id", value)
    info = {
        "checkpoint": trained.path,
        "global_step": trained.global_step,
        "model_class": type(model).__name__,
        "objective": config_objective(trained.config),
        "config_path": params.config_path,
        "tokenizer_path": params.tokenizer_path,
    }
    with atomic_dir(params.output_dir) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info
