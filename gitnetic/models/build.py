"""Building the model a :class:`~gitnetic.models.config.ModelConfig` describes, for a tokenizer.

Training, evaluation, export and generation all build their model here, so a checkpoint's weights
always go into the architecture they were trained in: vocabulary size and special-token ids come from
the tokenizer, the position table is checked against the sequence length, and a pretrained folder's
config is used as saved. transformers is imported inside the functions (the Snakefile imports the
checkpoint names, which import this module).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.tokenizer.load import load_model_folder_tokenizer, load_tokenizer
from gitnetic.models.config import ModelConfig
from gitnetic.models.positions import check_positions
from gitnetic.models.pretrained import load_hf_model, pretrained_config

__all__ = [
    "BuiltModel",
    "build_config",
    "build_model",
    "build_model_and_tokenizer",
    "import_object",
    "load_model_tokenizer",
    "load_pretrained_model_and_tokenizer",
    "model_class",
]

_AUTO_MODEL = {"clm": "transformers.AutoModelForCausalLM", "mlm": "transformers.AutoModelForMaskedLM"}


@dataclass
class BuiltModel:
    """A model with the tokenizer it was built for and the config that described it."""

    model: Any
    tokenizer: Any
    config: ModelConfig


def import_object(dotted: str, where: str) -> Any:
    """Import ``package.module.Name`` (or ``package.module:Name``); ``where`` names the YAML key for errors."""
    if not isinstance(dotted, str) or not dotted.strip():
        raise ConfigError(
            f"{where} must be a dotted class name like transformers.GPT2LMHeadModel, got {dotted!r}"
        )
    module_name, sep, attr = dotted.replace(":", ".").rpartition(".")
    if not sep or not module_name:
        raise ConfigError(f"{where}: {dotted!r} is not a dotted name; write it as module.ClassName")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{where}: cannot import module {module_name!r} for {dotted!r} ({exc}); fix the name"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(
            f"{where}: module {module_name!r} has no {attr!r}; check the spelling of {dotted!r}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - transformers' lazy modules may fail on missing backends
        raise ConfigError(f"{where}: {dotted!r} cannot be imported ({type(exc).__name__}: {exc})") from None


def model_class(model_config: ModelConfig) -> Any:
    """The model class the config names (the ``Auto*`` factory of its objective in the short form)."""
    if model_config.model_name:
        return import_object(model_config.model_name, f"{model_config.source}: model.name")
    return import_object(_AUTO_MODEL[model_config.objective or "clm"], f"{model_config.source}: objective")


def load_model_tokenizer(model_config: ModelConfig, tokenizer_path: str | Path) -> Any:
    """The tokenizer named in the YAML (loaded from ``tokenizer_path``), else gitnetic's loader."""
    if not model_config.tokenizer_name:
        return load_tokenizer(tokenizer_path)
    if not Path(tokenizer_path).exists():
        raise DataError(
            f"tokenizer path {tokenizer_path} does not exist; run 'python -m gitnetic tokenizer' first"
        )
    factory = import_object(model_config.tokenizer_name, f"{model_config.source}: tokenizer.name")
    loader = getattr(factory, "from_pretrained", factory)
    try:
        return loader(str(tokenizer_path), **model_config.tokenizer_params)
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(
            f"{model_config.tokenizer_name} could not load the tokenizer at {tokenizer_path} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); check tokenizer.params"
        ) from None


def build_config(model_config: ModelConfig, tokenizer: Any) -> Any:
    """The HF config with vocab size and special ids taken from ``tokenizer`` (a pretrained folder's
    config is used as saved)."""
    if model_config.pretrained:
        return pretrained_config(model_config.pretrained, tokenizer)
    params = {**model_config.config_params, **_tokenizer_fields(tokenizer)}
    try:
        if model_config.model_type:
            from transformers import AutoConfig  # here: see the module doc

            return AutoConfig.for_model(model_config.model_type, **params)
        config_cls = import_object(model_config.config_name, f"{model_config.source}: model.config")
        return config_cls(**params)
    except (TypeError, ValueError, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"model config {model_config.source}: cannot build the model config ({msg}); fix config_params"
        ) from None


def build_model(model_config: ModelConfig, tokenizer: Any, max_length: int | None = None) -> Any:
    """A freshly initialised model for ``tokenizer``; checks the position table fits ``max_length``."""
    config = build_config(model_config, tokenizer)
    if max_length:
        check_positions(config, max_length, model_config.source)
    cls = model_class(model_config)
    try:
        if model_config.model_type or model_config.pretrained:
            return cls.from_config(config)
        return cls(config)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"model config {model_config.source}: cannot build the model ({msg}); check model.name/config"
        ) from None


def build_model_and_tokenizer(
    config_path: str, tokenizer_path: str, max_length: int | None = None
) -> BuiltModel:
    """Tokenizer + freshly initialised model, exactly as training builds them (evaluate/export reuse it)."""
    model_config = ModelConfig.from_yaml(config_path)
    tokenizer = load_model_tokenizer(model_config, tokenizer_path)
    return BuiltModel(build_model(model_config, tokenizer, max_length=max_length), tokenizer, model_config)


def load_pretrained_model_and_tokenizer(
    folder: str, tokenizer_path: str | None = None, max_length: int | None = None, dtype: str = "float32"
) -> BuiltModel:
    """``init_from``: the folder's model *with its weights* (in ``dtype``, checked against ``max_length``),
    and its tokenizer (or ``tokenizer_path``'s, which must fit the model's vocabulary, e.g. the pipeline's
    copy of the same tokenizer)."""
    model_config = ModelConfig.from_pretrained(folder, "--init_from")
    if tokenizer_path:
        tokenizer = load_tokenizer(tokenizer_path)
    else:
        tokenizer = load_model_folder_tokenizer(folder, "--init_from")
    config = pretrained_config(folder, tokenizer)
    if max_length:
        check_positions(config, max_length, model_config.source)
    model = load_hf_model(folder, "--init_from", causal=model_config.objective != "mlm", dtype=dtype)
    # to be trained: dropout and gradient checkpointing act in train mode only, and Lightning keeps the
    # mode it finds (load_hf_model's is eval, for generation)
    model.train()
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = config.pad_token_id
    return BuiltModel(model, tokenizer, model_config)


def _tokenizer_fields(tokenizer: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"vocab_size": len(tokenizer)}
    for name in ("pad", "bos", "eos"):
        value = getattr(tokenizer, f"{name}_token_id", None)
        if value is not None:
            fields[f"{name}_token_id"] = value
    if "eos_token_id" in fields and "pad_token_id" not in fields:
        fields["pad_token_id"] = fields["eos_token_id"]
    return fields
