"""Loading a tokenizer folder: the one loader every stage and model builder uses.

Kept apart from training (:mod:`gitnetic.data.tokenizer.train`) because preprocess, models and
inference only read tokenizers: they import this small module, which needs the Rust ``tokenizers`` and
(lazily, inside the functions) ``transformers``, never the trainer.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer

from gitnetic.common.errors import DataError
from gitnetic.data.hf_folder import check_hf_model_folder

TOKENIZER_FILE = "tokenizer.json"
# tokenizer_config.json classes that are exactly PreTrainedTokenizerFast (TokenizersBackend in transformers 5).
_PLAIN_FAST_CLASSES = {"PreTrainedTokenizerFast", "TokenizersBackend"}
TOKENIZER_CONFIG = "tokenizer_config.json"


def load_tokenizer(path: str | Path):
    """Load a tokenizer folder saved by :func:`train_tokenizer` (or any HF fast tokenizer folder).

    Our own folders load through ``PreTrainedTokenizerFast`` directly: it is the class ``AutoTokenizer``
    would pick, but importing ``AutoTokenizer`` pulls in torch (seconds per process) which the data
    stages never need. Other folders go through ``AutoTokenizer``.
    """
    from transformers import PreTrainedTokenizerFast

    p = Path(path)
    file = tokenizer_json(p)  # the one-line error when there is no tokenizer
    try:
        if file == p:  # a tokenizer.json itself
            return PreTrainedTokenizerFast(tokenizer_file=str(p), clean_up_tokenization_spaces=False)
        if tokenizer_config(p).get("tokenizer_class") in _PLAIN_FAST_CLASSES:
            return PreTrainedTokenizerFast.from_pretrained(str(p), local_files_only=True)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except Exception as exc:  # OSError/ValueError from transformers, plain Exception from tokenizers
        raise DataError(f"tokenizer at {p} could not be loaded ({exc}); re-run the tokenizer stage") from None


def load_backend_tokenizer(path: str | Path):
    """The ``tokenizers.Tokenizer`` of a tokenizer folder (or ``tokenizer.json``): the same file
    :func:`load_tokenizer` wraps, without importing transformers (which saves seconds per preprocess
    job; the binarizer needs only the Rust tokenizer)."""
    file = tokenizer_json(path)
    try:
        return Tokenizer.from_file(str(file))
    except Exception as exc:  # tokenizers raises plain Exception on bad JSON
        raise DataError(f"tokenizer {file} could not be loaded ({exc}); re-run the tokenizer stage") from None


def tokenizer_json(path: str | Path) -> Path:
    """The ``tokenizer.json`` of a tokenizer folder (or the file itself); a one-line ``DataError`` if none."""
    p = Path(path)
    if p.is_file():
        return p
    if not (p / TOKENIZER_FILE).is_file():
        raise DataError(
            f"no tokenizer at {p} (missing {TOKENIZER_FILE}); run 'python -m gitnetic tokenizer' first "
            "or pass the folder it wrote"
        )
    return p / TOKENIZER_FILE


def tokenizer_config(folder: str | Path) -> dict:
    """The folder's ``tokenizer_config.json`` as a dict; empty when it is missing or unreadable (the
    loaders then report what is wrong)."""
    config = Path(folder) / TOKENIZER_CONFIG
    if not config.is_file():
        return {}
    try:
        value = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def document_separator_id(tokenizer_path: str | Path, backend) -> int | None:
    """The id appended after every document: ``</s>`` (gitnetic's tokenizers), else the eos token named in
    the folder's ``tokenizer_config.json`` (a pretrained tokenizer, e.g. GPT-2's ``<|endoftext|>``)."""
    eos_id = backend.token_to_id("</s>")
    if eos_id is not None:
        return int(eos_id)
    eos = tokenizer_config(tokenizer_path).get("eos_token")
    if isinstance(eos, dict):  # older transformers saved AddedToken dicts
        eos = eos.get("content")
    return backend.token_to_id(eos) if isinstance(eos, str) else None


def load_model_folder_tokenizer(folder: str | Path, flag: str):
    """The tokenizer of a complete local HF model folder (checked first: ``flag`` names it in errors)."""
    return load_tokenizer(check_hf_model_folder(folder, flag))
