"""Whether a model's weights are all finite: the one check that a checkpoint or model folder is not the
output of a diverged run.

Why one function for every reader and the writer: a run whose loss went to NaN used to leave NaN weights
that ``evaluate`` scored as ``"loss": NaN``, ``export`` published with "perplexity inf" and ``generate``
crashed on; training refuses to write such weights and every loader refuses to read them, both by this
check. It costs one pass over the weights, once per save or load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gitnetic.common.errors import DataError

__all__ = ["NonFiniteWeightsError", "check_finite_weights", "first_non_finite"]


def first_non_finite(state: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> tuple[str, str] | None:
    """``(name, "nan" | "inf" | "-inf")`` of the first floating-point tensor of ``state`` (a state dict, or
    ``named_parameters()``) holding a non-finite value, in its order; None when all are finite.

    One device sync in all: the per-tensor flags are stacked on the device and read at once."""
    import torch  # here: the models floor's name-only modules must not load torch (the Snakefile)

    items = [
        (name, t)
        for name, t in (state.items() if isinstance(state, Mapping) else state)
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel()
    ]
    if not items:
        return None
    by_device: dict[Any, list[int]] = {}
    for i, (_, t) in enumerate(items):
        by_device.setdefault(t.device, []).append(i)
    finite = [True] * len(items)
    for indices in by_device.values():
        flags = torch.stack([items[i][1].detach().isfinite().all() for i in indices]).tolist()
        for i, flag in zip(indices, flags, strict=True):
            finite[i] = bool(flag)
    if all(finite):
        return None
    name, tensor = items[finite.index(False)]
    tensor = tensor.detach()
    kind = "nan" if tensor.isnan().any() else ("inf" if tensor.isposinf().any() else "-inf")
    return name, kind


class NonFiniteWeightsError(DataError):
    """A checkpoint or model folder holds NaN or infinite weights: the run that wrote it diverged."""


def check_finite_weights(state: Mapping[str, Any], source: str) -> None:
    """Raise :class:`NonFiniteWeightsError` naming ``source`` (``"checkpoint PATH"``) and its first bad tensor."""
    bad = first_non_finite(state)
    if bad is not None:
        name, kind = bad
        raise NonFiniteWeightsError(
            f"{source} holds non-finite weights ({name} holds {kind}): the training run that wrote it "
            "diverged; use an earlier checkpoint or retrain with a lower --learning_rate"
        )
