"""A model folder's size and shape, read without loading its weights: what ``init --from`` plans with.

Why not load the model: planning a 7B fine-tune must not need 28 GB of RAM, nor the weights at all (a
config.json is enough to see whether a model would fit a GPU). Parameter shapes come from the
safetensors headers when the folder has them (every shard of a sharded checkpoint; the headers are a few
kB), else from the model built on PyTorch's ``meta`` device from config.json (shapes, no storage).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.hf_folder import WEIGHT_FILES
from gitnetic.models.lora_targets import default_target_modules

__all__ = ["ModelFootprint", "default_lora_targets", "read_footprint"]

# Attention projections tried, in order, for a model type peft has no default for (StarCoder2's are
# q_proj/v_proj like Llama's; GPT-2 and GPT-BigCode fuse them into c_attn).
_FALLBACK_TARGETS = (("q_proj", "v_proj"), ("c_attn",), ("query_key_value",), ("qkv_proj",), ("Wqkv",))


@dataclass(frozen=True)
class ModelFootprint:
    """Parameter shapes of a model folder and the config numbers a memory estimate needs."""

    folder: str
    model_type: str
    shapes: dict[str, tuple[int, ...]] = field(repr=False)
    hidden_size: int
    num_layers: int
    vocab_size: int
    context: int  # the position limit (max_position_embeddings / n_positions); 0 if the config has none
    source: str  # "safetensors" | "config"
    has_weights: bool
    has_tokenizer: bool

    @property
    def params(self) -> int:
        return sum(math.prod(shape) for shape in self.shapes.values())

    def target_modules_present(self, targets: list[str]) -> list[str]:
        """Those of ``targets`` that name a 2-D weight of the model (a module name's last part)."""
        found = {name.rsplit(".", 2)[-2] for name, shape in self.shapes.items() if _is_matrix(name, shape)}
        return [t for t in targets if t in found]

    def lora_params(self, rank: int, targets: list[str]) -> int:
        """Adapter parameters of LoRA rank ``rank`` on ``targets``: ``r x (in + out)`` per weight matrix."""
        wanted = set(targets)
        return sum(
            rank * (shape[0] + shape[1])
            for name, shape in self.shapes.items()
            if _is_matrix(name, shape) and name.rsplit(".", 2)[-2] in wanted
        )


def _is_matrix(name: str, shape: tuple[int, ...]) -> bool:
    return len(shape) == 2 and name.endswith(".weight") and name.count(".") >= 1


def default_lora_targets(footprint: ModelFootprint) -> list[str]:
    """The family's default LoRA targets, the layers training adapts (:mod:`gitnetic.models.lora_targets`),
    else the attention projections the model has."""
    try:
        known = default_target_modules(footprint.model_type)
    except ConfigError:
        known = []
    if known and footprint.target_modules_present(known) == known:
        return known
    for targets in _FALLBACK_TARGETS:
        if footprint.target_modules_present(list(targets)) == list(targets):
            return list(targets)
    raise ConfigError(
        f"no default LoRA target modules for a {footprint.model_type} model in {footprint.folder}; "
        "pass --lora_target_modules with the names of its attention projections"
    )


def read_footprint(folder: str | Path, flag: str = "--from") -> ModelFootprint:
    """The folder's footprint: config.json required; weights optional (see the module doc)."""
    p = Path(folder)
    if not (p / "config.json").is_file():
        raise DataError(
            f"{flag} {p}: no config.json there; pass a local Hugging Face model folder (save_pretrained "
            "layout); nothing is downloaded"
        )
    try:
        raw = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{flag} {p}: cannot read config.json ({exc}); re-save the model") from None
    config = _hf_config(p, raw, flag)
    shapes = _safetensors_shapes(p, flag)
    source = "safetensors"
    if shapes is None:
        shapes, source = _meta_shapes(config, p, flag), "config"
    return ModelFootprint(
        folder=str(p),
        model_type=str(raw.get("model_type", "")),
        shapes=shapes,
        hidden_size=int(_first(config, "hidden_size", "n_embd", "d_model")),
        num_layers=int(_first(config, "num_hidden_layers", "n_layer", "num_layers")),
        vocab_size=int(_first(config, "vocab_size")),
        context=int(_first(config, "max_position_embeddings", "n_positions", "seq_length", default=0)),
        source=source,
        has_weights=any((p / name).is_file() for name in WEIGHT_FILES),
        has_tokenizer=(p / "tokenizer.json").is_file(),
    )


def _first(config: Any, *names: str, default: int | None = None) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    if default is not None:
        return default
    raise ConfigError(f"config.json has none of {', '.join(names)}; cannot size the model")


def _hf_config(path: Path, raw: dict[str, Any], flag: str) -> Any:
    from transformers import AutoConfig  # heavy import: only when planning

    try:
        return AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{flag} {path}: transformers cannot read its config.json (model_type "
            f"{raw.get('model_type')!r}: {first})"
        ) from None


def _safetensors_shapes(path: Path, flag: str) -> dict[str, tuple[int, ...]] | None:
    """Shapes from the headers of ``model.safetensors`` or every shard its index names; None if absent."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise DataError(f"{flag} {path}: cannot read {index.name} ({exc}); re-save the model") from None
    elif (path / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        return None
    from safetensors import SafetensorError, safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for name in files:
        try:
            with safe_open(str(path / name), framework="numpy") as fh:
                for key in fh.keys():  # a safe_open handle is not a mapping
                    shapes[key] = tuple(fh.get_slice(key).get_shape())
        except (OSError, SafetensorError) as exc:
            raise DataError(
                f"{flag} {path}: cannot read the header of {name} ({exc}); the file may be damaged"
            ) from None
    return shapes


def _meta_shapes(config: Any, path: Path, flag: str) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of the model config.json describes, built on the meta device (no storage)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    errors = []
    for auto in (AutoModelForCausalLM, AutoModelForMaskedLM):
        try:
            with torch.device("meta"):
                model = auto.from_config(config)
        except (ValueError, KeyError, TypeError) as exc:
            errors.append(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            continue
        return {name: tuple(param.shape) for name, param in model.named_parameters()}
    raise DataError(f"{flag} {path}: cannot build the model config.json describes ({errors[0]})")
