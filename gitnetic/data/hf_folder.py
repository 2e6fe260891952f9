"""Local Hugging Face model folders (``save_pretrained`` layout, e.g. what ``gitnetic export`` writes): what
one must hold, checked on the file system alone.

The tokenizer stage copies such a folder's tokenizer (``--init_from``), training continues its model and
``generate`` reads it. Only folders on disk are accepted: gitnetic never downloads, so a hub name or a
half-copied folder is a one-line error saying what is missing, not a network timeout or a transformers
traceback. Loading the model itself is :mod:`gitnetic.models.pretrained`'s job.
"""

from __future__ import annotations

from pathlib import Path

from gitnetic.common.errors import DataError

__all__ = ["WEIGHT_FILES", "check_hf_model_folder", "is_hf_model_folder"]

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
