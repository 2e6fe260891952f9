"""Model-config YAML: which model/config/tokenizer classes to build and with what sizes.

Two spellings are accepted. The full form names classes, so any importable model works::

    model:
      name: transformers.RobertaForMaskedLM
      config: transformers.RobertaConfig
      config_params: {hidden_size: 768, num_hidden_layers: 12, ...}
    tokenizer:                                  # optional
      name: transformers.PreTrainedTokenizerFast
      params: {add_prefix_space: false}

The short form goes through the ``Auto*`` factories::

    model_type: gpt2
    objective: clm        # clm -> AutoModelForCausalLM, mlm -> AutoModelForMaskedLM
    n_layer: 2            # any other key is a config field
    ...

Vocabulary size and special-token ids always come from the tokenizer, never from the YAML, so a model
can't silently disagree with the tokenizer it is trained with.

This module only reads and checks the YAML (:class:`ModelConfig`); :mod:`gitnetic.models.build` builds
the model it describes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitnetic.common.dataclass_argparse import load_yaml
from gitnetic.common.errors import ConfigError
from gitnetic.data.hf_folder import check_hf_model_folder

__all__ = ["OBJECTIVES", "ModelConfig", "find_model_config", "shipped_model_configs"]

OBJECTIVES = ("clm", "mlm")


@dataclass
class ModelConfig:
    """A parsed model-config YAML. Build with :meth:`from_yaml` or :meth:`from_dict`."""

    model_name: str | None = None
    config_name: str | None = None
    config_params: dict[str, Any] = field(default_factory=dict)
    model_type: str | None = None
    objective: str | None = None
    tokenizer_name: str | None = None
    tokenizer_params: dict[str, Any] = field(default_factory=dict)
    source: str = "<model config>"
    # a local HF model folder whose config.json (and, for init_from, weights) define the model
    pretrained: str | None = None

    @classmethod
    def from_yaml(cls, path: str | Path) -> ModelConfig:
        """A model-config YAML (a path or a shipped config's name, see :func:`find_model_config`), or a
        local HF model folder (its ``config.json``: see :meth:`from_pretrained`)."""
        if Path(path).is_dir():
            return cls.from_pretrained(Path(path), "--config_path")
        p = find_model_config(path)
        data = load_yaml(p, what="model config")
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<model config>") -> ModelConfig:
        """The full form (``model:``) or the short form (``model_type:``), checked key by key."""
        if not isinstance(data, dict):
            raise ConfigError(
                f"model config {source} must be a mapping with a 'model:' section (or 'model_type:'), "
                f"got {type(data).__name__}"
            )
        data = dict(data)
        common = {**_tokenizer_section(data.pop("tokenizer", None) or {}, source), "source": source}
        objective = data.pop("objective", None)
        if objective is not None and objective not in OBJECTIVES:
            raise ConfigError(
                f"model config {source}: objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
            )
        if "model" in data:
            return cls(**_full_form(data, source), objective=objective, **common)
        if "model_type" in data:
            model_type = data.pop("model_type")
            params = data.pop("config_params", None) or {}
            if not isinstance(params, dict):
                raise ConfigError(
                    f"model config {source}: 'config_params' must be a mapping of config fields"
                )
            params.update(data)
            return cls(
                model_type=str(model_type), config_params=params, objective=objective or "clm", **common
            )
        raise ConfigError(
            f"model config {source} has neither a 'model:' section nor 'model_type:'; see gitnetic/configs/gpt2-tiny.yaml"
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, flag: str = "--init_from") -> ModelConfig:
        """The model of a local HF folder (``save_pretrained`` layout, e.g. ``gitnetic export``'s output).

        Its ``config.json`` fixes the architecture *and* the vocabulary (the weights were trained for it),
        so unlike a YAML nothing is taken from the tokenizer; the objective comes from ``architectures``.
        """
        p = check_hf_model_folder(path, flag, tokenizer=False)
        try:
            config = json.loads((p / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{flag} {p}: config.json is not valid JSON ({exc}); re-save the model"
            ) from None
        architectures = " ".join(config.get("architectures") or [])
        objective = "mlm" if "MaskedLM" in architectures else "clm"
        return cls(model_type=config.get("model_type"), objective=objective, source=str(p), pretrained=str(p))


def _tokenizer_section(tokenizer: Any, source: str) -> dict[str, Any]:
    """``tokenizer_name`` and ``tokenizer_params`` from the YAML's optional ``tokenizer:`` mapping."""
    if not isinstance(tokenizer, dict):
        raise ConfigError(f"model config {source}: 'tokenizer' must be a mapping with 'name' and 'params'")
    unknown = sorted(set(tokenizer) - {"name", "params"})
    if unknown:
        raise ConfigError(
            f"model config {source}: unknown tokenizer key(s) {', '.join(unknown)}; use name, params"
        )
    params = tokenizer.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"model config {source}: 'tokenizer.params' must be a mapping")
    return {"tokenizer_name": tokenizer.get("name"), "tokenizer_params": dict(params)}


def _full_form(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``model_name``, ``config_name`` and ``config_params`` of the ``model:`` section (``data`` holds
    nothing else by now but ``model``)."""
    model = data.pop("model")
    if not isinstance(model, dict):
        raise ConfigError(
            f"model config {source}: 'model' must be a mapping with name, config, config_params"
        )
    if data:
        raise ConfigError(
            f"model config {source}: unknown top-level key(s) {', '.join(sorted(data))}; "
            "use model, tokenizer, objective"
        )
    unknown = sorted(set(model) - {"name", "config", "config_params"})
    if unknown:
        raise ConfigError(
            f"model config {source}: unknown model key(s) {', '.join(unknown)}; use name, config, config_params"
        )
    for key in ("name", "config"):
        if not model.get(key):
            raise ConfigError(f"model config {source}: 'model.{key}' is required (a dotted class name)")
    params = model.get("config_params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"model config {source}: 'model.config_params' must be a mapping of config fields")
    return {"model_name": model["name"], "config_name": model["config"], "config_params": dict(params)}


SHIPPED_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def shipped_model_configs() -> list[str]:
    """Names of the ready model configs that ship inside the package (``gitnetic/configs/*.yaml``)."""
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml"))


def find_model_config(path: str | Path) -> Path:
    """The YAML file ``--config_path`` names: an existing path, else a shipped config's bare name.

    ``gpt2-tiny`` (or ``gpt2-tiny.yaml``) is ``gitnetic/configs/gpt2-tiny.yaml``, so a ``pip install``
    user has ready configs; a path that exists always wins over a shipped name.
    """
    p = Path(path)
    if p.is_file():
        return p
    name = str(path)
    if "/" not in name and "\\" not in name:
        shipped = SHIPPED_CONFIGS / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
        if shipped.is_file():
            return shipped
    raise ConfigError(
        f"model config {p} does not exist; pass --config_path with a YAML path or a shipped name "
        f"({', '.join(shipped_model_configs())})"
    )
