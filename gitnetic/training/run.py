"""Running a parsed ``train`` command: the trainer first, then the task, then ``fit``.

Why this order lives in one place (``python -m gitnetic train``, the benches and anyone scripting a
run call it): the trainer seeds every RNG when it is constructed, so it must exist before the task
initialises the model, or two runs with the same ``--seed`` start from different weights; and the
run's fingerprint (what ``--resume_from_checkpoint auto`` compares) is computed here, once, from every
parsed param, and handed to ``fit``.
"""

from __future__ import annotations

from typing import Any

from gitnetic.training.fingerprint import run_fingerprint
from gitnetic.training.params import TrainParams
from gitnetic.training.trainer import TransformerTrainer, trainer_kwargs_from_namespace

__all__ = ["TrainParams", "resolved_config", "train_task"]  # TrainParams: re-exported, defined in params.py


def train_task(task_cls: Any, params: TrainParams, **trainer_kwargs: Any) -> Any:
    """Fit ``task_cls`` set up from ``params``.

    ``trainer_kwargs`` go to ``lightning.Trainer`` too, after the flags (``callbacks`` are added to
    gitnetic's). Returns the ``lightning.Trainer``.
    """
    trainer = TransformerTrainer(
        params.trainer, **{**trainer_kwargs_from_namespace(params.namespace), **trainer_kwargs}
    )
    task = task_cls.setup(params.task_params)  # after the trainer: it seeded the RNGs the model draws
    return trainer.fit(task, fingerprint=run_fingerprint(params.task_params))


def resolved_config(task_name: str, params: TrainParams) -> dict[str, Any]:
    """Every param of a parsed run as one flat mapping (what ``train --print_config`` prints): usable
    as a ``--config`` section."""
    config: dict[str, Any] = {"task": task_name}
    for item in params.components:
        config.update(item.to_dict())
    config.update(trainer_kwargs_from_namespace(params.namespace))
    return config
