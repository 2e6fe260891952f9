"""Bring your own repository: ``init`` on a ~10-file git repository, then the real DVC pipeline.

This is the README's "Train on your own repository" flow: a tiny budget so that it runs in seconds,
default split ratios (3% / 5%) that, without the small-corpus floor, would leave valid and test empty.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import copy_pipeline, pipeline_env

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-init")]

STAGES = {"corpus", "tokenizer", "preprocess", "train", "evaluate", "benchmark", "export"}
TIMEOUT_S = 300


def run(*cmd: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(cmd), cwd=cwd, env=pipeline_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    if ok:
        assert proc.returncode == 0, (
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-6000:]}"
        )
    return proc


SHAPES = ("Circle", "Square", "Triangle", "Hexagon", "Ellipse", "Star", "Arrow", "Ring", "Cross", "Kite")


def module_source(name: str, index: int) -> str:
    """A small, realistic Python module; the ten share structure, as files of one project do."""
    lower = name.lower()
    return f'''"""The {lower} shape: area, perimeter and scaling."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class {name}:
    """A {lower} of a given size, centred on the origin."""

    size: float
    sides: int = {index + 3}

    def area(self) -> float:
        """Return the area of the {lower}."""
        return self.size * self.size * math.pi / {index + 2}

    def perimeter(self) -> float:
        """Return the perimeter of the {lower}."""
        return self.size * self.sides

    def scaled(self, factor: float) -> {name}:
        """Return a copy of the {lower} scaled by factor."""
        if factor <= 0:
            raise ValueError("factor must be positive")
        return {name}(self.size * factor, self.sides)


def largest_{lower}(items: list[{name}]) -> {name}:
    """Return the {lower} with the largest area."""
    if not items:
        raise ValueError("no {lower} given")
    return max(items, key=lambda item: item.area())


def total_{lower}_area(items: list[{name}]) -> float:
    """Return the sum of the areas of the {lower}s."""
    return sum(item.area() for item in items)
'''


def make_user_repo(root: Path) -> Path:
    (root / "shapes").mkdir(parents=True)
    for i, name in enumerate(SHAPES):
        (root / "shapes" / f"{name.lower()}.py").write_text(module_source(name, i), encoding="utf-8")
    run("git", "init", "-q", cwd=root)
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-q", "-m", "shapes", cwd=root)
    return root


def make_pipeline_checkout(root: Path) -> Path:
    """What a fresh clone holds: the pipeline files, the code and the template params.yaml."""
    copy_pipeline(root, ("dvc.yaml", ".dvcignore", "params.yaml"))
    run("git", "init", "-q", cwd=root)
    run("dvc", "init", "-q", cwd=root)
    run("dvc", "config", "core.analytics", "false", cwd=root)
    return root


@pytest.fixture(scope="module")
def init_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("init-e2e")
    user = make_user_repo(base / "myrepo")
    checkout = make_pipeline_checkout(base / "gitnetic")
    refused = run(sys.executable, "-m", "gitnetic", "init", "--path", str(user), cwd=checkout, ok=False)
    init = run(
        sys.executable, "-m", "gitnetic", "init", "--path", str(user), "--budget_minutes", "0.5", "--force",
        cwd=checkout,
    )  # fmt: skip
    # the template's benchmark (20 HumanEval problems) shrunk as the other e2e runs shrink it
    params_file = checkout / "params.yaml"
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params["benchmark"].update(limit=2, max_new_tokens=8, workers=1)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    run("git", "add", "-A", cwd=checkout)
    run("git", "commit", "-q", "-m", "init", cwd=checkout)
    repro = run("dvc", "repro", cwd=checkout)
    return {"checkout": checkout, "user": user, "refused": refused, "init": init.stdout, "repro": repro}


def test_init_refuses_to_overwrite_the_template_without_force(init_run: dict) -> None:
    refused = init_run["refused"]
    assert refused.returncode == 2
    assert "params.yaml already exists; pass --force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_init_writes_a_plan_for_the_repository(init_run: dict) -> None:
    checkout, printed = init_run["checkout"], init_run["init"]
    for label in ("corpus:", "vocabulary:", "model:", "training:", "compute:"):
        assert label in printed
    assert "10 files" in printed and "expected train time" in printed
    params = yaml.safe_load((checkout / "params.yaml").read_text(encoding="utf-8"))
    (source,) = params["corpus"]["sources"]
    assert source["type"] == "git" and source["path"] == str(init_run["user"])
    assert source["exclude"] == []  # the stdlib's excludes stay with the stdlib
    assert params["tokenizer"]["vocab_size"] == 512
    assert params["train"]["config_path"] == "configs/gpt2-init.yaml"
    assert params["train"]["warmup_steps"] < params["train"]["max_steps"] // 2
    assert set(params) == STAGES
    assert params["benchmark"]["config_path"] == "configs/gpt2-init.yaml"


def test_pipeline_runs_every_stage_and_beats_the_unigram_baseline(init_run: dict) -> None:
    checkout, repro = init_run["checkout"], init_run["repro"]
    assert set(re.findall(r"Running stage '([\w-]+)'", repro.stdout + repro.stderr)) == STAGES
    stats = json.loads((checkout / "data" / "corpus" / "stats.json").read_text(encoding="utf-8"))
    assert stats["documents"]["total"] == 10
    assert stats["documents"]["valid"] >= 1 and stats["documents"]["test"] >= 1
    metrics = json.loads((checkout / "metrics" / "eval.json").read_text(encoding="utf-8"))
    assert metrics["tokens"] > 0
    assert metrics["perplexity"] < metrics["unigram_perplexity"], metrics
    assert (checkout / "models" / "hf" / "config.json").is_file()
