"""Local Hugging Face model folders (``save_pretrained`` layout, e.g. what ``gitnetic export`` writes).

``generate`` reads them and ``init_from`` starts training from them. Only folders on disk are accepted:
gitnetic never downloads, so a hub name or a half-copied folder is a one-line error saying what is
missing, not a network timeout or a transformers traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitnetic.common.errors import DataError

__all__ = [
    "WEIGHT_FILES",
    "is_hf_model_folder",
    "check_hf_model_folder",
    "load_hf_model",
    "load_hf_tokenizer",
]

# a single file, or the index of a sharded checkpoint, in either serialization
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def is_hf_model_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder with a ``config.json`` (a model folder, complete or not)."""
    p = Path(path)
    return p.is_dir() and (p / "config.json").is_file()


def check_hf_model_folder(path: str | Path, flag: str, tokenizer: bool = True) -> Path:
    """``path`` as a Path if it holds config, weights (and, if asked, a fast tokenizer); else DataError."""
    p = Path(path)
    if not p.is_dir():
        raise DataError(
            f"{flag} {p} is not a folder; pass a local Hugging Face model folder (save_pretrained layout, "
            "e.g. one written by 'python -m gitnetic export'); nothing is downloaded"
        )
    missing = []
    if not (p / "config.json").is_file():
        missing.append("config.json")
    if not any((p / name).is_file() for name in WEIGHT_FILES):
        missing.append("weights (model.safetensors or pytorch_model.bin)")
    if tokenizer and not (p / "tokenizer.json").is_file():
        missing.append("tokenizer.json (a fast tokenizer)")
    if missing:
        raise DataError(
            f"{flag} {p} is not a complete Hugging Face model folder: missing {', '.join(missing)}; "
            "save it with model.save_pretrained(dir) and tokenizer.save_pretrained(dir)"
        )
    return p


def load_hf_tokenizer(path: str | Path, flag: str) -> Any:
    from gitnetic.data.tokenizer import load_tokenizer

    return load_tokenizer(check_hf_model_folder(path, flag))


def load_hf_model(path: str | Path, flag: str, causal: bool = True) -> Any:
    """The model in the folder (``AutoModelForCausalLM``, else ``AutoModelForMaskedLM``), on CPU, float32."""
    p = check_hf_model_folder(path, flag, tokenizer=False)
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM

    try:
        config = AutoConfig.from_pretrained(str(p), local_files_only=True)
        auto = AutoModelForCausalLM if causal else AutoModelForMaskedLM
        try:
            model = auto.from_pretrained(str(p), config=config, local_files_only=True, dtype="float32")
        except ValueError as exc:
            if causal and "Unrecognized configuration class" in str(exc):
                raise DataError(
                    f"{flag} {p} holds a {config.model_type} model without a causal-LM head "
                    f"({', '.join(config.architectures or [])}); pass a causal LM"
                ) from None
            raise
    except (OSError, ValueError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{flag} {p} could not be loaded ({msg}); re-save or re-export the model") from None
    model.eval()
    return model
