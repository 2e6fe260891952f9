"""How many tokens a model can see: its position table, and the check that sequences fit it.

Why its own module: training (the datamodule's ``max_length``), evaluation (window length), completion
metrics (prompt window) and generation (context) all ask the same question of a HF config, and RoBERTa-
style models answer it differently (their positions start after the padding id).
"""

from __future__ import annotations

from typing import Any

from gitnetic.common.errors import ConfigError

__all__ = ["check_positions", "position_limit", "usable_positions"]

# RoBERTa-style models number positions from padding_idx + 1, so they need max_length + pad_id + 1 slots.
_PADDING_OFFSET_TYPES = {"roberta", "xlm-roberta", "camembert", "longformer", "roberta-prelayernorm", "xmod"}
_POSITION_ATTRS = ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len")


def position_limit(config: Any) -> tuple[int | None, int]:
    """``(position table size, ids used up front)`` of a HF config, or ``(None, 0)`` if it has none."""
    for attr in _POSITION_ATTRS:
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            offset = 0
            if getattr(config, "model_type", None) in _PADDING_OFFSET_TYPES:
                offset = int(getattr(config, "pad_token_id", 1) or 0) + 1
            return value, offset
    return None, 0


def usable_positions(config: Any) -> int | None:
    """Tokens one sequence may hold (the table less the ids used up front), or None without a table."""
    size, offset = position_limit(config)
    return size - offset if size else None


def check_positions(config: Any, max_length: int, source: str) -> None:
    """Fail early (not on step 1 with an index error) when sequences are longer than the position table."""
    size, offset = position_limit(config)
    if size is None:
        return
    if size < max_length + offset:
        attr = next(a for a in _POSITION_ATTRS if hasattr(config, a))
        attr = getattr(config, "attribute_map", {}).get(attr, attr)  # GPT-2 users write n_positions
        raise ConfigError(
            f"model config {source}: {attr}={size} is too small for max_length={max_length}"
            + (f" (this model type needs max_length + {offset})" if offset else "")
            + f"; set {attr} >= {max_length + offset} or lower --max_length"
        )
