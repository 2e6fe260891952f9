"""Split assignment: hash-only for large corpora, a one-document floor for small ones, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitnetic.common.errors import CorpusError
from gitnetic.data.corpus.params import CorpusParams, SplitParams
from gitnetic.data.corpus.splits import assign_split, assign_splits
from gitnetic.data.corpus.stage import collect_corpus
from gitnetic.data.jsonl import iter_jsonl

RATIOS = [(0.03, 0.05), (0.1, 0.1), (0.0, 0.05), (0.05, 0.0), (0.5, 0.4), (0.0, 0.0)]


def paths(n: int) -> list[str]:
    return [f"pkg/module_{i:04d}.py" for i in range(n)]


@pytest.mark.parametrize("n", [3, 10, 1000])
@pytest.mark.parametrize(("valid_ratio", "test_ratio"), RATIOS)
def test_every_split_with_a_ratio_gets_a_document(n: int, valid_ratio: float, test_ratio: float) -> None:
    splits = assign_splits(paths(n), valid_ratio, test_ratio, seed=1234)
    assert len(splits) == n and set(splits) <= {"train", "valid", "test"}
    assert splits.count("train") >= 1
    for name, ratio in (("valid", valid_ratio), ("test", test_ratio)):
        if ratio > 0:
            assert splits.count(name) >= 1, (name, n)
        else:
            assert splits.count(name) == 0, (name, n)


@pytest.mark.parametrize(("valid_ratio", "test_ratio"), RATIOS)
def test_large_corpora_are_split_by_the_hash_alone(valid_ratio: float, test_ratio: float) -> None:
    """1,000 files with these ratios fill every split by hash, so the floor moves nothing."""
    many = paths(1000)
    expected = [assign_split(p, valid_ratio, test_ratio, seed=1234) for p in many]
    assert assign_splits(many, valid_ratio, test_ratio, seed=1234) == expected


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1000])
@pytest.mark.parametrize("seed", [0, 7])
def test_splits_are_deterministic_and_independent_of_order(n: int, seed: int) -> None:
    if n < 3:
        return  # covered by the error test below
    names = paths(n)
    first = dict(zip(names, assign_splits(names, 0.03, 0.05, seed), strict=True))
    reordered = list(reversed(names))
    again = dict(zip(reordered, assign_splits(reordered, 0.03, 0.05, seed), strict=True))
    assert first == again  # one split per path: no document is in two splits


def test_the_floor_moves_the_fewest_documents_nearest_the_empty_split() -> None:
    names = paths(10)
    by_hash = [assign_split(p, 0.03, 0.05, seed=1234) for p in names]
    floored = assign_splits(names, 0.03, 0.05, seed=1234)
    empty_by_hash = {"valid", "test"} - set(by_hash)
    assert empty_by_hash  # 10 files at 3%/5%: the case the floor exists for
    changed = [i for i in range(10) if by_hash[i] != floored[i]]
    assert len(changed) == len(empty_by_hash)


@pytest.mark.parametrize("n", [1, 2])
def test_too_few_documents_name_the_ratios_and_the_count(n: int) -> None:
    with pytest.raises(
        CorpusError, match=rf"only {n} documents? collected.*valid_ratio 0.03, test_ratio 0.05"
    ):
        assign_splits(paths(n), 0.03, 0.05)


def test_few_documents_are_fine_when_fewer_splits_are_required() -> None:
    assert assign_splits(paths(1), 0.0, 0.0) == ["train"]
    assert sorted(assign_splits(paths(2), 0.0, 0.5)) == ["test", "train"]


# ------------------------------------------------------------------------------ through the corpus stage
def write_files(root: Path, n: int) -> Path:
    for i in range(n):
        (root / f"mod_{i}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / f"mod_{i}.py").write_text(f"def f_{i}(x):\n    return x + {i}\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("n", [3, 10])
def test_corpus_stage_fills_valid_and_test_of_a_small_repository(tmp_path: Path, n: int) -> None:
    src = write_files(tmp_path / "src", n)
    params = CorpusParams(
        source="dir",
        path=str(src),
        out_dir=str(tmp_path / "out"),
        splits=SplitParams(valid_ratio=0.03, test_ratio=0.05),
    )
    stats = collect_corpus(params)
    found = {
        s: [r["path"] for r in iter_jsonl(tmp_path / "out" / f"{s}.jsonl")]
        for s in ("train", "valid", "test")
    }
    assert all(found.values()), found
    assert sorted(p for ps in found.values() for p in ps) == sorted(f"mod_{i}.py" for i in range(n))
    assert stats.documents == {s: len(found[s]) for s in found}
    assert stats.total_bytes == sum(f.stat().st_size for f in src.iterdir())
    for split, names in found.items():  # records stay in sorted path order
        assert names == sorted(names), split
    again = collect_corpus(CorpusParams(**{**params.to_dict(), "out_dir": str(tmp_path / "again")}))
    assert again.documents == stats.documents
    for split in found:
        assert (tmp_path / "out" / f"{split}.jsonl").read_bytes() == (
            tmp_path / "again" / f"{split}.jsonl"
        ).read_bytes()


def test_corpus_stage_with_too_few_files_says_so_in_one_line(tmp_path: Path) -> None:
    src = write_files(tmp_path / "src", 2)
    params = CorpusParams(
        source="dir",
        path=str(src),
        out_dir=str(tmp_path / "out"),
        splits=SplitParams(valid_ratio=0.03, test_ratio=0.05),
    )
    with pytest.raises(CorpusError, match="only 2 documents collected") as info:
        collect_corpus(params)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_stdlib_excludes_apply_to_the_stdlib_source_only(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for rel in ("test/test_a.py", "pkg/tests/test_b.py", "idlelib/c.py", "lib2to3/d.py", "pkg/e.py"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(f"X = {rel!r}\n", encoding="utf-8")
    stats = collect_corpus(
        CorpusParams(
            source="dir",
            path=str(src),
            out_dir=str(tmp_path / "out"),
            splits=SplitParams(valid_ratio=0, test_ratio=0),
        )
    )
    assert stats.total_documents == 5
    std = collect_corpus(CorpusParams(out_dir=str(tmp_path / "std"), max_files=400, max_bytes=0))
    std_paths = [r["path"] for r in iter_jsonl(tmp_path / "std" / "train.jsonl")]
    assert std.total_documents == 400
    assert not [p for p in std_paths if p.startswith(("test/", "idlelib/", "turtledemo/", "lib2to3/"))]
