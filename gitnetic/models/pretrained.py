"""Loading the model of a local Hugging Face folder (``save_pretrained`` layout): its config and weights.

``generate`` reads such folders and ``init_from`` starts training from them; the folder is checked first
(:func:`gitnetic.data.hf_folder.check_hf_model_folder`), so what is missing is a one-line error.
transformers is imported inside the functions: this module is imported by ``gitnetic.models.build``,
which the Snakefile reaches through the checkpoint names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.hf_folder import WEIGHT_FILES, check_hf_model_folder
from gitnetic.models.finite import check_finite_weights

__all__ = ["load_hf_model", "pretrained_config"]

logger = logging.getLogger(__name__)


def load_hf_model(path: str | Path, flag: str, causal: bool = True, dtype: str = "float32") -> Any:
    """The model in the folder (``AutoModelForCausalLM``, else ``AutoModelForMaskedLM``), on CPU, in
    ``dtype`` (float32; bfloat16 for ``bf16-true`` training: :func:`gitnetic.models.memory.weights_dtype`)."""
    p = check_hf_model_folder(path, flag, tokenizer=False)
    from safetensors import SafetensorError  # here with transformers, which needs it: see the module doc
    from transformers import (  # here: see the module doc
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
    )

    try:
        config = AutoConfig.from_pretrained(str(p), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"{flag} {p}: cannot read config.json ({_first_line(exc)}); re-save or re-export the model"
        ) from None
    auto = AutoModelForCausalLM if causal else AutoModelForMaskedLM
    try:
        with _quiet(_LOAD_REPORT_LOGGER):
            model, info = auto.from_pretrained(
                str(p),
                config=config,
                local_files_only=True,
                dtype=dtype,
                ignore_mismatched_sizes=True,  # a misfit is _check_loaded's one-line error, not a table
                output_loading_info=True,
            )
    except ValueError as exc:
        if causal and "Unrecognized configuration class" in str(exc):
            raise DataError(
                f"{flag} {p} holds a {config.model_type} model without a causal-LM head "
                f"({', '.join(config.architectures or [])}); pass a causal LM"
            ) from None
        raise _damaged(p, flag, exc) from None
    # a damaged weights file raises whatever its reader does: safetensors' own error, RuntimeError, EOFError
    except (OSError, KeyError, RuntimeError, EOFError, SafetensorError) as exc:
        raise _damaged(p, flag, exc) from None
    _check_loaded(p, flag, info)
    check_finite_weights(model.state_dict(), f"{flag} {p}")
    model.eval()
    return model


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _damaged(path: Path, flag: str, exc: BaseException) -> DataError:
    weights = next((name for name in WEIGHT_FILES if (path / name).is_file()), "its weights")
    return DataError(
        f"{flag} {path}: cannot load {weights} ({_first_line(exc)}); the file may be truncated or damaged: "
        "re-save or re-export the model"
    )


# transformers logs a multi-line table of missing / mismatched weights here; _check_loaded says it in a line
_LOAD_REPORT_LOGGER = "transformers.modeling_utils"


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Only errors from logger ``name`` while loading (a filter, not its level: transformers reads that
    level to decide on logging more)."""

    def errors_only(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    lib = logging.getLogger(name)
    lib.addFilter(errors_only)
    try:
        yield
    finally:
        lib.removeFilter(errors_only)


def _check_loaded(path: Path, flag: str, info: dict[str, Any]) -> None:
    """A weight whose shape differs from config.json's is an error (e.g. a vocab_size edited down); weights
    missing from the folder start random, which is worth a warning."""
    mismatched = list(info.get("mismatched_keys") or [])
    if mismatched:
        key, stored, expected = mismatched[0]
        more = f" and {len(mismatched) - 1} more" if len(mismatched) > 1 else ""
        raise DataError(
            f"{flag} {path}: the weights do not fit its config.json ({key} is {list(stored)} in the weights "
            f"but {list(expected)} by config.json{more}); put the config.json saved with these weights there"
        )
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        logger.warning(
            "%s %s: %d weights are not in the folder and start random (%s)",
            flag,
            path,
            len(missing),
            ", ".join(missing[:3]),
        )


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
