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
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitnetic.common.dataclass_argparse import load_yaml
from gitnetic.common.errors import ConfigError

__all__ = ["ModelConfig", "import_object", "position_limit"]

OBJECTIVES = ("clm", "mlm")
_AUTO_MODEL = {"clm": "transformers.AutoModelForCausalLM", "mlm": "transformers.AutoModelForMaskedLM"}
# RoBERTa-style models number positions from padding_idx + 1, so they need max_length + pad_id + 1 slots.
_PADDING_OFFSET_TYPES = {"roberta", "xlm-roberta", "camembert", "longformer", "roberta-prelayernorm", "xmod"}


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


def position_limit(config: Any) -> tuple[int | None, int]:
    """``(position table size, ids used up front)`` of a HF config, or ``(None, 0)`` if it has none."""
    for attr in ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            offset = 0
            if getattr(config, "model_type", None) in _PADDING_OFFSET_TYPES:
                offset = int(getattr(config, "pad_token_id", 1) or 0) + 1
            return value, offset
    return None, 0


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

    # ------------------------------------------------------------------ parsing
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
        if not isinstance(data, dict):
            raise ConfigError(
                f"model config {source} must be a mapping with a 'model:' section (or 'model_type:'), "
                f"got {type(data).__name__}"
            )
        data = dict(data)
        tokenizer = data.pop("tokenizer", None) or {}
        if not isinstance(tokenizer, dict):
            raise ConfigError(
                f"model config {source}: 'tokenizer' must be a mapping with 'name' and 'params'"
            )
        unknown_tok = sorted(set(tokenizer) - {"name", "params"})
        if unknown_tok:
            raise ConfigError(
                f"model config {source}: unknown tokenizer key(s) {', '.join(unknown_tok)}; use name, params"
            )
        tok_params = tokenizer.get("params") or {}
        if not isinstance(tok_params, dict):
            raise ConfigError(f"model config {source}: 'tokenizer.params' must be a mapping")
        common = {
            "tokenizer_name": tokenizer.get("name"),
            "tokenizer_params": dict(tok_params),
            "source": source,
        }
        objective = data.pop("objective", None)
        if objective is not None and objective not in OBJECTIVES:
            raise ConfigError(
                f"model config {source}: objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
            )
        if "model" in data:
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
                    raise ConfigError(
                        f"model config {source}: 'model.{key}' is required (a dotted class name)"
                    )
            params = model.get("config_params") or {}
            if not isinstance(params, dict):
                raise ConfigError(
                    f"model config {source}: 'model.config_params' must be a mapping of config fields"
                )
            return cls(
                model_name=model["name"],
                config_name=model["config"],
                config_params=dict(params),
                objective=objective,
                **common,
            )
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
        import json

        from gitnetic.tasks.hf_folder import check_hf_model_folder

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

    def _pretrained_config(self, tokenizer: Any) -> Any:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(self.pretrained, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"model folder {self.pretrained}: cannot read config.json ({msg})") from None
        vocab = int(getattr(config, "vocab_size", 0) or 0)
        if vocab and len(tokenizer) > vocab:
            raise ConfigError(
                f"the tokenizer has {len(tokenizer)} tokens but the model in {self.pretrained} only {vocab}; "
                "use the tokenizer saved with that model"
            )
        if getattr(config, "pad_token_id", None) is None:  # batches are padded; GPT-2 configs have no pad id
            pad = getattr(tokenizer, "pad_token_id", None)
            config.pad_token_id = pad if pad is not None else getattr(config, "eos_token_id", None)
        return config

    def load_pretrained(self, tokenizer: Any, max_length: int | None = None) -> Any:
        """The folder's model *with its weights* (``init_from``), float32, checked against ``max_length``."""
        from gitnetic.tasks.hf_folder import load_hf_model

        config = self._pretrained_config(tokenizer)
        if max_length:
            check_positions(config, max_length, self.source)
        model = load_hf_model(self.pretrained, "--init_from", causal=self.objective != "mlm")
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = config.pad_token_id
        return model

    # ------------------------------------------------------------------ building
    @property
    def model_class(self) -> Any:
        if self.model_name:
            return import_object(self.model_name, f"{self.source}: model.name")
        return import_object(_AUTO_MODEL[self.objective or "clm"], f"{self.source}: objective")

    def inferred_objective(self) -> str | None:
        """``clm``/``mlm`` from the explicit key or the model class name; None if it can't tell."""
        return self.objective or objective_of_class((self.model_name or "").rsplit(".", 1)[-1])

    def load_tokenizer(self, tokenizer_path: str | Path) -> Any:
        """The tokenizer named in the YAML (loaded from ``tokenizer_path``), else gitnetic's loader."""
        from gitnetic.common.errors import DataError
        from gitnetic.data.tokenizer import load_tokenizer

        if not self.tokenizer_name:
            return load_tokenizer(tokenizer_path)
        if not Path(tokenizer_path).exists():
            raise DataError(
                f"tokenizer path {tokenizer_path} does not exist; run 'python -m gitnetic tokenizer' first"
            )
        factory = import_object(self.tokenizer_name, f"{self.source}: tokenizer.name")
        loader = getattr(factory, "from_pretrained", factory)
        try:
            return loader(str(tokenizer_path), **self.tokenizer_params)
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(
                f"{self.tokenizer_name} could not load the tokenizer at {tokenizer_path} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); check tokenizer.params"
            ) from None

    def build_config(self, tokenizer: Any) -> Any:
        """The HF config with vocab size and special ids taken from ``tokenizer`` (a pretrained folder's
        config is used as saved)."""
        if self.pretrained:
            return self._pretrained_config(tokenizer)
        params = dict(self.config_params)
        params.update(_tokenizer_fields(tokenizer))
        try:
            if self.model_type:
                from transformers import AutoConfig

                return AutoConfig.for_model(self.model_type, **params)
            config_cls = import_object(self.config_name, f"{self.source}: model.config")
            return config_cls(**params)
        except (TypeError, ValueError, KeyError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"model config {self.source}: cannot build the model config ({msg}); fix config_params"
            ) from None

    def build_model(self, tokenizer: Any, max_length: int | None = None) -> Any:
        """A freshly initialised model for ``tokenizer``; checks the position table fits ``max_length``."""
        config = self.build_config(tokenizer)
        if max_length:
            check_positions(config, max_length, self.source)
        model_cls = self.model_class
        try:
            if self.model_type or self.pretrained:
                return model_cls.from_config(config)
            return model_cls(config)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"model config {self.source}: cannot build the model ({msg}); check model.name/config"
            ) from None


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


def objective_of_class(class_name: str) -> str | None:
    """``mlm``/``clm`` for a model class name, or None when it can't tell.

    ``*MaskedLM`` is masked; ``*CausalLM`` and ``*LMHead*`` are causal; other names are looked up in
    transformers' auto-model tables (e.g. a causal LM registered under an unusual name).
    """
    if not class_name:
        return None
    if "MaskedLM" in class_name:
        return "mlm"
    if "CausalLM" in class_name or "LMHead" in class_name:
        return "clm"
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if class_name in set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()):
        return "clm"
    if class_name in set(MODEL_FOR_MASKED_LM_MAPPING_NAMES.values()):
        return "mlm"
    return None


def resolve_objective(requested: str, class_name: str, config_objective: str | None = None) -> str:
    """The one rule deciding which objective a model trains and is scored with (module, evaluator, task).

    An explicit ``mlm``/``clm`` wins; ``auto`` takes the model config's ``objective:``, else the model
    class (:func:`objective_of_class`), else ``clm``. Training and evaluation call this same function,
    so a model can never be trained as one objective and scored as the other.
    """
    if requested != "auto":
        return requested
    return config_objective or objective_of_class(class_name) or "clm"


def build_model_and_tokenizer(
    config_path: str, tokenizer_path: str, max_length: int | None = None
) -> tuple[Any, Any, ModelConfig]:
    """Tokenizer + freshly initialised model, exactly as training builds them (evaluate/export reuse it)."""
    model_config = ModelConfig.from_yaml(config_path)
    tokenizer = model_config.load_tokenizer(tokenizer_path)
    model = model_config.build_model(tokenizer, max_length=max_length)
    return model, tokenizer, model_config


def check_positions(config: Any, max_length: int, source: str) -> None:
    """Fail early (not on step 1 with an index error) when sequences are longer than the position table."""
    size, offset = position_limit(config)
    if size is None:
        return
    if size < max_length + offset:
        attr = next(
            a
            for a in ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len")
            if hasattr(config, a)
        )
        attr = getattr(config, "attribute_map", {}).get(attr, attr)  # GPT-2 users write n_positions
        raise ConfigError(
            f"model config {source}: {attr}={size} is too small for max_length={max_length}"
            + (f" (this model type needs max_length + {offset})" if offset else "")
            + f"; set {attr} >= {max_length + offset} or lower --max_length"
        )


def _tokenizer_fields(tokenizer: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"vocab_size": len(tokenizer)}
    for name in ("pad", "bos", "eos"):
        value = getattr(tokenizer, f"{name}_token_id", None)
        if value is not None:
            fields[f"{name}_token_id"] = value
    if "eos_token_id" in fields and "pad_token_id" not in fields:
        fields["pad_token_id"] = fields["eos_token_id"]
    return fields
