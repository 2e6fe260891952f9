"""``python -m gitnetic export``: turn a training checkpoint into a ``from_pretrained``-ready folder.

The folder holds the HF model (safetensors + config), the tokenizer and a generation config with the
tokenizer's special ids, so ``AutoModelFor*.from_pretrained(dir)`` / ``AutoTokenizer.from_pretrained(dir)``
work offline and ``generate`` stops at ``</s>``. It is written atomically: a failed export never
replaces a good one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.training.checkpoint_params import TrainedModelParams

DESCRIPTION = (
    "Convert a training checkpoint into a from_pretrained-ready Hugging Face folder (model + tokenizer)."
)
PROG = "python -m gitnetic export"
EXPORT_INFO = "gitnetic_export.json"

logger = logging.getLogger(__name__)


@dataclass
class ExportParams(TrainedModelParams):
    """Export: which checkpoint, how its model was built, where to write the folder."""

    output_dir: str = field(default="models/hf", metadata={"help": "Folder to write (replaced atomically)."})


def export(params: ExportParams) -> dict[str, object]:
    """Write the folder; returns what was exported (also saved as ``gitnetic_export.json``)."""
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
    with atomic_dir(params.output_dir) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = DataclassArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_arguments(ExportParams)
    params, _ = parser.parse_args_into_dataclasses(argv)
    info = export(params)
    logger.info("exported %s (step %s) to %s", info["model_class"], info["global_step"], params.output_dir)
    return 0
