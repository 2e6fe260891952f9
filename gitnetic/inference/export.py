"""Export a training checkpoint as a ``from_pretrained``-ready Hugging Face folder.

The folder holds the HF model (safetensors + config), the tokenizer, a model card (``README.md``,
:mod:`gitnetic.inference.model_card`), a generation config with the
tokenizer's special ids, and ``licenses.json``: the license of each corpus source the model was trained
on, as the corpus stage recorded it (``stats.json`` -> ``licenses``; see :mod:`gitnetic.data.corpus.licenses`),
so whoever gets the model gets the obligations with it. So ``AutoModelFor*.from_pretrained(dir)`` / ``AutoTokenizer.from_pretrained(dir)``
work offline and ``generate`` stops at ``</s>``. It is written atomically: a failed export never
replaces a good one. The model is rebuilt by :func:`gitnetic.models.checkpoint.load_trained_model`,
the same loader evaluation and generation use.

A LoRA run's checkpoint (adapters only) is exported merged into its base model, so the folder loads like
any other; ``adapter_only`` writes the peft adapter folder instead (small; loaded onto the base with
``PeftModel.from_pretrained``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gitnetic.common.errors import ConfigError
from gitnetic.common.io import atomic_dir
from gitnetic.inference.model_card import model_card, read_json
from gitnetic.inference.params import ExportParams
from gitnetic.models.checkpoint import load_trained_model
from gitnetic.models.lora import lora_record
from gitnetic.modules.objective import config_objective

__all__ = ["EXPORT_INFO", "LICENSES_JSON", "ExportParams", "corpus_licenses", "export"]

log = logging.getLogger(__name__)

# What was exported, written next to the model: checkpoint, step, class, objective, config, tokenizer.
EXPORT_INFO = "gitnetic_export.json"
# Per-source licenses of the training corpus, written next to the model: {"<source>": "<SPDX>" | null}.
LICENSES_JSON = "licenses.json"


def corpus_licenses(stats_path: str) -> dict[str, str | None]:
    """``stats.json``'s ``licenses`` mapping; empty (and said once in the log) when it is not there."""
    path = Path(stats_path)
    try:
        licenses = json.loads(path.read_text(encoding="utf-8")).get("licenses")
    except (OSError, ValueError, AttributeError):
        licenses = None
    if not isinstance(licenses, dict):
        log.info(
            "export: no corpus licenses in %s (missing or from an older corpus); licenses.json is empty", path
        )
        return {}
    return licenses


def export(params: ExportParams) -> dict[str, object]:
    """Write the folder; returns what was exported (also saved as :data:`EXPORT_INFO`)."""
    trained = load_trained_model(
        params.checkpoint, params.config_path, params.tokenizer_path, merge=not params.adapter_only
    )
    lora = lora_record(trained.checkpoint)
    if params.adapter_only and lora is None:
        raise ConfigError(
            f"--adapter_only: checkpoint {trained.path} is a full fine-tune's, not a LoRA run's; "
            "leave --adapter_only out to export the whole model"
        )
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
        "model_class": type(getattr(model, "get_base_model", lambda: model)()).__name__,
        "objective": config_objective(trained.config),
        "config_path": params.config_path,
        "tokenizer_path": params.tokenizer_path,
    }
    if lora is not None:  # a full fine-tune's export info stays as it was
        info["lora"] = {k: lora[k] for k in ("base", "base_digest", "settings")}
        info["adapter_only"] = params.adapter_only
    licenses = corpus_licenses(params.corpus_stats)
    card = model_card(
        info,
        trained.checkpoint,
        Path(params.output_dir).name,
        read_json(params.eval_metrics),
        read_json(params.benchmark_metrics),
        read_json(params.corpus_stats),
    )
    with atomic_dir(params.output_dir) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        (tmp / LICENSES_JSON).write_text(json.dumps(licenses, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(card, encoding="utf-8")
    return info
