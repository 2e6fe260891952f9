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
    """``TQDMProgressBar`` whose postfix reads ``loss=4.43, tok/s=8.1k, MFU=41.2%``.

    Reading Lightning's progress-bar metrics turns logged tensors into Python numbers, i.e. it waits
    for the GPU. The training metrics only change on logging steps (``log_every_n_steps``), so the
    postfix is re-read on those steps (and after validation) only: with ``--progress_bar_refresh_rate
    1`` the bar still moves every step without synchronising the device every step.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: dict[str, Any] | None = None
        self._shown_step = -1

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        step = int(trainer.global_step)
        every = max(1, int(getattr(trainer, "log_every_n_steps", 1) or 1))
        fresh = self._shown is None or not trainer.training
        fresh = fresh or (step % every == 0 and step != self._shown_step)
        if fresh:
            self._shown = self._read_metrics(trainer, pl_module)
            self._shown_step = step
        assert self._shown is not None
        return dict(self._shown)

    def _read_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
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
