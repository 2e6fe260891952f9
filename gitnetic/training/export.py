"""Export a training checkpoint as a ``from_pretrained``-ready Hugging Face folder.

The folder holds the HF model (safetensors + config), the tokenizer, a model card (``README.md``,
:mod:`gitnetic.training.model_card`) and a generation config with the tokenizer's special ids, so ``AutoModelFor*.from_pretrained(dir)`` / ``AutoTokenizer.from_pretrained(dir)``
work offline and ``generate`` stops at ``</s>``. It is written atomically: a failed export never
replaces a good one. The model is rebuilt by :func:`gitnetic.training.checkpoint.load_trained_model`,
the same loader evaluation uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from gitnetic.training.checkpoint_params import TrainedModelParams

__all__ = ["EXPORT_INFO", "ExportParams", "export"]

# What was exported, written next to the model: checkpoint, step, class, objective, config, tokenizer.
EXPORT_INFO = "gitnetic_export.json"


@dataclass
class ExportParams(TrainedModelParams):
    """Export: which checkpoint, how its model was built, where to write the folder."""

    output_dir: str = field(default="models/hf", metadata={"help": "Folder to write (replaced atomically)."})
    corpus_stats: str = field(
        default="data/corpus/stats.json",
        metadata={
            "help": "The corpus stage's stats.json: sources, licenses and statistics for the model card."
        },
    )
    eval_metrics: str = field(
        default="metrics/eval.json",
        metadata={"help": "evaluate's metrics JSON, quoted in the model card (left out when missing)."},
    )
    benchmark_metrics: str = field(
        default="metrics/benchmark.json",
        metadata={
            "help": "benchmark's metrics JSON (pass@k), in the card's model-index (left out when missing)."
        },
    )


def export(params: ExportParams) -> dict[str, object]:
    """Write the folder; returns what was exported (also saved as :data:`EXPORT_INFO`)."""
    from gitnetic.common.io import atomic_dir
    from gitnetic.training.checkpoint import load_trained_model

    model, tokenizer, model_config, ckpt = load_trained_model(
        params.checkpoint, params.config_path, params.tokenizer_path
    )
    generation = getattr(model, "generation_config", None)
    if generation is not None:
        for name in ("pad", "bos", "eos"):
            value = getattr(tokenizer, f"{name}_token_id", None)
            if value is not None:
                setattr(generation, f"{name}_token_id", value)
    info = {
        "checkpoint": ckpt["_path"],
        "global_step": int(ckpt.get("global_step", 0) or 0),
        "model_class": type(model).__name__,
        "objective": model_config.inferred_objective(),
        "config_path": params.config_path,
        "tokenizer_path": params.tokenizer_path,
    }
    from gitnetic.training.model_card import model_card, read_json

    card = model_card(
        info,
        ckpt,
        Path(params.output_dir).name,
        read_json(params.eval_metrics),
        read_json(params.benchmark_metrics),
        read_json(params.corpus_stats),
    )
    with atomic_dir(params.output_dir) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(card, encoding="utf-8")
    return info
