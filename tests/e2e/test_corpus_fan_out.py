"""The corpus stage under Snakemake with ``corpus.parts.count > 1``: sign jobs, one decide job, one write
job per split, and outputs byte-identical to the one-job stage (what ``dvc repro`` runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from gitnetic.data.corpus.splits import SPLITS
from tests.helpers import REPO, copy_pipeline, run_ok
from tests.helpers.corpora import git_tree, mixed_tree

pytestmark = [pytest.mark.e2e]

OUTPUTS = [f"data/corpus/{split}.jsonl" for split in SPLITS] + ["data/corpus/stats.json"]


def test_snakemake_fan_out_equals_the_single_job(tmp_path: Path) -> None:
    root = copy_pipeline(tmp_path / "pipeline", files=())
    tree, repo = mixed_tree(tmp_path / "tree"), git_tree(tmp_path / "repo")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["corpus"] |= {
        "sources": [
            {"name": "code", "type": "dir", "path": str(tree), "max_files": 30},
            {"name": "lib", "type": "git", "path": str(repo)},
        ],
        "parts": {"count": 3},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    out = run_ok("snakemake", "--cores", "2", *OUTPUTS, cwd=root)
    for rule, jobs in (("corpus_sign", 3), ("corpus_decide", 1), ("corpus_write", 3)):
        assert out.count(f"rule {rule}:") == jobs, out[-4000:]
    fanned = {name: (root / name).read_bytes() for name in OUTPUTS}
    assert not list((root / "data" / "corpus" / "parts").glob("*")), "temporary parts were not removed"

    shutil.rmtree(root / "data" / "corpus")
    run_ok("python", "-m", "gitnetic", "corpus", "--config", "params.yaml:corpus", cwd=root)
    for name in OUTPUTS:
        assert (root / name).read_bytes() == fanned[name], f"{name} differs between fan-out and one job"
