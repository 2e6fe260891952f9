"""LoRA on a pretrained model (peft): which layers get adapters, wrapping the model for training, and
rebuilding base + adapters from a checkpoint that holds the adapters alone.

Why adapters: a full fine-tune keeps weights, gradients and two Adam moments for every parameter (16
bytes each in float32: ~112 GB for a 7B model); with LoRA the base is frozen, so gradients and optimizer
state exist only for the adapters (well under 1% of the parameters), and a checkpoint is megabytes.

Why a record: such a checkpoint holds no base weights, so it says where they come from. The record
(:func:`apply_lora`, saved with the module's hyper-parameters under :data:`LORA_KEY`) names the base
folder as ``--init_from`` gave it, a digest of its config and weight files, and the adapter settings.
:func:`load_adapted_model` rebuilds the same model from it for evaluate, export, generate and benchmark,
and refuses a base folder whose weights are not the ones the adapters were trained on.

peft and transformers are imported inside the functions: :mod:`gitnetic.models.checkpoint` imports this
module, and the Snakefile imports that one for the checkpoint names.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.hf_folder import is_hf_model_folder
from gitnetic.models.build import BuiltModel, load_pretrained_model_and_tokenizer
from gitnetic.models.lora_targets import default_target_modules
from gitnetic.models.params import LoraParams

__all__ = [
    "LORA_KEY",
    "LoraParams",
    "adapter_state",
    "apply_lora",
    "base_digest",
    "default_target_modules",
    "load_adapted_model",
    "lora_record",
    "trainable_parameters",
]

LORA_KEY = "lora"  # the module's hyper-parameter that holds the record; absent in a full fine-tune

_CONV1D_FAMILIES = {"gpt2"}  # transformers' Conv1D stores weights transposed: peft's fan_in_fan_out

_BIG_FILE = 64 << 20  # larger weight files are digested by size + first and last MiB


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(f"{path.name}\0{size}\0".encode())
    with path.open("rb") as fh:
        if size <= _BIG_FILE:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        else:  # a 15 GB safetensors file is not read whole each time a checkpoint is loaded
            h.update(fh.read(1 << 20))
            fh.seek(size - (1 << 20))
            h.update(fh.read(1 << 20))
    return h.hexdigest()


def base_digest(folder: str | Path) -> str:
    """A digest of the base model folder's ``config.json`` and weight files (not its tokenizer)."""
    p = Path(folder)
    files = sorted(
        f
        for f in p.iterdir()
        if f.is_file()
        and (
            f.name == "config.json"
            or (
                f.name.startswith(("model", "pytorch_model"))
                and f.suffix in {".safetensors", ".bin", ".json"}
            )
        )
    )
    h = hashlib.sha256()
    for f in files:
        h.update(_file_digest(f).encode())
    return h.hexdigest()


def trainable_parameters(model: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (tied weights counted once)."""
    unique = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in unique if p.requires_grad), sum(p.numel() for p in unique)


def _lora_config(settings: dict[str, Any]) -> Any:
    from peft import LoraConfig  # here: see the module doc

    return LoraConfig(**settings)


def _wrap(model: Any, settings: dict[str, Any], source: str) -> Any:
    from peft import get_peft_model  # here: see the module doc

    try:
        return get_peft_model(model, _lora_config(settings))
    except ValueError as exc:  # peft: "Target modules {...} not found in the base model"
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"LoRA on {source}: {msg}; fix --lora_target_modules") from None


def apply_lora(
    model: Any, params: LoraParams, base_folder: str, causal: bool = True
) -> tuple[Any, dict[str, Any]]:
    """``model`` (loaded from ``base_folder``) with rank-``lora_r`` adapters, only they trainable, and the
    record a checkpoint needs to rebuild it (:data:`LORA_KEY`)."""
    model_type = str(getattr(model.config, "model_type", ""))
    targets: Any = params.lora_target_modules or default_target_modules(model_type)
    if targets == ["all-linear"]:
        targets = "all-linear"  # peft's shorthand: every linear layer but the output head
    settings = {
        "r": params.lora_r,
        "lora_alpha": params.lora_alpha,
        "lora_dropout": params.lora_dropout,
        "target_modules": targets,
        "fan_in_fan_out": model_type in _CONV1D_FAMILIES,
        "task_type": "CAUSAL_LM" if causal else None,
    }
    wrapped = _wrap(model, settings, f"{model_type or type(model).__name__} model {base_folder}")
    wrapped.peft_config["default"].base_model_name_or_path = str(base_folder)  # adapter_config.json's
    wrapped.train()  # a loaded model is in eval mode, which Lightning keeps: the adapters' dropout would be off
    trainable, total = trainable_parameters(wrapped)
    record = {
        "base": str(base_folder),
        "base_digest": base_digest(base_folder),
        "settings": settings,
        "trainable_parameters": trainable,
        "total_parameters": total,
    }
    return wrapped, record


def adapter_state(model: Any, state: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The entries of ``state`` (``model``'s state dict, its keys under ``prefix``) that train: the adapters."""
    names = {prefix + name for name, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in state.items() if k in names}


def _base_folder(record: dict[str, Any], config_path: str | None, source: str) -> str:
    """The base folder: ``config_path`` when it is a model folder (the user's say), else the recorded one;
    either way it must hold the weights the adapters were trained on."""
    folder = config_path if config_path and is_hf_model_folder(config_path) else str(record.get("base", ""))
    if not is_hf_model_folder(folder):
        raise DataError(
            f"{source} holds LoRA adapters for the model in {record.get('base')!r}, which is not a model "
            "folder here; pass that base model's folder as --config_path"
        )
    if base_digest(folder) != record.get("base_digest"):
        raise DataError(
            f"{source} holds LoRA adapters trained on other weights than those in {folder} (config or "
            f"weights differ from {record.get('base')!r} at training time); pass that base model's folder "
            "as --config_path"
        )
    return folder


def load_adapted_model(
    record: dict[str, Any],
    state: dict[str, Any],
    config_path: str | None,
    tokenizer_path: str | None,
    source: str,
) -> BuiltModel:
    """The base model (from ``config_path`` or the recorded folder) with the adapter weights of ``state``
    (a Lightning state dict: keys under any prefix), unmerged (a peft model), in evaluation mode."""
    folder = _base_folder(record, config_path, source)
    built = load_pretrained_model_and_tokenizer(folder, tokenizer_path or None)
    settings = dict(record["settings"])
    adapted = _wrap(built.model, settings, f"base model {folder}")
    expected = {name for name, p in adapted.named_parameters() if p.requires_grad}
    prefix = next((k[: -len(name)] for k in state for name in expected if k.endswith(name)), None)
    found = {k[len(prefix) :]: v for k, v in state.items() if prefix is not None and k.startswith(prefix)}
    missing = sorted(expected - set(found))
    if missing:
        raise DataError(
            f"{source} lacks LoRA adapter weights ({missing[0]}{' and more' if len(missing) > 1 else ''}); "
            "pass a checkpoint written by a 'train --lora_r' run"
        )
    try:
        adapted.load_state_dict({k: v for k, v in found.items() if k in expected}, strict=False)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        raise DataError(
            f"{source}: its LoRA adapters do not fit the base model in {folder} "
            f"({lines[-1].strip() if lines else exc}); pass the base model folder the run started from"
        ) from None
    adapted.peft_config["default"].base_model_name_or_path = str(record.get("base", folder))
    adapted.eval()
    return BuiltModel(adapted, built.tokenizer, built.config)


def lora_record(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The LoRA record of a checkpoint dict (:func:`apply_lora`); None for a full fine-tune's."""
    record = (checkpoint.get("hyper_parameters") or {}).get(LORA_KEY)
    return record if isinstance(record, dict) else None
