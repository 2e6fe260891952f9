"""Stage dependencies right by construction: every file a stage's command can import (or read as package
data) is a dependency of that stage in dvc.yaml and an input of its rules in workflow/Snakefile, so a
changed module always re-runs the stages that run it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gitnetic.pipeline.stage_code import REPO_ROOT, import_closure, stage_code_files

DVC_STAGES = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
COMMAND = re.compile(r"python -m gitnetic (\w+)")


def dep_paths(stage: dict) -> list[Path]:
    return [Path(next(iter(dep)) if isinstance(dep, dict) else dep) for dep in stage.get("deps", [])]


def uncovered(files: list[Path], deps: list[Path]) -> list[Path]:
    """The files no dependency names, itself or through a folder above it."""
    return [f for f in files if not any(f == d or d in f.parents for d in deps)]


def gitnetic_stages() -> list[tuple[str, str]]:
    return [(name, COMMAND.search(stage["cmd"]).group(1)) for name, stage in DVC_STAGES.items()]


def test_every_stage_runs_a_gitnetic_subcommand():
    assert {sub for _, sub in gitnetic_stages()} >= {"corpus", "tokenizer", "preprocess", "train", "evaluate"}


@pytest.mark.parametrize("stage,subcommand", gitnetic_stages())
def test_dvc_stage_depends_on_all_the_code_it_runs(stage, subcommand):
    missing = uncovered(stage_code_files(subcommand), dep_paths(DVC_STAGES[stage]))
    assert not missing, f"dvc.yaml stage {stage!r} misses deps for code it runs: {[str(m) for m in missing]}"


def test_closure_follows_lazy_imports_and_package_data():
    """The files the old hand-written lists missed, imported inside functions or read by path."""
    corpus = stage_code_files("corpus")
    assert Path("gitnetic/data/corpus/neardup/shingle_hash.py") in corpus
    assert Path("gitnetic/data/corpus/redact/gitleaks/gitleaks.toml") in corpus
    assert Path("gitnetic/data/tokenizer/fim_tokens.py") in stage_code_files("tokenizer")
    preprocess = stage_code_files("preprocess")
    assert (
        Path("gitnetic/data/tokenizer/load.py") in preprocess
        and Path("gitnetic/data/hf_folder.py") in preprocess
    )
    assert Path("gitnetic/configs/gpt2-tiny.yaml") in stage_code_files("train")
    # a data stage reaches no training code, so a change to training does not re-run it
    assert not [p for p in corpus if p.parts[1] in ("training", "models", "modules")]


def test_closure_skips_type_checking_imports():
    """gitnetic/__init__.py imports the whole public API under TYPE_CHECKING only: not a runtime import."""
    closure = import_closure(["gitnetic"])
    assert closure == {REPO_ROOT / "gitnetic" / "__init__.py"}


def test_a_missing_dependency_is_found():
    deps = [d for d in dep_paths(DVC_STAGES["corpus"]) if d != Path("gitnetic/data/corpus")]
    missing = uncovered(stage_code_files("corpus"), deps)
    assert Path("gitnetic/data/corpus/neardup/shingle_hash.py") in missing


def _snakefile_rules() -> dict[str, str]:
    text = (REPO_ROOT / "workflow" / "Snakefile").read_text()
    starts = list(re.finditer(r"^\s*rule (\w+):$", text, re.M))
    return {
        m.group(1): text[m.end() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
        for i, m in enumerate(starts)
    }


def test_snakefile_rules_take_their_code_as_input():
    """Each rule that runs ``python -m gitnetic X`` has ``code("X")`` (the same closure) among its inputs."""
    runs = {name: COMMAND.search(body) for name, body in _snakefile_rules().items()}
    runs = {name: m.group(1) for name, m in runs.items() if m}
    assert set(runs.values()) >= {sub for _, sub in gitnetic_stages()}
    for name, subcommand in runs.items():
        body = _snakefile_rules()[name]
        inputs = body.split("output:")[0]
        assert f'code=code("{subcommand}")' in inputs, (
            f"Snakefile rule {name} does not list its code as input"
        )
