"""Memory levers of a model in training: the dtype a pretrained base is loaded in, and activation
(gradient) checkpointing.

Why the load dtype follows ``--precision``: Lightning's ``bf16-true`` / ``16-true`` cast the whole model
to 16 bits at fit start anyway, so loading float32 first only costs twice the host memory on the way
(28 GB for a 7B model instead of 14). ``bf16-mixed`` / ``16-mixed`` are different: the weights stay
float32 (the master copy the optimizer updates) and only the matmuls run in 16 bits under autocast, so
the base is loaded in float32 for them, as for ``32-true``.

Gradient checkpointing keeps each layer's input only and recomputes the layer's activations in the
backward pass: about a third more compute for activation memory that no longer grows with the number of
layers. Non-reentrant checkpointing (``use_reentrant=False``) is the one PyTorch recommends; it also works
when no input requires grad, as with frozen embeddings under LoRA. It restores the RNG state, so
dropout draws the same masks when a layer is recomputed.
"""

from __future__ import annotations

from typing import Any

from gitnetic.common.errors import ConfigError

__all__ = ["enable_gradient_checkpointing", "is_gradient_checkpointing", "weights_dtype"]

_SIXTEEN_BIT_WEIGHTS = {"bf16-true": "bfloat16", "16-true": "float16"}


def weights_dtype(precision: str | None) -> str:
    """The dtype to load a pretrained base in for a Lightning ``precision`` (see the module doc)."""
    return _SIXTEEN_BIT_WEIGHTS.get(str(precision), "float32")


def enable_gradient_checkpointing(model: Any) -> None:
    """Turn on a Hugging Face model's (non-reentrant) gradient checkpointing; another model is an error."""
    enable = getattr(model, "activation_checkpointing_enable", None)  # transformers >= 5.x's name
    old_name = enable is None
    if old_name:
        enable = getattr(model, "gradient_checkpointing_enable", None)
    if not getattr(model, "supports_gradient_checkpointing", False) or enable is None:
        raise ConfigError(
            f"--gradient_checkpointing: {type(model).__name__} does not support gradient checkpointing "
            "(a Hugging Face model with supports_gradient_checkpointing does); set it to false"
        )
    kwargs = {"use_reentrant": False}
    if old_name:
        enable(gradient_checkpointing_kwargs=kwargs)
    else:
        enable(activation_checkpointing_kwargs=kwargs)


def is_gradient_checkpointing(model: Any) -> bool:
    """Whether ``model``'s gradient (activation) checkpointing is on, under either transformers name."""
    flag = getattr(model, "is_activation_checkpointing", None)
    return bool(flag if flag is not None else getattr(model, "is_gradient_checkpointing", False))
