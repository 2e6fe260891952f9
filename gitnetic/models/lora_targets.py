"""The layers that get LoRA adapters when ``--lora_target_modules`` is unset, per model family.

Torch-free and apart from :mod:`gitnetic.models.lora` so that ``init --from`` plans (and counts the
adapters of) exactly the layers training will adapt, without importing torch or peft up front.
"""

from __future__ import annotations

from gitnetic.common.errors import ConfigError

__all__ = ["DEFAULT_TARGET_MODULES", "default_target_modules"]

_QKVO = ["q_proj", "k_proj", "v_proj", "o_proj"]
# The attention projections of each family (the LoRA paper's choice; MLP layers: 'all-linear').
# GPT-2 and GPT-BigCode fuse q, k and v in c_attn; their c_proj is the attention output and, in the MLP,
# the down projection: both match the name.
DEFAULT_TARGET_MODULES: dict[str, list[str]] = {
    "gpt2": ["c_attn", "c_proj"],
    "gpt_bigcode": ["c_attn", "c_proj"],
    **{family: _QKVO for family in ("llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "starcoder2")},
}


def default_target_modules(model_type: str) -> list[str]:
    """The layers that get adapters when ``--lora_target_modules`` is unset (see :class:`LoraParams`)."""
    if model_type in DEFAULT_TARGET_MODULES:
        return list(DEFAULT_TARGET_MODULES[model_type])
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    if model_type in PEFT_DEFAULTS:
        return list(PEFT_DEFAULTS[model_type])
    raise ConfigError(
        f"no default LoRA target modules for {model_type!r} models; name the linear layers to adapt, "
        "e.g. --lora_target_modules q_proj v_proj, or --lora_target_modules all-linear"
    )
