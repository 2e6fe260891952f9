"""Bounds of the completion metrics' params, checked before anything is loaded.

Why a module of their own: evaluate checks ``--completion_samples`` and ``--completion_max_context``
when its params are parsed (:mod:`gitnetic.evaluation.evaluate_params`), and parsing must not load
torch, which :mod:`gitnetic.evaluation.completion` (decoding with a model) does.
"""

from __future__ import annotations

from gitnetic.common.errors import ConfigError

__all__ = ["MIN_CONTEXT", "MIN_LINE_TOKENS", "check_params"]

# Smallest prompt window: an infill prompt holds the generated line, three sentinels and some code.
# Smaller windows sample shorter lines (``line_tokens``), down to MIN_LINE_TOKENS.
MIN_LINE_TOKENS = 8
MIN_CONTEXT = 2 * (MIN_LINE_TOKENS + 1) + 3


def check_params(samples: int, max_context: int) -> None:
    """Reject bad completion params up front (evaluate calls it before scoring perplexity)."""
    if samples < 0:
        raise ConfigError(f"--completion_samples must be 0 (off) or more, got {samples}")
    if max_context and max_context < MIN_CONTEXT:
        raise ConfigError(
            f"--completion_max_context must be 0 (the model's window) or at least {MIN_CONTEXT} "
            f"(room for a context and a {MIN_LINE_TOKENS}-token line on each side), got {max_context}"
        )
