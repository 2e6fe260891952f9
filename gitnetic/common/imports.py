"""``--include-package``: import user code (and every submodule) so its ``@register`` decorators run.

Registration happens at import time, so a package's tasks only exist once each module defining one has
been imported; walking the submodules spares users from importing them all in ``__init__.py``. The
current directory goes on ``sys.path`` first because ``python -m gitnetic`` does not put it there
reliably (console scripts never do), and "my_tasks.py next to params.yaml" is the common case.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from gitnetic.common.errors import TaskError

__all__ = ["import_module_and_submodules", "include_packages"]


def _ensure_on_path(directory: str | os.PathLike[str]) -> None:
    entry = str(Path(directory).resolve())
    if entry not in sys.path:
        sys.path.insert(0, entry)


def _module_name(spec: str) -> str:
    """Accept ``pkg.mod`` or a path to a ``.py`` file / package folder; return an importable name."""
    path = Path(spec)
    if spec.endswith(".py") or (os.sep in spec and path.exists()):
        if not path.exists():
            raise TaskError(
                f"--include-package {spec}: no such file; pass a module name or an existing .py file"
            )
        target = path.resolve()
        name = target.stem if target.is_file() else target.name
        _ensure_on_path(target.parent)
        return name
    return spec


def _import(name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise TaskError(
                f"--include-package {spec}: no module named {exc.name!r}; run from the folder that contains "
                "it or add that folder to PYTHONPATH"
            ) from None
        raise TaskError(f"--include-package {spec}: importing {name} failed: {_describe(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - user code can raise anything while importing
        raise TaskError(f"--include-package {spec}: importing {name} failed: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    """One line: exception type, message and the user-code location it came from."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}:{exc.lineno})"
    else:
        tb = exc.__traceback__
        frame = None
        while tb is not None:
            frame = tb
            tb = tb.tb_next
        if frame is not None and "importlib" not in frame.tb_frame.f_code.co_filename:
            where = f" ({frame.tb_frame.f_code.co_filename}:{frame.tb_lineno})"
    return f"{type(exc).__name__}: {message}{where}; fix that module"


def import_module_and_submodules(spec: str) -> list[ModuleType]:
    """Import ``spec`` (module, package or ``.py`` path) and, for a package, all its submodules."""
    _ensure_on_path(os.getcwd())
    name = _module_name(spec)
    importlib.invalidate_caches()
    module = _import(name, spec)
    modules = [module]
    if hasattr(module, "__path__"):  # a package: walk it
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{module.__name__}."):
            modules.append(_import(info.name, spec))
    return modules


def include_packages(specs: Iterable[str] | None) -> list[ModuleType]:
    """Import every ``--include-package`` value, in order."""
    modules: list[ModuleType] = []
    for spec in specs or []:
        modules.extend(import_module_and_submodules(spec))
    return modules
