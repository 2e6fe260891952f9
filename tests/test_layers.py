"""The package's import graph keeps its floors (docs/architecture.md): import-linter on the source.

Why a test: an import that runs up a floor, or two modules that import each other, compiles and runs
fine, and is only noticed when the code has become hard to change; this makes it a failing test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.helpers import REPO


def test_no_import_runs_up_a_floor_and_no_folder_has_a_cycle():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run(
        [str(lint), "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "3 kept, 0 broken" in proc.stdout


def test_every_package_has_a_floor():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    named = {name.strip("() ") for floor in layers for name in floor.split("|")}
    packages = {f"gitnetic.{p.parent.name}" for p in (REPO / "gitnetic").glob("*/__init__.py")}
    assert packages <= named, f"packages without a floor in pyproject.toml: {sorted(packages - named)}"


def test_every_data_step_has_a_layer():
    """A new package or module directly under gitnetic/data must be placed in the data-steps order."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    steps = next(c for c in config["contracts"] if c["id"] == "data-steps")["layers"]
    named = {name.strip() for layer in steps for name in layer.split("|")}
    data = REPO / "gitnetic" / "data"
    present = {p.parent.name for p in data.glob("*/__init__.py")} | {
        p.stem for p in data.glob("*.py") if p.name != "__init__.py"
    }
    assert present == named, (
        f"gitnetic/data entries missing from the data-steps contract: {sorted(present - named)}"
    )
