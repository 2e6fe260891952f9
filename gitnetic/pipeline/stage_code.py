"""The code a pipeline stage runs: the import closure of ``python -m gitnetic <subcommand>``, from source.

Why from source: a DVC stage is re-run when one of its ``deps`` changes, so a stage whose deps miss a
module it imports keeps outputs built by old code after an upgrade (this happened: ``dvc.yaml``'s
hand-written lists went stale as modules were split). Reading the import statements of every module the
stage can reach (those inside functions too: the stages import lazily to start fast) gives the complete
list without running anything, so ``tests/pipeline/test_stage_deps.py`` can hold ``dvc.yaml`` against it,
and ``workflow/Snakefile`` lists the same files as rule inputs.

The closure is conservative: it follows every import a module *could* run, not only those a given
params file reaches. Package data (a folder inside the package that is not a package, e.g. gitleaks'
rule set or the shipped model configs) belongs to a stage when a module it reaches names that folder in
a string (``Path(__file__).parent / "gitleaks"``). Imports under ``if TYPE_CHECKING:`` never run and are
skipped; the subcommand table of ``cli/main.py`` names modules as strings, so each stage's closure starts
at its own CLI module, not at every CLI.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

__all__ = ["PACKAGE_ROOT", "REPO_ROOT", "import_closure", "stage_code_files"]

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # .../gitnetic
REPO_ROOT = PACKAGE_ROOT.parent
# What `python -m gitnetic <subcommand>` runs before the subcommand's own module.
_ENTRY = ("gitnetic", "gitnetic.__main__", "gitnetic.cli", "gitnetic.cli.main")


def module_file(name: str) -> Path | None:
    """The source file of the gitnetic module ``name`` (``gitnetic.x.y``), or None if it is not one."""
    if name != "gitnetic" and not name.startswith("gitnetic."):
        return None
    base = PACKAGE_ROOT.parent.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module name an import statement in ``tree`` may load (a ``from X import y`` names both X and
    X.y: y may be a submodule)."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return names


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_closure(modules: list[str] | tuple[str, ...]) -> set[Path]:
    """The source files of ``modules`` and of every gitnetic module they import, transitively (each
    module's parent packages too: importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``)."""
    seen: set[str] = set()
    files: set[Path] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        if path is None:
            continue
        files.add(path)
        todo.extend(_parents(name))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        todo.extend(_imported_names(tree, name, path.name == "__init__.py"))
    return files


def _data_folders() -> list[Path]:
    """Folders inside the package that are not packages themselves: data read by path (model configs,
    gitleaks' rule set)."""
    return sorted(
        path
        for path in PACKAGE_ROOT.rglob("*")
        if path.is_dir()
        and "__pycache__" not in path.parts
        and (path.parent / "__init__.py").is_file()
        and not (path / "__init__.py").is_file()
    )


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def stage_code_files(subcommand: str) -> list[Path]:
    """Every file ``python -m gitnetic <subcommand>`` may read as code or package data, relative to the
    repository root, sorted."""
    return list(_stage_code_files(subcommand))


@functools.cache
def _stage_code_files(subcommand: str) -> tuple[Path, ...]:
    """Cached per process: the Snakefile asks once per rule (the corpus rules four times), and parsing
    the closure's sources is most of a dry run's start-up."""
    cli = f"gitnetic.cli.{subcommand}"
    if module_file(cli) is None:
        raise ValueError(f"no gitnetic subcommand {subcommand!r} (no module {cli})")
    files = import_closure((*_ENTRY, cli))
    strings = set().union(*(_string_constants(path) for path in files))
    data = {
        path
        for folder in _data_folders()
        if folder.name in strings  # the folder is named in the code: Path(__file__).parent / "gitleaks"
        for path in folder.rglob("*")
        if path.is_file()
    }
    return tuple(sorted(path.relative_to(REPO_ROOT) for path in files | data))
