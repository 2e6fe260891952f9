"""The training progress bar: Lightning's tqdm bar with short, readable metric names.

Shows ``loss``, ``val/loss``, ``tok/s`` and ``MFU`` (from :mod:`gitnetic.training.throughput`) instead of
``train/loss``, ``perf/tokens_per_sec`` and the logger's ``v_num``, so the line fits a terminal.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import TQDMProgressBar

__all__ = ["ProgressBar", "si"]

_RENAMES = {"train/loss": "loss", "perf/tokens_per_sec": "tok/s", "perf/mfu": "MFU"}


def si(value: float) -> str:
    """``12345.6 -> '12.3k'``: three significant digits with a k/M/G suffix."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


class ProgressBar(TQDMProgressBar):
    """``TQDMProgressBar`` whose postfix reads ``loss=4.43, tok/s=8.1k, MFU=41.2%``."""

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        shown: dict[str, Any] = {}
        for name, value in items.items():
            label = _RENAMES.get(name, name)
            if name == "perf/tokens_per_sec":
                value = si(float(value))
            elif name == "perf/mfu":
                value = f"{100 * float(value):.1f}%"
            shown[label] = value
        return shown
