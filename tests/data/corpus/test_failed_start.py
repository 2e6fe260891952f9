"""A corpus run that fails leaves nothing new behind (issue 29 item 7).

A bad source path, an empty corpus or an error mid-run used to leave an empty ``out_dir`` (and the
folders above it, and the fan-out's ``parts/``) that looked like a run had happened there; an existing
``out_dir`` must keep its earlier outputs byte for byte and gain no entry.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gitnetic.common.errors import CorpusError
from gitnetic.data.corpus import clean
from gitnetic.data.corpus.params import CorpusJobParams, CorpusParams, PartsParams, SplitParams
from gitnetic.data.corpus.stage import run_corpus
from tests.helpers import run_gitnetic, write_tree
from tests.helpers.corpora import module


def tree_digests(root: Path) -> dict[str, str]:
    """Every entry below ``root`` (folders as ``/``), files with their digest: any new file, folder or
    change shows."""
    return {
        str(p.relative_to(root)): "/" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


def failing_params(case: str, tmp_path: Path, out: Path) -> tuple[CorpusParams, CorpusJobParams]:
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    src = write_tree(tmp_path / "src", {f"m{i}.py": module(f"m{i}") for i in range(6)})
    one = {"out_dir": str(out), "num_workers": 1}
    cases = {
        "missing source": (CorpusParams(source="dir", path=str(tmp_path / "nope"), **one), None),
        "empty corpus": (CorpusParams(source="dir", path=str(empty), **one), None),
        "empty corpus, 2 workers": (
            CorpusParams(source="dir", path=str(empty), out_dir=str(out), num_workers=2),
            None,
        ),
        "too few documents for the splits": (
            CorpusParams(
                source="dir",
                path=str(src),
                include=["m0.py"],
                splits=SplitParams(valid_ratio=0.5, test_ratio=0.4),
                **one,
            ),
            None,
        ),
        "failing sign job": (
            CorpusParams(source="dir", path=str(src), parts=PartsParams(count=2), **one),
            CorpusJobParams(job="sign", part_index=0),
        ),
    }
    return cases[case]


CASES = [
    "missing source",
    "empty corpus",
    "empty corpus, 2 workers",
    "too few documents for the splits",
    "failing sign job",
]


def fail_cleaning(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(tasks: list) -> list:
        raise CorpusError("a cleaning step failed")

    monkeypatch.setattr(clean, "clean_batch", broken)


@pytest.mark.parametrize("case", CASES)
def test_a_failed_run_into_a_new_out_dir_leaves_no_folder(case: str, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "new" / "deeper" / "corpus"
    params, job = failing_params(case, tmp_path, out)
    if job is not None:
        fail_cleaning(monkeypatch)
    with pytest.raises(CorpusError):
        run_corpus(params, job)
    assert not (tmp_path / "new").exists(), tree_digests(tmp_path / "new")


@pytest.mark.parametrize("case", CASES)
def test_a_failed_run_keeps_an_existing_out_dir_as_it_was(case: str, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "corpus"
    good = write_tree(tmp_path / "good", {f"g{i}.py": module(f"g{i}") for i in range(20)})
    run_corpus(CorpusParams(source="dir", path=str(good), out_dir=str(out), num_workers=1))
    before = tree_digests(out)
    assert sorted(before) == ["stats.json", "test.jsonl", "train.jsonl", "valid.jsonl"]
    params, job = failing_params(case, tmp_path, out)
    if job is not None:
        fail_cleaning(monkeypatch)
    with pytest.raises(CorpusError):
        run_corpus(params, job)
    assert tree_digests(out) == before  # the same files, byte for byte, and nothing else (no parts/)


def test_a_bad_source_path_on_the_command_line_leaves_no_out_dir(tmp_path: Path) -> None:
    run = run_gitnetic(
        "corpus", "--sources", f"{{name: a, type: dir, path: {tmp_path / 'nope'}}}", "--out_dir", "out/corpus",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 2 and "does not exist" in run.stderr, run.stderr[-3000:]
    assert not (tmp_path / "out").exists()
