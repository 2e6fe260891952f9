"""gitnetic: train transformer language models on source code.

The public API is imported lazily (PEP 562) so that the data stages' CLI starts without loading torch
and Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "TaskModule": "gitnetic.tasks.task_module",
    "TransformerTask": "gitnetic.tasks.transformer_task",
    "TransformerModule": "gitnetic.modules.transformer_module",
    "TransformerDataModule": "gitnetic.modules.transformer_datamodule",
    "TransformerTrainer": "gitnetic.training.trainer",
    "IndexedDataset": "gitnetic.data.shards.indexed",
    "GitneticError": "gitnetic.common.errors",
}

__all__ = [
    "GitneticError",
    "IndexedDataset",
    "TaskModule",
    "TransformerDataModule",
    "TransformerModule",
    "TransformerTask",
    "TransformerTrainer",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from gitnetic.common.errors import GitneticError
    from gitnetic.data.shards.indexed import IndexedDataset
    from gitnetic.modules.transformer_datamodule import TransformerDataModule
    from gitnetic.modules.transformer_module import TransformerModule
    from gitnetic.tasks.task_module import TaskModule
    from gitnetic.tasks.transformer_task import TransformerTask
    from gitnetic.training.trainer import TransformerTrainer


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        if name == "TaskModule":
            importlib.import_module("gitnetic.tasks.transformer_task")  # registers the built-in task
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gitnetic' has no attribute {name!r}")
