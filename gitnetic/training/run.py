"""Running a parsed ``train`` command: the trainer first, then the task, then ``fit``.

Why this order lives in one place (``python -m gitnetic train``, the benches and anyone scripting a
run call it): the trainer seeds every RNG when it is constructed, so it must exist before the task
initialises the model, or two runs with the same ``--seed`` start from different weights; and the
run's fingerprint (what ``--resume_from_checkpoint auto`` compares) is computed here, once, from every
parsed param, and handed to ``fit``.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError
from gitnetic.training.fingerprint import run_fingerprint
from gitnetic.training.trainer import TransformerTrainer, trainer_kwargs_from_namespace

__all__ = ["TrainParams", "resolved_config", "train_task"]


@dataclass
class TrainParams:
    """A parsed ``train`` command, typed: the trainer's params, every component's params, and the
    parser's other values (the pass-through ``lightning.Trainer`` flags among them)."""

    trainer: TransformerTrainer.Params
    components: tuple[DataclassBase, ...]  # every params dataclass parsed, the trainer's included
    namespace: Namespace

    @classmethod
    def from_parsed(cls, parsed: Sequence[Any]) -> TrainParams:
        """From ``parse_args_into_dataclasses`` output: the params dataclasses, then the namespace."""
        *components, namespace = parsed
        trainer = next((c for c in components if isinstance(c, TransformerTrainer.Params)), None)
        if trainer is None or not isinstance(namespace, Namespace):
            raise ConfigError(
                "the parsed params hold no TransformerTrainer params; build the parser with "
                "TransformerTrainer.add_argparse_params"
            )
        return cls(trainer, tuple(components), namespace)

    @property
    def task_params(self) -> tuple[Any, ...]:
        """What ``TaskModule.setup`` takes (the seed's contract): the dataclasses, then the namespace."""
        return (*self.components, self.namespace)

    @property
    def lightning_flags(self) -> dict[str, Any]:
        """The pass-through ``lightning.Trainer`` arguments the user set."""
        return trainer_kwargs_from_namespace(self.namespace)


def train_task(task_cls: Any, params: TrainParams, **trainer_kwargs: Any) -> Any:
    """Fit ``task_cls`` set up from ``params``.

    ``trainer_kwargs`` go to ``lightning.Trainer`` too, after the flags (``callbacks`` are added to
    gitnetic's). Returns the ``lightning.Trainer``.
    """
    trainer = TransformerTrainer(params.trainer, **{**params.lightning_flags, **trainer_kwargs})
    task = task_cls.setup(params.task_params)  # after the trainer: it seeded the RNGs the model draws
    return trainer.fit(task, fingerprint=run_fingerprint(params.task_params))


def resolved_config(task_name: str, params: TrainParams) -> dict[str, Any]:
    """Every param of a parsed run as one flat mapping (what ``train --print_config`` prints): usable
    as a ``--config`` section."""
    config: dict[str, Any] = {"task": task_name}
    for item in params.components:
        config.update(item.to_dict())
    config.update(params.lightning_flags)
    return config
