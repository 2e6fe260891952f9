"""Loading the model of a local Hugging Face folder (``save_pretrained`` layout): its config and weights.

``generate`` reads such folders and ``init_from`` starts training from them; the folder is checked first
(:func:`gitnetic.data.hf_folder.check_hf_model_folder`), so what is missing is a one-line error.
transformers is imported inside the functions: this module is imported by ``gitnetic.models.build``,
which the Snakefile reaches through the checkpoint names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.hf_folder import check_hf_model_folder

__all__ = ["load_hf_model", "pretrained_config"]


def load_hf_model(path: str | Path, flag: str, causal: bool = True) -> Any:
    """The model in the folder (``AutoModelForCausalLM``, else ``AutoModelForMaskedLM``), on CPU, float32."""
    p = check_hf_model_folder(path, flag, tokenizer=False)
    from transformers import (  # here: see the module doc
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
    )

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


def pretrained_config(folder: str, tokenizer: Any) -> Any:
    """The folder's HF config, checked to hold ``tokenizer``'s vocabulary, with a pad id for batching."""
    from transformers import AutoConfig  # here: see the module doc

    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"model folder {folder}: cannot read config.json ({msg})") from None
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    if vocab and len(tokenizer) > vocab:
        raise ConfigError(
            f"the tokenizer has {len(tokenizer)} tokens but the model in {folder} only {vocab}; "
            "use the tokenizer saved with that model"
        )
    if getattr(config, "pad_token_id", None) is None:  # batches are padded; GPT-2 configs have no pad id
        pad = getattr(tokenizer, "pad_token_id", None)
        config.pad_token_id = pad if pad is not None else getattr(config, "eos_token_id", None)
    return config
