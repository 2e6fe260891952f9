"""The task registry: a task is the recipe that builds a tokenizer, a module and a datamodule from params.

The ``train`` CLI only knows task *names*; users add their own tasks by decorating a ``TaskModule``
subclass with ``@TaskModule.register("name")`` in a module passed via ``--include-package`` or exposed
through the ``gitnetic.tasks`` entry-point group. That keeps the CLI closed for modification and the
registry open for extension (see docs/seed-train.rst for the contract users code against).
"""

from __future__ import annotations

import importlib.metadata
import logging
from argparse import Namespace
from typing import Any, ClassVar, Generic, TypeVar

from gitnetic.common.dataclass_argparse import DataclassArgumentParser, DataclassBase, get_params_item
from gitnetic.common.errors import TaskError
from gitnetic.tasks.params import TaskParams

__all__ = ["TaskModule", "ENTRY_POINT_GROUP"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "gitnetic.tasks"

M = TypeVar("M")
D = TypeVar("D")
T = TypeVar("T", bound="TaskModule[Any, Any]")

ParamType = DataclassBase | Namespace


class TaskModule(Generic[M, D]):
    """A named recipe that builds ``(tokenizer, module, datamodule)`` for the trainer.

    Subclasses declare a ``Params`` dataclass, implement :meth:`setup` and usually override
    :meth:`add_argparse_params` to add the params of the components they build.
    """

    Params = TaskParams
    params_type: ClassVar[type[DataclassBase]] = Params
    registry: ClassVar[dict[str, type[TaskModule[Any, Any]]]] = {}
    task_name: ClassVar[str | None] = None
    _entry_points_loaded: ClassVar[bool] = False

    def __init__(self, tokenizer: Any, module: M, datamodule: D) -> None:
        self.tokenizer = tokenizer
        self.module = module
        self.datamodule = datamodule

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.task_name!r}, module={type(self.module).__name__}, "
            f"datamodule={type(self.datamodule).__name__})"
        )

    # ------------------------------------------------------------------ registry
    @classmethod
    def register(cls, name: str):
        """Class decorator: make a task available to ``train --task NAME``.

        Registering the *same* class again (same module and qualified name, e.g. a module imported
        twice) replaces the entry; a different class under a taken name is an error, because silently
        shadowing a task would train something other than what the user asked for.
        """
        if not isinstance(name, str) or not name.strip():
            raise TaskError(f"task name must be a non-empty string, got {name!r}")

        def decorator(task_cls: type[T]) -> type[T]:
            if not (isinstance(task_cls, type) and issubclass(task_cls, TaskModule)):
                raise TaskError(f"@TaskModule.register({name!r}) must decorate a TaskModule subclass")
            existing = TaskModule.registry.get(name)
            if (
                existing is not None
                and existing is not task_cls
                and _qualname(existing) != _qualname(task_cls)
            ):
                raise TaskError(
                    f"task name {name!r} is already registered by {_qualname(existing)}; "
                    f"choose another name for {_qualname(task_cls)}"
                )
            TaskModule.registry[name] = task_cls
            task_cls.task_name = name
            return task_cls

        return decorator

    @classmethod
    def by_name(cls, name: str) -> type[TaskModule[Any, Any]]:
        """Look a task up by name, loading ``gitnetic.tasks`` entry points on the first miss."""
        if name not in TaskModule.registry:
            _load_entry_points(only=name)
        if name not in TaskModule.registry:
            known = ", ".join(sorted(TaskModule.registry)) or "none"
            raise TaskError(
                f"unknown task {name!r}; registered tasks: {known}. Pass --include-package MODULE "
                "to import the module that registers it"
            )
        return TaskModule.registry[name]

    @classmethod
    def list_tasks(cls) -> list[str]:
        """Names of all registered tasks (entry-point plugins included), sorted."""
        _load_entry_points()
        return sorted(TaskModule.registry)

    # ------------------------------------------------------------------ params
    @classmethod
    def get_params(cls, params: tuple[ParamType, ...]) -> Any:
        """Pick this task's params out of the parsed tuple (subclasses return a tuple per component)."""
        task_params = get_params_item(params=params, params_type=cls.params_type)
        if task_params is None:
            raise TaskError(
                f"no {cls.params_type.__qualname__} in the parsed params for task {cls.task_name!r}"
            )
        return task_params

    @classmethod
    def setup(cls: type[T], params: tuple[ParamType, ...]) -> T:
        """Build the task's tokenizer, module and datamodule from the parsed params."""
        raise NotImplementedError(f"{cls.__qualname__} must implement the classmethod setup(params)")

    @classmethod
    def add_argparse_params(cls, parser: DataclassArgumentParser) -> None:
        """Add the flags of every params dataclass :meth:`setup` needs."""
        parser.add_arguments(cls.params_type, title=f"{cls.__name__} parameters")


def _qualname(obj: type) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _load_entry_points(only: str | None = None) -> None:
    """Import ``gitnetic.tasks`` plugins; importing a plugin is what registers its tasks.

    With ``only``, a plugin whose entry-point name is ``only`` is loaded first and its failure is a
    user error; other plugins failing to import are logged and skipped, so one broken package does not
    take the whole CLI down.
    """
    eps = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    if only is not None:
        for ep in eps:
            if ep.name == only:
                try:
                    ep.load()
                except Exception as exc:  # noqa: BLE001 - plugin code can raise anything
                    raise TaskError(
                        f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP} failed to load: "
                        f"{type(exc).__name__}: {exc}; fix or uninstall that package"
                    ) from None
        if only in TaskModule.registry:
            return
    if TaskModule._entry_points_loaded:
        return
    TaskModule._entry_points_loaded = True
    for ep in eps:
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001
            logger.warning("skipping task plugin %s (%s): %s: %s", ep.name, ep.value, type(exc).__name__, exc)
