"""``python -m gitnetic train --task NAME ...``: build a registered task and fit it with TransformerTrainer.

A shell over :func:`gitnetic.training.run.train_task`; what it owns is the parsing.

Parsing is two-phase because the flags depend on the task: phase one reads only ``--task`` and
``--include-package`` (also from the ``--config`` YAML, which the parser reads, once, for both phases),
imports the user's packages so their tasks register, then phase two fills that parser with every
component's params dataclasses.
"""

from __future__ import annotations

import argparse
import sys
from argparse import Namespace
from collections.abc import Sequence
from typing import Any

import yaml

import gitnetic.tasks.transformer_task  # noqa: F401 - registers the built-in task
from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.common.errors import ConfigError
from gitnetic.common.imports import include_packages
from gitnetic.tasks.task_module import TaskModule
from gitnetic.training.run import TrainParams, resolved_config, train_task
from gitnetic.training.trainer import TransformerTrainer

DESCRIPTION = (
    "Train a task (e.g. transformer-task) with Lightning. Every component (task, module, datamodule, "
    "trainer) adds its own params; flags override --config YAML values. Extra Lightning Trainer flags "
    "are passed through."
)
PROG = "python -m gitnetic train"
DEFAULT_HELP_TASK = "transformer-task"


def _phase_one(argv: Sequence[str], parser: DataclassArgumentParser) -> Namespace:
    """``--task``, ``--include-package`` and ``--help`` from the command line, else from ``parser``'s
    ``--config`` values (params.yaml:train may choose the task and plugins too)."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--task")
    pre.add_argument(
        "--include-package", "--include_package", dest="include_package", action="append", default=[]
    )
    pre.add_argument("-h", "--help", action="store_true")
    known, _ = pre.parse_known_args(list(argv))
    config = parser.config_values(argv)
    if known.task is None and config.get("task"):
        known.task = str(config["task"])
    extra = config.get("include_package") or config.get("include-package") or []
    extra = [extra] if isinstance(extra, str) else list(extra)
    known.include_package = [*extra, *known.include_package]
    return known


def _add_selection_args(parser: DataclassArgumentParser, registered: list[str]) -> None:
    group = parser.add_argument_group("task selection")
    group.add_argument(
        "--task",
        metavar="NAME",
        help=f"Registered task to train (required). Registered: {', '.join(registered) or 'none'}.",
    )
    group.add_argument(
        "--include-package",
        "--include_package",
        dest="include_package",
        action="append",
        default=[],
        metavar="MODULE",
        help="Import MODULE (and its submodules; the current directory is searched) before looking up "
        "--task, so tasks it registers with @TaskModule.register become available. Repeatable.",
    )
    group.add_argument(
        "--print_config",
        action="store_true",
        help="Print the fully resolved params of this run (defaults, --config files and flags merged) as "
        "YAML, usable as a --config section, and exit without training.",
    )


def build_parser(
    task_name: str, parser: DataclassArgumentParser | None = None
) -> tuple[DataclassArgumentParser, type]:
    """The full parser for ``task_name`` (registered already) plus the task class; ``parser``: an empty
    one to fill (the one that has read the ``--config`` files already)."""
    task_cls = TaskModule.by_name(task_name)
    parser = parser if parser is not None else DataclassArgumentParser(prog=PROG, description=DESCRIPTION)
    _add_selection_args(parser, TaskModule.list_tasks())
    task_cls.add_argparse_params(parser)
    TransformerTrainer.add_argparse_params(parser)
    return parser, task_cls


def parse(argv: Sequence[str]) -> tuple[type, tuple[Any, ...]]:
    """Phase one + phase two: ``(task class, (*params dataclasses, namespace))``, what
    ``TaskModule.setup`` takes; :meth:`TrainParams.from_parsed` types it for :func:`train_task`.
    One parser reads the ``--config`` files, for both phases."""
    parser = DataclassArgumentParser(prog=PROG, description=DESCRIPTION)
    known = _phase_one(argv, parser)
    include_packages(known.include_package)
    task_name = known.task
    if task_name is None:
        if not known.help:
            raise ConfigError(
                f"--task is required; registered tasks: {', '.join(TaskModule.list_tasks())} "
                f"(see '{PROG} --help')"
            )
        task_name = DEFAULT_HELP_TASK
    parser, task_cls = build_parser(task_name, parser)
    return task_cls, parser.parse_args_into_dataclasses(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    task_cls, parsed = parse(argv)
    params = TrainParams.from_parsed(parsed)
    if params.namespace.print_config:
        print(yaml.safe_dump(resolved_config(task_cls.task_name, params), sort_keys=False), end="")
        return 0
    train_task(task_cls, params)
    return 0
