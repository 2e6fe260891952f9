"""The multi-source example end to end: several sources -> per-source prefixes -> a blend -> per-source metrics.

Why the stage commands and not ``dvc repro``: test_pipeline.py already covers the DVC and Snakemake
mechanics with the same stage commands; what is new here is the data path, so this test runs each
stage exactly as the pipeline does (``python -m gitnetic STAGE --config FILE:STAGE``) on
``examples/params-multi-source.yaml`` with its sources replaced by temporary ones and its sizes shrunk,
and asks Snakemake only for its plan of that params file (``--config params=FILE``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from gitnetic.data.corpus.splits import SPLITS
from tests.helpers import REPO, TINY_MODEL_CONFIG, pipeline_env, run_ok

pytestmark = [pytest.mark.e2e]


def run(*cmd: str, cwd: Path) -> str:
    """``cmd`` run to completion; git commits by Ann Author on 2020-01-01."""
    env = pipeline_env(
        WANDB_MODE="disabled",
        OMP_NUM_THREADS="1",
        GIT_AUTHOR_NAME="Ann Author",
        GIT_AUTHOR_EMAIL="ann@corp.example",
        GIT_COMMITTER_NAME="Ann Author",
        GIT_COMMITTER_EMAIL="ann@corp.example",
        GIT_AUTHOR_DATE="2020-01-01T00:00:00",
        GIT_COMMITTER_DATE="2020-01-01T00:00:00",
    )
    return run_ok(*cmd, cwd=cwd, env=env)


def module(name: str, n: int) -> str:
    """A distinct, ordinary Python module (passes the quality filters, shares no 5-gram with others)."""
    lines = [f'"""Module {name}: helpers for {name} records."""', ""]
    for i in range(n):
        lines += [
            f"def {name}_step_{i}(value_{i}, limit_{name}={i + 3}):",
            f"    if value_{i} > limit_{name}:",
            f"        return value_{i} - {i + 7}",
            f"    return value_{i} * {i + 2} + limit_{name}",
            "",
        ]
    return "\n".join(lines)


def make_sources(root: Path) -> list[dict]:
    app = root / "app"
    for i in range(12):
        (app / "pkg").mkdir(parents=True, exist_ok=True)
        (app / "pkg" / f"app{i}.py").write_text(module(f"app{i}", 4 + i % 3))
    lib = root / "lib"
    lib.mkdir()
    run("git", "init", "-q", "-b", "main", cwd=lib)
    for i in range(10):  # each commit adds a module and edits the previous one: 10 commit documents
        (lib / f"lib{i}.py").write_text(module(f"lib{i}", 3))
        if i:
            (lib / f"lib{i - 1}.py").write_text(module(f"lib{i - 1}", 3) + f"\nVERSION_{i} = {i}\n")
        run("git", "add", "-A", cwd=lib)
        run(
            "git",
            "commit",
            "-q",
            "-m",
            f"lib: add lib{i} (step {i})\n\nWhy: the example needs history.",
            cwd=lib,
        )
    return [
        {"name": "app", "type": "dir", "path": str(app)},
        {"name": "lib", "type": "git", "path": str(lib), "rev": "main"},
        {"name": "lib-history", "type": "git-history", "path": str(lib), "rev": "main"},
    ]


def test_multi_source_example_blend_and_per_source_metrics(tmp_path: Path) -> None:
    params = yaml.safe_load((REPO / "examples" / "params-multi-source.yaml").read_text(encoding="utf-8"))
    params["corpus"]["sources"] = make_sources(tmp_path / "src")
    params["preprocess"]["source_groups"] = {"code": ["app", "lib"], "commits": ["lib-history"]}
    params["tokenizer"].update(vocab_size=300)
    params["train"].update(
        config_path="configs/tiny.yaml",
        batch_size=4,
        max_length=64,
        max_steps=6,
        warmup_steps=1,
        val_check_interval=3,
        limit_val_batches=2,
        save_step_frequency=6,
        log_every_n_steps=1,
        progress_bar_refresh_rate=0,
        num_threads=1,
    )
    params["evaluate"].update(config_path="configs/tiny.yaml", max_length=64, num_threads=1)
    params["benchmark"].update(config_path="configs/tiny.yaml", limit=2, max_new_tokens=8)
    params["export"].update(config_path="configs/tiny.yaml")
    root = tmp_path / "run"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "tiny.yaml").write_text(yaml.safe_dump(TINY_MODEL_CONFIG), encoding="utf-8")
    params_file = root / "multi.yaml"  # not params.yaml: Snakemake must read it from --config params=
    params_file.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")

    for stage in ("corpus", "tokenizer", "preprocess", "train", "evaluate"):
        run(sys.executable, "-m", "gitnetic", stage, "--config", f"{params_file.name}:{stage}", cwd=root)

    # corpus: three sources, each (>= 3 documents) in every split despite the 3% / 5% ratios
    stats = json.loads((root / "data" / "corpus" / "stats.json").read_text())
    assert list(stats["sources"]) == ["app", "lib", "lib-history"]
    for name, src in stats["sources"].items():
        assert all(src["documents"][s] for s in SPLITS), (name, src["documents"])
    assert stats["sources"]["lib-history"]["documents"]["total"] == 10
    assert stats["sources"]["lib-history"]["languages"] == {"diff": 10}

    # preprocess: {split}-{group} shard sets only, holding exactly the documents of their sources
    bins = sorted(p.name for p in (root / "data" / "bin").iterdir())
    assert bins == sorted(
        f"{s}-{g}-0000{i}-of-00002.{e}"
        for s in SPLITS
        for g in ("code", "commits")
        for i in range(2)
        for e in ("bin", "idx")
    )
    from gitnetic.data.shards.indexed import IndexedDataset

    for split in SPLITS:
        docs = stats["sources"]
        assert (
            len(IndexedDataset(root / "data" / "bin" / f"{split}-commits"))
            == docs["lib-history"]["documents"][split]
        )
        assert len(IndexedDataset(root / "data" / "bin" / f"{split}-code")) == (
            docs["app"]["documents"][split] + docs["lib"]["documents"][split]
        )

    # train on the blend: the checkpoint and its validation exist
    assert (root / "models" / "checkpoints" / "checkpoint_last.ckpt").is_file()
    assert json.loads((root / "dvclive" / "metrics.json").read_text())["val"]["loss"] > 0

    # evaluate: per-prefix metrics next to the token-weighted overall ones
    metrics = json.loads((root / "metrics" / "eval.json").read_text())
    per = metrics["per_source"]
    assert list(per) == ["data/bin/test-code", "data/bin/test-commits"]
    assert [p["weight"] for p in per.values()] == pytest.approx([0.85, 0.15])
    for scores in per.values():
        assert scores["tokens"] > 0 and 0 < scores["loss"] < 10 and scores["perplexity"] > 1
    assert metrics["tokens"] == sum(p["tokens"] for p in per.values())
    overall = sum(p["loss"] * p["tokens"] for p in per.values()) / metrics["tokens"]
    assert metrics["loss"] == pytest.approx(overall, rel=1e-9)
    assert metrics["global_step"] == 6

    # Snakemake plans the same files from this params file: one job per (split, shard) writes both groups
    plan = run(
        "snakemake", "-n", "--forceall", "--cores", "1", "--snakefile", str(REPO / "workflow" / "Snakefile"),
        "--config", f"params={params_file.name}", cwd=root,
    )  # fmt: skip
    assert plan.count("rule preprocess_shard:") == 6
    for name in (
        "train-code-00001-of-00002.idx",
        "test-commits-00000-of-00002.bin",
        "valid-commits-00001-of-00002.idx",
    ):
        assert f"data/bin/{name}" in plan
    assert "data/bin/train-00000-of-00002" not in plan
