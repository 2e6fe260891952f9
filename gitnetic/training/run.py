"""Running a parsed ``train`` command: the trainer first, then the task, then ``fit``.

Why this order lives in one place (``python -m gitnetic train``, the benches and anyone scripting a
run call it): the trainer seeds every RNG when it is constructed, so it must exist before the task
initialises the model, or two runs with the same ``--seed`` start from different weights; and the
run's fingerprint (what ``--resume_from_checkpoint auto`` compares) is taken from every parsed param.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gitnetic.common.dataclass_argparse import get_params_item
from gitnetic.common.errors import ConfigError

__all__ = ["resolved_config", "train_task"]


def train_task(task_cls: Any, params: Sequence[Any], **trainer_kwargs: Any) -> Any:
    """Fit ``task_cls`` set up from ``params`` (``parse_args_into_dataclasses`` output: the params
    dataclasses, then the namespace holding the pass-through ``lightning.Trainer`` flags).

    ``trainer_kwargs`` go to ``lightning.Trainer`` too, after the flags (``callbacks`` are added to
    gitnetic's). Returns the ``lightning.Trainer``.
    """
    from gitnetic.training.fingerprint import run_fingerprint
    from gitnetic.training.trainer import TransformerTrainer, trainer_kwargs_from_namespace

    trainer_params = get_params_item(params, TransformerTrainer.params_type)
    if trainer_params is None:
        raise ConfigError(
            "the parsed params hold no TransformerTrainer params; build the parser with "
            "TransformerTrainer.add_argparse_params"
        )
    kwargs = {**trainer_kwargs_from_namespace(params[-1]), **trainer_kwargs}
    trainer = TransformerTrainer(trainer_params, **kwargs)  # seeds: before the task builds its model
    task = task_cls.setup(params)
    trainer.fingerprint = run_fingerprint(params)
    return trainer.fit(task)


def resolved_config(task_name: str, params: Sequence[Any]) -> dict[str, Any]:
    """Every param of a parsed run as one flat mapping (what ``train --print_config`` prints): usable
    as a ``--config`` section."""
    from gitnetic.training.trainer import trainer_kwargs_from_namespace

    config: dict[str, Any] = {"task": task_name}
    for item in params[:-1]:
        config.update(item.to_dict())
    config.update(trainer_kwargs_from_namespace(params[-1]))
    return config
