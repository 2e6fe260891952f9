"""One params convention (docs/architecture.md, "Params"): every params dataclass is a module-level
``XxxParams`` in its package's ``params.py``, and those modules load neither torch nor Lightning.

Why a test: a params class written where it is used (nested in a component, or beside the stage's
code) compiles and works; it only costs later, when a ``--help`` starts loading torch or two params
groups grow the same name unseen. The parser refuses accidental shared names
(tests/common/test_dataclass_argparse.py); this keeps the classes where the convention says.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, child_env

PACKAGE = REPO / "gitnetic"

# Modules a params.py may import besides gitnetic.common and other params.py modules: torch-free
# names the params' defaults and types are spelled with once.
PARAMS_MAY_IMPORT = {
    "gitnetic.data.problems",  # HUMANEVAL, the benchmark's default problems
    "gitnetic.data.tokenizer.fim_tokens",  # the FIM tokens TokenizerParams.fim_tokens adds
    "gitnetic.data.source_routing",  # SOURCE_NAME, the rule a corpus source's name follows
    "yaml",  # a --sources flag value is YAML (SourceParams.parse); the parser reads YAML anyway
}

HEAVY = ("torch", "lightning", "transformers", "tokenizers")


def _is_params_class(node: ast.ClassDef) -> bool:
    """A dataclass deriving from DataclassBase or another params class (or named like one)."""
    decorated = any(
        (d.id if isinstance(d, ast.Name) else getattr(d, "attr", getattr(getattr(d, "func", None), "id", "")))
        == "dataclass"
        for d in node.decorator_list
    )
    bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
    return decorated and (
        "DataclassBase" in bases or any(b.endswith("Params") for b in bases) or node.name.endswith("Params")
    )


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_params_dataclass_is_module_level_in_a_params_py():
    misplaced = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = set(tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and _is_params_class(node):
                if path.name != "params.py" or node not in top or not node.name.endswith("Params"):
                    misplaced.append(f"{path.relative_to(REPO)}: {node.name}")
    assert not misplaced, (
        f"params dataclasses outside a package's params.py (module level, XxxParams): {misplaced}"
    )


def test_params_modules_import_only_common_and_params():
    bad = []
    for path in _modules():
        if path.name != "params.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                root = name.split(".")[0]
                ok = (
                    root in sys.stdlib_module_names
                    or root == "__future__"
                    or name.startswith("gitnetic.common")
                    or name.endswith(".params")
                    or name in PARAMS_MAY_IMPORT
                )
                if not ok:
                    bad.append(f"{path.relative_to(REPO)}: {name}")
    assert not bad, f"params.py modules must import only gitnetic.common and other params.py: {bad}"


def test_params_modules_load_no_heavy_package():
    modules = [
        ".".join(p.relative_to(REPO).with_suffix("").parts) for p in _modules() if p.name == "params.py"
    ]
    assert "gitnetic.modules.params" in modules and "gitnetic.inference.params" in modules
    probe = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == []


def test_the_task_contract_names_alias_the_params_classes():
    """docs/seed-train.rst names the nested ``Params`` of the components: they stay, as aliases."""
    from gitnetic import TaskModule, TransformerDataModule, TransformerModule, TransformerTask
    from gitnetic.modules.params import DataModuleParams, ModuleParams
    from gitnetic.tasks.params import TaskParams, TransformerTaskParams

    assert TaskModule.Params is TaskModule.params_type is TaskParams
    assert TransformerTask.Params is TransformerTask.params_type is TransformerTaskParams
    assert TransformerModule.Params is TransformerModule.params_type is ModuleParams
    assert TransformerDataModule.Params is TransformerDataModule.params_type is DataModuleParams
